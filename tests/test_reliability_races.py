"""Races and crashes: concurrent pushes, concurrent senders, killed waiters, a broken ledger.

The ledger's promise is one run per (account, job, commit) whatever runs at the same time,
and no trigger lost whatever dies when. These scenarios race real processes against each
other and SIGKILL the landing waiter at each step, then check with `datachonk-hook retry`
that exactly one run exists and nothing was lost.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from datachonk_hooks.delivery.ledger import TriggerRecord, TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import Clone, make_clone, pre_commit_clone, settled
from tests.helpers import GENERATED_SQL, config_yaml, git
from tests.reliability import (
    HOOK,
    JOB,
    PUSH_BUDGET,
    Scenario,
    assert_clean,
    kill,
    no_waiters_left,
    wait_for,
    waiter_pids,
)

RUN_POST = r"/jobs/\d+/run/$"
MODEL = {"models/staging/stg_orders.sql": GENERATED_SQL}
GROUP_RACES = "races"
GROUP_CRASHES = "crashes"
GROUP_LEDGER = "broken ledger"
#: a second pre-push hook after ours that keeps `git push` busy, so the waiter is caught
#: while it waits for the push to end
SLOW_SECOND_HOOK = """\
      - id: slow-second-hook
        name: a slow hook after ours
        entry: sleep 4
        language: unsupported
        stages: [pre-push]
        pass_filenames: false
        always_run: true
"""


def triggers(clone: Clone) -> list[TriggerRecord]:
    if not (clone.path / ".git" / "datachonk" / "ledger.sqlite3").exists():
        return []
    with clone.ledger() as ledger:
        return ledger.history()


def the_trigger(clone: Clone) -> TriggerRecord:
    [record] = triggers(clone)
    return record


def idle(clone: Clone) -> bool:
    return not waiter_pids(clone.path) and settled(clone)


def repo_state(clone: Clone) -> tuple[str, str, str]:
    """What a user would notice changing: HEAD, the work tree and index, the local branches."""
    return (
        git(clone.path, "rev-parse", "HEAD"),
        git(clone.path, "status", "--porcelain", "--untracked-files=all"),
        git(clone.path, "for-each-ref", "refs/heads", "refs/tags"),
    )


# ----------------------------------------------------------------------------- races


@pytest.mark.slow
def test_same_commit_pushed_to_two_branches_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    with no_waiters_left(clone.path):
        sha = clone.commit(MODEL, "Add stg_orders")
        one = ("git", "push", "origin", "main")
        other = ("git", "push", "origin", "main:release")
        first = scenario.start(clone.path, *one, env=clone.env)
        second = scenario.start(clone.path, *other, env=env)
        pushes = [
            scenario.finish_racing_push(first, clone.path, *one, env=clone.env),
            scenario.finish_racing_push(second, clone.path, *other, env=env),
        ]
        wait_for(lambda: idle(clone), 60, "the waiters")
    counts = scenario.count(
        group=GROUP_RACES,
        scenario="same commit pushed to two branches at once",
        path="2 × git push (pre-commit)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert [p.returncode for p in pushes] == [0, 0], [p.stdout + p.stderr for p in pushes]
    # triggered, and followed to its end once the waiter saw it
    assert the_trigger(clone).state in (TriggerState.TRIGGERED, TriggerState.FINISHED)
    assert_clean(counts)


@pytest.mark.slow
def test_same_commit_pushed_from_two_worktrees_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """Worktrees share the ledger (it lives in the git common dir), so they share dedup."""
    clone = pre_commit_clone(tmp_path, remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    tree = tmp_path / "second-worktree"
    git(clone.path, "worktree", "add", "--quiet", "-b", "release", str(tree))
    with no_waiters_left(clone.path), no_waiters_left(tree):
        first = scenario.start(clone.path, "git", "push", "origin", "main", env=env)
        second = scenario.start(tree, "git", "push", "origin", "release", env=env)
        pushes = [scenario.finish(first, push=True), scenario.finish(second, push=True)]
        wait_for(lambda: idle(clone) and not waiter_pids(tree), 60, "the waiters")
    counts = scenario.count(
        group=GROUP_RACES,
        scenario="same commit pushed from two worktrees at once",
        path="2 × git push (pre-commit)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert [p.returncode for p in pushes] == [0, 0], [p.stdout + p.stderr for p in pushes]
    assert_clean(counts)


@pytest.mark.slow
def test_three_waiters_for_one_push(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """The hook's own waiter and two more `land PUSH_ID` race to deliver one trigger."""
    clone = make_clone(tmp_path, "work", remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("slow", method="POST", path=RUN_POST, delay=1.0)  # all three are at it at once
    with no_waiters_left(clone.path):
        line = f"refs/heads/main {sha} refs/heads/main {'0' * 40}\n"
        hooked = scenario.run(
            clone.path, HOOK, "pre-push", "origin", str(remote), env=env, stdin=line
        )
        assert hooked.returncode == 0, hooked.stderr
        extra = [scenario.start(clone.path, HOOK, "land", "1", env=env) for _ in range(2)]
        scenario.push(clone, "--no-verify", "origin", "main")  # now it lands
        ends = [scenario.finish(started, label="land") for started in extra]
        wait_for(lambda: idle(clone), 60, "the waiters")
    counts = scenario.count(
        group=GROUP_RACES,
        scenario="three waiters deliver one push at once",
        path="3 × datachonk-hook land",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert [e.returncode for e in ends] == [0, 0], [e.stdout + e.stderr for e in ends]
    # whichever of the three wins says so: the hook's waiter in its log, the others on stdout
    said = [clone.waiter_log(), *(e.stdout for e in ends)]
    assert sum(text.count("triggered run") for text in said) == 1, said
    assert_clean(counts)


@pytest.mark.slow
def test_waiter_and_manual_run_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("slow", method="POST", path=RUN_POST, delay=1.5)
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: the_trigger(clone).state is TriggerState.SENDING, 20, "the waiter's POST")
        manual = scenario.cli(clone, "run", "--wait", "--timeout", "60")
        wait_for(lambda: idle(clone), 60, "the waiter")
        later = scenario.cli(clone, "run")
    counts = scenario.count(
        group=GROUP_RACES,
        scenario="waiter and a manual run at once",
        path="git push + datachonk-hook run --wait",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert pushed.returncode == 0
    # the manual run waits for the waiter's send in progress, then watches that run
    assert manual.returncode == 0, manual.stdout + manual.stderr
    assert "another process is sending this trigger to dbt Cloud" in manual.stdout
    assert "succeeded" in manual.stdout
    assert later.returncode == 0 and "already triggered run" in later.stdout
    assert_clean(counts)


@pytest.mark.slow
def test_manual_run_and_push_at_once(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    cloud.fail("slow", method="POST", path=RUN_POST, delay=1.5)
    with no_waiters_left(clone.path):
        manual = scenario.start(clone.path, HOOK, "run", "--allow-unpushed", env=env)
        wait_for(lambda: bool(triggers(clone)), 20, "the manual trigger")
        pushed = scenario.push(clone, "origin", "main")
        ran = scenario.finish(manual, label="run")
        wait_for(lambda: idle(clone), 60, "the waiter")
    counts = scenario.count(
        group=GROUP_RACES,
        scenario="manual run and a push at once",
        path="datachonk-hook run + git push",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert (ran.returncode, pushed.returncode) == (0, 0), ran.stderr + pushed.stderr
    assert_clean(counts)


# ----------------------------------------------------------------------------- crashes


def waiter_of(clone: Clone) -> int:
    """The pid of the clone's one landing waiter, once it has started waiting."""
    wait_for(lambda: "waiting for the push" in clone.waiter_log(), 20, "the landing waiter")
    [pid] = waiter_pids(clone.path)
    return pid


@pytest.mark.slow
def test_waiter_killed_while_waiting_for_the_push(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """Killed before the POST: the push is still "waiting", its trigger awaits the push."""
    clone = pre_commit_clone(tmp_path, remote, env, extra=SLOW_SECOND_HOOK)
    with no_waiters_left(clone.path):
        sha = clone.commit(MODEL, "Add stg_orders")
        pushing = scenario.start(clone.path, "git", "push", "origin", "main", env=env)
        kill(waiter_of(clone))  # git push is still busy with the slow second hook
        pushed = scenario.finish(pushing, push=True)
        wait_for(lambda: not waiter_pids(clone.path), 10, "the killed waiter to go")
        left = the_trigger(clone)
        retried = scenario.cli(clone, "retry")
        again = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP_CRASHES,
        scenario="waiter SIGKILLed while waiting for the push (before the POST)",
        path="git push, kill -9, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert pushed.returncode == 0, pushed.stderr
    assert left.state is TriggerState.AWAITING_PUSH  # what the killed waiter left behind
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "triggered run" in retried.stdout
    assert (again.returncode, again.stdout.strip()) == (0, "nothing pending")
    assert_clean(counts)


@pytest.mark.slow
def test_next_push_delivers_what_a_killed_waiter_left(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """No `retry` by hand: the next push's waiter finds the abandoned push and sends it."""
    clone = pre_commit_clone(tmp_path, remote, env, extra=SLOW_SECOND_HOOK)
    with no_waiters_left(clone.path):
        first_sha = clone.commit(MODEL, "Add stg_orders")
        pushing = scenario.start(clone.path, "git", "push", "origin", "main", env=env)
        kill(waiter_of(clone))
        first = scenario.finish(pushing, push=True)
        second_sha = clone.commit({"models/marts/orders.sql": GENERATED_SQL}, "Add orders")
        second = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone) and len(cloud.runs) == 2, 30, "the next waiter")
    counts = scenario.count(
        group=GROUP_CRASHES,
        scenario="waiter SIGKILLed, then the next push (no retry by hand)",
        path="git push, kill -9, git push",
        cloud=cloud,
        expected=[(JOB, first_sha), (JOB, second_sha)],
        clones=[clone],
    )
    assert (first.returncode, second.returncode) == (0, 0)
    assert "is gone; checking it landed" in clone.waiter_log()
    assert_clean(counts)


@pytest.mark.slow
@pytest.mark.parametrize("retry_at_once", [False, True], ids=["retry later", "retry at once"])
def test_waiter_killed_inside_the_post(
    tmp_path: Path,
    remote: Path,
    env: dict[str, str],
    cloud: Sandbox,
    scenario: Scenario,
    retry_at_once: bool,
) -> None:
    """Killed after sending the POST and before writing the run id: the unknown-outcome rule
    makes `retry` look the run up instead of sending the trigger a second time. Run at once,
    `retry` first lets the dead waiter's POST run into its read timeout (4 s here), as dbt
    Cloud may still be creating that run."""
    clone = pre_commit_clone(tmp_path, remote, {**env, "DATACHONK_HTTP_TIMEOUT": "4"})
    cloud.fail("slow", method="POST", path=RUN_POST, delay=3.0)
    with no_waiters_left(clone.path):
        sha = clone.commit(MODEL, "Add stg_orders")
        pushed = scenario.push(clone, "origin", "main")
        pid = waiter_of(clone)
        wait_for(lambda: the_trigger(clone).state is TriggerState.SENDING, 20, "the POST")
        time.sleep(0.3)  # the request is on its way
        kill(pid)
        killed = time.monotonic()
        wait_for(lambda: not waiter_pids(clone.path), 10, "the killed waiter to go")
        if not retry_at_once:
            wait_for(lambda: len(cloud.runs) == 1, 20, "dbt Cloud to create the run anyway")
        left = the_trigger(clone)
        retried = scenario.cli(clone, "retry")
        time.sleep(max(0.0, killed + 3.5 - time.monotonic()))  # the dead POST has landed
    when = "at once" if retry_at_once else "after dbt Cloud answered"
    counts = scenario.count(
        group=GROUP_CRASHES,
        scenario=f"waiter SIGKILLed inside the POST (before the ledger write), retry {when}",
        path="git push, kill -9, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert pushed.returncode == 0
    assert (left.state, left.run_id) == (TriggerState.SENDING, None)
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert "was being sent by a process that ended" in retried.stdout
    posts = [r for r in cloud.requests if r.method == "POST"]
    assert len(posts) == 1  # looked up, never sent again
    assert_clean(counts)


@pytest.mark.slow
def test_waiter_killed_while_watching(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """Killed after the ledger write: nothing is pending, and `watch` records the end."""
    cloud.add_job(JOB, project_id=67890, name="DataChonk CI", running_s=600)
    clone = pre_commit_clone(tmp_path, remote, env)
    config = config_yaml(cloud.url, extra="    wait: true\n    timeout: 600\n")
    with no_waiters_left(clone.path):
        sha = clone.commit({**MODEL, "datachonk.yaml": config}, "Add stg_orders")
        scenario.push(clone, "origin", "main")
        pid = waiter_of(clone)
        wait_for(lambda: the_trigger(clone).state is TriggerState.TRIGGERED, 20, "the run")
        kill(pid)
        retried = scenario.cli(clone, "retry")
        record = the_trigger(clone)
        cloud.add_job(JOB, project_id=67890, name="DataChonk CI")  # let it finish now
        assert record.run_id is not None
        scenario.cli(clone, "cancel", str(record.run_id))
        watched = scenario.cli(clone, "watch", str(record.run_id), "--timeout", "30")
    counts = scenario.count(
        group=GROUP_CRASHES,
        scenario="waiter SIGKILLed while watching the run (after the ledger write)",
        path="git push, kill -9, retry, watch",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert (retried.returncode, retried.stdout.strip()) == (0, "nothing pending")
    assert watched.returncode == 3  # the documented code of a cancelled run
    final = the_trigger(clone)
    assert (final.state, final.run_status) == (TriggerState.FINISHED, 30)
    assert_clean(counts)


# ----------------------------------------------------------------------------- broken ledger


@pytest.mark.slow
def test_corrupt_ledger_never_blocks_a_push(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """A damaged ledger is moved aside with a warning and a new one started: the push goes
    on and triggers; the old file is kept for whoever wants its history."""
    clone = pre_commit_clone(tmp_path, remote, env)
    ledger_file = clone.path / ".git" / "datachonk" / "ledger.sqlite3"
    ledger_file.parent.mkdir(parents=True)
    garbage = b"this is not a database\n" * 200
    ledger_file.write_bytes(garbage)
    sha = clone.commit(MODEL, "Add stg_orders")
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone), 60, "the waiter")
        retried = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP_LEDGER,
        scenario="corrupt ledger file (moved aside, a new one started)",
        path="git push, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    output = pushed.stdout + pushed.stderr
    assert pushed.returncode == 0, output
    assert "is not a valid SQLite database; it was moved to" in output
    [kept] = ledger_file.parent.glob("ledger.sqlite3.corrupt-*")
    assert kept.read_bytes() == garbage
    assert git(clone.path, "ls-remote", "origin", "main").split()[0] == sha
    assert retried.returncode == 0 and "Traceback" not in retried.stderr
    assert_clean(counts)


LOCKER = """
import sqlite3, sys, time
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
time.sleep(float(sys.argv[2]))
"""


@pytest.mark.slow
def test_locked_ledger_never_blocks_a_push(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    subprocess.run([HOOK, "history"], cwd=clone.path, env=env, check=True, capture_output=True)
    ledger_file = clone.path / ".git" / "datachonk" / "ledger.sqlite3"
    before = repo_state(clone)
    locker = subprocess.Popen(
        [sys.executable, "-c", LOCKER, str(ledger_file), "60"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdout.readline().strip() == "locked"
        with no_waiters_left(clone.path):
            pushed = scenario.push(clone, "origin", "main")
        untouched = repo_state(clone) == before
    finally:
        locker.kill()
        locker.wait(timeout=10)
    ran = scenario.cli(clone, "run", "--ref", sha[:12], "--job-id", str(JOB))  # as it says
    counts = scenario.count(
        group=GROUP_LEDGER,
        scenario="ledger locked by another process (then `run --ref`)",
        path="git push, run --ref",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    output = pushed.stdout + pushed.stderr
    assert pushed.returncode == 0, output
    assert re.search(r"is locked by another process \(waited \d\.\d s\)", output), output
    by_hand = f"Once it has landed: `datachonk-hook run --ref {sha[:12]} --job-id {JOB}`"
    assert f"nothing was triggered; the push goes on. {by_hand}" in output
    assert scenario.push_times[0] < PUSH_BUDGET
    assert untouched
    assert ran.returncode == 0, ran.stderr
    assert_clean(counts)
