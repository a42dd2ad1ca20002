"""The hook's hand-over: record the push and its triggers in the ledger, start the waiter.

This is the last stretch of `datachonk-hook pre-push` and the only one that writes: it runs
after the watchdog stood down, within the ledger's busy timeout, and says for each trigger
what will honestly happen to it. Delivery is the waiter's job (`delivery.landing`); the
waiter never needs the hook.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.prepush.switches import ENV_FOREGROUND
from datachonk_hooks.push.updates import PushUpdate, tracking_refs

if TYPE_CHECKING:
    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.delivery.planning import TriggerPlan

#: what every line of the hook starts with
PREFIX = "datachonk:"
#: seconds the hook waits for a ledger another process has locked. Writers hold it for
#: milliseconds; one holding it longer must not hold the push up (the CLI waits 10 s).
LEDGER_BUSY_TIMEOUT = 2.0


def describe(trigger: TriggerPlan) -> str:
    return f"dbt Cloud job {trigger.job_id}"


def for_commit(trigger: TriggerPlan) -> str:
    sha = (trigger.request.git_sha or "")[:7]
    return f"for {sha} ({trigger.request.git_branch})"


def hand_over(
    repo: pygit2.Repository,
    remote_name: str,
    remote_url: str,
    env: Mapping[str, str],
    triggers: Sequence[tuple[PushUpdate, TriggerPlan]],
    echo: Callable[[str], None],
    *,
    git_pid: int | None,
    watch_other_refs: bool = False,
    pushed_tips: Sequence[str] = (),
) -> None:
    """Record the triggers as awaiting the push, and start the waiter when there is work.

    First the outcome lines of runs that ended since the last push or command. Each line
    says what will really happen: "will run" only with a token dbt Cloud has not refused;
    without one, or after a refusal, the trigger is recorded and stays pending.
    `watch_other_refs`: record the push without triggers too, for the waiter to look at the
    refs the hook was not shown.
    """
    from datachonk_hooks.delivery.landing import spawn_waiter
    from datachonk_hooks.delivery.ledger import LedgerError, ledger_file

    foreground = bool(env.get(ENV_FOREGROUND))
    if not triggers and not watch_other_refs and not ledger_file(repo).exists():
        return
    done = Recorded()
    try:
        _record(
            repo,
            remote_name,
            remote_url,
            env,
            triggers,
            echo,
            done,
            git_pid=git_pid,
            foreground=foreground,
            watch_other_refs=watch_other_refs,
            pushed_tips=pushed_tips,
        )
    except LedgerError as exc:  # locked, full or unwritable part-way: say what was not kept
        missed = [t for i, (_, t) in enumerate(triggers) if i not in done.triggers]
        if not missed and done.push_id is None:
            raise
        echo(f"{PREFIX} {exc}")
        if missed:
            commands = (
                f"`datachonk-hook run --ref {(t.request.git_sha or '')[:12]} --job-id {t.job_id}`"
                for t in missed
            )
            by_hand = " ".join(dict.fromkeys(commands))
            kept = "nothing was triggered" if not done.triggers else "the rest was not recorded"
            echo(f"{PREFIX} {kept}; the push goes on. Once it has landed: {by_hand}")
    if done.push_id is None:
        return
    if not foreground and (done.waits or done.backlog or watch_other_refs):
        from datachonk_hooks.delivery.clients import without_bad_seconds

        # a bad DATACHONK_* number is a warning here and the default for the waiter
        env = without_bad_seconds(env, lambda warning: echo(f"{PREFIX} {warning}"))
        spawn_waiter(repo, done.push_id, env)


@dataclass
class Recorded:
    """How far `_record` got: a ledger error part-way leaves the push and some triggers
    written (each write is its own transaction), and those still need their waiter."""

    push_id: int | None = None
    #: indexes of the triggers recorded (or found recorded already)
    triggers: set[int] = field(default_factory=set)
    #: a trigger of this push awaits it
    waits: bool = False
    #: the ledger holds triggers to deliver or runs nobody follows any more
    backlog: bool = False


def _record(
    repo: pygit2.Repository,
    remote_name: str,
    remote_url: str,
    env: Mapping[str, str],
    triggers: Sequence[tuple[PushUpdate, TriggerPlan]],
    echo: Callable[[str], None],
    done: Recorded,
    *,
    git_pid: int | None,
    foreground: bool,
    watch_other_refs: bool,
    pushed_tips: Sequence[str],
) -> None:
    """Write the push and its triggers to the ledger, each trigger with its line, noting in
    `done` how far it got (nothing is written when there is nothing to record)."""
    from datachonk_hooks.delivery.ledger import Ledger, TriggerState
    from datachonk_hooks.prepush.watchdog import time_left

    with Ledger.for_repo(repo, busy_timeout=time_left(LEDGER_BUSY_TIMEOUT)) as ledger:
        from datachonk_hooks.monitor.outcomes import tell

        tell(ledger, echo)  # how earlier runs ended: from the ledger, no network
        # triggers to deliver, or runs nobody follows any more (their waiter was killed):
        # this push's waiter takes them over
        done.backlog = bool(ledger.deliverable() or ledger.unfollowed_runs())
        if not triggers and not done.backlog and not watch_other_refs:
            return
        record = ledger.record_push(
            remote_name=remote_name,
            remote_url=remote_url,
            git_pid=git_pid,
            tracking_before=tracking_refs(repo, remote_name),
            foreground=foreground,
            pushed_tips=pushed_tips,
        )
        done.push_id = record.id
        for index, (update, trigger) in enumerate(triggers):
            row, created = trigger.add_to(
                ledger,
                source="push",
                push_id=record.id,
                remote_ref=update.remote_ref,
                awaiting_push=True,
            )
            done.triggers.add(index)
            sha, job = row.sha[:7], row.job_id
            if row.state is TriggerState.AWAITING_PUSH:
                done.waits = True
            if created:
                echo(f"{PREFIX} {promise(ledger, trigger, env)}")
            elif row.run_id is not None:
                echo(f"{PREFIX} {sha} already triggered run {row.run_id} of job {job}")
            elif row.state is not TriggerState.PUSH_FAILED and row.push_id != record.id:
                echo(f"{PREFIX} {sha} is already queued for job {job} ({row.state})")


def promise(ledger: Ledger, trigger: TriggerPlan, env: Mapping[str, str]) -> str:
    """What the hook can honestly say about a trigger it just recorded. The keyring is not
    opened here (it may ask to be unlocked): `connect` notes a token it keeps there.
    Without a host the trigger is recorded and stays pending (see `TriggerPlan`): the line
    says how to set the host, and where to find it."""
    from datachonk_hooks.settings.credentials import token_hint

    what = f"{describe(trigger)} {for_commit(trigger)}"
    if trigger.host is None:
        from datachonk_hooks.settings.records import NoHostError

        return f"{what} stays pending: {NoHostError()}"
    try:
        hint = token_hint(env, trigger.host, trigger.account_id)
    except ConfigError as exc:  # an unsafe or damaged credentials file: the waiter says why
        return f"{what} stays pending: {exc}"
    if not hint.found:
        return f"{what} stays pending: no dbt Cloud token (run `datachonk-hook connect`)"
    status = hint.fingerprint and ledger.token_refused(
        trigger.host, trigger.account_id, hint.fingerprint
    )
    if status:
        return (
            f"dbt Cloud refused the token last time (HTTP {status}): run `datachonk-hook"
            f" doctor`; {what} stays pending until then (`datachonk-hook retry`)"
        )
    return f"{describe(trigger)} will run {for_commit(trigger)} once the push lands"
