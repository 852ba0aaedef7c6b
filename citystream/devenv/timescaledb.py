"""TimescaleDB for the local PostgreSQL: use an installed one, else build Debian's Apache-licensed source once.

The source comes from Debian trixie's `timescaledb` source package, fetched through a private apt sources list
kept in the cache (pointing at the Debian archive apt's own sources name), so the machine's own apt configuration is
never touched. The build is cached as a staged
install tree; installing from the cache is a file copy.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from pathlib import Path

from citystream.devenv.config import DevSettings
from citystream.devenv.process import RuntimeProblem

log = logging.getLogger(__name__)

SOURCE_PACKAGE = "timescaledb"
SOURCES_LIST = "deb-src [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] {mirror} trixie main\n"
BUILD_PACKAGES = ("postgresql-server-dev-{major}", "dpkg-dev", "cmake", "gcc", "make", "libssl-dev")
# The programs the build runs, and the package each comes from.
BUILD_TOOLS = {"apt-get": "apt", "dpkg-source": "dpkg-dev", "cmake": "cmake", "gcc": "gcc", "make": "make"}
# apt gives up on a dead mirror in seconds and treats a failed index fetch as an error, not a warning.
APT_NETWORK_OPTIONS = ("-o", "Acquire::http::Timeout=15", "-o", "Acquire::https::Timeout=15",
                       "-o", "Acquire::Retries=0")


def pg_config(name: str, major: int) -> str:
    binary = f"/usr/lib/postgresql/{major}/bin/pg_config"
    if not os.path.exists(binary):
        binary = shutil.which("pg_config") or binary
    return subprocess.run([binary, f"--{name}"], capture_output=True, text=True, check=True).stdout.strip()


def installed(major: int) -> bool:
    sharedir = Path(f"/usr/share/postgresql/{major}")
    try:
        sharedir = Path(pg_config("sharedir", major))
    except (OSError, subprocess.CalledProcessError):
        pass
    return (sharedir / "extension" / "timescaledb.control").exists()


def _run(command: list[str], cwd: Path | None = None, timeout: int = 900) -> None:
    try:
        result = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as slow:
        raise RuntimeProblem(f"`{' '.join(command[:3])} ...` took over {timeout} s; stopped it.") from slow
    except FileNotFoundError as missing:
        raise RuntimeProblem(
            f"`{command[0]}` is not installed; building TimescaleDB needs: "
            + " ".join(BUILD_PACKAGES).format(major="15")
        ) from missing
    if result.returncode != 0:
        raise RuntimeProblem(f"`{' '.join(command)}` failed:\n{(result.stdout + result.stderr)[-3000:]}")


def _apt_install(packages: list[str]) -> None:
    if os.geteuid() != 0:
        raise RuntimeProblem(f"Missing build packages {packages}; run as root or install them with apt-get.")
    log.info("installing %s with apt-get", " ".join(packages))
    _run(["apt-get", *APT_NETWORK_OPTIONS, "install", "-y", "-q", "--no-install-recommends", *packages], timeout=1200)


def _missing_packages(major: int) -> list[str]:
    wanted = [name.format(major=major) for name in BUILD_PACKAGES]
    missing = []
    if not shutil.which("dpkg-query"):
        return []  # not a Debian system: the tools check below names what is missing
    for package in wanted:
        probe = subprocess.run(["dpkg-query", "-W", "-f=${Status}", package], capture_output=True, text=True)
        if "install ok installed" not in probe.stdout:
            missing.append(package)
    return missing


def _missing_tools() -> list[str]:
    return [tool for tool in BUILD_TOOLS if not shutil.which(tool)]


def _require_tools(major: int) -> None:
    """Name every missing compiler/build tool at once, before any download, instead of failing half-way."""
    missing = _missing_tools()
    if missing:
        packages = sorted({BUILD_TOOLS[tool] for tool in missing})
        raise RuntimeProblem(
            f"Building TimescaleDB needs {', '.join(f'`{tool}`' for tool in missing)}, not found on PATH. "
            f"Install them: apt-get install {' '.join(packages)} (or install TimescaleDB for PostgreSQL {major} "
            "from Timescale's packages; an installed TimescaleDB is used as is)."
        )


# Debian release suites (not -security/-updates, not third-party repositories that reuse a codename inside theirs).
DEBIAN_SUITES = frozenset({"bullseye", "bookworm", "trixie", "forky", "sid", "oldstable", "stable", "testing",
                           "unstable"})
APT_SOURCES = (Path("/etc/apt/sources.list"), Path("/etc/apt/sources.list.d"))


def _source_entries(path: Path) -> list[tuple[str, list[str]]]:
    """(URI, suites) of each entry of a one-line (.list) or deb822 (.sources) apt sources file."""
    try:
        text = path.read_text()
    except OSError:
        return []
    entries: list[tuple[str, list[str]]] = []
    if path.suffix == ".sources":
        for stanza in text.split("\n\n"):
            fields = dict(line.split(":", 1) for line in stanza.splitlines()
                          if ":" in line and not line.startswith(("#", " ")))
            fields = {key.strip().lower(): value.split() for key, value in fields.items()}
            entries += [(uri, fields.get("suites", [])) for uri in fields.get("uris", [])]
        return entries
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] in ("deb", "deb-src"):
            words = [w for w in words[1:] if not (w.startswith("[") or w.endswith("]") or "=" in w)]
            if len(words) >= 2:
                entries.append((words[0], [words[1]]))
    return entries


def configured_debian_mirror(sources: tuple[Path, ...] = APT_SOURCES) -> str | None:
    """The Debian archive apt is configured with (its first entry for a Debian release suite), or None."""
    files: list[Path] = []
    for source in sources:
        files += sorted(source.glob("*.list")) + sorted(source.glob("*.sources")) if source.is_dir() else [source]
    for path in files:
        for uri, suites in _source_entries(path):
            if DEBIAN_SUITES.intersection(suites):
                return uri.rstrip("/")
    return None


def debian_mirror(settings: DevSettings) -> str:
    """CITYSTREAM_DEV_DEBIAN_MIRROR when set, else the Debian archive of apt's own sources."""
    mirror = settings.debian_mirror.rstrip("/") or configured_debian_mirror()
    if not mirror:
        raise RuntimeProblem(
            "apt's sources name no Debian archive to fetch TimescaleDB's source package from; set "
            "CITYSTREAM_DEV_DEBIAN_MIRROR to one (or install TimescaleDB from Timescale's packages)."
        )
    return mirror


def _apt_update(apt_options: list[str], timeout: int) -> None:
    """apt-get update exits 0 when a mirror is unreachable (it only warns); we need the index, so that fails."""
    command = ["apt-get", *apt_options, *APT_NETWORK_OPTIONS, "update"]
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired as slow:
        raise RuntimeProblem(f"`apt-get update` for Debian's source index took over {timeout} s.") from slow
    output = result.stdout + result.stderr
    failed = [line for line in output.splitlines() if line.startswith(("Err:", "E:", "W: Failed to fetch"))]
    if result.returncode != 0 or failed:
        raise RuntimeProblem(
            "Could not fetch Debian's source index (no network to the mirror?):\n" + "\n".join(failed or [output[-2000:]])
        )


def build(settings: DevSettings, major: int) -> Path:
    """Build TimescaleDB into a staged tree in the cache (once) and return that tree."""
    from citystream.devenv.kafka import probe_registry

    root = settings.cache_dir / f"timescaledb-pg{major}"
    stage = root / "stage"
    if (root / ".complete").exists():
        return stage
    missing = _missing_packages(major)
    if missing:
        _apt_install(missing)
    _require_tools(major)
    mirror = debian_mirror(settings)
    probe_registry(f"{mirror}/dists/trixie/Release", "the Debian mirror")
    apt_dir = root / "apt"
    (apt_dir / "lists" / "partial").mkdir(parents=True, exist_ok=True)
    (apt_dir / "sources.list").write_text(SOURCES_LIST.format(mirror=mirror))
    apt_options = [
        "-o", f"Dir::Etc::SourceList={apt_dir / 'sources.list'}",
        "-o", "Dir::Etc::SourceParts=/dev/null",
        "-o", f"Dir::State::Lists={apt_dir / 'lists'}",
        "-o", "APT::Get::List-Cleanup=0",
        "-o", f"Dir::Cache={apt_dir / 'cache'}",  # the machine's own package cache stays as it is
    ]
    (apt_dir / "cache" / "archives" / "partial").mkdir(parents=True, exist_ok=True)
    source_dir = root / "source"
    shutil.rmtree(source_dir, ignore_errors=True)
    source_dir.mkdir(parents=True)
    log.info("fetching Debian's %s source package from %s", SOURCE_PACKAGE, mirror)
    _apt_update(apt_options, timeout=120)
    _run(["apt-get", *apt_options, *APT_NETWORK_OPTIONS, "source", "--download-only", SOURCE_PACKAGE],
         cwd=source_dir, timeout=int(settings.download_timeout_s))
    dsc = next(source_dir.glob("*.dsc"), None)
    if dsc is None:
        raise RuntimeProblem(
            f"`apt-get source {SOURCE_PACKAGE}` finished but left no .dsc in {source_dir}: the mirror {mirror} "
            "may not carry trixie's source packages. Set CITYSTREAM_DEV_DEBIAN_MIRROR to one that does."
        )
    _run(["dpkg-source", "-x", "--no-check", dsc.name, "src"], cwd=source_dir)
    build_dir = root / "build"
    shutil.rmtree(build_dir, ignore_errors=True)
    log.info("building TimescaleDB (Apache-licensed parts) against PostgreSQL %s", major)
    _run([
        "cmake", "-S", str(source_dir / "src"), "-B", str(build_dir),
        f"-DPG_CONFIG=/usr/lib/postgresql/{major}/bin/pg_config", "-DAPACHE_ONLY=1",
        "-DREGRESS_CHECKS=OFF", "-DTAP_CHECKS=OFF", "-DUSE_TELEMETRY=OFF", "-DSEND_TELEMETRY_DEFAULT=OFF",
        "-DCMAKE_BUILD_TYPE=RelWithDebInfo",
    ])
    _run(["make", "-C", str(build_dir), f"-j{os.cpu_count() or 2}"], timeout=1800)
    shutil.rmtree(stage, ignore_errors=True)
    _run(["make", "-C", str(build_dir), "install", f"DESTDIR={stage}"])
    shutil.rmtree(build_dir, ignore_errors=True)
    (root / ".complete").write_text(dsc.name)
    return stage


def ensure(settings: DevSettings, major: int) -> str:
    """Make TimescaleDB loadable by PostgreSQL `major`. Returns where it came from."""
    if installed(major):
        return "installed"
    stage = build(settings, major)
    if os.geteuid() != 0:
        raise RuntimeProblem(
            f"TimescaleDB is built in {stage} but installing it into PostgreSQL's directories needs root: "
            f"sudo cp -a {stage}/. /"
        )
    shutil.copytree(stage, "/", dirs_exist_ok=True)
    if not installed(major):
        raise RuntimeProblem(f"TimescaleDB was copied from {stage} but PostgreSQL {major} still cannot see it.")
    return "built from Debian source"
