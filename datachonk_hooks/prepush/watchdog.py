"""The hook's last resort: whatever it is doing, it gives up after a bound and lets the push go on.

Every input the hook reads has its own bound (`limits`, `safe_regex`), but their sum over a
push of many refs and files, or a slow disk, is not bounded by them. So the slow path of
`datachonk-hook pre-push` runs under a SIGALRM timer (`setitimer`, POSIX, main thread only):
when it fires, `HookTimeout` unwinds the hook, which says so in one line and exits 0.
Python runs signal handlers between bytecodes, and `re` checks for signals while it
backtracks, so a runaway match stops too. The fast path (`prefilter`) never arms it: there
it would only cost the `signal` calls. The landing waiter bounds its delivering and
watching phases with the same timer.

The ledger is never left half-written: the hook writes it in one stretch at its very end,
after `stand_down()`, from where on the timer only notes that it fired. That stretch is
bounded by itself (the ledger's busy timeout, taken from `time_left()`), and by then the
work is done: there is nothing left to give up, and a "gave up" line would be untrue.
SQLite transactions would survive an interruption anyway (a cut transaction is rolled back,
and the lock goes with the process), but a trigger recorded without its waiter started
would wait for the next push or `retry`.
"""

from __future__ import annotations

import signal
import time
from types import FrameType, TracebackType

#: seconds the hook may spend from its start; `git push` and Python's own start come on top,
#: and the whole push returns within 3 s on an ordinary machine
HOOK_TIME_LIMIT = 2.5


class HookTimeout(BaseException):
    """The hook ran out of time. A BaseException, so no `except Exception` in the code it
    interrupts can swallow it on the way out."""

    def __init__(self, seconds: float, stage: str, sha: str | None = None) -> None:
        super().__init__(f"gave up after {seconds:g} s ({stage})")
        self.seconds = seconds
        self.stage = stage
        self.sha = sha  # the pushed commit it was working on, for a `run --ref` hint


class Watchdog:
    """A one-shot SIGALRM timer around a block; `stage` says what the hook was doing."""

    def __init__(self, seconds: float, *, started: float | None = None) -> None:
        self.limit = seconds
        self.started = time.monotonic() if started is None else started
        self.stage = "starting"
        self.sha: str | None = None
        self.armed = False
        self._shield = 0
        self.fired_late = False  # the timer fired after `stand_down`
        self._previous: object = None

    def remaining(self) -> float:
        """Seconds left before the bound (may be negative)."""
        return self.limit - (time.monotonic() - self.started)

    def __enter__(self) -> Watchdog:
        left = self.remaining()
        if left <= 0:
            raise HookTimeout(self.limit, self.stage, self.sha)
        _Current.watchdog = self
        if not hasattr(signal, "setitimer"):
            return self  # Windows: only the per-input bounds hold
        try:
            self._previous = signal.signal(signal.SIGALRM, self._fire)
        except ValueError:  # not the main thread: the same
            return self
        signal.setitimer(signal.ITIMER_REAL, left)
        self.armed = True
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        if self.armed:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, self._previous)  # type: ignore[arg-type]
            self.armed = False
        if _Current.watchdog is self:
            _Current.watchdog = None

    def _fire(self, signum: int, frame: FrameType | None) -> None:
        if self._shield:
            self.fired_late = True
            return
        raise HookTimeout(self.limit, self.stage, self.sha)

    def stand_down(self) -> None:
        """From now on the timer must not cut anything (writing the ledger, starting the
        waiter, returning): it only notes that it fired."""
        self._shield += 1


class _Current:
    watchdog: Watchdog | None = None


def current() -> Watchdog | None:
    """The watchdog around this process's hook, if one is running."""
    return _Current.watchdog


def set_stage(stage: str, sha: str | None = None) -> None:
    """Say what the hook is doing now (and for which commit), for the message if it runs
    out of time."""
    if _Current.watchdog is not None:
        _Current.watchdog.stage = stage
        _Current.watchdog.sha = sha


def stand_down() -> None:
    """`Watchdog.stand_down` of the current watchdog, if there is one."""
    if _Current.watchdog is not None:
        _Current.watchdog.stand_down()


def time_left(default: float) -> float:
    """`default`, or less when the current watchdog has less time left (at least 0.25 s)."""
    watchdog = _Current.watchdog
    if watchdog is None:
        return default
    return max(0.25, min(default, watchdog.remaining()))
