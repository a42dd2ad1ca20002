"""history.py: the ledger's triggers as lines for people and as JSON for programs."""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.commands.history import (
    LOOK_EVERY,
    REFRESH_TIMEOUTS,
    RunNotStartedError,
    history_json,
    history_lines,
    latest_run_on,
    status_text,
)
from datachonk_hooks.delivery.ledger import Ledger, TriggerRecord, TriggerState
from datachonk_hooks.sandbox import Sandbox

NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
HOST = "https://ab123.us1.dbt.com"
SHAS = {name: (str(i) * 40) for i, name in enumerate(["pending", "triggered", "finished", "lost"])}


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3", clock=lambda: NOW) as opened:
        yield opened


def add(ledger: Ledger, name: str, *, branch: str | None = "main", **kwargs: object) -> int:
    request = TriggerRequest(cause=f"Add {name}", git_sha=SHAS[name], git_branch=branch)
    record, created = ledger.add_trigger(
        host=HOST,
        account_id=12345,
        job_id=11111,
        request=request,
        source="push",
        **kwargs,  # type: ignore[arg-type]
    )
    assert created
    return record.id


@pytest.fixture
def records(ledger: Ledger) -> list[TriggerRecord]:
    """One trigger in each state a user meets, newest first like `Ledger.history`."""
    pending = add(ledger, "pending")
    ledger.claim(pending)
    ledger.mark_pending(pending, "could not reach dbt Cloud at https://ab123.us1.dbt.com")
    triggered = add(ledger, "triggered", branch="feature/a-very-long-branch-name")
    ledger.claim(triggered)
    ledger.mark_triggered(triggered, run_id=70000001, run_url=f"{HOST}/run/1", run_status=1)
    finished = add(ledger, "finished", branch=None)
    ledger.claim(finished)
    ledger.mark_triggered(finished, run_id=70000002, run_url=None, run_status=3)
    ledger.update_run_status(finished, 20)
    push = ledger.record_push(
        remote_name="origin",
        remote_url="git@example.com:shop.git",
        git_pid=None,
        tracking_before={},
        foreground=False,
    )
    add(ledger, "lost", push_id=push.id, awaiting_push=True)
    ledger.mark_push_failed(push.id, "the push of main to origin did not land")
    history = ledger.history()
    assert [r.state for r in history] == [
        TriggerState.PUSH_FAILED,
        TriggerState.FINISHED,
        TriggerState.TRIGGERED,
        TriggerState.PENDING,
    ]
    return history


def test_no_records() -> None:
    assert history_lines([]) == ["no triggers recorded yet"]
    assert history_json([]) == []


@pytest.mark.parametrize(
    ("index", "status"),
    [(0, "push failed"), (1, "Error"), (2, "Queued"), (3, "pending")],
)
def test_status_text(records: list[TriggerRecord], index: int, status: str) -> None:
    assert status_text(records[index]) == status


def test_history_lines(records: list[TriggerRecord]) -> None:
    lines = history_lines(records)
    pad = " " * 16
    assert lines == [
        "when (UTC)        commit   branch                       job             run  status",
        "2026-03-04 05:06  3333333  main                       11111               -  push failed",
        f"{pad}  cause: Add lost",
        f"{pad}  why: the push of main to origin did not land",
        "2026-03-04 05:06  2222222  -                          11111        70000002"
        "  Error (one or more steps failed)",
        f"{pad}  cause: Add finished",
        "2026-03-04 05:06  1111111  feature/a-very-l           11111        70000001"
        "  Queued (waiting for an available runner)",
        f"{pad}  cause: Add triggered",
        "2026-03-04 05:06  0000000  main                       11111               -  pending",
        f"{pad}  cause: Add pending",
        f"{pad}  why: could not reach dbt Cloud at https://ab123.us1.dbt.com",
    ]


def test_a_settled_record_shows_no_stale_reason(ledger: Ledger) -> None:
    trigger = add(ledger, "pending")
    ledger.claim(trigger)
    ledger.mark_pending(trigger, "dbt Cloud answered 503")
    ledger.claim(trigger)
    ledger.mark_triggered(trigger, run_id=5, run_url=None, run_status=1)
    assert not any("why:" in line for line in history_lines(ledger.history()))


def test_history_json(records: list[TriggerRecord]) -> None:
    data = history_json(records)
    json.dumps(data)  # serialisable as it is
    by_state = {row["state"]: row for row in data}
    assert set(by_state) == {"push_failed", "finished", "triggered", "pending"}
    common = {"host": HOST, "account_id": 12345, "job_id": 11111, "source": "push"}
    assert by_state["pending"] == {
        **common,
        "id": records[3].id,
        "created_at": "2026-03-04T05:06:07+00:00",
        "sha": SHAS["pending"],
        "branch": "main",
        "state": "pending",
        "reason": "could not reach dbt Cloud at https://ab123.us1.dbt.com",
        "run_id": None,
        "run_url": None,
        "run_status": None,
        "cause": "Add pending",
        "attempts": 1,
        "run_status_hint": None,
        "run_status_description": None,
        "finished_at": None,
        "duration_s": None,
        "failed_step_index": None,
        "failed_step": None,
        "error_line": None,
    }
    triggered = by_state["triggered"]
    assert (triggered["run_id"], triggered["run_url"], triggered["run_status"]) == (
        70000001,
        f"{HOST}/run/1",
        "Queued",
    )
    assert (triggered["run_status_hint"], triggered["run_status_description"]) == (
        "waiting for an available runner",
        "Queued (waiting for an available runner)",
    )
    assert triggered["branch"] == "feature/a-very-long-branch-name"  # not cut like the lines
    assert triggered["reason"] is None
    finished = by_state["finished"]
    assert (finished["branch"], finished["run_id"], finished["run_status"]) == (
        None,
        70000002,
        "Error",
    )
    lost = by_state["push_failed"]
    assert (lost["reason"], lost["run_id"], lost["attempts"]) == (
        "the push of main to origin did not land",
        None,
        0,
    )


def test_a_finished_run_shows_its_duration_and_where_it_failed(ledger: Ledger) -> None:
    """The table answers "what broke?" without opening dbt Cloud: step and first error."""
    from datachonk_hooks.delivery.ledger import RunOutcome

    failed = add(ledger, "finished")
    ledger.claim(failed)
    ledger.mark_triggered(failed, run_id=70000002, run_url=None, run_status=1)
    ledger.record_outcome(
        failed,
        RunOutcome(
            status=20,
            finished_at=NOW,
            duration_s=65.4,
            failed_step_index=4,
            failed_step="Invoke dbt with `dbt build`\x1b[2J",
            error_line="Database Error in model orders\u202e (models/orders.sql)",
        ),
    )
    done = add(ledger, "triggered")
    ledger.claim(done)
    ledger.mark_triggered(done, run_id=70000001, run_url=None, run_status=1)
    ledger.record_outcome(done, RunOutcome(status=10, finished_at=NOW, duration_s=4.2))
    pad = " " * 16
    assert history_lines(ledger.history())[1:] == [
        "2026-03-04 05:06  1111111  main                       11111        70000001"
        "  Success (models are live) · took 4s",
        f"{pad}  cause: Add triggered",
        "2026-03-04 05:06  2222222  main                       11111        70000002"
        "  Error (one or more steps failed) · took 1m05s",
        f"{pad}  cause: Add finished",
        f"{pad}  failing step 4: Invoke dbt with `dbt build`",  # the screen clear is gone
        f"{pad}  error: Database Error in model orders\\u202e (models/orders.sql)",
    ]
    data = {row["run_id"]: row for row in history_json(ledger.history())}
    assert {key: data[70000002][key] for key in list(data[70000002])[-7:]} == {
        "run_status_hint": "one or more steps failed",
        "run_status_description": "Error (one or more steps failed)",
        "finished_at": "2026-03-04T05:06:07+00:00",
        "duration_s": 65.4,
        "failed_step_index": 4,
        "failed_step": "Invoke dbt with `dbt build`\x1b[2J",  # JSON keeps what was recorded
        "error_line": "Database Error in model orders\u202e (models/orders.sql)",
    }
    assert data[70000001]["run_status"] == "Success" and data[70000001]["failed_step"] is None


# ----------------------------------------------------------------------------- the run to watch


class Ticks:
    """A clock and a sleep for `latest_run_on`: each sleep moves the clock and may act."""

    def __init__(self, act: Callable[[], None] = lambda: None) -> None:
        self.now, self.sleeps, self.act = 0.0, 0, act

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps += 1
        self.now += seconds
        self.act()


def started(ledger: Ledger, name: str, run_id: int, *, branch: str = "main") -> int:
    trigger_id = add(ledger, name, branch=branch)
    ledger.claim(trigger_id)
    ledger.mark_triggered(trigger_id, run_id=run_id, run_url=None, run_status=1)
    return trigger_id


def test_the_run_to_watch_is_the_branch_s_newest(ledger: Ledger) -> None:
    assert latest_run_on(ledger, "main") is None
    started(ledger, "pending", 70000001)
    started(ledger, "triggered", 70000002, branch="feature")
    lost = add(ledger, "lost")  # newer, but never sent and nobody sending it
    ledger.claim(lost)
    ledger.mark_pending(lost, "could not reach dbt Cloud at https://ab123.us1.dbt.com")
    said: list[str] = []
    found = latest_run_on(ledger, "main", wait=60, say=said.append)
    assert found is not None and found.run_id == 70000001
    assert said == [
        "the newest trigger on main, 3333333, has no run (pending: could not reach dbt Cloud at"
        " https://ab123.us1.dbt.com); watching the latest run instead"
    ]
    feature = latest_run_on(ledger, "feature")
    assert feature is not None and feature.run_id == 70000002
    assert latest_run_on(ledger, "nowhere") is None


def test_the_run_of_a_trigger_on_its_way_is_waited_for(ledger: Ledger) -> None:
    """Right after `git push` the waiter is still sending: the previous run is not it."""
    started(ledger, "pending", 70000001)
    sending = add(ledger, "triggered")
    assert ledger.claim(sending) is not None  # claimed by this (live) process

    def sent() -> None:
        if ticks.sleeps == 3:
            ledger.mark_triggered(sending, run_id=70000002, run_url=None, run_status=1)

    ticks = Ticks(sent)
    said: list[str] = []
    found = latest_run_on(
        ledger, "main", wait=60, say=said.append, clock=ticks.clock, sleep=ticks.sleep
    )
    assert found is not None and found.run_id == 70000002
    [line] = said  # said once, however long it waits
    assert line.startswith("waiting for the run of 1111111 (main) to start: it is being sent by ")


def test_a_run_that_does_not_start_in_time_is_exit_4(ledger: Ledger) -> None:
    sending = add(ledger, "triggered")
    ledger.claim(sending)
    ticks = Ticks()
    with pytest.raises(RunNotStartedError) as raised:
        latest_run_on(ledger, "main", wait=2, clock=ticks.clock, sleep=ticks.sleep)
    assert raised.value.exit_code == 4
    assert str(raised.value).startswith(
        "watch: the run of 1111111 (main) has not started after 2 s (it is being sent by "
    )
    assert ticks.now == pytest.approx(2, abs=LOOK_EVERY)


# ----------------------------------------------------------------------------- the command


def wait_until(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    """Poll `condition` until it holds; fail after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the condition never held"
        time.sleep(0.02)


def trigger(cli: Callable[..., tuple[int, str, str]], sandbox: Sandbox, *args: str) -> int:
    """`datachonk-hook run ARGS` (no wait): the ledger records the run as Queued."""
    code, _, err = cli("run", *args)
    assert code == 0, err
    return max(run.id for run in sandbox.runs)


def run_gets(sandbox: Sandbox) -> int:
    return sum(1 for r in sandbox.requests if r.method == "GET" and "/runs/" in r.path)


def test_history_refreshes_a_run_that_ended_unwatched(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    run_id = trigger(cli, fast_sandbox)
    wait_until(lambda: fast_sandbox.run_status(run_id) == 10)
    code, offline, _ = cli("history", "--offline")
    assert code == 0
    assert "Queued (waiting for an available runner)" in offline.splitlines()[1]  # as recorded

    code, out, err = cli("history")
    assert code == 0, err
    row = out.splitlines()[1]
    assert re.search(rf"  {run_id}  Success \(models are live\) · took \d+s$", row), row
    assert err == ""
    with Ledger.for_repo(pygit2.Repository(str(repo))) as ledger:
        [record] = ledger.history()
    assert record.state is TriggerState.FINISHED and record.run_status == 10
    assert record.told_at is not None  # the table showed it: no outcome line owed

    asked = run_gets(fast_sandbox)
    code, again, err = cli("history")
    assert (code, again, err) == (0, out, "")  # no "datachonk: run ... succeeded" line either
    assert run_gets(fast_sandbox) == asked  # an ended run is never asked about again


def test_history_shows_the_failing_step_and_first_error(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    run_id = trigger(cli, fast_sandbox, "--job-id", "33333")
    wait_until(lambda: fast_sandbox.run_status(run_id) == 20)
    code, out, err = cli("history")
    assert code == 0, err
    pad = " " * 16
    assert re.search(r"  Error \(one or more steps failed\) · took \d+s$", out.splitlines()[1])
    assert out.splitlines()[2:] == [
        f"{pad}  cause: Add orders model",
        f"{pad}  failing step 4: Invoke dbt with `dbt build`",
        f"{pad}  error: Database Error in model orders (models/orders.sql)",
    ]
    code, text, _ = cli("history", "--json", "--offline")
    [row] = json.loads(text)
    assert (row["run_id"], row["state"], row["run_status"]) == (run_id, "finished", "Error")
    assert row["run_status_description"] == "Error (one or more steps failed)"
    assert (row["failed_step_index"], row["failed_step"]) == (4, "Invoke dbt with `dbt build`")
    assert row["error_line"] == "Database Error in model orders (models/orders.sql)"
    assert row["duration_s"] is not None and row["finished_at"] is not None


def test_history_offline_asks_dbt_cloud_nothing(repo: Path, fast_sandbox: Sandbox, cli) -> None:
    trigger(cli, fast_sandbox, "--job-id", "44444")  # runs 10 minutes: stays unfinished
    before = len(fast_sandbox.requests)
    for args in (("history", "--offline"), ("history", "--offline", "--json")):
        code, out, err = cli(*args)
        assert code == 0 and err == ""
        assert "Queued" in out
    assert len(fast_sandbox.requests) == before


def test_history_asks_about_a_running_run_and_keeps_it_unfinished(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    run_id = trigger(cli, fast_sandbox, "--job-id", "44444")
    wait_until(lambda: fast_sandbox.run_status(run_id) == 3)
    code, out, _ = cli("history")
    assert code == 0
    assert out.splitlines()[1].endswith("  Running (monitor progress)")
    _, text, _ = cli("history", "--json", "--offline")
    [row] = json.loads(text)
    assert (row["state"], row["run_status"], row["run_status_hint"]) == (
        "triggered",
        "Running",
        "monitor progress",
    )


def test_history_with_dbt_cloud_down_answers_at_once_in_one_line(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    first = trigger(cli, fast_sandbox, "--job-id", "44444")
    second = trigger(cli, fast_sandbox, "--job-id", "22222")
    fast_sandbox.stop()
    started = time.monotonic()
    code, out, err = cli("history")
    took = time.monotonic() - started
    assert code == 0
    assert took < 4, took  # a refused connection: the two quick attempts of one request
    assert err.splitlines() == [
        f"showing the last known status of 2 runs: could not reach dbt Cloud at"
        f" {fast_sandbox.url}: connection refused"
    ]
    rows = out.splitlines()
    assert str(second) in rows[1] and str(first) in rows[3]
    assert all(
        row.endswith("Queued (waiting for an available runner)") for row in (rows[1], rows[3])
    )


def test_history_with_a_slow_dbt_cloud_is_bounded(repo: Path, fast_sandbox: Sandbox, cli) -> None:
    """An answer that never comes costs one read timeout, not one per row."""
    for job in ("44444", "22222", "11111"):
        trigger(cli, fast_sandbox, "--job-id", job)
    fast_sandbox.fail("slow", method="GET", path=r"/runs/\d+/$", times=10, delay=30)
    started = time.monotonic()
    code, out, err = cli("history")
    took = time.monotonic() - started
    assert code == 0
    assert took < REFRESH_TIMEOUTS.read + 3, took
    [line] = err.splitlines()
    assert line.startswith("showing the last known status of 3 runs: dbt Cloud did not answer")
    assert line.endswith(": no complete answer within 4 s")  # one request, then the host is skipped
    assert out.count("Queued (waiting for an available runner)") == 3


def test_history_names_runs_dbt_cloud_no_longer_has_in_one_line(
    repo: Path, fast_sandbox: Sandbox, cli
) -> None:
    """A 404 is about one run, not the host: each run is still asked, the note stays short."""
    first = trigger(cli, fast_sandbox, "--job-id", "44444")
    trigger(cli, fast_sandbox, "--job-id", "22222")
    fast_sandbox.fail("404", method="GET", path=r"/runs/\d+/$", times=2)
    asked = run_gets(fast_sandbox)
    code, out, err = cli("history")
    assert code == 0
    assert run_gets(fast_sandbox) == asked + 2
    [line] = err.splitlines()
    assert line.startswith("showing the last known status of 2 runs: dbt Cloud found no run ")
    assert line.endswith(" (and 1 more like it)")
    assert str(first) in out
