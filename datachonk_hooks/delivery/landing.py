"""The landing waiter: the detached process that waits for a push to land, then delivers.

The pre-push hook records its triggers as "awaiting push", starts this process (detached,
its own session, output to a log file) and returns at once: git has no post-push hook.
The waiter waits for `git push` to end, has the push judged (`landed`), delivers what
landed and what is pending (`pending`), and follows the runs, each phase within a bound
so that it ends by itself whatever dbt Cloud or the network do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pygit2

from datachonk_hooks.delivery.clients import ClientPool, without_bad_seconds
from datachonk_hooks.delivery.landed import (
    LANDING_TIMEOUT,
    Waiter,
    add_extra_refs,
)
from datachonk_hooks.delivery.ledger import Ledger, TriggerState, state_dir
from datachonk_hooks.delivery.pending import deliver_pending
from datachonk_hooks.delivery.pushed_config import current_host, pushed_settings
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.fileio import open_private_append

if TYPE_CHECKING:
    from datachonk_hooks.monitor.follow import ToFollow

__all__ = [
    "DELIVERY_LIMIT",
    "ENV_LANDING_TIMEOUT",
    "EXTRA_REFS_LIMIT",
    "WAITER_LOG",
    "log_line",
    "run_waiter",
    "runs_to_follow",
    "spawn_waiter",
]

WAITER_LOG = "waiter.log"
ENV_LANDING_TIMEOUT = "DATACHONK_LANDING_TIMEOUT"


def spawn_waiter(repo: pygit2.Repository, push_id: int, env: Mapping[str, str]) -> int:
    """Start the detached waiter for `push_id`; returns its pid.

    Its own session (so a Ctrl-C of `git push` does not kill it), stdin from /dev/null and
    output to a log file: pre-commit waits for every process holding its pipes, so an
    inherited stdout would hold the push up. The token travels in the environment only. It
    runs at a lower CPU priority: it starts while `git push` still works, and has nothing
    to do until that is over.
    """
    log_path = state_dir(repo) / WAITER_LOG  # the hook recorded the push: the folder exists
    with open(open_private_append(log_path), "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "datachonk_hooks", "land", str(push_id)],
            cwd=str(Path(repo.workdir or repo.path)),
            env=dict(env),
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            close_fds=True,
            preexec_fn=_lower_priority,  # noqa: PLW1509 (the hook runs no threads)
        )
    return process.pid


def _lower_priority() -> None:
    with suppress(OSError):
        os.nice(10)


def log_line(push_id: int, out: TextIO | None = None) -> Callable[[str], None]:
    """Timestamped lines for the waiter's log file.

    Each message is one sanitized line: it carries dbt Cloud's words, ref names and run
    statuses, and a reader runs `cat` or `tail -f` on the log in a terminal.
    """
    from datachonk_hooks.sanitize import sanitize

    def emit(message: str) -> None:
        stream = out or sys.stdout
        stamp = datetime.now(UTC).strftime("%Y-%m-%d %H:%M:%S")
        stream.write(f"{stamp} [waiter {os.getpid()} push {push_id}] {sanitize(message)}\n")
        stream.flush()

    return emit


def run_waiter(repo: pygit2.Repository, push_id: int, env: Mapping[str, str]) -> int:
    """The body of `datachonk-hook land PUSH_ID` (started by the hook, detached).

    For a push of `datachonk push` (foreground), which judged and delivered it already, it
    only follows the runs: `datachonk push` without --wait starts it for that.
    """
    from datachonk_hooks.monitor.follow import follow_runs

    env = without_bad_seconds(env, log_line(push_id))  # a typo gets the default, not a crash
    timeout = float(env.get(ENV_LANDING_TIMEOUT) or LANDING_TIMEOUT)
    with Ledger.for_repo(repo) as ledger:
        push = ledger.get_push(push_id)
        if push is None:
            raise DatachonkError(f"no push {push_id} in the ledger")
        ledger.set_push_waiter(push_id)  # first: `retry` can tell when this process dies
        waiter = Waiter(repo, ledger, push, env, emit=log_line(push_id), timeout=timeout)
        if not push.foreground:
            waiter.log(f"waiting for the push to {push.remote_name} to land")
            ended = waiter.await_push_end()
            if ended and push.git_pid is not None:
                with _bounded(EXTRA_REFS_LIMIT, "looking at the other refs", waiter.log):
                    add_extra_refs(waiter, env)
            waiter.judge(ended)
        pool = ClientPool(env, configured_host=lambda: current_host(repo, env))
        try:
            if not push.foreground:
                with _bounded(DELIVERY_LIMIT, "delivering", waiter.log):
                    deliver_pending(repo, ledger, pool, env, log=waiter.log)
            wanted = runs_to_follow(repo, ledger, push_id, env)
            with _bounded(
                _follow_limit(wanted),
                "following the runs",
                waiter.log,
                left="runs not seen to their end are asked about by `datachonk-hook history`",
            ):
                follow_runs(
                    ledger,
                    wanted,
                    lambda record: pool.get(record.host, record.account_id),
                    env=env,
                    log=waiter.log,
                )
        finally:
            pool.close()
    return 0


#: seconds the waiter may spend planning the refs pre-commit did not show the hook
EXTRA_REFS_LIMIT = 60.0
#: seconds the waiter may spend delivering once the push is judged; what is left then stays
#: pending for `datachonk-hook retry` (a trigger cut mid-send is looked up first)
DELIVERY_LIMIT = 300.0


@contextmanager
def _bounded(
    seconds: float,
    phase: str,
    log: Callable[[str], None],
    *,
    left: str = "what is left stays pending for `datachonk-hook retry`",
) -> Iterator[None]:
    """Run a phase of the waiter for at most `seconds` (the hook's SIGALRM `Watchdog`), so
    the detached waiter ends by itself whatever dbt Cloud or the network do; `left` says
    what becomes of the phase's unfinished work."""
    from datachonk_hooks.prepush.watchdog import HookTimeout, Watchdog

    if seconds <= 0:
        yield
        return
    try:
        with Watchdog(seconds):
            yield
    except HookTimeout:
        log(f"stopped {phase} after {seconds:g} s, the waiter's bound; {left}")


def runs_to_follow(
    repo: pygit2.Repository, ledger: Ledger, push_id: int, env: Mapping[str, str]
) -> list[ToFollow]:
    """The runs this waiter follows, each with its job's timeout and whether to notify:
    its own push's runs, and the unfinished runs of earlier pushes nobody follows (a
    waiter killed while following, a run `retry` delivered), unless the pushed
    datachonk.yaml says `follow: false`."""
    from datachonk_hooks.monitor.follow import ToFollow

    own = [r for r in ledger.triggers_for_push(push_id) if r.state is TriggerState.TRIGGERED]
    orphans = ledger.unfollowed_runs()
    wanted = []
    for record in {r.id: r for r in [*own, *orphans]}.values():
        if record.run_id is None:
            continue
        settings = pushed_settings(repo, record, env)
        if settings is None or not settings.target_for_branch(record.branch).follow:
            ledger.stop_following(record.id)  # `follow: false`: no later waiter takes it
            continue
        wanted.append(ToFollow(record, float(settings.timeout), settings.notify))
    return wanted


def _follow_limit(wanted: Sequence[ToFollow]) -> float:
    """The following phase's bound: the longest timeout of the runs it follows (at most
    the waiter's cap) plus a minute for the last polls; 0 when nothing is followed."""
    from datachonk_hooks.monitor.follow import FOLLOW_LIMIT

    if not wanted:
        return 0.0
    return min(max(timeout for _, timeout, _ in wanted), FOLLOW_LIMIT) + 60.0
