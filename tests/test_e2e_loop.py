"""The loop closed: a real `git push` triggers a run, the detached waiter follows it to its
end, and the next push (or the next command) tells how it ended, once."""

from __future__ import annotations

import os
import signal

import pytest

from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.delivery.ledger import TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import BIN, Clone, eventually, quiet
from tests.helpers import GENERATED_SQL, config_yaml, stand_in

MODEL = {"models/staging/stg_orders.sql": GENERATED_SQL}


def configure(clone: Clone, cloud: Sandbox, job_id: int, extra: str = "") -> None:
    clone.commit({"datachonk.yaml": config_yaml(cloud.url, job_id=job_id, extra=extra)}, "Job")


def ended(clone: Clone) -> bool:
    with clone.ledger() as ledger:
        return any(t.state is TriggerState.FINISHED for t in ledger.history())


def run_url(clone: Clone) -> str:
    with clone.ledger() as ledger:
        [record] = ledger.history()
    return record.run_url or ""


def outcome_lines(text: str) -> list[str]:
    return [
        line[line.index("datachonk: run ") :]
        for line in text.splitlines()
        if "datachonk: run " in line
    ]


@pytest.mark.parametrize("clone_kind", ["standalone", "with_pre_commit"])
def test_the_next_push_tells_how_the_run_ended_once(
    request: pytest.FixtureRequest, clone_kind: str, cloud: Sandbox
) -> None:
    clone: Clone = request.getfixturevalue(clone_kind)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("origin", "main")
    eventually(lambda: ended(clone) and quiet(clone))
    [run] = cloud.runs
    assert f"run {run.id} for {sha[:7]} (main) succeeded in " in clone.waiter_log()

    clone.commit({"docs/notes.md": "# Notes\n"}, "Write notes")  # triggers nothing
    done = clone.push("origin", "main")
    [line] = outcome_lines(done.stderr + done.stdout)
    assert line.startswith(f"datachonk: run {run.id} for {sha[:7]} (main) succeeded in ")
    assert line.endswith(f": models are live {run_url(clone)}")

    clone.commit({"docs/notes.md": "# Notes\n\nMore.\n"}, "More notes")
    again = clone.push("origin", "main")
    assert outcome_lines(again.stderr + again.stdout) == []  # told once
    status = clone.run(str(BIN / "datachonk-hook"), "history", "--json")
    assert outcome_lines(status.stderr) == []


def test_a_failed_run_is_told_by_the_next_command_with_its_excerpt(
    standalone: Clone, cloud: Sandbox
) -> None:
    configure(standalone, cloud, 33333)
    sha = standalone.commit(MODEL, "Add stg_orders")
    standalone.push("origin", "main")
    eventually(lambda: ended(standalone) and quiet(standalone))
    [run] = cloud.runs

    done = standalone.run(str(BIN / "datachonk-hook"), "history", "--json")
    assert outcome_lines(done.stderr) == [
        f'datachonk: run {run.id} for {sha[:7]} (main) failed at step 4 "Invoke dbt with'
        ' `dbt build`": Database Error in model orders (models/orders.sql)'
        f" {run_url(standalone)}"
    ]
    assert '"run_id"' in done.stdout  # stdout keeps its JSON
    pushed = standalone.push("origin", "main")
    assert outcome_lines(pushed.stderr) == []


def test_follow_false_leaves_the_run_alone(standalone: Clone, cloud: Sandbox) -> None:
    configure(standalone, cloud, 11111, extra="    follow: false\n")
    standalone.commit(MODEL, "Add stg_orders")
    standalone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1 and quiet(standalone))
    with standalone.ledger() as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.TRIGGERED and record.outcome is None
    assert "Running" not in standalone.waiter_log()


def test_a_jobs_entry_can_turn_following_off_for_its_branches(
    standalone: Clone, cloud: Sandbox
) -> None:
    extra = "    jobs:\n      - branch: main\n        job_id: 11111\n        follow: false\n"
    configure(standalone, cloud, 11111, extra=extra)
    standalone.commit(MODEL, "Add stg_orders")
    standalone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1 and quiet(standalone))
    with standalone.ledger() as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.TRIGGERED


def test_notify_true_shows_the_end_on_the_desktop(
    standalone: Clone, cloud: Sandbox, tmp_path
) -> None:
    args = stand_in(tmp_path / "bin", "notify-send")
    standalone.env = {
        **standalone.env,
        "PATH": f"{tmp_path / 'bin'}{os.pathsep}{standalone.env['PATH']}",
    }
    configure(standalone, cloud, 11111, extra="    notify: true\n")
    sha = standalone.commit(MODEL, "Add stg_orders")
    standalone.push("origin", "main")
    eventually(lambda: ended(standalone) and quiet(standalone))
    title, body, end = args.read_text().splitlines()[2:]
    assert (title, end) == ("dbt Cloud run succeeded", "--end--")
    assert body.startswith(f"run {cloud.runs[0].id} for {sha[:7]} (main) succeeded in ")


def kill_the_follower(clone: Clone, cloud: Sandbox) -> str:
    """Push a commit for a slow job and SIGKILL its waiter while it follows the run."""
    cloud.add_job(66666, project_id=67890, name="Slow", running_s=120)  # 6 s at scale 20
    configure(clone, cloud, 66666)
    sha = clone.commit(MODEL, "Add stg_orders")
    clone.push("origin", "main")
    eventually(lambda: "Running (monitor progress)" in clone.waiter_log())
    with clone.ledger() as ledger:
        [push] = ledger.pushes_after(0)
    assert push.waiter is not None
    os.kill(int(push.waiter.partition("@")[0]), signal.SIGKILL)
    eventually(lambda: quiet(clone))
    with clone.ledger() as ledger:
        assert [t.state for t in ledger.history()] == [TriggerState.TRIGGERED]
    return sha


@pytest.mark.parametrize("next_push", ["docs only", "generated models"])
def test_a_waiter_killed_while_following_is_taken_over_by_the_next_push(
    standalone: Clone, cloud: Sandbox, next_push: str
) -> None:
    first = kill_the_follower(standalone, cloud)
    files = (
        {"docs/notes.md": "# Notes\n"}
        if next_push == "docs only"
        else {"models/staging/stg_payments.sql": GENERATED_SQL}
    )
    second = standalone.commit(files, "Next")
    standalone.push("origin", "main")
    eventually(lambda: ended(standalone) and quiet(standalone), timeout=60)
    with standalone.ledger() as ledger:
        states = {t.sha: t.state for t in ledger.history()}
    expected = {first: TriggerState.FINISHED}
    if next_push != "docs only":
        expected[second] = TriggerState.FINISHED
    assert states == expected
    done = standalone.run(str(BIN / "datachonk-hook"), "history", "--json")
    told = outcome_lines(done.stderr)
    assert len(told) == len(expected) and all("succeeded in" in line for line in told)


def test_history_json_finds_the_end_and_the_next_command_tells_it(
    standalone: Clone, cloud: Sandbox
) -> None:
    sha = kill_the_follower(standalone, cloud)
    eventually(lambda: cloud.runs[0].status == RunStatus.SUCCESS, timeout=30)
    asked = standalone.run(str(BIN / "datachonk-hook"), "history", "--json")
    assert '"run_status": "Success"' in asked.stdout
    assert outcome_lines(asked.stderr) == []  # JSON is for programs: the person is told next
    told = standalone.run(str(BIN / "datachonk-hook"), "history", "--offline")
    [line] = outcome_lines(told.stderr)
    assert line.startswith(f"datachonk: run {cloud.runs[0].id} for {sha[:7]} (main) succeeded")


def test_a_run_not_followed_on_purpose_is_not_taken_over(standalone: Clone, cloud: Sandbox) -> None:
    configure(standalone, cloud, 44444, extra="    follow: false\n")  # 30 s at scale 20
    standalone.commit(MODEL, "Add stg_orders")
    standalone.push("origin", "main")
    eventually(lambda: len(cloud.runs) == 1 and quiet(standalone))
    standalone.commit({"docs/notes.md": "# Notes\n"}, "Write notes")
    standalone.push("origin", "main")
    with standalone.ledger() as ledger:
        assert len(ledger.pushes_after(0)) == 1  # the docs push started no waiter
        [record] = ledger.history()
    assert record.state is TriggerState.TRIGGERED


def test_datachonk_push_without_wait_starts_a_follower(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    sha = clone.commit(MODEL, "Add stg_orders")
    done = clone.run(str(BIN / "datachonk"), "push", "origin", "main")
    assert f"for {sha[:7]} on main" in done.stdout
    eventually(lambda: ended(clone) and quiet(clone))
    assert "waiting for the push" not in clone.waiter_log()  # it only follows
    assert "succeeded in" in clone.waiter_log()
    assert len(cloud.runs) == 1
    told = clone.run(str(BIN / "datachonk-hook"), "history", "--offline")
    [line] = outcome_lines(told.stderr)
    assert line.startswith(f"datachonk: run {cloud.runs[0].id} for {sha[:7]} (main) succeeded")


def test_wait_true_makes_datachonk_push_watch_in_the_foreground(
    with_pre_commit: Clone, cloud: Sandbox
) -> None:
    clone = with_pre_commit
    configure(clone, cloud, 33333, extra="    wait: true\n    timeout: 60\n")
    clone.commit(MODEL, "Add stg_orders")
    done = clone.run(str(BIN / "datachonk"), "push", "origin", "main", check=False)
    assert done.returncode == 1  # the run failed, and push said so
    assert "Database Error in model orders" in done.stdout + done.stderr
    assert clone.waiter_log() == ""  # watched here, no follower
    assert outcome_lines(clone.run(str(BIN / "datachonk-hook"), "history").stderr) == []
