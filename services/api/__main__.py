"""`python -m services.api`: the operations API and ops-centre page on port 8080 (CITYSTREAM_API_PORT)."""

from __future__ import annotations

import logging

import uvicorn

from services.api.app import create_app
from services.api.settings import LOCAL_DEV_TOKENS, ApiSettings
from services.common.logs import configure_logging
from services.common.production import refuse_development_secrets

log = logging.getLogger("services.api")


def main() -> None:
    settings = ApiSettings()
    # With its own reader DSN the API never connects as CITYSTREAM_DATABASE_URL.
    refuse_development_secrets(settings, unused={"database_url"} if settings.api_database_url else ())
    configure_logging(settings.log_level)
    if settings.api_tokens == LOCAL_DEV_TOKENS:
        log.warning("using the local development tokens; set CITYSTREAM_API_TOKENS in any shared deployment")
        log.info("ops centre at http://%s:%d/ops/#token=dev-operator", settings.api_host, settings.api_port)
    else:  # a deployment's tokens are never written to the log, not even as a hint
        log.info("ops centre at http://%s:%d/ops/", settings.api_host, settings.api_port)
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, ends the lifespan (followers, producer, pool) and exits.
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None,
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
