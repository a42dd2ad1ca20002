"""At most one run per (job, sha) everywhere: across clones, CI and late answers (issue 12).

The ledger dedups within one clone; these scenarios take the commit through places that do
not share it, and through a dbt Cloud that answers late or loses answers, and count the runs
at the simulator: exactly one per commit, and every ledger agrees with dbt Cloud.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import TriggerState
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import Token
from tests.e2e import make_clone, pre_commit_clone
from tests.helpers import GENERATED_SQL, TOKEN
from tests.reliability import HOOK, JOB, Scenario, assert_clean, no_waiters_left, wait_for
from tests.test_reliability_races import GROUP_LEDGER, RUN_POST, idle, the_trigger

GROUP = "one run everywhere"
MODEL = {"models/staging/stg_orders.sql": GENERATED_SQL}


@pytest.mark.slow
def test_a_laptop_a_second_clone_and_ci_start_one_run(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    laptop = pre_commit_clone(tmp_path, remote, env, name="laptop")
    second = pre_commit_clone(tmp_path, remote, env, name="second")  # never fetches
    ci = make_clone(tmp_path, "ci", remote, env)
    with no_waiters_left(laptop.path), no_waiters_left(second.path):
        sha = laptop.commit(MODEL, "Add stg_orders")
        scenario.push(laptop, "origin", "main")
        wait_for(lambda: idle(laptop) and len(cloud.runs) == 1, 60, "the laptop's run")
        # the same commit reaches the second clone another way (a patch, a bundle, a pull
        # from the laptop) and is pushed to another branch: new to that clone's ledger
        second.run("git", "fetch", "--quiet", str(laptop.path), f"{sha}:refs/heads/release")
        scenario.push(second, "origin", "release")
        wait_for(lambda: idle(second), 60, "the second clone's waiter")
        ci.run("git", "fetch", "--quiet", "origin")
        in_ci = scenario.cli(ci, "run", "--ref", sha, env={**env, "CI": ""})
    counts = scenario.count(
        group=GROUP,
        scenario="the same commit from a laptop, a second clone and a CI job",
        path="git push (2 clones), datachonk-hook run (CI)",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[laptop, second, ci],
    )
    assert in_ci.returncode == 0, in_ci.stdout + in_ci.stderr
    assert "already has run" in in_ci.stdout
    assert "found its run" in second.waiter_log()
    assert_clean(counts)


@pytest.mark.slow
def test_a_run_created_long_after_its_post_is_not_started_twice(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """dbt Cloud creates the run 6 s after the POST; the client waits 2 s for an answer.
    `retry` right away finds no run yet and only looks (the quiet period), then adopts it."""
    quick = {**env, "DATACHONK_HTTP_TIMEOUT": "2", "DATACHONK_RETRY_BUDGET": "3"}
    clone = make_clone(tmp_path, "work", remote, quick)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    cloud.fail("slow", method="POST", path=RUN_POST, delay=6.0)
    started = time.monotonic()
    first = scenario.cli(clone, "run", env=quick)
    early = scenario.cli(clone, "retry", env=quick)
    early_state = the_trigger(clone)
    wait_for(lambda: len(cloud.runs) == 1, 30, "dbt Cloud to create the run late")
    late = scenario.cli(clone, "retry", env=quick)
    counts = scenario.count(
        group=GROUP,
        scenario="run created 6 s after its POST (HTTP timeout 2 s), retry at once and later",
        path="datachonk-hook run, retry, retry",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert first.returncode == 5
    assert early.returncode == 5 and "only looked up until" in early.stdout + early.stderr
    assert early_state.state is TriggerState.PENDING and time.monotonic() - started < 30
    assert late.returncode == 0, late.stdout + late.stderr
    posts = [r for r in cloud.requests if r.method == "POST" and r.path.endswith("/run/")]
    assert len(posts) == 1
    assert_clean(counts)


@pytest.mark.slow
def test_a_lost_answer_is_found_past_the_newest_twenty_runs(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """The answer to the POST is lost and the run list fails for a while; meanwhile 21
    other runs of the job start. `retry` reads back to the first attempt and adopts it."""
    clone = make_clone(tmp_path, "work", remote, env)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("--quiet", "origin", "main")
    cloud.fail("drop_after_create", method="POST", path=RUN_POST)
    cloud.fail("500", method="GET", path=r"/runs/$", times=99)
    first = scenario.cli(clone, "run", env={**env, "DATACHONK_RETRY_BUDGET": "2"})
    cloud.clear_faults()
    with DbtCloudClient(cloud.url, 12345, Token(TOKEN, "test")) as someone:
        for number in range(21):
            someone.trigger_run(JOB, TriggerRequest("Another", git_sha=f"{number:040x}"))
    retried = scenario.cli(clone, "retry")
    counts = scenario.count(
        group=GROUP,
        scenario="answer lost, lookups failing, then 21 other runs of the job",
        path="datachonk-hook run, retry",
        cloud=cloud,
        expected=[(JOB, sha), *((JOB, f"{n:040x}") for n in range(21))],
        clones=[clone],
        not_in_ledger=[(JOB, f"{n:040x}") for n in range(21)],
    )
    assert first.returncode == 5
    assert retried.returncode == 0, retried.stdout + retried.stderr
    assert the_trigger(clone).run_id == next(r.id for r in cloud.runs if r.git_sha == sha)
    assert_clean(counts)


@pytest.mark.slow
def test_an_empty_ledger_file_is_moved_aside_and_the_push_still_triggers(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    clone = pre_commit_clone(tmp_path, remote, env)
    ledger_file = clone.path / ".git" / "datachonk" / "ledger.sqlite3"
    ledger_file.parent.mkdir(parents=True)
    ledger_file.write_bytes(b"")  # a disk that filled up, a careless `>` redirect
    sha = clone.commit(MODEL, "Add stg_orders")
    with no_waiters_left(clone.path):
        pushed = scenario.push(clone, "origin", "main")
        wait_for(lambda: idle(clone), 60, "the waiter")
    counts = scenario.count(
        group=GROUP_LEDGER,
        scenario="0-byte ledger file (moved aside, a new one started)",
        path="git push",
        cloud=cloud,
        expected=[(JOB, sha)],
        clones=[clone],
    )
    assert "is empty (0 bytes); it was moved to" in pushed.stdout + pushed.stderr
    assert [p.stat().st_size for p in ledger_file.parent.glob("ledger.sqlite3.corrupt-*")] == [0]
    assert_clean(counts)


def test_retry_says_what_a_live_waiter_is_doing(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox, scenario: Scenario
) -> None:
    """While the waiter sends, `retry` names it and its start instead of "nothing pending"."""
    clone = make_clone(tmp_path, "work", remote, env)
    clone.run(HOOK, "install")
    cloud.fail("slow", method="POST", path=RUN_POST, delay=3.0)
    with no_waiters_left(clone.path):
        clone.commit(MODEL, "Add stg_orders")
        clone.push("origin", "main")
        wait_for(lambda: the_trigger(clone).state is TriggerState.SENDING, 20, "the POST")
        busy = scenario.cli(clone, "retry")
        wait_for(lambda: idle(clone), 60, "the waiter")
    assert busy.returncode == 0
    assert "is being sent by waiter pid" in busy.stdout and " since " in busy.stdout
    assert "nothing pending" not in busy.stdout
