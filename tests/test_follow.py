"""Following runs to their end (`follow.follow_runs`) against the simulator, in simulated
time: success, error with its excerpt, cancelled, the time limit, and notifications."""

from __future__ import annotations

import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.transport import RetryPolicy
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord, TriggerState
from datachonk_hooks.monitor.follow import follow_runs
from datachonk_hooks.monitor.watcher import PollPolicy
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.credentials import Token
from tests.helpers import TOKEN, FakeClock, stand_in

SHA = "0e92d14" + "a" * 33
POLICY = PollPolicy(first_interval=1.0, max_interval=5.0, after_change=1.0)


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as book:
        yield book


def triggered(ledger: Ledger, client: DbtCloudClient, job_id: int) -> TriggerRecord:
    """A trigger recorded and sent, as the waiter leaves it before following."""
    request = TriggerRequest("Add orders", git_sha=SHA, git_branch="main")
    record, _ = ledger.add_trigger(
        host=client.host, account_id=12345, job_id=job_id, request=request, source="push"
    )
    run = client.trigger_run(job_id, request)
    return ledger.mark_triggered(record.id, run_id=run.id, run_url=run.href, run_status=1)


def follow(
    ledger: Ledger,
    client: DbtCloudClient,
    clock: FakeClock,
    *records: TriggerRecord,
    timeout: float = 3600,
    notify: bool = False,
    env: dict[str, str] | None = None,
) -> tuple[list[TriggerRecord], list[str]]:
    log: list[str] = []
    ended = follow_runs(
        ledger,
        [(record, timeout, notify) for record in records],
        lambda record: client,
        env=env if env is not None else dict(os.environ),
        log=log.append,
        policy=POLICY,
        clock=clock,
        sleep=clock.sleep,
    )
    return ended, log


def test_a_successful_run_is_followed_to_its_end(ledger, client, clock) -> None:
    record = triggered(ledger, client, 11111)
    ended, log = follow(ledger, client, clock, record)
    [done] = ended
    assert done.state is TriggerState.FINISHED
    assert done.outcome is not None and done.outcome.status == RunStatus.SUCCESS
    assert done.outcome.duration_s is not None and done.outcome.duration_s > 0
    assert done.outcome.failed_step is None and done.told_at is None
    assert f"run {record.run_id}: Queued (waiting for an available runner)" in log
    assert f"run {record.run_id}: Running (monitor progress)" in log
    assert log[-1].startswith(f"run {record.run_id} for 0e92d14 (main) succeeded in ")
    assert ledger.untold() == [done]


def test_an_error_keeps_the_failing_step_its_error_and_the_log_tail(ledger, client, clock) -> None:
    record = triggered(ledger, client, 33333)
    [done], log = follow(ledger, client, clock, record)
    outcome = done.outcome
    assert outcome is not None and outcome.status == RunStatus.ERROR
    assert outcome.failed_step_index is not None
    assert outcome.failed_step == "Invoke dbt with `dbt build`"
    assert outcome.error_line == "Database Error in model orders (models/orders.sql)"
    assert outcome.log_tail is not None and outcome.log_tail.endswith("SKIP=2 TOTAL=15")
    assert len(outcome.log_tail.splitlines()) == 30
    assert log[-1] == (
        f"run {record.run_id} for 0e92d14 (main) failed at step {outcome.failed_step_index}"
        f' "Invoke dbt with `dbt build`": Database Error in model orders (models/orders.sql)'
        f" {record.run_url}"
    )


def test_a_cancelled_run_says_how_to_trigger_it_again(ledger, client, clock) -> None:
    record = triggered(ledger, client, 44444)
    assert record.run_id is not None
    client.cancel_run(record.run_id)
    [done], log = follow(ledger, client, clock, record)
    assert done.outcome is not None and done.outcome.status == RunStatus.CANCELLED
    assert "was cancelled" in log[-1]
    assert f"`datachonk-hook run --force --ref {SHA[:12]}`" in log[-1]


def test_following_stops_at_the_time_limit_and_leaves_the_run_unfinished(
    ledger, client, clock
) -> None:
    record = triggered(ledger, client, 44444)  # runs for 10 simulated minutes
    ended, log = follow(ledger, client, clock, record, timeout=60)
    assert ended == []
    assert "stopped following run" in log[-1] and "at its time limit" in log[-1]
    after = ledger.get(record.id)
    assert after is not None and after.state is TriggerState.TRIGGERED
    assert after.outcome is None
    assert ledger.unfinished_runs() == [after]


def test_several_runs_are_followed_together(ledger, client, clock) -> None:
    quick = triggered(ledger, client, 11111)
    failing = triggered(ledger, client, 33333)
    ended, _ = follow(ledger, client, clock, quick, failing)
    assert sorted(r.id for r in ended) == [quick.id, failing.id]


def test_a_run_dbt_cloud_does_not_know_is_given_up_after_the_grace(ledger, client, clock) -> None:
    record = triggered(ledger, client, 11111)
    ghost = ledger.mark_triggered(record.id, run_id=999, run_url=None, run_status=1)
    ended, log = follow(ledger, client, clock, ghost)
    assert ended == []
    assert log[-1].startswith("stopped following run 999:")


def test_notify_true_shows_a_desktop_notification(ledger, client, clock, tmp_path) -> None:
    args = stand_in(tmp_path / "bin", "notify-send")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    record = triggered(ledger, client, 33333)
    follow(ledger, client, clock, record, notify=True, env=env)
    lines = args.read_text().splitlines()
    assert lines[:3] == ["--app-name=datachonk", "--", "dbt Cloud run failed"]
    assert lines[3].startswith(f"run {record.run_id} for 0e92d14 (main) failed at step")
    assert lines[4:] == ["--end--"]


def test_without_notify_no_notification_is_shown(ledger, client, clock, tmp_path) -> None:
    args = stand_in(tmp_path / "bin", "notify-send")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    follow(ledger, client, clock, triggered(ledger, client, 11111), env=env)
    assert not args.exists()


def test_no_notification_tool_is_no_problem(ledger, client, clock, tmp_path) -> None:
    env = {**os.environ, "PATH": str(tmp_path / "empty")}
    [done], log = follow(
        ledger, client, clock, triggered(ledger, client, 11111), notify=True, env=env
    )
    assert done.outcome is not None
    assert log[-1] == "no desktop notification: no notify-send or osascript here, or it failed"


def test_network_trouble_while_following_is_waited_out(
    ledger, sandbox: Sandbox, clock, tmp_path
) -> None:
    with DbtCloudClient(
        sandbox.url, 12345, Token(TOKEN, "t"), retry=RetryPolicy(attempts=1)
    ) as impatient:
        record = triggered(ledger, impatient, 11111)
        sandbox.fail("503", method="GET", path=r"/runs/\d+/$", times=3)
        [done], log = follow(ledger, impatient, clock, record)
    assert done.outcome is not None and done.outcome.status == RunStatus.SUCCESS
    troubles = [line for line in log if line.endswith("; asking again")]
    assert len(troubles) == 1  # said once, not at every failed look


def test_a_refused_token_ends_following_and_leaves_the_run_to_history(
    ledger, client, sandbox: Sandbox, clock
) -> None:
    record = triggered(ledger, client, 11111)
    sandbox.set_tokens({"another-token": "account_admin"})
    ended, log = follow(ledger, client, clock, record)
    assert ended == []
    assert log[-1].startswith(f"stopped following run {record.run_id}: ")
    assert ledger.unfollowed_runs() == []  # no waiter takes it over: history asks


def test_a_run_followed_by_a_live_process_is_not_followed_twice(ledger, client, clock) -> None:
    record = triggered(ledger, client, 11111)
    other = f"{os.getppid()}@{socket.gethostname()}"  # alive: the process that started us
    assert ledger.follow(record.id, owner=other)
    ended, log = follow(ledger, client, clock, record)
    assert (ended, log) == ([], [])
    assert not ledger.follow(record.id)


def test_a_run_whose_follower_died_is_taken_over(ledger, client, clock, tmp_path) -> None:
    record = triggered(ledger, client, 11111)
    dead = f"{_ended_pid()}@{socket.gethostname()}"
    assert ledger.follow(record.id, owner=dead)
    [done], _ = follow(ledger, client, clock, record)
    assert done.state is TriggerState.FINISHED


def test_the_end_is_recorded_and_notified_by_one_follower_only(
    ledger, client, clock, tmp_path
) -> None:
    args = stand_in(tmp_path / "bin", "notify-send")
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}"}
    record = triggered(ledger, client, 11111)
    clock.now += 60  # the run has ended
    run_id = record.run_id
    assert run_id is not None
    from datachonk_hooks.monitor.outcomes import note_run

    seen = client.get_run(run_id)
    assert note_run(ledger, record.id, seen)[1]  # a refresh saw the end first
    assert not note_run(ledger, record.id, seen)[1]
    ended, _ = follow(ledger, client, clock, ledger.get(record.id) or record, notify=True, env=env)
    assert ended == [] and not args.exists()


def _ended_pid() -> int:
    child = subprocess.Popen(["true"])
    child.wait()
    return child.pid


def test_network_trouble_that_lasts_is_left_to_history(ledger, sandbox: Sandbox, clock) -> None:
    from datachonk_hooks.monitor.follow import TROUBLE_LIMIT

    with DbtCloudClient(
        sandbox.url, 12345, Token(TOKEN, "t"), retry=RetryPolicy(attempts=1)
    ) as impatient:
        record = triggered(ledger, impatient, 44444)  # runs for 10 simulated minutes
        sandbox.fail("503", method="GET", path=r"/runs/\d+/$", times=10_000)
        ended, log = follow(ledger, impatient, clock, record)
    assert ended == []
    assert log[-1].startswith(f"stopped following run {record.run_id}: ")
    assert clock.now - 1000.0 < TROUBLE_LIMIT + 60  # not the job's whole timeout
    assert ledger.unfollowed_runs() == []  # history asks about it
