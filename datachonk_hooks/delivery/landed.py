"""Has a push landed? Judging each recorded trigger by whether a ref that carried its commit
reached the remote.

git has no post-push hook and pre-push runs before any object is sent, so the hook records
its triggers as "awaiting push" and the waiter judges them here once `git push` is over: the
remote-tracking ref tells whether the server accepted the ref (git only moves it on
success); `git ls-remote` answers when there is no tracking ref (a push to a URL). A
rejected push triggers nothing.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pygit2

from datachonk_hooks.delivery.ledger import (
    Ledger,
    PushRecord,
    TriggerRecord,
    TriggerState,
    pid_alive,
)
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.push.updates import PushUpdate, contains, tracking_refs

LANDING_TIMEOUT = 600.0  # a push that has not landed after 10 minutes is left to `retry`


def _git_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env["GIT_TERMINAL_PROMPT"] = "0"
    return env


def remote_sha(repo: pygit2.Repository, url: str, remote_ref: str) -> str | None:
    """What the remote holds for `remote_ref` now (`git ls-remote`), or None if unknown."""
    try:
        done = subprocess.run(
            ["git", "ls-remote", "--", url, remote_ref],
            cwd=str(Path(repo.workdir or repo.path)),
            env=_git_env(),
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    for line in done.stdout.splitlines():
        sha, _, name = line.partition("\t")
        if name == remote_ref:
            return sha
    return ""  # the remote does not have the ref


def tracking_has(
    repo: pygit2.Repository,
    remote: str,
    branch: str,
    sha: str,
    before: Mapping[str, str] | None = None,
) -> bool:
    """Whether the remote-tracking ref of `branch` holds `sha`. With `before` (the tracking
    refs when the push began), only a ref the push moved counts: an unmoved one may be stale
    (the remote moved away since the last fetch) and says nothing about this push."""
    name = f"refs/remotes/{remote}/{branch}"
    try:
        target = str(repo.references[name].resolve().target)
    except (KeyError, pygit2.GitError):
        return False
    if before is not None and before.get(name) == target:
        return False
    return contains(repo, target, sha)


def remote_has(repo: pygit2.Repository, url: str, branch: str, sha: str) -> bool | None:
    """Whether the remote's branch holds `sha` (ls-remote); None when it cannot be asked."""
    current = remote_sha(repo, url, f"refs/heads/{branch}")
    if current is None:
        return None
    return bool(current) and contains(repo, current, sha)


def landed_on(
    repo: pygit2.Repository,
    trigger: TriggerRecord,
    carriers: list[tuple[PushRecord, str]],
    *,
    ask_remote: bool,
) -> tuple[bool | None, str | None]:
    """Whether any ref that carried the trigger's commit landed, judged per commit.

    Returns (True, the branch it landed on), (False, None) when every carrier was asked and
    none has it, or (None, None) when that is not known yet. The trigger's own branch comes
    first, so its run keeps that branch whenever it landed there. Tracking refs the push
    moved are read first (no network); `ls-remote` only when `ask_remote`.
    """
    seen: set[tuple[int, str]] = set()
    refs: list[tuple[PushRecord, str]] = []
    for push, ref in carriers:
        branch = ref.removeprefix("refs/heads/")
        if ref.startswith("refs/heads/") and (push.id, branch) not in seen:
            seen.add((push.id, branch))
            refs.append((push, branch))
    refs.sort(key=lambda item: (item[1] != trigger.branch, item[0].id, item[1]))
    for push, branch in refs:
        named = push.remote_name != push.remote_url
        if named and tracking_has(
            repo, push.remote_name, branch, trigger.sha, push.tracking_before
        ):
            return True, branch
    if not ask_remote:
        return None, None
    unknown = not refs
    for push, branch in refs:
        answer = remote_has(repo, push.remote_url, branch, trigger.sha)
        if answer:
            return True, branch
        unknown = unknown or answer is None
    return (None if unknown else False), None


@dataclass
class Waiter:
    """Wait for one recorded push to land, then deliver (and optionally watch) its triggers."""

    repo: pygit2.Repository
    ledger: Ledger
    push: PushRecord
    env: Mapping[str, str]
    #: where progress lines go (the waiter's log file, or `datachonk push`'s stderr)
    emit: Callable[[str], None] = print
    timeout: float = LANDING_TIMEOUT
    poll: float = 0.1
    #: the push is known to be over (`datachonk push` after `git push` returned)
    push_ended: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    #: when waiting ends, set once the wait starts
    _deadline: float | None = field(default=None, init=False, repr=False)

    def log(self, message: str) -> None:
        self.emit(message)

    def awaiting(self) -> list[TriggerRecord]:
        return [
            t
            for t in self.ledger.triggers_for_push(self.push.id)
            if t.state is TriggerState.AWAITING_PUSH
        ]

    def carriers(self, trigger: TriggerRecord) -> list[tuple[PushRecord, str]]:
        """Every (push, ref) that carried the trigger's commit (recorded with it)."""
        return self.ledger.refs_of(trigger.id)

    def landed(self, trigger: TriggerRecord, *, push_ended: bool) -> tuple[bool | None, str | None]:
        """(True, branch) landed there, (False, None) failed, (None, None) not known yet."""
        return landed_on(self.repo, trigger, self.carriers(trigger), ask_remote=push_ended)

    def await_push_end(self) -> bool:
        """Wait (within the timeout) for the `git push` process to end; whether it has."""
        pid = self.push.git_pid
        self._deadline = self.clock() + self.timeout
        while (
            not self.push_ended
            and pid is not None
            and pid_alive(pid)
            and self.clock() < self._deadline
        ):
            self.sleep(self.poll)
        return self.push_ended or (pid is not None and not pid_alive(pid))

    def wait(self) -> str:
        """'landed', 'failed' or 'expired'; updates the ledger accordingly."""
        return self.judge(self.await_push_end())

    def judge(self, ended: bool) -> str:
        """Judge each trigger of the push once its commit's fate is known.

        Landing is judged per commit: a trigger is sent when any ref, of this push or of a
        concurrent one, that carried its commit landed; a rejected sibling changes nothing.
        With the `git push` process known and ended, each ref is judged once: git moves the
        tracking ref before it exits, and `ls-remote` settles the rest. Without it (a hook
        run by hand), poll the tracking refs and now and then the remote.
        """
        deadline = self._deadline if self._deadline is not None else self.clock() + self.timeout
        next_remote_check = self.clock()
        while True:
            waiting = self.awaiting()
            ask_remote = ended or self.clock() >= next_remote_check
            if ask_remote and not ended:
                next_remote_check = self.clock() + 5.0
            answers = [self.landed(t, push_ended=ask_remote) for t in waiting]
            known = all(answer is not None for answer, _ in answers)
            if not waiting:  # none recorded (runs to take over), or another push judged them
                self.ledger.settle_judged(self.push.id, {}, [], None)
                self.log("nothing of this push waits to be judged")
                return "landed"
            if all(answer is True for answer, _ in answers) or (ended and known):
                return self._settle(waiting, answers)
            if ended or self.clock() >= deadline:
                reason = (
                    "could not confirm that the push landed; `datachonk-hook retry` checks again"
                )
                self.ledger.expire_push(self.push.id, reason)
                self.log(reason)
                return "expired"
            self.sleep(self.poll)

    def _settle(
        self, waiting: list[TriggerRecord], answers: list[tuple[bool | None, str | None]]
    ) -> str:
        landed = {
            t.id: branch for t, (answer, branch) in zip(waiting, answers, strict=True) if answer
        }
        failed = [t for t, (answer, _) in zip(waiting, answers, strict=True) if answer is False]
        reason = None
        if failed:
            refs = ", ".join(sorted({t.branch or "?" for t in failed}))
            reason = f"the push of {refs} to {self.push.remote_name} did not land"
        gone = self.ledger.settle_judged(self.push.id, landed, [t.id for t in failed], reason)
        if gone:
            self.log(f"{reason}; nothing triggered for it")
        elif failed:  # another push of the same commit is in flight: its waiter judges it
            self.log(f"{reason}; another push of the same commit may still land it")
        else:
            self.log(f"push to {self.push.remote_name} landed")
        return "failed" if failed and not landed else "landed"

    def extra_updates(self, known_branches: set[str]) -> list[PushUpdate]:
        """Other refs this push moved, for pre-commit which only shows the hook the first.

        A remote-tracking ref that changed during the push and now points at the tip of a
        local branch, or at a commit the `git push` command line named (a sha, a detached
        HEAD), was, in all likelihood, pushed by this push (a concurrent fetch would bring
        commits this clone does not have there).
        """
        if self.push.remote_name == self.push.remote_url:
            return []
        local_tips = {
            str(self.repo.references[name].resolve().target)
            for name in self.repo.references
            if name.startswith("refs/heads/")
        } | set(self.push.pushed_tips)
        prefix = f"refs/remotes/{self.push.remote_name}/"
        updates = []
        for name, sha in tracking_refs(self.repo, self.push.remote_name).items():
            branch = name.removeprefix(prefix)
            before = self.push.tracking_before.get(name)
            if sha == before or branch in known_branches or sha not in local_tips:
                continue
            updates.append(
                PushUpdate(f"refs/heads/{branch}", sha, f"refs/heads/{branch}", before or "0" * 40)
            )
        return updates


def add_extra_refs(waiter: Waiter, env: Mapping[str, str]) -> None:
    from datachonk_hooks.delivery.planning import plan_push_update

    known = {
        ref.removeprefix("refs/heads/")
        for trigger in waiter.ledger.triggers_for_push(waiter.push.id)
        for push, ref in waiter.carriers(trigger)
        if push.id == waiter.push.id
    }
    for update in waiter.extra_updates(known):
        try:
            plan = plan_push_update(
                waiter.repo,
                update,
                waiter.push.remote_name,
                env,
                remote_tips=waiter.push.tracking_before.values(),
                remote_url=waiter.push.remote_url,
            )
        except DatachonkError as exc:
            waiter.log(f"{update.remote_ref}: {exc}")
            continue
        if plan.trigger is None:
            waiter.log(f"{update.remote_ref}: {plan.skipped}")
            continue
        plan.trigger.add_to(
            waiter.ledger,
            source="push",
            push_id=waiter.push.id,
            remote_ref=update.remote_ref,
            awaiting_push=True,
        )
        waiter.log(f"{update.remote_ref}: also pushed, with generated models")
