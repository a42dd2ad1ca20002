"""Outcome lines: what a run's end becomes, and that each is told exactly once."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import SCHEMA_VERSION, Ledger, RunOutcome, TriggerRecord
from datachonk_hooks.monitor.outcomes import (
    MAX_TOLD,
    compact_duration,
    first_error_line,
    outcome_line,
    tell,
    tell_in,
)

SHA = "0e92d14" + "b" * 33
URL = "https://ab123.us1.dbt.com/deploy/12345/projects/67890/runs/70403103900001/"


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3") as book:
        yield book


def ended(
    ledger: Ledger, outcome: RunOutcome, *, branch: str = "main", job_id: int = 11111
) -> TriggerRecord:
    record, _ = ledger.add_trigger(
        host="https://ab123.us1.dbt.com",
        account_id=12345,
        job_id=job_id,
        request=TriggerRequest("Add orders", git_sha=SHA, git_branch=branch),
        source="push",
    )
    ledger.mark_triggered(record.id, run_id=70403103900001, run_url=URL, run_status=3)
    return ledger.record_outcome(record.id, outcome)


def test_the_issue_s_examples(ledger: Ledger) -> None:
    failed = ended(
        ledger,
        RunOutcome(
            status=20,
            duration_s=75,
            failed_step_index=4,
            failed_step="dbt build",
            error_line="Database Error in model orders",
        ),
    )
    assert outcome_line(failed) == (
        'run 70403103900001 for 0e92d14 (main) failed at step 4 "dbt build": Database Error'
        f" in model orders {URL}"
    )
    success = ended(ledger, RunOutcome(status=10, duration_s=192), job_id=22222)
    assert outcome_line(success) == (
        f"run 70403103900001 for 0e92d14 (main) succeeded in 3m12s: models are live {URL}"
    )


def test_a_cancelled_run_and_an_unknown_status(ledger: Ledger) -> None:
    cancelled = ended(ledger, RunOutcome(status=30, duration_s=5))
    assert outcome_line(cancelled) == (
        "run 70403103900001 for 0e92d14 (main) was cancelled in 5s: re-trigger if needed:"
        f" `datachonk-hook run --force --ref {SHA[:12]}` {URL}"
    )
    assert RunStatus(30).described.startswith("Cancelled (re-trigger if needed")


def test_text_from_outside_is_sanitized(ledger: Ledger) -> None:
    record = ended(
        ledger,
        RunOutcome(
            status=20,
            failed_step_index=2,
            failed_step="dbt\x1b[2J build",
            error_line="Error \x1b]0;pwned\x07 in \u202emodel",
        ),
        branch="feat\u200b/x",
    )
    line = outcome_line(record)
    assert "\x1b" not in line and "\x07" not in line and "\u202e" not in line
    assert "\u200b" not in line


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0, "0s"), (45.4, "45s"), (192, "3m12s"), (3600, "1h00m"), (3725, "1h02m"), (-3, "0s")],
)
def test_compact_duration(seconds: float, text: str) -> None:
    assert compact_duration(seconds) == text


def test_the_first_error_line_is_dbt_s_summary_not_a_progress_line() -> None:
    logs = (
        "1 of 3 START sql table model analytics.orders .... [RUN]\n"
        "1 of 3 ERROR creating sql table model analytics.orders .... [ERROR in 1.02s]\n"
        "\n"
        "Completed with 1 error, 0 partial successes, and 0 warnings:\n"
        "\n"
        "  Database Error in model orders (models/orders.sql)\n"
        "  000904 (42000): SQL compilation error\n"
    )
    assert first_error_line(logs) == "Database Error in model orders (models/orders.sql)"
    assert first_error_line("Compilation Error in model x\n") == "Compilation Error in model x"
    assert first_error_line("", "Job timed out") == "Job timed out"
    assert first_error_line("all fine\n") is None
    assert len(first_error_line("Error " + "x" * 500) or "") == 200


def test_each_outcome_is_told_once(ledger: Ledger) -> None:
    record = ended(ledger, RunOutcome(status=10, duration_s=3))
    lines: list[str] = []
    assert [r.id for r in tell(ledger, lines.append)] == [record.id]
    told = ledger.get(record.id)
    assert told is not None and told.told_at is not None
    assert lines == [f"datachonk: {outcome_line(record)}"]
    assert tell(ledger, lines.append) == []
    assert len(lines) == 1


def test_two_processes_telling_at_once_tell_each_outcome_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as book:
        for job in range(1, 6):
            ended(book, RunOutcome(status=10, duration_s=1), job_id=job)
    lines: list[str] = []
    lock = threading.Lock()
    start = threading.Barrier(4)

    def teller() -> None:
        with Ledger(path) as book:
            start.wait()

            def echo(line: str) -> None:
                with lock:
                    lines.append(line)

            tell(book, echo)

    threads = [threading.Thread(target=teller) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(lines) == 5


def test_a_watched_end_is_not_told_again(ledger: Ledger) -> None:
    record, _ = ledger.add_trigger(
        host="h", account_id=1, job_id=1, request=TriggerRequest("x", git_sha=SHA), source="manual"
    )
    ledger.mark_triggered(record.id, run_id=5, run_url=None, run_status=1)
    ledger.record_outcome(record.id, RunOutcome(status=10), told=True)
    assert ledger.untold() == []


def test_the_first_recorded_end_is_kept(ledger: Ledger) -> None:
    first = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)
    record = ended(ledger, RunOutcome(status=20, finished_at=first, error_line="first"))
    again = ledger.record_outcome(record.id, RunOutcome(status=10, finished_at=datetime.now(UTC)))
    assert again.outcome == record.outcome
    assert again.outcome is not None and again.outcome.error_line == "first"


def test_many_outcomes_are_summed_up(ledger: Ledger) -> None:
    for job in range(MAX_TOLD + 3):
        ended(ledger, RunOutcome(status=10), job_id=job + 1)
    lines: list[str] = []
    tell(ledger, lines.append)
    assert len(lines) == MAX_TOLD + 1
    assert lines[-1] == "datachonk: 3 more runs ended: `datachonk-hook history`"


def as_version_3(path: Path) -> None:
    """Take the ledger at `path` back to schema 3: no outcome, told or follower columns."""
    raw = sqlite3.connect(path)
    with raw:
        raw.execute("UPDATE triggers SET told_at = NULL")
        for column in (
            "finished_at",
            "duration_s",
            "failed_step_index",
            "failed_step",
            "error_line",
            "log_tail",
            "told_at",
            "followed_by",
            "followed_at",
        ):
            raw.execute(f"ALTER TABLE triggers DROP COLUMN {column}")
        raw.execute("PRAGMA user_version = 3")
    raw.close()


def test_runs_that_ended_before_the_upgrade_are_not_told(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite3"
    with Ledger(path) as book:
        ended(book, RunOutcome(status=10))
    as_version_3(path)
    with Ledger(path) as book:
        assert book.untold() == []
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    check.close()


def test_the_retired_default_host_of_an_undelivered_trigger_is_forgotten(tmp_path: Path) -> None:
    """Before version 4 a datachonk.yaml without host meant cloud.getdbt.com, and its
    triggers recorded that host: once upgraded they go to the host configured then."""
    path = tmp_path / "ledger.sqlite3"
    legacy = "https://cloud.getdbt.com"
    with Ledger(path) as book:
        pending, _ = book.add_trigger(
            host=legacy,
            account_id=1,
            job_id=1,
            request=TriggerRequest("x", git_sha="c" * 40),
            source="manual",
        )
        delivered = ended(book, RunOutcome(status=10))
        with book._write() as conn:  # delivered to the legacy host: that stays as it was
            conn.execute("UPDATE triggers SET host = ? WHERE id = ?", (legacy, delivered.id))
    as_version_3(path)
    with Ledger(path) as book:
        assert (book.get(pending.id) or pending).host == ""
        assert (book.get(delivered.id) or delivered).host == legacy


def test_tell_in_is_quiet_outside_a_repository_and_without_a_ledger(tmp_path: Path) -> None:
    lines: list[str] = []
    tell_in(tmp_path, lines.append)
    assert lines == []


def test_the_first_error_line_of_dbt_cloud_s_timestamped_coloured_logs() -> None:
    logs = (
        "\x1b[0m12:01:04  1 of 3 START sql table model analytics.orders .... [RUN]\n"
        "\x1b[0m12:01:05  1 of 3 ERROR creating sql table model analytics.orders"
        " .... [\x1b[31mERROR\x1b[0m in 1.02s]\n"
        "\x1b[0m12:01:05  \n"
        "\x1b[0m12:01:05  \x1b[31mCompleted with 1 error and 0 warnings:\x1b[0m\n"
        "\x1b[0m12:01:05  \n"
        "\x1b[0m12:01:05    Database Error in model orders (models/orders.sql)\n"
    )
    assert first_error_line(logs) == "Database Error in model orders (models/orders.sql)"
    progress_only = "\x1b[0m12:01:05.123  2 of 3 ERROR creating model x .... [ERROR]\n"
    assert first_error_line(progress_only, "boom") == "boom"
