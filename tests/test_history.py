"""history.py: the ledger's triggers as lines for people and as JSON for programs."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datachonk_hooks.history import history_json, history_lines, status_text
from datachonk_hooks.ledger import Ledger, TriggerRecord, TriggerState
from datachonk_hooks.trigger_request import TriggerRequest

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
        "2026-03-04 05:06  2222222  -                          11111        70000002  Error",
        f"{pad}  cause: Add finished",
        "2026-03-04 05:06  1111111  feature/a-very-l           11111        70000001  Queued",
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
    }
    triggered = by_state["triggered"]
    assert (triggered["run_id"], triggered["run_url"], triggered["run_status"]) == (
        70000001,
        f"{HOST}/run/1",
        "Queued",
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
