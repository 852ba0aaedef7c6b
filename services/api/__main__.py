"""`python -m services.api`: the operations API and ops-centre page on port 8080 (CITYSTREAM_API_PORT)."""

from __future__ import annotations

import logging

import uvicorn

from services.api.app import create_app
from services.api.settings import LOCAL_DEV_TOKENS, ApiSettings
from services.common.logs import configure_logging

log = logging.getLogger("services.api")


def main() -> None:
    settings = ApiSettings()
    configure_logging(settings.log_level)
    if settings.api_tokens == LOCAL_DEV_TOKENS:
        log.warning("using the local development tokens; set CITYSTREAM_API_TOKENS in any shared deployment")
    log.info("ops centre at http://%s:%d/ops/#token=dev-operator", settings.api_host, settings.api_port)
    # uvicorn handles SIGINT/SIGTERM: it stops accepting, ends the lifespan (followers, producer, pool) and exits.
    uvicorn.run(create_app(settings), host=settings.api_host, port=settings.api_port, log_config=None,
                timeout_graceful_shutdown=5)


if __name__ == "__main__":
    main()
