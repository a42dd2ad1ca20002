"""The landing waiter's last phase: follow the runs it started to their end.

All followed runs are polled in one loop with `watch`'s adaptive policy (frequent while a
run is young or just changed, backing off to every 27 s), each until it ends or its job's
`timeout` passes, and the whole phase within `FOLLOW_LIMIT`, the waiter's lifetime cap.
Each status seen goes to the ledger; an end is recorded with what the outcome line needs
(`outcomes.outcome_of`) and, with `notify: true`, shown as a desktop notification.

Each run is claimed (`Ledger.follow`), so two waiters never follow one run, and only the
process that records an end notifies. A run whose follower was killed is not lost: the
next push's waiter follows it on (`Ledger.unfollowed_runs`); one past its time limit is
left to `history`, which asks dbt Cloud about it. Network trouble while following is waited
out with the same polling, for up to TROUBLE_LIMIT without a break; a refused token or a
run dbt Cloud does not know ends following at once.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import DbtCloudError, NotFoundError
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.delivery.ledger import FOLLOW_FOR, Ledger, TriggerRecord
from datachonk_hooks.monitor.outcomes import note_run, outcome_line
from datachonk_hooks.monitor.watcher import PollPolicy

#: the longest the waiter follows runs, whatever the jobs' timeouts say
FOLLOW_LIMIT = FOLLOW_FOR.total_seconds()
#: seconds of unbroken network trouble after which a run is left to `history` (a laptop
#: that went offline should not keep a process polling for the rest of the job's timeout)
TROUBLE_LIMIT = 600.0


class ToFollow(NamedTuple):
    """A run the waiter is to follow: its trigger, its job's timeout, whether to notify."""

    record: TriggerRecord
    timeout: float
    notify: bool


@dataclass
class Followed:
    """One run being followed, with its own deadline and poll interval."""

    record: TriggerRecord
    deadline: float
    notify: bool
    interval: float
    next_poll: float
    status: RunStatus | None = None
    since: float | None = None  # when it was first polled (for the not-found grace)
    #: the last failure to ask dbt Cloud, said once until it changes, and since when
    trouble: str | None = None
    trouble_since: float | None = None


def follow_runs(
    ledger: Ledger,
    wanted: Sequence[ToFollow | tuple[TriggerRecord, float, bool]],
    client_for: Callable[[TriggerRecord], DbtCloudClient],
    *,
    env: Mapping[str, str],
    log: Callable[[str], None],
    policy: PollPolicy | None = None,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> list[TriggerRecord]:
    """Follow each (record, timeout seconds, notify) until its run ends or times out.

    Returns the records whose end this call recorded. Runs another live process follows
    are skipped. Never raises DbtCloudError.
    """
    policy = policy or PollPolicy()
    start = clock()
    cap = start + FOLLOW_LIMIT
    runs = [
        Followed(record, min(start + timeout, cap), notify, policy.first_interval, start)
        for record, timeout, notify in wanted
        if record.run_id is not None and ledger.follow(record.id)
    ]
    ended: list[TriggerRecord] = []
    while runs:
        now = clock()
        for item in [f for f in runs if f.next_poll <= now]:
            try:
                done = _poll(ledger, item, client_for, policy, now, log)
            except Exception as exc:  # one odd run must not cost the others their end
                ledger.stop_following(item.record.id)
                log(f"stopped following run {item.record.run_id}: {type(exc).__name__}: {exc}")
                done = item.record, False
            if done is None:
                continue
            runs.remove(item)
            record, recorded = done
            if recorded:
                ended.append(record)
                log(outcome_line(record))
                if item.notify:
                    _notify(record, env, log)
        for item in [f for f in runs if clock() >= f.deadline]:
            runs.remove(item)
            ledger.stop_following(item.record.id)
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
) -> tuple[TriggerRecord, bool] | None:
    """One look at one run; (its record, whether this look recorded its end) when
    following it is over, else None."""
    run_id = item.record.run_id
    assert run_id is not None
    if item.since is None:
        item.since = now
    try:
        run = client_for(item.record).get_run(run_id)
    except NotFoundError as exc:
        if item.status is not None or now - item.since > policy.not_found_grace:
            return _give_up(ledger, item, exc, log)
        item.next_poll = now + item.interval
        return None
    except DbtCloudError as exc:
        if not exc.transient:  # a refused token: asking again changes nothing
            return _give_up(ledger, item, exc, log)
        if item.trouble_since is None:
            item.trouble_since = now
        elif now - item.trouble_since > TROUBLE_LIMIT:
            return _give_up(ledger, item, exc, log)
        if str(exc) != item.trouble:
            item.trouble = str(exc)
            log(f"run {run_id}: {exc}; asking again")
        item.interval = policy.next_interval(item.interval, False)
        item.next_poll = now + item.interval
        return None
    item.trouble = item.trouble_since = None
    changed = run.status != item.status
    if changed:
        log(f"run {run_id}: {run.status.described}")
    item.status = run.status
    if run.is_complete:
        return note_run(ledger, item.record.id, run)
    if changed:
        note_run(ledger, item.record.id, run)
    item.interval = policy.next_interval(item.interval, changed)
    item.next_poll = now + item.interval
    return None


def _give_up(
    ledger: Ledger, item: Followed, exc: DbtCloudError, log: Callable[[str], None]
) -> tuple[TriggerRecord, bool]:
    ledger.stop_following(item.record.id)
    log(f"stopped following run {item.record.run_id}: {exc}")
    return item.record, False


def _notify(record: TriggerRecord, env: Mapping[str, str], log: Callable[[str], None]) -> None:
    from datachonk_hooks.monitor.notify import notify

    status = RunStatus(record.run_status or 0)
    title = {
        RunStatus.SUCCESS: "dbt Cloud run succeeded",
        RunStatus.ERROR: "dbt Cloud run failed",
        RunStatus.CANCELLED: "dbt Cloud run cancelled",
    }.get(status, f"dbt Cloud run ended: {status.label}")
    if not notify(title, outcome_line(record), env=env):
        log("no desktop notification: no notify-send or osascript here, or it failed")
