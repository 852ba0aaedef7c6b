"""PostgreSQL 15 with TimescaleDB preloaded, in the project's own data directory and port."""

from __future__ import annotations

import logging
import os
import pwd
import shutil
import subprocess
from pathlib import Path

from citystream.devenv import timescaledb
from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem, pid_alive, port_open, tail

log = logging.getLogger(__name__)

PG_MAJOR = 15


def bindir() -> Path:
    return Path(f"/usr/lib/postgresql/{PG_MAJOR}/bin")


def _data(settings: DevSettings) -> Path:
    return settings.state_dir / "postgres" / "data"


def _run_dir(settings: DevSettings) -> Path:
    return settings.state_dir / "postgres" / "run"


def _log_file(settings: DevSettings) -> Path:
    return settings.logs_dir / "postgres.log"


def _server_user() -> str | None:
    """PostgreSQL refuses to run as root; as root we run it as the `postgres` system user."""
    return "postgres" if os.geteuid() == 0 else None


def _as_server_user(command: list[str]) -> list[str]:
    user = _server_user()
    return ["runuser", "-u", user, "--", *command] if user else command


def _chown_for_server(*paths: Path) -> None:
    user = _server_user()
    if not user:
        return
    entry = pwd.getpwnam(user)
    for path in paths:
        os.chown(path, entry.pw_uid, entry.pw_gid)
        for root, dirs, files in os.walk(path):
            os.chown(root, entry.pw_uid, entry.pw_gid)
            for name in files:
                os.chown(os.path.join(root, name), entry.pw_uid, entry.pw_gid)


def ensure_server_installed() -> None:
    if (bindir() / "postgres").exists():
        return
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        raise RuntimeProblem(f"PostgreSQL {PG_MAJOR} is not installed: apt-get install postgresql-{PG_MAJOR}")
    log.info("installing postgresql-%s with apt-get", PG_MAJOR)
    result = subprocess.run(
        ["apt-get", *timescaledb.APT_NETWORK_OPTIONS, "install", "-y", "-q", "--no-install-recommends",
         f"postgresql-{PG_MAJOR}"],
        capture_output=True, text=True, timeout=1200,
    )
    if result.returncode != 0:
        raise RuntimeProblem("Installing PostgreSQL failed:\n" + (result.stdout + result.stderr)[-2000:])


def _initdb(settings: DevSettings) -> None:
    data = _data(settings)
    if (data / "PG_VERSION").exists():
        return
    if data.exists() and any(data.iterdir()):
        if (data / "postgresql.conf").exists() or (data / "base").exists():
            raise RuntimeProblem(
                f"{data} holds a PostgreSQL data directory without PG_VERSION: it is damaged. "
                "Move it away (or `citystream dev reset`) and run `citystream dev up` again."
            )
        shutil.rmtree(data)
    data.mkdir(parents=True, exist_ok=True)
    _run_dir(settings).mkdir(parents=True, exist_ok=True)
    settings.logs_dir.mkdir(parents=True, exist_ok=True)
    password_file = settings.state_dir / "postgres" / "pwfile"
    password_file.write_text(settings.postgres_password + "\n")
    _chown_for_server(settings.state_dir / "postgres")
    result = subprocess.run(
        _as_server_user([
            str(bindir() / "initdb"), "-D", str(data), "-U", settings.postgres_user, f"--pwfile={password_file}",
            "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--locale=C.UTF-8",
        ]),
        capture_output=True, text=True, timeout=120,
    )
    password_file.unlink(missing_ok=True)
    if result.returncode != 0:
        shutil.rmtree(data, ignore_errors=True)
        raise RuntimeProblem("initdb failed:\n" + (result.stdout + result.stderr)[-2000:])
    with open(data / "postgresql.conf", "a") as conf:
        conf.write(
            "\n# CityStream local runtime\n"
            f"port = {settings.postgres_port}\n"
            "listen_addresses = '127.0.0.1'\n"
            f"unix_socket_directories = '{_run_dir(settings)}'\n"
            "shared_preload_libraries = 'timescaledb'\n"
            "timescaledb.telemetry_level = off\n"
            "max_connections = 200\n"
            "shared_buffers = 256MB\n"
            "max_wal_size = 2GB\n"
            "timezone = 'UTC'\n"
            "# Diagnostics: a lock wait over deadlock_timeout (1 s) and any statement over 5 s leave a log line.\n"
            "log_lock_waits = on\n"
            "log_min_duration_statement = 5000\n"
        )
    _chown_for_server(data)


def _pg_ctl(settings: DevSettings, *args: str, timeout: int = 90) -> subprocess.CompletedProcess:
    command = [str(bindir() / "pg_ctl"), "-D", str(_data(settings)), *args]
    return subprocess.run(_as_server_user(command), capture_output=True, text=True, timeout=timeout)


def postmaster_pid_file(settings: DevSettings) -> Path:
    """The server's pid file (its first line is the postmaster's pid)."""
    return _data(settings) / "postmaster.pid"


def _postmaster_pid(settings: DevSettings) -> int | None:
    try:
        return int(postmaster_pid_file(settings).read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None


def running(settings: DevSettings) -> bool:
    # pg_ctl counts a zombie postmaster (killed, not yet reaped) as running; pid_alive does not.
    pid = _postmaster_pid(settings)
    return pid is not None and pid_alive(pid) and _pg_ctl(settings, "status").returncode == 0


def _clear_stale_lock(settings: DevSettings) -> None:
    """After a crash postmaster.pid names a dead process; PostgreSQL would refuse to start while it exists."""
    pid = _postmaster_pid(settings)
    if pid is not None and not pid_alive(pid):
        log.warning("removing stale postmaster.pid of crashed PostgreSQL (pid %s)", pid)
        postmaster_pid_file(settings).unlink(missing_ok=True)
    # The socket lock file names the postmaster too, and a zombie pid looks alive to PostgreSQL's own check.
    for lock in _run_dir(settings).glob(".s.PGSQL.*.lock"):
        try:
            owner = int(lock.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            owner = None
        if owner is None or not pid_alive(owner):
            lock.unlink(missing_ok=True)


def start(settings: DevSettings) -> str:
    ensure_server_installed()
    source = timescaledb.ensure(settings, PG_MAJOR)
    _initdb(settings)
    if running(settings):
        return f"PostgreSQL already running on port {settings.postgres_port}"
    if port_open(settings.postgres_port):
        raise RuntimeProblem(
            f"Port {settings.postgres_port} is in use by another program. Stop it or set CITYSTREAM_DEV_POSTGRES_PORT."
        )
    _clear_stale_lock(settings)
    _run_dir(settings).mkdir(parents=True, exist_ok=True)
    _chown_for_server(_run_dir(settings))
    log_file = _log_file(settings)
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log_file.touch()
    _chown_for_server(log_file)
    result = _pg_ctl(settings, "-l", str(log_file), "-w", "-t", str(int(settings.start_timeout_s)), "start")
    if result.returncode != 0:
        raise RuntimeProblem(f"PostgreSQL did not start:\n{result.stdout}{result.stderr}\n{tail(log_file)}")
    _create_database(settings)
    return f"PostgreSQL {PG_MAJOR} + TimescaleDB ({source}) started on port {settings.postgres_port}"


def _psql(settings: DevSettings, sql: str, database: str = "postgres") -> subprocess.CompletedProcess:
    command = [str(bindir() / "psql"), "-h", str(_run_dir(settings)), "-p", str(settings.postgres_port),
               "-U", settings.postgres_user, "-d", database, "-v", "ON_ERROR_STOP=1", "-tAc", sql]
    return subprocess.run(command, capture_output=True, text=True, timeout=30)


def _create_database(settings: DevSettings) -> None:
    exists = _psql(settings, f"SELECT 1 FROM pg_database WHERE datname = '{settings.postgres_db}'")
    if exists.stdout.strip() != "1":
        created = _psql(settings, f'CREATE DATABASE "{settings.postgres_db}"')
        if created.returncode != 0:
            raise RuntimeProblem(f"Creating database {settings.postgres_db} failed: {created.stderr}")


def stop(settings: DevSettings) -> str:
    if not running(settings):
        return "PostgreSQL not running"
    result = _pg_ctl(settings, "-m", "fast", "-w", "-t", "60", "stop")
    if result.returncode != 0:
        raise RuntimeProblem(f"PostgreSQL did not stop: {result.stderr}")
    return "PostgreSQL stopped"


def status(settings: DevSettings) -> dict:
    up = running(settings) and port_open(settings.postgres_port)
    postgres_version = timescale_version = license_ = None
    if up:
        # Asked of the running server, in the project's database: the version CREATE EXTENSION installed there
        # (not the newest the package offers) and the license the loaded library reports. Each is empty (-> None)
        # when it cannot be told, e.g. before `citystream db migrate` created the extension.
        probe = _psql(
            settings,
            "SELECT current_setting('server_version') || '|' || "
            "coalesce((SELECT extversion FROM pg_extension WHERE extname = 'timescaledb'), '') || '|' || "
            "coalesce(current_setting('timescaledb.license', true), '')",
            database=settings.postgres_db,
        )
        if probe.returncode == 0 and probe.stdout.count("|") == 2:
            postgres_version, timescale_version, license_ = probe.stdout.strip().split("|")
    return {
        "component": "timescaledb",
        "state": "up" if up else "down",
        "version": timescale_version or None,
        "postgres_version": postgres_version,
        "license": license_ or None,
        "port": settings.postgres_port,
        "database_url": settings.database_url,
        "log": str(_log_file(settings)),
    }
