"""Delivering triggers through the ledger: send each exactly once, adopt runs started elsewhere.

The ledger is the one record of what was asked for and what dbt Cloud answered, so a push
and a manual run of the same commit start one run, and a send whose answer was lost is
looked up before it is sent again. Planning (`planning`) and making clients (`clients`)
live beside this module.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.delivery.clients import (
    ClientPool,
)
from datachonk_hooks.delivery.planning import (
    TriggerPlan,
)
from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode

if TYPE_CHECKING:
    # Only needed once something is to be triggered: the hook imports this module on every
    # push, and a push without generated models should not pay for HTTP or SQLite modules.
    from datachonk_hooks.cloud.client import DbtCloudClient
    from datachonk_hooks.cloud.records import Run
    from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord

__all__ = [
    "QUIET_PERIOD",
    "AwaitingPushError",
    "BusyElsewhereError",
    "Delivery",
    "ManualTrigger",
    "cancel_superseded",
    "deliver",
    "remember_run_status",
    "trigger_through_ledger",
]


@dataclass(frozen=True)
class Delivery:
    """The outcome of trying to deliver one ledger trigger."""

    record: TriggerRecord
    run: Run | None = None
    error: DatachonkError | None = None
    #: another process holds it, or it was already delivered
    skipped: bool = False
    #: the run already existed in dbt Cloud (started elsewhere, or by a send whose answer
    #: was lost) and was taken as this trigger's
    adopted: bool = False


#: seconds a trigger whose send got no answer is only looked up, never sent again: dbt Cloud
#: may create the run that late after the POST (at least twice the read timeout)
QUIET_PERIOD = 120.0


def deliver(
    ledger: Ledger, trigger_id: int, pool: ClientPool, *, lookup_first: bool = True
) -> Delivery:
    """Send one pending trigger, exactly once, and record what happened.

    The ledger claim makes this process the only sender. Before the first POST, dbt Cloud is
    asked whether the job already has a run for the commit (another clone, CI, an earlier
    clone of this repository started it); that run is adopted instead of a second one
    (`lookup_first` False, as for `--force`, skips this). A trigger that was attempted before
    (a crash, a lost answer) is looked up among every run of the job since its first attempt
    and adopted when found. When an earlier send ended without an answer (or its sender died
    mid-send), dbt Cloud may still create that run: the lookup waits for that send's read
    timeout to pass, and for QUIET_PERIOD (or twice the read timeout, if longer) after it
    the trigger is only looked up, never sent again. A trigger recorded without a host goes
    to the host configured now (`ClientPool.host_for`); with none it stays pending, sent
    nowhere, like one without a token.
    """
    from datachonk_hooks.cloud.errors import (
        AuthenticationError,
        DbtCloudError,
        PermissionDeniedError,
        UnknownOutcomeError,
    )
    from datachonk_hooks.delivery.ledger import TriggerState

    before = ledger.get(trigger_id)
    record = ledger.claim(trigger_id)
    if record is None:
        current = ledger.get(trigger_id)
        assert current is not None
        return Delivery(current, skipped=True)
    sent_at = record.claimed_at or datetime.now(UTC)
    unknown = record.unknown_since
    if before is not None and before.state is TriggerState.SENDING:  # its sender died
        unknown = unknown or before.claimed_at
    posted_at: datetime | None = None
    host = record.host
    try:
        host = pool.host_for(record)  # no host configured: pending, nothing sent anywhere
        client = pool.get(host, record.account_id)
        run = _existing_run(client, record, unknown, lookup_first=lookup_first)
        adopted = run is not None
        if run is None:
            posted_at = datetime.now(UTC)  # the quiet period counts from the last POST
            run = client.trigger_run(record.job_id, record.request, since=record.first_attempt_at)
    except (DbtCloudError, ConfigError) as exc:
        if isinstance(exc, AuthenticationError | PermissionDeniedError):
            ledger.note_token_refused(
                host, record.account_id, exc.status or 401, client.token.fingerprint
            )
        no_answer = isinstance(exc, UnknownOutcomeError)
        pending = ledger.mark_pending(
            trigger_id, str(exc), unknown_since=(posted_at or unknown) if no_answer else None
        )
        return Delivery(pending, error=exc)
    except BaseException:
        ledger.mark_pending(
            trigger_id,
            "interrupted while sending; will be looked up first",
            unknown_since=posted_at or unknown or sent_at,
        )
        raise
    if not record.host:  # recorded without a host: note where its run is
        ledger.record_host(trigger_id, host)
    record = ledger.mark_triggered(
        trigger_id, run_id=run.id, run_url=run.href, run_status=int(run.status)
    )
    ledger.note_token_accepted(host, record.account_id)
    return Delivery(record, run, adopted=adopted)


def _existing_run(
    client: DbtCloudClient,
    record: TriggerRecord,
    unknown: datetime | None,
    *,
    lookup_first: bool,
) -> Run | None:
    """The run dbt Cloud already has for this trigger, if any (see `deliver`): for a second
    attempt, among every run of the job since the first; else, unless `lookup_first` is
    False, the job's run for the commit. An UnknownOutcomeError while an unanswered send
    may still create its run."""
    since = record.first_attempt_at
    if record.attempts > 1 and since is not None:
        return _look_up_earlier_send(client, record, since, unknown)
    if lookup_first and record.sha:
        return client.find_run_for_sha(record.job_id, record.sha)
    return None


def _look_up_earlier_send(
    client: DbtCloudClient, record: TriggerRecord, since: datetime, unknown: datetime | None
) -> Run | None:
    """The run an earlier attempt started; while a send that got no answer may still
    create it (its quiet period), an UnknownOutcomeError rather than None."""
    from datachonk_hooks.cloud.errors import UnknownOutcomeError
    from datachonk_hooks.delivery.ledger import as_utc

    run = client.find_run(record.job_id, record.request, since=since)
    quiet = max(QUIET_PERIOD, 2 * client.timeouts.read)
    if run is None and unknown is not None:
        # the unanswered POST may still be on its way: once its read timeout is over
        # dbt Cloud has usually created the run, so wait that long and look again
        answered_by = as_utc(unknown) + timedelta(seconds=client.timeouts.read)
        wait = (answered_by - datetime.now(UTC)).total_seconds()
        if 0 < wait <= client.timeouts.read:
            import time

            time.sleep(wait)
            run = client.find_run(record.job_id, record.request, since=since)
        until = as_utc(unknown) + timedelta(seconds=quiet)
        if run is None and datetime.now(UTC) < until:
            raise UnknownOutcomeError(
                f"an earlier send of job {record.job_id} for {record.sha[:7]} got no"
                " answer and dbt Cloud shows no run for it yet; it is only looked up"
                f" until {until:%H:%M:%S} UTC, then sent again if none appeared"
            )
    return run


class BusyElsewhereError(DatachonkError):
    """Another process kept sending this trigger for longer than we waited for it."""

    exit_code = ExitCode.TIMEOUT


class AwaitingPushError(DatachonkError):
    """The commit's trigger waits for its push to land; the waiter will send it (exit 2)."""


@dataclass(frozen=True)
class ManualTrigger:
    """The run a manual trigger points at, and whether this call started it."""

    run: Run
    triggered: bool


def trigger_through_ledger(
    repo: pygit2.Repository,
    plan: TriggerPlan,
    client: DbtCloudClient,
    *,
    force: bool,
    echo: Callable[[str], None],
    source: str = "manual",
) -> ManualTrigger:
    """Trigger `plan` unless its commit already started a run of the job (then return that).

    Goes through the ledger like the hook does, so a push and a manual run of the same
    commit start one run; a failed delivery stays pending for `datachonk-hook retry`.
    """
    from datachonk_hooks.delivery.ledger import Ledger, TriggerState

    sha = plan.request.git_sha or ""
    with Ledger.for_repo(repo) as ledger:
        row, created = plan.add_to(ledger, source=source, force=force)
        if not created and row.run_id is not None:
            echo(
                f"{sha[:7]} already triggered run {row.run_id} of job {plan.job_id};"
                " use --force to trigger it again"
            )
            return ManualTrigger(
                client.get_run(row.run_id, related=("job", "trigger")), triggered=False
            )
        if row.state is TriggerState.AWAITING_PUSH:
            raise AwaitingPushError(
                f"{sha[:7]} is waiting for its push to land and will be triggered then (see"
                " `datachonk-hook history`); use --force to trigger it now anyway"
            )
        result = deliver(ledger, row.id, ClientPool.of(client), lookup_first=not force)
        if result.skipped:  # the landing waiter (say) is sending it: its run is ours too
            result = _await_other_sender(ledger, row.id, client, echo)
            if result.run is not None and result.skipped:
                return ManualTrigger(result.run, triggered=False)
    if result.skipped:
        raise BusyElsewhereError(
            f"{sha[:7]} is still being sent to dbt Cloud by another process; see"
            " `datachonk-hook history`"
        )
    if result.error is not None:
        echo(f"the trigger stays pending ({sha[:7]}, job {plan.job_id}); `datachonk-hook retry`")
        raise result.error
    assert result.run is not None
    branch = f" on {plan.request.git_branch}" if plan.request.git_branch else ""
    if result.adopted:
        echo(
            f"{sha[:7]} already has run {result.run.id} of job {plan.job_id} in dbt Cloud"
            " (started elsewhere); not triggered again (use --force to)"
        )
        return ManualTrigger(result.run, triggered=False)
    echo(f"Triggered run {result.run.id} of job {plan.job_id} for {sha[:7]}{branch}")
    return ManualTrigger(result.run, triggered=True)


def _await_other_sender(
    ledger: Ledger, trigger_id: int, client: DbtCloudClient, echo: Callable[[str], None]
) -> Delivery:
    """Wait (bounded by one sender's retry budget) while another process sends a trigger.

    Its run is then reported as this call's (`skipped` with `run` set); if it gave up, this
    process sends it once more (looking the run up first, as for any second attempt).
    """
    import time

    from datachonk_hooks.delivery.ledger import TriggerState

    deadline = time.monotonic() + client.retry.budget + client.timeouts.read
    echo("another process is sending this trigger to dbt Cloud right now; waiting for it")
    while time.monotonic() < deadline:
        record = ledger.get(trigger_id)
        assert record is not None
        if record.run_id is not None:
            echo(f"{record.sha[:7]} triggered run {record.run_id} of job {record.job_id}")
            return Delivery(
                record, client.get_run(record.run_id, related=("job", "trigger")), skipped=True
            )
        if record.state is not TriggerState.SENDING:
            return deliver(ledger, trigger_id, ClientPool.of(client))
        time.sleep(0.2)
    current = ledger.get(trigger_id)
    assert current is not None
    return Delivery(current, skipped=True)


def remember_run_status(repo_dir: Path, run: Run) -> None:
    """Note a watched run's status in the ledger when the run is one we triggered; an end
    seen here counts as told (the watcher saw it).

    Best effort: watching works outside a repository and with a broken ledger too.
    """
    from datachonk_hooks.delivery.ledger import Ledger, ledger_file
    from datachonk_hooks.push.gitrepo import open_repo

    try:
        repo = open_repo(repo_dir)
        if not ledger_file(repo).exists():
            return
        from datachonk_hooks.monitor.outcomes import note_run

        with Ledger.for_repo(repo) as ledger:
            for record in ledger.triggers_for_run(run.id):
                # the person watching saw it end: no outcome line for it later
                note_run(ledger, record.id, run, told=True)
    except DatachonkError:
        return


def cancel_superseded(
    ledger: Ledger, newer: TriggerRecord, client: DbtCloudClient
) -> list[TriggerRecord]:
    """Cancel the older runs this package started for the same branch and job.

    Only runs the ledger knows as ours are touched, and only those still queued or running;
    runs someone else started, or that already ended, are left alone.
    """
    from datachonk_hooks.delivery.ledger import TriggerState
    from datachonk_hooks.monitor.outcomes import note_run

    cancelled = []
    for older in ledger.history(500):
        if (
            older.id >= newer.id
            or older.state is not TriggerState.TRIGGERED
            or older.run_id is None
            or (older.host, older.account_id, older.job_id, older.branch)
            != (newer.host, newer.account_id, newer.job_id, newer.branch)
        ):
            continue
        run = client.get_run(older.run_id, related=())
        if not run.is_complete:
            run = client.cancel_run(older.run_id)
            cancelled.append(older)
        # cancelled on purpose (the waiter's log says so): no "re-trigger if needed" line
        note_run(ledger, older.id, run, told=True)
    return cancelled
