"""`python -m services.register`: the register API on port 8081 (CITYSTREAM_REGISTER_PORT)."""

from __future__ import annotations

import logging

import uvicorn

from services.common.logs import configure_logging
from services.common.production import refuse_development_secrets
from services.register.app import create_app
from services.register.settings import DEV_ADMIN_TOKEN, RegisterSettings

log = logging.getLogger("services.register")


def main() -> None:
    settings = RegisterSettings()
    refuse_development_secrets(settings)
    configure_logging(settings.log_level)
    if settings.register_admin_token.get_secret_value() == DEV_ADMIN_TOKEN:
        log.warning("using the local-development admin token; set CITYSTREAM_REGISTER_ADMIN_TOKEN in deployments")
    # uvicorn handles SIGINT/SIGTERM: stops accepting, runs the lifespan shutdown (relay, producer, pool).
    uvicorn.run(create_app(settings), host=settings.register_host, port=settings.register_port,
                log_config=None, access_log=False)


if __name__ == "__main__":
    main()
