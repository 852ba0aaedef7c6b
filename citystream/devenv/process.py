"""Process plumbing for the local runtime: pid files, port checks, waiting, stopping."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


class RuntimeProblem(RuntimeError):
    """Something the user must fix; the message says what and how."""


def port_open(port: int, host: str = "127.0.0.1", timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie child still answers kill(0); treat it as gone.
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return True


def read_pid(pid_file: Path) -> int | None:
    """The pid in `pid_file` if that process still runs; removes a stale file."""
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    if pid_alive(pid):
        return pid
    pid_file.unlink(missing_ok=True)
    return None


def wait_until(check, timeout_s: float, interval_s: float = 0.25) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(interval_s)
    return check()


def stop_pid(pid: int, timeout_s: float = 20.0) -> None:
    """SIGTERM, then SIGKILL if the process is still there after `timeout_s`."""
    try:
        os.killpg(pid, signal.SIGTERM)
    except (ProcessLookupError, PermissionError):
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            return
    if wait_until(lambda: not pid_alive(pid), timeout_s):
        return
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        os.kill(pid, signal.SIGKILL)
    wait_until(lambda: not pid_alive(pid), 5)


def tail(path: Path, lines: int = 15) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log yet)"
