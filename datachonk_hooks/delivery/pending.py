"""Delivering the pending triggers once their push is judged (the waiter, `retry`, the CLI).

A trigger of a push its waiter could not confirm is checked for landing first: any ref
that carried its commit, in any push, may have landed it. With `cancel_superseded: true`,
each delivered run cancels the older in-flight runs of its branch and job.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.delivery.landed import landed_on
from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord, TriggerState, pid_alive
from datachonk_hooks.delivery.pushed_config import pushed_settings
from datachonk_hooks.delivery.trigger import cancel_superseded, deliver
from datachonk_hooks.errors import DatachonkError

if TYPE_CHECKING:
    from datachonk_hooks.delivery.clients import ClientPool

ABANDONED = (
    "its landing waiter stopped before the push was confirmed; `datachonk-hook retry` checks"
    " whether it landed before sending"
)


def deliver_pending(
    repo: pygit2.Repository,
    ledger: Ledger,
    pool: ClientPool,
    env: Mapping[str, str],
    *,
    log: Callable[[str], None],
) -> list[TriggerRecord]:
    """Deliver every deliverable trigger; expired pushes are checked for landing first.

    A push whose waiter died (killed, crashed) would keep its triggers awaiting it forever:
    it is expired first, so its triggers are checked for landing and sent like the others.
    """
    for push in ledger.expire_abandoned_pushes(ABANDONED):
        log(f"the waiter of push {push.id} to {push.remote_name} is gone; checking it landed")
    still_pending = []
    for record in ledger.deliverable():
        if not _confirm_landed(repo, ledger, record, log):
            continue
        if record.state is TriggerState.SENDING:
            log(
                f"job {record.job_id} for {record.sha[:7]} was being sent by a process that"
                " ended; its run is looked up before anything is sent again"
            )
        result = deliver(ledger, record.id, pool)
        if result.skipped:
            continue
        if result.run is not None:
            done = "found its run" if result.adopted else "triggered run"
            log(
                f"{done} {result.run.id} of job {record.job_id} for {record.sha[:7]}"
                f" ({record.branch}): {result.run.href or ''}".rstrip()
            )
            supersede(repo, ledger, result.record, pool, env, log)
        else:
            log(f"job {record.job_id} for {record.sha[:7]} stays pending: {result.error}")
            still_pending.append(result.record)
    return still_pending


def supersede(
    repo: pygit2.Repository,
    ledger: Ledger,
    record: TriggerRecord,
    pool: ClientPool,
    env: Mapping[str, str],
    log: Callable[[str], None],
) -> None:
    """With `cancel_superseded: true`, cancel this branch's older in-flight runs of the job."""
    if record.source != "push":
        return
    settings = pushed_settings(repo, record, env)
    if settings is None or not settings.cancel_superseded:
        return
    try:
        cancelled = cancel_superseded(ledger, record, pool.get(record.host, record.account_id))
    except DatachonkError as exc:
        log(f"could not cancel superseded runs of job {record.job_id}: {exc}")
        return
    for older in cancelled:
        log(f"cancelled run {older.run_id} ({older.sha[:7]}), superseded by {record.sha[:7]}")


def _confirm_landed(
    repo: pygit2.Repository, ledger: Ledger, record: TriggerRecord, log: Callable[[str], None]
) -> bool:
    """Pending triggers of a push the waiter could not confirm are checked before sending:
    any ref that carried the commit, in any push, may have landed it."""
    if record.push_id is None:
        return True
    carriers = ledger.refs_of(record.id)
    pushes = {push.id: push for push, _ in carriers}
    own = ledger.get_push(record.push_id)
    if own is not None:
        pushes.setdefault(own.id, own)
    if not any(push.state == "expired" for push in pushes.values()):
        return True
    answer, branch = landed_on(repo, record, carriers, ask_remote=True)
    if not answer and any(p.git_pid is not None and pid_alive(p.git_pid) for p in pushes.values()):
        # a push that outlasted its waiter is still sending: not failed, just not yet
        log(f"the push of {record.sha[:7]} is still running; kept for `datachonk-hook retry`")
        return False
    if answer is None:
        urls = ", ".join(sorted({push.remote_url for push, _ in carriers}))
        log(f"cannot reach {urls} to check the push of {record.sha[:7]}; kept")
        return False
    if not answer:
        refs = sorted(
            {(push.remote_name, ref.removeprefix("refs/heads/")) for push, ref in carriers}
        )
        branches = ", ".join(branch for _, branch in refs)
        where = ", ".join(f"{name}/{branch}" for name, branch in refs)
        failed = ledger.trigger_did_not_land(
            record.id, None, f"{record.sha[:7]} never reached {branches}"
        )
        if failed.state is TriggerState.PUSH_FAILED:
            log(f"{record.sha[:7]} is not on {where}; not triggered")
        return False
    if branch is not None and branch != record.branch:
        ledger.retarget_branch(record.id, branch)
    return True
