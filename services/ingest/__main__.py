"""`python -m services.ingest {http|gate|sink}`: HTTP ingest (8082), Kafka-native gate (8083), sink (8084)."""

from __future__ import annotations

import sys

from services.common.logs import configure_logging
from services.common.production import refuse_development_secrets
from services.ingest.settings import IngestSettings

ROLES = ("http", "gate", "sink")


def main(argv: list[str]) -> int:
    role = argv[0] if argv else "http"
    if role not in ROLES:
        sys.stderr.write(f"usage: python -m services.ingest {{{'|'.join(ROLES)}}}\n")
        return 2
    settings = IngestSettings()
    # Only the sink, and ingest-http with a shared quota, talk to the database; the others never read its URL.
    uses_database = role == "sink" or (role == "http" and settings.http_shared_quota)
    refuse_development_secrets(settings, unused=() if uses_database else {"database_url"})
    configure_logging(settings.log_level)
    if role == "gate":
        import faust

        from services.common.event_loop import default_event_loop, use_event_loop

        use_event_loop(default_event_loop())  # before the app exists: it creates the loop
        from services.ingest.gate_app import build_app

        app = build_app(settings)
        worker = faust.Worker(app, loglevel=settings.log_level.lower())
        worker.execute_from_commandline()
        return 0
    import uvicorn

    if role == "http":
        from services.ingest.http_app import create_app

        if settings.http_reuse_port:  # one of several ingest-http processes on this port
            from services.ingest.shared_port import serve_on_shared_port

            serve_on_shared_port(create_app(settings), "0.0.0.0", settings.http_port)
        else:
            uvicorn.run(create_app(settings), host="0.0.0.0", port=settings.http_port, log_level="warning")
    else:
        from services.ingest.sink_app import create_sink_app

        uvicorn.run(create_sink_app(settings), host="0.0.0.0", port=settings.sink_port, log_level="warning")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
