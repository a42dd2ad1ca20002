from __future__ import annotations

import io
from collections.abc import Iterator

import pytest

from datachonk_hooks.credentials import Token
from datachonk_hooks.dbt_cloud import DbtCloudClient, Run, RunStatus
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.monitor import (
    ChangeLines,
    LiveLine,
    PollPolicy,
    describe,
    failure_report,
    format_elapsed,
    watch_run,
)
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.trigger_request import TriggerRequest
from tests.helpers import TOKEN


class FakeClock:
    """Simulated time shared by the simulator and the watcher, so runs take no real time."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(sandbox: Sandbox) -> FakeClock:
    fake = FakeClock()
    sandbox.set_clock(fake)
    return fake


@pytest.fixture
def client(sandbox: Sandbox) -> Iterator[DbtCloudClient]:
    with DbtCloudClient(sandbox.url, 12345, Token(TOKEN, "t")) as c:
        yield c


def watch(client: DbtCloudClient, clock: FakeClock, run_id: int, timeout: float = 3600):
    out = io.StringIO()
    result = watch_run(
        client, run_id, timeout=timeout, reporter=ChangeLines(out), clock=clock, sleep=clock.sleep
    )
    return result, out.getvalue()


def test_success_exits_0_and_shows_each_change(client, clock, sandbox) -> None:
    run = client.trigger_run(11111, TriggerRequest("go"))
    result, shown = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.OK
    assert result.run is not None and result.run.status is RunStatus.SUCCESS
    assert "succeeded" in result.message and sandbox.url in result.message
    lines = shown.splitlines()
    assert lines[0].startswith(f"run {run.id} · Queued")
    assert any("Running · step" in line for line in lines)
    assert lines[-1].startswith(f"run {run.id} · Success")
    assert len(lines) == len(set(lines))  # one line per change, no repeats


def test_error_exits_1_with_failing_step_logs(client, clock) -> None:
    run = client.trigger_run(33333, TriggerRequest("go"))
    result, _ = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.RUN_ERROR
    assert "failing step" in result.message
    assert "last 30 lines of its logs" in result.message
    assert result.run is not None and result.run.href and result.run.href in result.message


def test_cancelled_exits_3(client, clock) -> None:
    run = client.trigger_run(44444, TriggerRequest("go"))
    client.cancel_run(run.id)
    result, _ = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.RUN_CANCELLED
    assert "cancelled" in result.message


def test_timeout_exits_4(client, clock) -> None:
    run = client.trigger_run(44444, TriggerRequest("go"))
    result, _ = watch(client, clock, run.id, timeout=60)
    assert result.exit_code is ExitCode.TIMEOUT
    assert "gave up waiting after 1m 00s" in result.message
    assert clock.now - 1000.0 == pytest.approx(60, abs=0.01)


def test_api_failure_exits_5(client, clock, sandbox) -> None:
    run = client.trigger_run(11111, TriggerRequest("go"))
    sandbox.set_tokens({})
    result, _ = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.API
    assert "401" in result.message


def test_404_right_after_trigger_is_tolerated(client, clock, sandbox) -> None:
    run = client.trigger_run(11111, TriggerRequest("go"))
    sandbox.fail("404", method="GET", path=r".*/runs/\d+/$", times=3)
    result, _ = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.OK


def test_404_that_lasts_is_an_error(client, clock) -> None:
    result, _ = watch(client, clock, 424242)
    assert result.exit_code is ExitCode.API
    assert "no run 424242" in result.message


def test_polling_backs_off_and_caps(client, clock) -> None:
    run = client.trigger_run(44444, TriggerRequest("go"))
    watch(client, clock, run.id, timeout=900)
    assert max(clock.sleeps) == PollPolicy().max_interval
    assert clock.sleeps[0] <= 2.0
    # a 600 s running phase polled at most every 30 s, not every few seconds
    assert len(clock.sleeps) < 60


def test_long_queue_is_reported_once(sandbox, client, clock) -> None:
    sandbox.add_job(77777, project_id=67890, name="stuck", queued_s=2000)
    run = client.trigger_run(77777, TriggerRequest("go"))
    result, shown = watch(client, clock, run.id, timeout=1800)
    assert result.exit_code is ExitCode.TIMEOUT
    assert shown.count("still queued after 10m") == 1


def test_live_line_rewrites_one_line() -> None:
    out = io.StringIO()
    line = LiveLine(out)
    run = Run(id=7, status=RunStatus.RUNNING)
    line.progress(run, 3)
    line.progress(run, 4)
    line.done()
    assert out.getvalue() == "\r\x1b[2Krun 7 · Running · 3s\r\x1b[2Krun 7 · Running · 4s\n"


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (65, "1m 05s"), (3725, "1h 02m 05s")])
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def test_describe_and_failure_report_without_steps() -> None:
    run = Run(id=1, status=RunStatus.ERROR, status_message="boom", href="https://x/runs/1/")
    assert describe(run, 0) == "run 1 · Error · 0s"
    assert failure_report(run) == "run 1 failed: boom\nsee https://x/runs/1/"
