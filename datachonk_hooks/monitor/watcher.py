"""Watching a run to its end: adaptive polling, a live status, failing step logs, exit code.

Polling is frequent while a run is young or just changed, and backs off to at most every
`max_interval` seconds while nothing changes, so a 30-minute run costs dozens of requests,
not hundreds, and its end is still noticed within half a minute.

Step names, status messages, run URLs and log lines are dbt Cloud's (and partly the dbt
project's) text: each goes through `sanitize` before it reaches a terminal or the waiter's
log, the log excerpt as the one block that keeps its line breaks.

Statuses are shown with what they mean for whoever pushed (`RunStatus.described`, the
README's Run statuses table): `Queued (waiting for an available runner)` tells a developer
staring at a run that does not move why it does not, where dbt Cloud's bare word does not.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol, TextIO

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import DbtCloudError, NotFoundError
from datachonk_hooks.cloud.records import Run
from datachonk_hooks.cloud.status import RunStatus, retrigger_hint
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.sanitize import sanitize

LOG_TAIL_LINES = 30


@dataclass(frozen=True)
class PollPolicy:
    first_interval: float = 1.0
    growth: float = 1.6
    #: 27 s, not 30: the end of a run is noticed within 30 s even with the request's own time
    max_interval: float = 27.0
    after_change: float = 2.0
    #: a run just triggered may answer 404 for a moment; tolerated this long
    not_found_grace: float = 30.0
    #: a run still queued after this long is reported once (it may be blocked)
    queued_warning: float = 600.0

    def next_interval(self, current: float, changed: bool) -> float:
        if changed:
            return self.after_change
        return min(self.max_interval, max(current, self.first_interval) * self.growth)


@dataclass(frozen=True)
class WatchResult:
    run: Run | None
    exit_code: ExitCode
    message: str


class Stream(Protocol):
    """Anything lines can be written to: a terminal, a pipe, a log."""

    def write(self, text: str, /) -> int: ...

    def flush(self) -> None: ...


class Reporter(Protocol):
    """Where progress goes: a live line on a terminal, or one line per change."""

    def progress(self, run: Run, elapsed: float) -> None: ...

    def note(self, text: str) -> None: ...

    def done(self) -> None: ...


def describe(run: Run, elapsed: float) -> str:
    """`run 7 · Running (monitor progress) · step 4/5 Invoke dbt with `dbt build` · 1m 05s`"""
    parts = [f"run {run.id}", run.status.described]
    step = run.current_step
    if step is not None and not run.is_complete:
        parts.append(f"step {step.index}/{len(run.steps)} {sanitize(step.name)}")
    parts.append(format_elapsed(elapsed))
    return " · ".join(parts)


def format_elapsed(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    if hours:
        return f"{hours}h {minutes:02d}m {secs:02d}s"
    return f"{minutes}m {secs:02d}s" if minutes else f"{secs}s"


class LiveLine:
    """A single line rewritten in place (for a terminal)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.shown = False

    def progress(self, run: Run, elapsed: float) -> None:
        self.stream.write("\r\x1b[2K" + describe(run, elapsed))
        self.stream.flush()
        self.shown = True

    def note(self, text: str) -> None:
        self.done()
        self.stream.write(text + "\n")

    def done(self) -> None:
        if self.shown:
            self.stream.write("\n")
            self.stream.flush()
            self.shown = False


class ChangeLines:
    """One line per change of status or step (for logs, CI and pipes)."""

    def __init__(self, stream: Stream) -> None:
        self.stream = stream
        self.last: tuple[RunStatus, int | None] | None = None

    def progress(self, run: Run, elapsed: float) -> None:
        step = run.current_step
        key = (run.status, step.index if step else None)
        if key != self.last:
            self.last = key
            self.stream.write(describe(run, elapsed) + "\n")
            self.stream.flush()

    def note(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def done(self) -> None:
        pass


def reporter_for(stream: TextIO | None = None) -> Reporter:
    stream = stream or sys.stderr
    return LiveLine(stream) if stream.isatty() else ChangeLines(stream)


def watch_run(
    client: DbtCloudClient,
    run_id: int,
    *,
    timeout: float,
    reporter: Reporter,
    policy: PollPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> WatchResult:
    """Poll run `run_id` until it ends or `timeout` seconds pass; never raises DbtCloudError."""
    policy = policy or PollPolicy()
    start = clock()
    deadline = start + timeout
    interval = policy.first_interval
    run: Run | None = None
    last_key: tuple[RunStatus, int | None] | None = None
    warned_queued = False
    try:
        while True:
            try:
                run = client.get_run(run_id)
            except NotFoundError as exc:
                if run is not None or clock() - start > policy.not_found_grace:
                    return WatchResult(run, exc.exit_code, str(exc))
            except DbtCloudError as exc:
                return WatchResult(run, exc.exit_code, f"lost track of run {run_id}: {exc}")
            elapsed = clock() - start
            changed = False
            if run is not None:
                reporter.progress(run, elapsed)
                step = run.current_step
                key = (run.status, step.index if step else None)
                changed = key != last_key
                last_key = key
                if run.is_complete:
                    return _finished(run)
                if (
                    run.status == RunStatus.QUEUED
                    and elapsed >= policy.queued_warning
                    and not warned_queued
                ):
                    warned_queued = True
                    reporter.note(
                        f"run {run_id} is still queued after {format_elapsed(elapsed)}: it may"
                        " be waiting for another run of the job, or for a free run slot"
                    )
            remaining = deadline - clock()
            if remaining <= 0:
                status = run.status.described if run else "unknown"
                where = f": {sanitize(run.href)}" if run and run.href else ""
                return WatchResult(
                    run,
                    ExitCode.TIMEOUT,
                    f"gave up waiting after {format_elapsed(timeout)}; run {run_id} is still"
                    f" {status}{where}",
                )
            interval = policy.next_interval(interval, changed) if last_key else interval
            sleep(min(interval, remaining))
    finally:
        reporter.done()


def _finished(run: Run) -> WatchResult:
    """The last word on a run, with what its end means (the status table's hint), so the
    developer knows what to do next without looking it up."""
    where = f" {sanitize(run.href)}" if run.href else ""
    if run.status == RunStatus.SUCCESS:
        return WatchResult(
            run, ExitCode.OK, f"run {run.id} succeeded: {RunStatus.SUCCESS.hint}{where}"
        )
    if run.status == RunStatus.CANCELLED:
        # dbt Cloud's "Cancelled by user." ends a sentence; the hint goes on after a ";"
        said = (run.status_message or "").strip().rstrip(".")
        why = f": {sanitize(said)}" if said else ""
        return WatchResult(
            run,
            ExitCode.RUN_CANCELLED,
            f"run {run.id} was cancelled{why}; {_retrigger_hint(run)}{where}",
        )
    return WatchResult(run, ExitCode.RUN_ERROR, failure_report(run))


def _retrigger_hint(run: Run) -> str:
    return retrigger_hint(sanitize(run.git_sha) if run.git_sha else None)


def failure_report(run: Run) -> str:
    """The failing step's name, the last lines of its logs and the run URL."""
    why = f": {sanitize(run.status_message)}" if run.status_message else ""
    lines = [f"run {run.id} failed ({run.status.hint or run.status.label}){why}"]
    step = run.failed_step
    if step is not None:
        lines.append(f"failing step {step.index}: {sanitize(step.name)}")
        tail = sanitize(step.logs, multiline=True).rstrip().splitlines()[-LOG_TAIL_LINES:]
        if tail:
            lines.append(f"--- last {len(tail)} lines of its logs ---")
            lines.extend(tail)
            lines.append("---")
    if run.href:
        lines.append(f"see {sanitize(run.href)}")
    return "\n".join(lines)
