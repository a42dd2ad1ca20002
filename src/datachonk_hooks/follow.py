"""The landing waiter's last phase: follow the runs it started to their end.

All followed runs are polled in one loop with `watch`'s adaptive policy (frequent while a
run is young or just changed, backing off to every 27 s), each until it ends or its job's
`timeout` passes, and the whole phase within `FOLLOW_LIMIT`, the waiter's lifetime cap.
Each status seen goes to the ledger; an end is recorded with what the outcome line needs
(`outcomes.outcome_of`) and, with `notify: true`, shown as a desktop notification.

A run whose follower stopped (killed, out of time) is not lost: the next waiter follows it
on (`Ledger.unfinished_runs` whose follower is gone), and `history` asks about it.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from datachonk_hooks.dbt_cloud import DbtCloudClient, DbtCloudError, NotFoundError, RunStatus
from datachonk_hooks.ledger import Ledger, TriggerRecord
from datachonk_hooks.monitor import PollPolicy
from datachonk_hooks.outcomes import outcome_line, outcome_of

#: the longest the waiter follows runs, whatever the jobs' timeouts say
FOLLOW_LIMIT = 6 * 3600.0


@dataclass
class Followed:
    """One run being followed, with its own deadline and poll interval."""

    record: TriggerRecord
    deadline: float
    notify: bool
    interval: float
    next_poll: float
    status: RunStatus | None = None
    since: float = 0.0  # when it was first polled (for the not-found grace)


def follow_runs(
    ledger: Ledger,
    wanted: Sequence[tuple[TriggerRecord, float, bool]],
    client_for: Callable[[TriggerRecord], DbtCloudClient],
    *,
    env: Mapping[str, str],
    log: Callable[[str], None],
    policy: PollPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[TriggerRecord]:
    """Follow each (record, timeout seconds, notify) until its run ends or times out.

    Returns the records whose end was recorded. Never raises DbtCloudError: a run that
    cannot be asked about is left for `history` and the next waiter.
    """
    policy = policy or PollPolicy()
    start = clock()
    cap = start + FOLLOW_LIMIT
    runs = [
        Followed(record, min(start + timeout, cap), notify, policy.first_interval, start)
        for record, timeout, notify in wanted
        if record.run_id is not None
    ]
    ended: list[TriggerRecord] = []
    while runs:
        now = clock()
        for item in [f for f in runs if f.next_poll <= now]:
            done = _poll(ledger, item, client_for, policy, now, log)
            if done is not None:
                runs.remove(item)
                if done.outcome is not None:
                    ended.append(done)
                    log(outcome_line(done))
                    if item.notify:
                        _notify(done, env, log)
        for item in [f for f in runs if clock() >= f.deadline]:
            runs.remove(item)
            status = item.status.described if item.status else "not seen yet"
            log(
                f"stopped following run {item.record.run_id} at its time limit ({status});"
                " `datachonk-hook history` asks dbt Cloud again"
            )
        if runs:
            sleep(max(0.0, min(f.next_poll for f in runs) - clock()))
    return ended


def _poll(
    ledger: Ledger,
    item: Followed,
    client_for: Callable[[TriggerRecord], DbtCloudClient],
    policy: PollPolicy,
    now: float,
    log: Callable[[str], None],
) -> TriggerRecord | None:
    """One look at one run; returns its record when following it is over."""
    run_id = item.record.run_id
    assert run_id is not None
    if not item.since:
        item.since = now
    try:
        run = client_for(item.record).get_run(run_id)
    except NotFoundError as exc:
        if item.status is not None or now - item.since > policy.not_found_grace:
            log(f"stopped following run {run_id}: {exc}")
            return item.record
        item.next_poll = now + item.interval
        return None
    except DbtCloudError as exc:
        log(f"stopped following run {run_id}: {exc}")
        return item.record
    changed = run.status != item.status
    if changed:
        log(f"run {run_id}: {run.status.described}")
    item.status = run.status
    if run.is_complete:
        return ledger.record_outcome(item.record.id, outcome_of(run))
    if changed:
        ledger.update_run_status(item.record.id, int(run.status))
    item.interval = policy.next_interval(item.interval, changed)
    item.next_poll = now + item.interval
    return None


def _notify(record: TriggerRecord, env: Mapping[str, str], log: Callable[[str], None]) -> None:
    from datachonk_hooks.notify import notify

    status = RunStatus(record.run_status or 0)
    title = {
        RunStatus.SUCCESS: "dbt Cloud run succeeded",
        RunStatus.ERROR: "dbt Cloud run failed",
        RunStatus.CANCELLED: "dbt Cloud run cancelled",
    }.get(status, f"dbt Cloud run ended: {status.label}")
    if not notify(title, outcome_line(record), env=env):
        log("no desktop notification: no notify-send or osascript here, or it failed")
