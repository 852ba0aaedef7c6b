"""`python -m services.anomaly worker`: starts the Faust worker (web on CITYSTREAM_ANOMALY_WEB_PORT, default 8085)."""

from __future__ import annotations

import sys

from services.common.logs import configure_logging


def main() -> None:
    if len(sys.argv) < 2 or sys.argv[1] != "worker":
        raise SystemExit("usage: python -m services.anomaly worker")
    from services.anomaly.app import app, settings

    configure_logging(settings.log_level)
    sys.argv = [sys.argv[0], "worker", "--loglevel", settings.log_level.lower(), "--web-port",
                str(settings.web_port)]
    app.main()


if __name__ == "__main__":
    main()
