"""landing.py: finding the `git push`, judging whether a push landed, and delivering after it."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.transport import RetryPolicy
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.clients import ClientPool
from datachonk_hooks.delivery.landed import Waiter, remote_has, remote_sha, tracking_has
from datachonk_hooks.delivery.ledger import Ledger, PushRecord, TriggerState, pid_alive
from datachonk_hooks.delivery.pending import deliver_pending
from datachonk_hooks.push.gitrepo import ZERO_SHA
from datachonk_hooks.push.updates import PushUpdate, tracking_refs
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import resolve_token
from tests.helpers import GENERATED_SQL, TOKEN, commit_files, git, remote_and_clone

ENV = {"DBT_CLOUD_API_TOKEN": TOKEN}
HOST = "http://127.0.0.1:9"  # never contacted unless a test says so


class Work:
    """A clone of a bare remote; main is pushed, feature is a local branch off main."""

    def __init__(self, path: Path, bare: Path) -> None:
        self.path, self.bare = path, bare

    @property
    def repo(self) -> pygit2.Repository:
        return pygit2.Repository(str(self.path))

    def sha(self, ref: str) -> str:
        return git(self.path, "rev-parse", ref)

    def commit(self, files: dict[str, str], message: str) -> str:
        return commit_files(self.path, files, message)

    def push(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            ["git", "push", "--quiet", *args],
            cwd=self.path,
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0 or not check, done.stderr
        return done


@pytest.fixture
def work(tmp_path: Path) -> Work:
    bare, path = remote_and_clone(tmp_path)
    commit_files(path, {"dbt_project.yml": "name: shop\n"}, "Start")
    git(path, "push", "--quiet", "origin", "main")
    return Work(path, bare)


@pytest.fixture
def ledger(work: Work) -> Iterator[Ledger]:
    with Ledger.for_repo(work.repo) as opened:
        yield opened


def record_push(
    ledger: Ledger,
    work: Work,
    triggers: Mapping[str, str],
    *,
    remote: str = "origin",
    git_pid: int | None = None,
    host: str = HOST,
) -> PushRecord:
    """What the hook records before the objects go: the push and one trigger per branch."""
    url = str(work.bare) if remote == "origin" else remote
    push = ledger.record_push(
        remote_name=remote,
        remote_url=url,
        git_pid=git_pid,
        tracking_before=tracking_refs(work.repo, remote),
        foreground=False,
    )
    for branch, sha in triggers.items():
        ledger.add_trigger(
            host=host,
            account_id=12345,
            job_id=11111,
            request=TriggerRequest(cause=f"Push {branch}", git_sha=sha, git_branch=branch),
            source="push",
            push_id=push.id,
            awaiting_push=True,
        )
    return push


def states(ledger: Ledger, push: PushRecord) -> dict[str, TriggerState]:
    return {t.branch or "": t.state for t in ledger.triggers_for_push(push.id)}


def waiter(work: Work, ledger: Ledger, push: PushRecord, lines: list[str], **kw: object) -> Waiter:
    return Waiter(work.repo, ledger, push, ENV, emit=lines.append, **kw)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- processes


def test_pid_alive() -> None:
    assert pid_alive(os.getpid())
    child = subprocess.Popen(["true"])
    child.wait()
    assert not pid_alive(child.pid)


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="zombies are seen in /proc")
def test_a_zombie_counts_as_ended() -> None:
    child = subprocess.Popen(["true"])
    stat = Path("/proc") / str(child.pid) / "stat"
    deadline = time.monotonic() + 10
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z":
        assert time.monotonic() < deadline
        time.sleep(0.01)
    try:
        assert not pid_alive(child.pid)
    finally:
        child.wait()


# ----------------------------------------------------------------------------- remote state


def test_remote_sha(work: Work) -> None:
    url = str(work.bare)
    assert remote_sha(work.repo, url, "refs/heads/main") == work.sha("main")
    assert remote_sha(work.repo, url, "refs/heads/missing") == ""
    assert remote_sha(work.repo, url, "refs/heads/mai") == ""  # no prefix matching
    assert remote_sha(work.repo, str(work.path.parent / "nowhere.git"), "refs/heads/main") is None


def test_remote_has_and_tracking_has(work: Work) -> None:
    old = work.sha("main")
    pushed = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    work.push("origin", "main")
    local = work.commit({"models/b.sql": GENERATED_SQL}, "Not pushed")
    repo, url = work.repo, str(work.bare)
    nowhere = str(work.path.parent / "nowhere.git")
    assert [remote_has(repo, url, "main", sha) for sha in (old, pushed, local)] == [
        True,  # an ancestor of what the remote holds
        True,
        False,
    ]
    assert remote_has(repo, url, "missing", pushed) is False
    assert remote_has(repo, nowhere, "main", pushed) is None
    assert [tracking_has(repo, "origin", "main", sha) for sha in (old, pushed, local)] == [
        True,
        True,
        False,
    ]
    assert tracking_has(repo, "origin", "missing", pushed) is False
    assert tracking_has(repo, "upstream", "main", pushed) is False


# ----------------------------------------------------------------------------- the waiter


def test_landed_by_the_tracking_ref(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha})
    work.push("origin", "main")
    lines: list[str] = []
    assert waiter(work, ledger, push, lines, push_ended=True).wait() == "landed"
    assert states(ledger, push) == {"main": TriggerState.PENDING}
    assert ledger.get_push(push.id).state == "landed"  # type: ignore[union-attr]
    assert lines == ["push to origin landed"]


def test_a_stale_tracking_ref_is_no_proof_of_landing(
    tmp_path: Path, work: Work, ledger: Ledger
) -> None:
    """The tracking ref already held the commit (fetched before someone reset the remote's
    branch); this push was rejected: the unmoved ref proves nothing, ls-remote decides."""
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    base = work.sha("HEAD~1")
    work.push("origin", "main")
    git(work.bare, "update-ref", "refs/heads/main", base)  # the remote moved back
    push = record_push(ledger, work, {"main": sha})
    assert push.tracking_before["refs/remotes/origin/main"] == sha  # stale
    (work.bare / "hooks" / "update").write_text("#!/bin/sh\nexit 1\n")
    (work.bare / "hooks" / "update").chmod(0o755)
    assert work.push("origin", "main", check=False).returncode != 0
    lines: list[str] = []
    assert waiter(work, ledger, push, lines, push_ended=True).wait() == "failed"
    assert states(ledger, push) == {"main": TriggerState.PUSH_FAILED}


def test_landed_by_ls_remote_for_a_url_push(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    url = str(work.bare)
    push = record_push(ledger, work, {"main": sha}, remote=url)
    work.push(url, "main")
    assert not tracking_has(work.repo, "origin", "main", sha)  # no tracking ref moved
    assert waiter(work, ledger, push, [], push_ended=True).wait() == "landed"
    assert states(ledger, push) == {"main": TriggerState.PENDING}


def test_rejected_push_failed(tmp_path: Path, work: Work, ledger: Ledger) -> None:
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(work.bare), str(other))
    commit_files(other, {"README.md": "first\n"}, "Someone else")
    git(other, "push", "--quiet", "origin", "main")
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha})
    assert work.push("origin", "main", check=False).returncode != 0
    lines: list[str] = []
    assert waiter(work, ledger, push, lines, push_ended=True).wait() == "failed"
    assert states(ledger, push) == {"main": TriggerState.PUSH_FAILED}
    stored = ledger.get_push(push.id)
    assert stored is not None and stored.state == "failed"
    assert stored.reason == "the push of main to origin did not land"
    assert lines == ["the push of main to origin did not land; nothing triggered for it"]
    assert ledger.deliverable() == []


def test_partly_landed_multi_ref_push(work: Work, ledger: Ledger) -> None:
    main = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "checkout", "--quiet", "-b", "feature")
    feature = work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    push = record_push(ledger, work, {"main": main, "feature": feature})
    work.push("origin", "main")  # feature never goes (say, a protected-branch rule)
    lines: list[str] = []
    assert waiter(work, ledger, push, lines, push_ended=True).wait() == "landed"
    assert states(ledger, push) == {
        "main": TriggerState.PENDING,
        "feature": TriggerState.PUSH_FAILED,
    }
    assert [t.branch for t in ledger.deliverable()] == ["main"]
    assert lines == ["the push of feature to origin did not land; nothing triggered for it"]


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps = 0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds


def test_expires_when_the_git_process_is_unknown(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha}, git_pid=None)  # never pushed
    clock = FakeClock()
    lines: list[str] = []
    outcome = waiter(
        work, ledger, push, lines, timeout=12.0, poll=1.0, clock=clock, sleep=clock.sleep
    ).wait()
    assert outcome == "expired"
    assert 11 <= clock.sleeps <= 13  # polled until the deadline, not a moment longer
    assert states(ledger, push) == {"main": TriggerState.PENDING}  # left to `retry`
    assert ledger.get_push(push.id).state == "expired"  # type: ignore[union-attr]
    assert lines == ["could not confirm that the push landed; `datachonk-hook retry` checks again"]


def test_expires_when_the_remote_cannot_be_asked(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    nowhere = str(work.path.parent / "nowhere.git")
    push = record_push(ledger, work, {"main": sha}, remote=nowhere)
    assert waiter(work, ledger, push, [], push_ended=True).wait() == "expired"
    assert states(ledger, push) == {"main": TriggerState.PENDING}


def test_expires_while_git_push_still_runs(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha}, git_pid=os.getpid())  # alive all along
    clock = FakeClock()
    outcome = waiter(
        work, ledger, push, [], timeout=5.0, poll=0.5, clock=clock, sleep=clock.sleep
    ).wait()
    assert outcome == "expired"
    assert clock.now >= 1005.0


def test_unknown_git_process_sees_the_push_land(work: Work, ledger: Ledger) -> None:
    """A hook run by hand: the waiter polls the tracking refs until the push shows up."""
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha}, git_pid=None)
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.sleeps == 3:
            work.push("origin", "main")

    outcome = waiter(
        work, ledger, push, [], timeout=60.0, poll=1.0, clock=clock, sleep=sleep
    ).wait()
    assert outcome == "landed"
    assert clock.sleeps == 3


def test_a_finished_git_process_means_the_push_ended(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    gone = subprocess.Popen(["true"])
    gone.wait()
    push = record_push(ledger, work, {"main": sha}, git_pid=gone.pid)
    clock = FakeClock()
    # not pushed: with the git process gone, ls-remote settles it at once
    outcome = waiter(work, ledger, push, [], clock=clock, sleep=clock.sleep).wait()
    assert (outcome, clock.sleeps) == ("failed", 0)


# ----------------------------------------------------------------------------- other refs


def test_extra_updates_are_refs_the_push_moved_to_local_tips(
    tmp_path: Path, work: Work, ledger: Ledger
) -> None:
    git(work.path, "push", "--quiet", "origin", "main:stale")  # tracked, and it will not move
    git(work.path, "fetch", "--quiet", "origin")
    main = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "checkout", "--quiet", "-b", "feature")
    feature = work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    before_main = work.sha("origin/main")
    push = record_push(ledger, work, {"main": main})
    # meanwhile someone pushes a branch this clone has no local copy of, and we fetch it
    other = tmp_path / "other"
    git(tmp_path, "clone", "--quiet", str(work.bare), str(other))
    commit_files(other, {"README.md": "theirs\n"}, "Theirs")
    git(other, "push", "--quiet", "origin", "HEAD:theirs")
    git(work.path, "fetch", "--quiet", "origin")
    work.push("origin", "main", "feature")
    w = waiter(work, ledger, push, [], push_ended=True)
    assert w.extra_updates({"main"}) == [
        PushUpdate("refs/heads/feature", feature, "refs/heads/feature", ZERO_SHA)
    ]
    assert sorted(w.extra_updates(set()), key=lambda u: u.remote_ref) == [
        PushUpdate("refs/heads/feature", feature, "refs/heads/feature", ZERO_SHA),
        PushUpdate("refs/heads/main", main, "refs/heads/main", before_main),
    ]
    assert w.extra_updates({"main", "feature"}) == []


def test_extra_updates_of_a_url_push(work: Work, ledger: Ledger) -> None:
    push = record_push(ledger, work, {}, remote=str(work.bare))
    git(work.path, "checkout", "--quiet", "-b", "feature")
    work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    work.push("origin", "feature")  # even though a tracking ref moved meanwhile
    assert waiter(work, ledger, push, []).extra_updates(set()) == []


# ----------------------------------------------------------------------------- delivery


@pytest.fixture
def pool() -> Iterator[ClientPool]:
    fast = RetryPolicy(attempts=2, base_delay=0.01, max_delay=0.02, budget=2.0)

    def factory(host: str, account_id: int, env: Mapping[str, str]) -> DbtCloudClient:
        return DbtCloudClient(host, account_id, resolve_token(env), retry=fast)

    made = ClientPool(ENV, factory=factory)
    yield made
    made.close()


def test_deliver_pending_checks_expired_pushes_first(
    work: Work, ledger: Ledger, sandbox: Sandbox, pool: ClientPool
) -> None:
    landed = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "checkout", "--quiet", "-b", "feature")
    lost = work.commit({"models/b.sql": GENERATED_SQL}, "Add b")
    push = record_push(ledger, work, {"main": landed, "feature": lost}, host=sandbox.url)
    work.push("origin", "main")
    ledger.expire_push(push.id, "could not confirm")
    manual, _ = ledger.add_trigger(
        host=sandbox.url,
        account_id=12345,
        job_id=22222,
        request=TriggerRequest(cause="By hand", git_sha=lost, git_branch="feature"),
        source="manual",
    )
    lines: list[str] = []
    assert deliver_pending(work.repo, ledger, pool, ENV, log=lines.append) == []
    assert sorted((r.job_id, r.git_sha) for r in sandbox.runs) == sorted(
        [(11111, landed), (22222, lost)]  # a manual trigger needs no push
    )
    assert states(ledger, push) == {
        "main": TriggerState.TRIGGERED,
        "feature": TriggerState.PUSH_FAILED,
    }
    [failed] = [t for t in ledger.triggers_for_push(push.id) if t.branch == "feature"]
    assert failed.reason == f"{lost[:7]} never reached feature"
    assert f"{lost[:7]} is not on origin/feature; not triggered" in lines
    assert ledger.get(manual.id).state is TriggerState.TRIGGERED  # type: ignore[union-attr]


def test_deliver_pending_keeps_an_expired_push_it_cannot_check(
    work: Work, ledger: Ledger, sandbox: Sandbox, pool: ClientPool
) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    nowhere = str(work.path.parent / "nowhere.git")
    push = record_push(ledger, work, {"main": sha}, remote=nowhere, host=sandbox.url)
    ledger.expire_push(push.id, "could not confirm")
    lines: list[str] = []
    assert deliver_pending(work.repo, ledger, pool, ENV, log=lines.append) == []
    assert states(ledger, push) == {"main": TriggerState.PENDING}
    assert lines == [f"cannot reach {nowhere} to check the push of {sha[:7]}; kept"]
    assert sandbox.runs == []


def test_deliver_pending_returns_what_stays_pending(
    work: Work, ledger: Ledger, sandbox: Sandbox, pool: ClientPool
) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha}, host=sandbox.url)
    work.push("origin", "main")
    ledger.mark_push_landed(push.id)
    sandbox.stop()
    lines: list[str] = []
    [pending] = deliver_pending(work.repo, ledger, pool, ENV, log=lines.append)
    assert pending.state is TriggerState.PENDING and pending.reason
    assert lines[0].startswith(f"job 11111 for {sha[:7]} stays pending: ")


# ----------------------------------------------------------------------------- per commit


def refuse_branch(work: Work, *branches: str) -> None:
    """An `update` hook on the bare remote that rejects these branches (a protection rule)."""
    refused = "|".join(f"refs/heads/{branch}" for branch in branches)
    hook = work.bare / "hooks" / "update"
    hook.write_text(f'#!/bin/sh\ncase "$1" in {refused}) exit 1 ;; esac\nexit 0\n')
    hook.chmod(0o755)


def record_refs(
    ledger: Ledger, work: Work, sha: str, refs: list[str], *, git_pid: int | None = None
) -> PushRecord:
    """The hook's record of one push carrying `sha` on each of `refs` (one trigger, linked)."""
    push = ledger.record_push(
        remote_name="origin",
        remote_url=str(work.bare),
        git_pid=git_pid,
        tracking_before=tracking_refs(work.repo, "origin"),
        foreground=False,
    )
    for ref in refs:
        ledger.add_trigger(
            host=HOST,
            account_id=12345,
            job_id=11111,
            request=TriggerRequest(cause="Add a", git_sha=sha, git_branch=ref),
            source="push",
            push_id=push.id,
            remote_ref=f"refs/heads/{ref}",
            awaiting_push=True,
        )
    return push


def test_a_rejected_sibling_changes_nothing(work: Work, ledger: Ledger) -> None:
    """`git push origin aaa main` with aaa refused: main carried the commit, so it triggers,
    on main, even though the ledger row was recorded for aaa first."""
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "branch", "aaa")
    refuse_branch(work, "aaa")
    push = record_refs(ledger, work, sha, ["aaa", "main"])
    [trigger] = ledger.triggers_for_push(push.id)
    assert trigger.branch == "aaa"
    assert work.push("origin", "aaa", "main", check=False).returncode != 0
    lines: list[str] = []
    assert waiter(work, ledger, push, lines, push_ended=True).wait() == "landed"
    [landed] = ledger.deliverable()
    assert (landed.id, landed.branch, landed.request.git_branch) == (trigger.id, "main", "main")
    assert lines == ["push to origin landed"]


def test_every_ref_rejected_fails_the_trigger(work: Work, ledger: Ledger) -> None:
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "branch", "aaa")
    git(work.path, "branch", "bbb")
    refuse_branch(work, "aaa", "bbb")
    push = record_refs(ledger, work, sha, ["aaa", "bbb"])
    work.push("origin", "aaa", "bbb", check=False)
    lines: list[str] = []
    assert waiter(work, ledger, push, lines, push_ended=True).wait() == "failed"
    [trigger] = ledger.triggers_for_push(push.id)
    assert trigger.state is TriggerState.PUSH_FAILED
    assert lines == ["the push of aaa to origin did not land; nothing triggered for it"]


def test_a_concurrent_push_of_the_same_commit_keeps_it(work: Work, ledger: Ledger) -> None:
    """Two pushes of one commit: the first (aaa) is rejected while the second (main) is
    still in flight; the trigger waits for the second, which lands it."""
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    git(work.path, "branch", "aaa")
    refuse_branch(work, "aaa")
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        first = record_refs(ledger, work, sha, ["aaa"])
        second = record_refs(ledger, work, sha, ["main"], git_pid=sleeper.pid)
        [trigger] = ledger.triggers_for_push(second.id)
        assert [t.id for t in ledger.triggers_for_push(first.id)] == [trigger.id]
        work.push("origin", "aaa", check=False)
        lines: list[str] = []
        assert waiter(work, ledger, first, lines, push_ended=True).wait() == "failed"
        assert ledger.get(trigger.id).state is TriggerState.AWAITING_PUSH  # type: ignore[union-attr]
        work.push("origin", "main")
    finally:
        sleeper.kill()
        sleeper.wait()
    assert waiter(work, ledger, second, lines).wait() == "landed"
    assert [t.id for t in ledger.deliverable()] == [trigger.id]


def test_a_push_that_outlasts_its_waiter_is_not_failed(
    work: Work, ledger: Ledger, sandbox: Sandbox, pool: ClientPool
) -> None:
    """The waiter gave up (its lifetime) while `git push` still ran: not landed yet is not
    "never landed"; the trigger stays pending and `retry` sends it once the push is in."""
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"]) as git_push:
        try:
            push = record_push(ledger, work, {"main": sha}, git_pid=git_push.pid, host=sandbox.url)
            ledger.expire_push(push.id, "could not confirm that the push landed")
            lines: list[str] = []
            assert deliver_pending(work.repo, ledger, pool, ENV, log=lines.append) == []
            assert states(ledger, push) == {"main": TriggerState.PENDING}
            assert lines == [
                f"the push of {sha[:7]} is still running; kept for `datachonk-hook retry`"
            ]
        finally:
            git_push.kill()
    work.push("origin", "main")  # it lands after all
    assert deliver_pending(work.repo, ledger, pool, ENV, log=lines.append) == []
    assert [run.git_sha for run in sandbox.runs] == [sha]


def test_the_waiter_ends_by_itself_when_delivering_takes_too_long(
    work: Work,
    ledger: Ledger,
    sandbox: Sandbox,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """dbt Cloud holds the POST: the waiter stops at its delivery bound, and the trigger,
    cut mid-send, stays pending to be looked up (not re-sent) by `retry`."""
    from datachonk_hooks.delivery import landing

    monkeypatch.setattr(landing, "DELIVERY_LIMIT", 1.0)
    sha = work.commit({"models/a.sql": GENERATED_SQL}, "Add a")
    push = record_push(ledger, work, {"main": sha}, host=sandbox.url)
    work.push("origin", "main")
    sandbox.fail("slow", method="POST", path="/run/$", delay=5.0)
    started = time.monotonic()
    assert landing.run_waiter(work.repo, push.id, ENV) == 0
    assert time.monotonic() - started < 4.0
    [trigger] = ledger.triggers_for_push(push.id)
    assert trigger.state is TriggerState.PENDING and trigger.unknown_since is not None
    assert "stopped delivering after 1 s, the waiter's bound" in capsys.readouterr().out
