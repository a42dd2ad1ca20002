from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.records import Run, RunStep
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.monitor.watcher import (
    ChangeLines,
    LiveLine,
    PollPolicy,
    describe,
    failure_report,
    format_elapsed,
    watch_run,
)
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import FakeClock, commit_files, git, publish


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
    assert result.message == f"run {run.id} succeeded: models are live {result.run.href}"
    assert sandbox.url in result.message
    lines = shown.splitlines()
    assert lines[0].startswith(f"run {run.id} · Queued (waiting for an available runner) · ")
    assert any("Running (monitor progress) · step" in line for line in lines)
    assert lines[-1].startswith(f"run {run.id} · Success (models are live) · ")
    assert len(lines) == len(set(lines))  # one line per change, no repeats


def test_error_exits_1_with_failing_step_logs(client, clock) -> None:
    run = client.trigger_run(33333, TriggerRequest("go"))
    result, _ = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.RUN_ERROR
    assert result.message.startswith(f"run {run.id} failed (one or more steps failed)")
    assert "failing step" in result.message
    assert "last 30 lines of its logs" in result.message
    assert result.run is not None and result.run.href and result.run.href in result.message


def test_cancelled_exits_3(client, clock) -> None:
    run = client.trigger_run(44444, TriggerRequest("go"))
    client.cancel_run(run.id)
    result, _ = watch(client, clock, run.id)
    assert result.exit_code is ExitCode.RUN_CANCELLED
    assert result.run is not None
    assert result.message == (
        f"run {run.id} was cancelled: Cancelled by user; re-trigger if needed:"
        f" `datachonk-hook run --force` {result.run.href}"
    )


def test_cancelled_names_the_commit_to_trigger_again(client, clock) -> None:
    run = client.trigger_run(44444, TriggerRequest("go", git_sha="ab" * 20))
    client.cancel_run(run.id)
    result, _ = watch(client, clock, run.id)
    assert f"re-trigger if needed: `datachonk-hook run --force --ref {'ab' * 6}`" in (
        result.message
    )


def test_timeout_exits_4(client, clock) -> None:
    run = client.trigger_run(44444, TriggerRequest("go"))
    result, _ = watch(client, clock, run.id, timeout=60)
    assert result.exit_code is ExitCode.TIMEOUT
    assert "gave up waiting after 1m 00s" in result.message
    assert "is still Running (monitor progress): " in result.message
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
    assert out.getvalue() == (
        "\r\x1b[2Krun 7 · Running (monitor progress) · 3s"
        "\r\x1b[2Krun 7 · Running (monitor progress) · 4s\n"
    )


@pytest.mark.parametrize(("seconds", "text"), [(5, "5s"), (65, "1m 05s"), (3725, "1h 02m 05s")])
def test_format_elapsed(seconds: float, text: str) -> None:
    assert format_elapsed(seconds) == text


def test_describe_and_failure_report_without_steps() -> None:
    run = Run(id=1, status=RunStatus.ERROR, status_message="boom", href="https://x/runs/1/")
    assert describe(run, 0) == "run 1 · Error (one or more steps failed) · 0s"
    assert failure_report(run) == (
        "run 1 failed (one or more steps failed): boom\nsee https://x/runs/1/"
    )


@pytest.mark.parametrize(
    ("status", "shown"),
    [
        (RunStatus.QUEUED, "Queued (waiting for an available runner)"),
        (RunStatus.STARTING, "Starting"),
        (RunStatus.RUNNING, "Running (monitor progress)"),
        (RunStatus.SUCCESS, "Success (models are live)"),
        (RunStatus.ERROR, "Error (one or more steps failed)"),
        (RunStatus.CANCELLED, "Cancelled (re-trigger if needed: `datachonk-hook run --force`)"),
        (RunStatus(7), "Status 7"),
    ],
)
def test_describe_shows_the_status_table(status: RunStatus, shown: str) -> None:
    assert describe(Run(id=1, status=status), 5) == f"run 1 · {shown} · 5s"


def test_describe_sanitizes_the_step_name() -> None:
    step = RunStep(index=2, name="dbt \x1b]0;owned\x07build\u202e", status=RunStatus.RUNNING)
    run = Run(id=1, status=RunStatus.RUNNING, steps=(step,))
    assert describe(run, 1) == "run 1 · Running (monitor progress) · step 2/1 dbt build\\u202e · 1s"


# ----------------------------------------------------------------------------- `watch`


def triggered(cli: Callable[..., tuple[int, str, str]], sandbox: Sandbox, *args: str) -> int:
    code, _, err = cli("run", *args)
    assert code == 0, err
    return max(run.id for run in sandbox.runs)


def test_watch_without_an_id_follows_the_branch_s_latest_run(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    head = git(repo, "rev-parse", "HEAD")
    on_main = triggered(cli, fast_sandbox)
    git(repo, "checkout", "--quiet", "-b", "feature")
    commit_files(repo, {"models/more.sql": "select 2"}, "More")
    publish(repo)
    on_feature = triggered(cli, fast_sandbox, "--job-id", "44444")  # newer, another branch
    git(repo, "checkout", "--quiet", "main")

    code, out, err = cli("watch")
    assert code == 0, err
    href = f"{fast_sandbox.url}/deploy/12345/projects/67890/runs/{on_main}/"
    assert out == f"run {on_main} succeeded: models are live {href}\n"
    lines = err.splitlines()
    assert lines[0] == (
        f"watching run {on_main} of job 11111 for {head[:7]} (main), the latest this clone"
        " started on that branch"
    )
    assert lines[1].startswith(f"run {on_main} · ")  # change lines: not a terminal
    assert lines[-1].startswith(f"run {on_main} · Success (models are live) · ")
    assert on_feature not in {int(line.split()[1]) for line in lines[1:]}

    git(repo, "checkout", "--quiet", "feature")
    code, out, err = cli("watch", "--timeout", "1", "--json")
    assert code == 4  # job 44444 runs 10 minutes
    data = json.loads(out)
    assert (data["id"], data["status_humanized"]) == (on_feature, "Running")
    assert data["status_description"] == "Running (monitor progress)"
    assert data["status_hint"] == "monitor progress"
    assert err.splitlines()[0].startswith(f"watching run {on_feature} of job 44444 for ")
    assert err.splitlines()[-1].startswith(
        f"gave up waiting after 1s; run {on_feature} is still Running (monitor progress): "
    )


def test_watch_with_an_id_still_watches_that_run(repo: Path, fast_sandbox: Sandbox, cli) -> None:
    failing = triggered(cli, fast_sandbox, "--job-id", "33333")
    triggered(cli, fast_sandbox)  # the branch's latest: not the one asked for
    code, out, err = cli("watch", str(failing))
    assert code == 1
    assert out == ""
    assert "watching run" not in err
    assert f"run {failing} · Error (one or more steps failed) · " in err
    assert f"run {failing} failed (one or more steps failed)" in err
    assert "failing step 4: Invoke dbt with `dbt build`" in err


def test_watch_without_an_id_when_the_branch_has_no_run(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    code, out, err = cli("watch")
    assert (code, out) == (2, "")
    assert err == (
        "Error: watch: this clone has started no run on main yet; give the RUN_ID to watch"
        " (`datachonk-hook history` lists the runs), or trigger one (`datachonk-hook run`)\n"
    )
    triggered(cli, fast_sandbox)
    git(repo, "checkout", "--quiet", "-b", "other")
    before = len(fast_sandbox.requests)
    code, _, err = cli("watch")
    assert code == 2 and "no run on other yet" in err
    assert len(fast_sandbox.requests) == before


def test_watch_without_an_id_on_a_detached_head(repo: Path, fast_sandbox: Sandbox, cli) -> None:
    triggered(cli, fast_sandbox)
    git(repo, "checkout", "--quiet", "--detach", "HEAD")
    before = len(fast_sandbox.requests)
    code, out, err = cli("watch")
    assert (code, out) == (2, "")
    assert err == (
        "Error: watch: HEAD is not on a branch (detached); give the RUN_ID to watch"
        " (`datachonk-hook history` lists the runs)\n"
    )
    assert len(fast_sandbox.requests) == before


def test_watch_without_an_id_outside_a_repository(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = cli("watch")
    assert code == 2
    assert err.startswith("Error: watch: no RUN_ID given and ")
    assert err.endswith("; give the RUN_ID to watch (`datachonk-hook history` lists the runs)\n")
    assert len(err.splitlines()) == 1
