"""`python -m citystream.simulate [options]`: the simulator as `citystream run` starts it."""

from __future__ import annotations

import logging

from citystream.simulate.cli import app
from services.common.logs import configure_logging

if __name__ == "__main__":
    configure_logging("INFO")
    logging.captureWarnings(True)
    app(prog_name="citystream simulate")
