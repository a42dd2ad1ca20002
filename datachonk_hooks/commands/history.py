"""`datachonk-hook history`: the ledger's recent triggers, for people and for programs.

Branch names, causes and reasons come from commits and from dbt Cloud's answers. The lines
for people pass them through `sanitize` (also text a ledger written by an older version
holds unsanitized); the JSON keeps the recorded values, which `json.dumps` escapes.

The ledger only knows a run's status from the last time something asked (the trigger, a
`watch`, the landing waiter), so a run that ended unwatched would stay "Queued" there for
ever. `refresh_statuses` asks dbt Cloud once about each shown run that has not ended, with
requests bounded so that `history` still answers within seconds when dbt Cloud cannot be
reached (it then says, in one line, that it shows the last known statuses).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import click

from datachonk_hooks.cloud.client import RUN_RELATED, DbtCloudClient
from datachonk_hooks.cloud.errors import DbtCloudError, NotFoundError
from datachonk_hooks.cloud.records import Run
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.transport import RetryPolicy, Timeouts
from datachonk_hooks.commands.context import AppContext, echo_json, say
from datachonk_hooks.delivery.ledger import TriggerRecord, TriggerState
from datachonk_hooks.errors import DatachonkError, ExitCode
from datachonk_hooks.sanitize import sanitize

if TYPE_CHECKING:
    from datachonk_hooks.delivery.ledger import Ledger

_NEEDS_ATTENTION = (TriggerState.PENDING, TriggerState.PUSH_FAILED)

#: one status request of `history`: two quick attempts, a short connect and read timeout.
#: Someone is waiting for a table, and a status they cannot get is shown as last known.
REFRESH_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=0.5, budget=2.0)
REFRESH_TIMEOUTS = Timeouts(connect=2.0, read=4.0)
#: seconds all of one `history`'s status requests may start within; later rows keep their
#: last known status (a slow dbt Cloud costs a few seconds, not one timeout per row)
REFRESH_BUDGET = 4.0
#: how far back `watch` without a RUN_ID looks for the branch's latest run
WATCH_LOOKBACK = 1000
#: seconds between looks at the ledger while a just-pushed trigger is on its way
LOOK_EVERY = 0.2


class NothingToWatchError(DatachonkError):
    """`watch` without a RUN_ID found no run to follow (exit 2, like a missing argument)."""


class RunNotStartedError(NothingToWatchError):
    """The just-pushed trigger `watch` waited for got no run in time (exit 4, like any
    wait that ran out)."""

    exit_code = ExitCode.TIMEOUT


def status_text(record: TriggerRecord) -> str:
    """The run's status when known, else the trigger's own state."""
    if record.run_status is not None:
        return RunStatus(record.run_status).label
    return record.state.value.replace("_", " ")


def status_described(record: TriggerRecord) -> str:
    """`status_text` with what a run status means (`Queued (waiting for an available
    runner)`): the table a developer reads to decide whether to wait, look or re-trigger."""
    if record.run_status is not None:
        return RunStatus(record.run_status).described
    return status_text(record)


def _unfinished(record: TriggerRecord) -> bool:
    """A run dbt Cloud may have ended since the ledger last heard of it (what
    `outcomes.refresh` asks about)."""
    return record.run_id is not None and record.outcome is None


@dataclass(frozen=True)
class Refreshed:
    """The records as they are now, and the line to print when some could not be asked."""

    records: list[TriggerRecord]
    note: str | None = None


class _AskingClient(DbtCloudClient):
    """A client that keeps why its last `get_run` failed: `outcomes.refresh` swallows the
    error (the run keeps its last known status), and `history` still has to say why."""

    failure: DbtCloudError | None = None

    def get_run(self, run_id: int, *, related: Sequence[str] = RUN_RELATED) -> Run:
        self.failure = None
        try:
            return super().get_run(run_id, related=related)
        except DbtCloudError as exc:
            self.failure = exc
            raise


class _Asker:
    """One `_AskingClient` per (host, account), and what went wrong with each: a host that
    failed once is not asked again in this `history` (each row would wait out the same
    timeout), and nothing is asked once the budget is spent."""

    def __init__(
        self,
        env: Mapping[str, str],
        configured_host: Callable[[], str | None] | None,
        *,
        budget: float,
        clock: Callable[[], float],
    ) -> None:
        from datachonk_hooks.delivery.clients import ClientPool

        self.pool = ClientPool(env, factory=self._make, configured_host=configured_host)
        self.budget, self.clock = budget, clock
        self.deadline = clock() + budget
        #: whether the refreshed statuses are shown to a person (the table)
        self.told = True
        #: (host, account) -> why it is not asked again
        self.down: dict[tuple[str, int], str] = {}
        #: why runs could not be asked, one entry per kind of failure and host (its first
        #: message, and how many other messages of that kind there were: 404s name their
        #: run), so that the note stays one short line
        self.reasons: dict[tuple[str, str], tuple[str, int]] = {}
        self.stale = 0
        self.current: _AskingClient | None = None

    @staticmethod
    def _make(host: str, account_id: int, env: Mapping[str, str]) -> DbtCloudClient:
        """`trigger.new_client`'s client, with its timeouts and retry budget capped to
        history's (DATACHONK_HTTP_TIMEOUT and DATACHONK_RETRY_BUDGET may only shorten them)."""
        from datachonk_hooks.delivery.clients import client_options
        from datachonk_hooks.settings.credentials import resolve_token

        options = client_options(env, REFRESH_RETRY)
        timeouts: Timeouts = options.get("timeouts", REFRESH_TIMEOUTS)
        retry: RetryPolicy = options.get("retry", REFRESH_RETRY)
        return _AskingClient(
            host,
            account_id,
            resolve_token(env, host=host, account_id=account_id),
            timeouts=Timeouts(
                connect=min(timeouts.connect, REFRESH_TIMEOUTS.connect),
                read=min(timeouts.read, REFRESH_TIMEOUTS.read),
            ),
            retry=replace(retry, budget=min(retry.budget, REFRESH_RETRY.budget)),
        )

    def client_for(self, record: TriggerRecord) -> DbtCloudClient:
        """For `outcomes.refresh`: the record's client, or the reason not to ask (raised as
        a DatachonkError, which `refresh` takes as "keep the last known status")."""
        self.current = None
        key = (record.host, record.account_id)
        if key not in self.down and self.clock() >= self.deadline:
            self.down[key] = f"no time left to ask dbt Cloud (history asks for {self.budget:g} s)"
        if key in self.down:
            raise DatachonkError(self.down[key])
        try:
            client = self.pool.get(self.pool.host_for(record), record.account_id)
        except DatachonkError as exc:  # no token, no host: the same for every row of it
            self.down[key] = str(exc)
            raise
        assert isinstance(client, _AskingClient)
        self.current = client
        return client

    def ask(self, ledger: Ledger, record: TriggerRecord) -> TriggerRecord:
        """`outcomes.refresh` for one record, noting why it could not be asked, if so."""
        from datachonk_hooks.monitor.outcomes import refresh

        # told: a table shown to a person has the new status, so no outcome line is owed
        # for it later (JSON goes to a program: the person is still told)
        [fresh] = refresh(ledger, [record], self.client_for, told=self.told)
        failure = self.current.failure if self.current is not None else None
        key = (record.host, record.account_id)
        if failure is None and key not in self.down:
            return fresh
        self.stale += 1
        reason = str(failure) if failure is not None else self.down[key]
        if failure is not None and not isinstance(failure, NotFoundError):
            self.down[key] = reason  # the host (or the token) is the problem, not the run
        kind = (type(failure).__name__ if failure is not None else "skipped", record.host)
        if failure is None:  # skipped for a reason already given: counted under it
            kind = next((k for k, (said, _) in self.reasons.items() if said == reason), kind)
        first, alike = self.reasons.get(kind, (reason, 0))
        self.reasons[kind] = (first, alike + (reason != first))
        return fresh

    def note(self) -> str | None:
        """The one line saying how many runs show their last known status, and why."""
        if not self.stale:
            return None
        runs = "run" if self.stale == 1 else "runs"
        why = "; ".join(
            reason + (f" (and {alike} more like it)" if alike else "")
            for reason, alike in self.reasons.values()
        )
        return sanitize(f"showing the last known status of {self.stale} {runs}: {why}")

    def close(self) -> None:
        self.pool.close()


def refresh_statuses(
    ledger: Ledger,
    records: Sequence[TriggerRecord],
    env: Mapping[str, str],
    *,
    configured_host: Callable[[], str | None] | None = None,
    budget: float = REFRESH_BUDGET,
    clock: Callable[[], float] = time.monotonic,
    told: bool = True,
) -> Refreshed:
    """Ask dbt Cloud once about each record whose run has not ended, record the answers
    (`outcomes.refresh`), and return the records as they now are.

    No request at all when every shown run has ended. A run that cannot be asked keeps its
    last known status, and `note` says so and why, in one line.
    """
    if not any(_unfinished(record) for record in records):
        return Refreshed(list(records))
    asker = _Asker(env, configured_host, budget=budget, clock=clock)
    asker.told = told
    try:
        fresh = [asker.ask(ledger, r) if _unfinished(r) else r for r in records]
    finally:
        asker.close()
    return Refreshed(fresh, asker.note())


def latest_run_on(
    ledger: Ledger,
    branch: str,
    *,
    wait: float = 0.0,
    say: Callable[[str], None] | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> TriggerRecord | None:
    """The newest trigger of this clone on `branch` that started a run: what `watch`
    follows when given no RUN_ID (the developer just pushed, and wants to see it run).

    Right after a push its trigger is still on its way (the push landing, the waiter
    sending it), and the branch's newest run is the previous push's: then the new one's
    run is waited for, up to `wait` seconds (RunNotStartedError after that), while a live
    process works on it (`Ledger.in_flight`). A newest trigger nobody works on (pending
    because dbt Cloud could not be reached, a failed push) has no run to wait for: `say`
    names it, and the latest run is returned.
    """
    deadline = clock() + wait
    said = False
    while True:
        on_branch = [r for r in ledger.history(WATCH_LOOKBACK) if r.branch == branch]
        newest = on_branch[0] if on_branch else None
        if newest is None or newest.run_id is not None:
            return newest
        doing = {record.id: what for record, what in ledger.in_flight()}.get(newest.id)
        if doing is None:
            latest = next((r for r in on_branch if r.run_id is not None), None)
            if latest is not None and say is not None:
                why = f": {newest.reason}" if newest.reason else ""
                say(
                    f"the newest trigger on {branch}, {newest.sha[:7]}, has no run"
                    f" ({status_text(newest)}{why}); watching the latest run instead"
                )
            return latest
        if clock() >= deadline:
            raise RunNotStartedError(
                f"watch: the run of {newest.sha[:7]} ({branch}) has not started after"
                f" {wait:g} s (it is {doing}); see `datachonk-hook history`"
            )
        if not said and say is not None:
            say(f"waiting for the run of {newest.sha[:7]} ({branch}) to start: it is {doing}")
            said = True
        sleep(LOOK_EVERY)


def history_lines(records: Sequence[TriggerRecord]) -> list[str]:
    """The table: one row per trigger with its status and what it means, then its cause, and
    for a run that failed its failing step and first error line (what to open first)."""
    from datachonk_hooks.monitor.outcomes import compact_duration

    if not records:
        return ["no triggers recorded yet"]
    header = f"{'when (UTC)':16}  {'commit':7}  {'branch':16}  {'job':>14}  {'run':>14}  status"
    lines = [header]
    for r in records:
        when = r.created_at.strftime("%Y-%m-%d %H:%M")
        run = str(r.run_id) if r.run_id is not None else "-"
        branch = sanitize(r.branch or "-")[:16]
        status = status_described(r)
        outcome = r.outcome
        if outcome is not None and outcome.duration_s is not None:
            status += f" · took {compact_duration(outcome.duration_s)}"
        lines.append(f"{when:16}  {r.sha[:7]:7}  {branch:16}  {r.job_id:>14}  {run:>14}  {status}")
        lines.append(f"{'':16}  cause: {sanitize(r.request.cause)}")
        if outcome is not None and outcome.status == RunStatus.ERROR:
            if outcome.failed_step is not None:
                index = f" {outcome.failed_step_index}" if outcome.failed_step_index else ""
                lines.append(f"{'':16}  failing step{index}: {sanitize(outcome.failed_step)}")
            if outcome.error_line:
                lines.append(f"{'':16}  error: {sanitize(outcome.error_line)}")
        if r.state in _NEEDS_ATTENTION and r.reason:
            lines.append(f"{'':16}  why: {sanitize(r.reason)}")
    return lines


def history_json(records: Sequence[TriggerRecord]) -> list[dict[str, Any]]:
    """The records for programs: the keys of earlier versions unchanged, plus what the
    status means and, once the run ended, how (`RunOutcome`)."""
    return [_record_json(r) for r in records]


def _record_json(r: TriggerRecord) -> dict[str, Any]:
    status = RunStatus(r.run_status) if r.run_status is not None else None
    outcome = r.outcome
    return {
        "id": r.id,
        "created_at": r.created_at.isoformat(),
        "sha": r.sha,
        "branch": r.branch,
        "host": r.host,
        "account_id": r.account_id,
        "job_id": r.job_id,
        "state": r.state.value,
        "reason": r.reason,
        "run_id": r.run_id,
        "run_url": r.run_url,
        "run_status": status_text(r) if r.run_status is not None else None,
        "cause": r.request.cause,
        "source": r.source,
        "attempts": r.attempts,
        "run_status_hint": status.hint if status is not None else None,
        "run_status_description": status.described if status is not None else None,
        "finished_at": (
            outcome.finished_at.isoformat() if outcome and outcome.finished_at else None
        ),
        "duration_s": outcome.duration_s if outcome else None,
        "failed_step_index": outcome.failed_step_index if outcome else None,
        "failed_step": outcome.failed_step if outcome else None,
        "error_line": outcome.error_line if outcome else None,
    }


# ----------------------------------------------------------------------------- the command


def history_command(app: AppContext, limit: int, as_json: bool, offline: bool) -> int:
    """Print the `limit` newest triggers, their statuses refreshed unless `offline`."""
    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.push.gitrepo import open_repo

    with Ledger.for_repo(open_repo(app.cwd)) as ledger:
        records = ledger.history(limit)
        if not offline:
            refreshed = refresh_statuses(
                ledger,
                records,
                app.env,
                configured_host=lambda: app.settings().host,
                told=not as_json,
            )
            records = refreshed.records
            if refreshed.note:
                say(refreshed.note, err=True)
    if as_json:
        echo_json(history_json(records))
    else:
        for line in history_lines(records):
            click.echo(line)
    return ExitCode.OK
