"""`datachonk push`: run `git push`, then deliver in the foreground what landed.

No waiter is started: the pre-push hook, told by DATACHONK_PUSH_FOREGROUND, records the push
and its triggers but leaves delivery to this module, which judges each recorded push per
commit as the waiter does and sends what landed.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import pygit2

from datachonk_hooks.delivery.clients import ClientPool
from datachonk_hooks.delivery.landed import Waiter, add_extra_refs
from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord, TriggerState
from datachonk_hooks.delivery.pending import supersede
from datachonk_hooks.delivery.pushed_config import current_host
from datachonk_hooks.delivery.trigger import deliver
from datachonk_hooks.prepush.switches import ENV_CAUSE, ENV_FORCE, ENV_FOREGROUND


@dataclass(frozen=True)
class ForegroundPush:
    """What `datachonk push` did: git's exit code and the triggers it delivered."""

    git_exit_code: int
    delivered: tuple[TriggerRecord, ...]
    pending: tuple[TriggerRecord, ...]
    recorded: bool  # the pre-push hook ran and recorded this push
    #: the pushes the hook recorded (a follower can be started for their runs)
    push_ids: tuple[int, ...] = ()


def push_and_deliver(
    repo: pygit2.Repository,
    git_args: list[str],
    env: Mapping[str, str],
    *,
    force: bool,
    cause: str | None,
    log: Callable[[str], None],
) -> ForegroundPush:
    """Run `git push`, then deliver in the foreground what landed (no waiter is started).

    The pre-push hook, told by DATACHONK_PUSH_FOREGROUND, records the push and its triggers
    but leaves delivery to us; with `force` it records a trigger for every pushed branch.
    """
    with Ledger.for_repo(repo) as ledger:
        before = ledger.last_push_id()
        child_env = {**env, ENV_FOREGROUND: "1"}
        if force:
            child_env[ENV_FORCE] = "1"
        if cause:
            child_env[ENV_CAUSE] = cause
        done = subprocess.run(
            ["git", "push", *git_args],
            cwd=str(Path(repo.workdir or repo.path)),
            env=child_env,
            check=False,
        )
        pushes = [p for p in ledger.pushes_after(before) if p.foreground]
        # git exits non-zero when any ref was rejected; the refs that landed still trigger,
        # so each push is judged per commit, as the waiter does.
        ids: list[int] = []
        for push in pushes:
            waiter = Waiter(repo, ledger, push, env, emit=log, push_ended=True)
            if not force:  # also after a rejected sibling: the others may have landed
                add_extra_refs(waiter, env)
            if waiter.wait() == "landed":
                ids += [
                    t.id
                    for t in ledger.triggers_for_push(push.id)
                    if t.state is TriggerState.PENDING
                ]
        pool = ClientPool(env, configured_host=lambda: current_host(repo, env))
        try:
            results = [deliver(ledger, trigger_id, pool) for trigger_id in ids]
            for result in results:
                if result.run is not None:
                    supersede(repo, ledger, result.record, pool, env, log)
        finally:
            pool.close()
        delivered = tuple(r.record for r in results if r.run is not None)
        pending = tuple(r.record for r in results if r.error is not None)
        return ForegroundPush(
            done.returncode, delivered, pending, bool(pushes), tuple(p.id for p in pushes)
        )
