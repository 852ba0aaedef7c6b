"""Start the local runtime's components in order; when one fails, stop what this start started (in reverse), so a
failed `citystream dev up` leaves nothing running that was not running before it."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Step:
    name: str
    is_up: Callable[[], bool]
    start: Callable[[], str]  # returns the line to show ("Kafka started on ...", "... already running")
    stop: Callable[[], str]


class StartFailed(Exception):
    """A step failed; `stopped` names the components rolled back, `problem` is what the step raised."""

    def __init__(self, step: str, problem: BaseException, stopped: list[str]) -> None:
        super().__init__(f"{step}: {problem}")
        self.step, self.problem, self.stopped = step, problem, stopped


def start_all(steps: list[Step], problems: tuple[type[BaseException], ...], report: Callable[[str], None]) -> None:
    started: list[Step] = []
    for step in steps:
        was_up = step.is_up()
        try:
            report(step.start())
        except problems as problem:
            # The failing step too, unless it was up before: a half-started server must not be left behind.
            rollback = ([] if was_up else [step]) + started[::-1]
            raise StartFailed(step.name, problem, _stop(rollback, problems, report)) from problem
        if not was_up:
            started.append(step)


def _stop(steps: list[Step], problems: tuple[type[BaseException], ...], report: Callable[[str], None]) -> list[str]:
    stopped = []
    for step in steps:
        try:
            report(step.stop())
            stopped.append(step.name)
        except problems as problem:  # keep rolling back the others; say what could not be stopped
            report(f"could not stop {step.name}: {problem}")
    return stopped
