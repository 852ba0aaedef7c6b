"""CPU seconds and peak memory of a process tree (a process and every descendant), sampled with psutil, and the
pids of the local runtime's Kafka and PostgreSQL (pid files under the runtime's state dir, `.citystream/`)."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable
from pathlib import Path

import psutil

from citystream.devenv import postgres
from citystream.devenv.config import DevSettings
from citystream.devenv.kafka import KafkaPaths

ProcessTable = dict[int, list[int]]  # parent pid → child pids


def process_table() -> ProcessTable:
    """Every process's children, from one pass over /proc, shared by the trees sampled in one round: each tree
    scanning /proc for its own descendants cost the benchmark's process more CPU than its HTTP client did, and
    that CPU is reported as the load generator's. On Linux each process's parent is read from its `stat` file
    directly: psutil's process_iter reads it twice (start time, then parent), a sixth of the load generator's CPU
    in the detected phase."""
    if not os.path.isdir("/proc/self"):
        table: ProcessTable = {}
        for process in psutil.process_iter(["ppid"]):
            table.setdefault(process.info["ppid"], []).append(process.pid)
        return table
    return _proc_table()


def _proc_table() -> ProcessTable:
    table: ProcessTable = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as stat_file:
                stat = stat_file.read()
            # `pid (comm) state ppid ...`: comm may hold spaces and parentheses, so read after the last ')'.
            ppid = int(stat[stat.rindex(b")") + 2:].split(b" ", 2)[1])
        except (OSError, ValueError, IndexError):  # the process exited meanwhile
            continue
        table.setdefault(ppid, []).append(int(entry.name))
    return table


class ProcessTree:
    """Usage of process `pid` and (with `children`) its descendants since `begin()`.

    CPU is the sum over every process seen of (its last CPU time − its CPU time when first seen or at `begin()`),
    so a child that exited keeps what it used, and CPU spent before the run (a broker up for an hour) is not
    counted. Memory is the peak, over samples, of the summed resident set of the tree."""

    def __init__(self, name: str, pid: int, *, children: bool = True) -> None:
        self.name, self.pid, self.children = name, pid, children
        self.peak_rss_bytes = 0
        self._start_cpu: dict[tuple[int, float], float] = {}
        self._last_cpu: dict[tuple[int, float], float] = {}
        self._begun = False
        self._lock = threading.RLock()  # sampled by the sampler thread and at phase boundaries by the runner
        self._known: dict[int, psutil.Process] = {}  # psutil reads a process's start time once per object

    def _processes(self, table: ProcessTable | None = None) -> list[psutil.Process]:
        if table is None:
            root = psutil.Process(self.pid)
            return [root, *(root.children(recursive=True) if self.children else ())]
        pids, found = [self.pid], {}
        while pids:
            pid = pids.pop()
            found[pid] = self._known.get(pid) or psutil.Process(pid)
            if self.children:
                pids.extend(table.get(pid, ()))
        self._known = found  # a process gone from the table is forgotten, so a reused pid gets a new object
        return list(found.values())

    def begin(self) -> None:
        """Usage counts from now on (processes already running keep their earlier CPU out of the figure)."""
        with self._lock:
            self._begin()

    def _begin(self) -> None:
        self._begun = True
        try:
            for process in self._processes():
                key, cpu, _ = _usage(process)
                if key is not None:
                    self._start_cpu[key] = cpu
                    self._last_cpu[key] = cpu
        except psutil.Error:
            pass

    def sample(self, table: ProcessTable | None = None) -> None:
        """Read the CPU and memory of the tree's processes; `table` (process_table()) spares a pass over /proc."""
        with self._lock:
            self._sample(table)

    def _sample(self, table: ProcessTable | None) -> None:
        if not self._begun:
            self.begin()
        try:
            processes = self._processes(table)
        except psutil.Error:
            return
        rss = 0
        for process in processes:
            key, cpu, memory = _usage(process)
            if key is None:
                continue
            self._start_cpu.setdefault(key, 0.0)  # born during the run: all of its CPU is the run's
            self._last_cpu[key] = cpu
            rss += memory
        self.peak_rss_bytes = max(self.peak_rss_bytes, rss)

    @property
    def cpu_s(self) -> float:
        return sum(cpu - self._start_cpu.get(key, 0.0) for key, cpu in self._last_cpu.items())

    @property
    def processes_seen(self) -> int:
        return len(self._last_cpu)

    def figures(self) -> dict[str, float]:
        return {"cpu_s": round(self.cpu_s, 1), "peak_rss_mb": round(self.peak_rss_bytes / 2**20, 1),
                "processes": self.processes_seen}


def cpu_by_component(trees: Iterable[tuple[str, ProcessTree]]) -> dict[str, float]:
    """CPU seconds so far per component, sampled now (/proc/<pid>/stat utime + stime, through psutil); trees of one
    component (several processes of a role) are summed."""
    found: dict[str, float] = {}
    for component, tree in trees:
        tree.sample()
        found[component] = found.get(component, 0.0) + tree.cpu_s
    return found


def us_per_reading(before: dict[str, float], after: dict[str, float], readings: int) -> dict[str, float]:
    """CPU µs per reading of each component between two `cpu_by_component` samples, and their `total`."""
    if readings <= 0:
        return {}
    spent = {name: max(0.0, after[name] - before.get(name, 0.0)) for name in after}
    figures = {name: round(cpu / readings * 1e6, 1) for name, cpu in sorted(spent.items())}
    figures["total"] = round(sum(spent.values()) / readings * 1e6, 1)
    return figures


def _usage(process: psutil.Process) -> tuple[tuple[int, float] | None, float, int]:
    try:
        with process.oneshot():
            times = process.cpu_times()
            return (process.pid, process.create_time()), times.user + times.system, process.memory_info().rss
    except psutil.Error:
        return None, 0.0, 0


def read_pid(path: Path) -> int | None:
    """The pid on the first line of a pid file (PostgreSQL's postmaster.pid holds more lines), if it is alive."""
    try:
        pid = int(path.read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    return pid if psutil.pid_exists(pid) else None


def runtime_processes(state_dir: Path) -> dict[str, int | None]:
    """Pids of the local runtime's broker and database server (None when not found, e.g. when they run in
    containers or elsewhere: then their usage cannot be sampled from here)."""
    settings = DevSettings(state_dir=state_dir)  # the runtime's own layout, not a copy of it
    return {"kafka": read_pid(KafkaPaths.of(settings).pid_file),
            "postgresql": read_pid(postgres.postmaster_pid_file(settings))}


def own_process() -> ProcessTree:
    """The load generator itself (this process; its children are the services, sampled on their own)."""
    return ProcessTree("load generator", os.getpid(), children=False)
