"""The landing waiter: has the push really reached the remote? Then deliver its triggers.

git has no post-push hook and pre-push runs before any object is sent, so the hook records
its triggers as "awaiting push" and starts this waiter, detached, and returns at once. The
waiter watches the `git push` process: once it has ended, the remote-tracking ref tells
whether the server accepted the ref (git only moves it on success); `git ls-remote` answers
when there is no tracking ref (a push to a URL). A rejected push triggers nothing.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import pygit2

from datachonk_hooks.delivery.ledger import (
    Ledger,
    PushRecord,
    TriggerRecord,
    TriggerState,
    pid_alive,
    state_dir,
)
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.fileio import open_private_append
from datachonk_hooks.push.updates import PushUpdate, contains, tracking_refs
from datachonk_hooks.settings.config import Settings

if TYPE_CHECKING:
    from datachonk_hooks.delivery.trigger import ClientPool
    from datachonk_hooks.monitor.follow import ToFollow

WAITER_LOG = "waiter.log"
ABANDONED = (
    "its landing waiter stopped before the push was confirmed; `datachonk-hook retry` checks"
    " whether it landed before sending"
)
LANDING_TIMEOUT = 600.0  # a push that has not landed after 10 minutes is left to `retry`
ENV_LANDING_TIMEOUT = "DATACHONK_LANDING_TIMEOUT"


# ----------------------------------------------------------------------------- processes


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


# ----------------------------------------------------------------------------- has it landed?


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


# ----------------------------------------------------------------------------- the waiter


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
    from datachonk_hooks.delivery.trigger import ClientPool, without_bad_seconds
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
                    _add_extra_refs(waiter, env)
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


def _add_extra_refs(waiter: Waiter, env: Mapping[str, str]) -> None:
    from datachonk_hooks.delivery.trigger import plan_push_update

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
    from datachonk_hooks.delivery.trigger import deliver

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


def current_host(repo: pygit2.Repository, env: Mapping[str, str]) -> str | None:
    """The host configured now, for triggers pushed while none was (`ClientPool.host_for`):
    DBT_CLOUD_HOST, else datachonk.yaml as the next push reads it, from HEAD's commit (else
    the work tree's file). A broken file raises its ConfigError: the trigger stays pending
    with that reason."""
    from datachonk_hooks.delivery.trigger import settings_at
    from datachonk_hooks.push.gitrepo import work_tree
    from datachonk_hooks.settings.config import find_config_file, load_settings_file

    try:
        head = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit)
    except (pygit2.GitError, KeyError, ValueError):
        head = None
    if head is None:
        top = work_tree(repo)
        return load_settings_file(find_config_file(top, top), env=env).host
    return settings_at(repo, head, env).host


def pushed_settings(
    repo: pygit2.Repository, record: TriggerRecord, env: Mapping[str, str]
) -> Settings | None:
    """The settings of the commit a trigger is for, or None when they cannot be read."""
    from datachonk_hooks.delivery.trigger import settings_at

    try:
        return settings_at(repo, repo[record.sha].peel(pygit2.Commit), env)
    except (DatachonkError, KeyError, ValueError, pygit2.GitError):
        return None


def supersede(
    repo: pygit2.Repository,
    ledger: Ledger,
    record: TriggerRecord,
    pool: ClientPool,
    env: Mapping[str, str],
    log: Callable[[str], None],
) -> None:
    """With `cancel_superseded: true`, cancel this branch's older in-flight runs of the job."""
    from datachonk_hooks.delivery.trigger import cancel_superseded

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


# ----------------------------------------------------------------------------- datachonk push


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
    from datachonk_hooks.delivery.trigger import ClientPool, deliver
    from datachonk_hooks.prepush.hook import ENV_CAUSE, ENV_FORCE, ENV_FOREGROUND

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
                _add_extra_refs(waiter, env)
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
