"""The rule that keeps a killed waiter from losing triggers, the schema migration for it,
and a manual `run` that meets a trigger another process is sending.

A push stays "waiting" while its landing waiter runs. When the waiter dies (SIGKILL, a
crash, a reboot), nobody would settle the push and its triggers would wait forever;
`retry` (and the next push's waiter) treat such an abandoned push as expired: they check
whether it landed and then send its triggers.
"""

from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.transport import RetryPolicy, Timeouts
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    Ledger,
    TriggerState,
)
from datachonk_hooks.delivery.planning import TriggerPlan, plan_manual_trigger
from datachonk_hooks.delivery.trigger import BusyElsewhereError, trigger_through_ledger
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.sandbox import Sandbox
from datachonk_hooks.settings.config import load_settings
from datachonk_hooks.settings.credentials import Token
from tests.helpers import TOKEN, Clock, config_yaml

SHA = "0123456789abcdef0123456789abcdef01234567"
HOST = socket.gethostname()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ledger(tmp_path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger(tmp_path / "ledger.sqlite3", clock=clock) as opened:
        yield opened


def dead_pid() -> int:
    """A pid that no process has any more (that of a child that has ended)."""
    with subprocess.Popen([sys.executable, "-c", "pass"]) as child:
        child.wait()
    return child.pid


def waiting_push(ledger: Ledger, git_pid: int | None, waiter: str | None) -> int:
    push = ledger.record_push(
        remote_name="origin",
        remote_url="/nowhere.git",
        git_pid=git_pid,
        tracking_before={},
        foreground=False,
    )
    if waiter is not None:
        ledger.set_push_waiter(push.id, waiter)
    ledger.add_trigger(
        host="http://127.0.0.1:1",
        account_id=12345,
        job_id=11111,
        request=TriggerRequest(cause="Add orders", git_sha=SHA, git_branch="main"),
        source="push",
        push_id=push.id,
        awaiting_push=True,
    )
    return push.id


def abandoned(ledger: Ledger) -> list[int]:
    return [push.id for push in ledger.abandoned_pushes()]


def test_a_dead_waiter_abandons_its_push_at_once(ledger: Ledger) -> None:
    push_id = waiting_push(ledger, git_pid=dead_pid(), waiter=f"{dead_pid()}@{HOST}")
    assert abandoned(ledger) == [push_id]
    [record] = ledger.deliverable()
    assert record.state is TriggerState.AWAITING_PUSH  # deliverable, once expired
    [expired] = ledger.expire_abandoned_pushes("waiter gone")
    assert expired.id == push_id
    assert ledger.get_push(push_id).state == "expired"  # type: ignore[union-attr]
    [pending] = ledger.deliverable()
    assert (pending.state, pending.reason) == (TriggerState.PENDING, "waiter gone")
    assert ledger.expire_abandoned_pushes("again") == []


def test_a_live_waiter_keeps_its_push(ledger: Ledger, clock: Clock) -> None:
    waiting_push(ledger, git_pid=dead_pid(), waiter=f"{os.getpid()}@{HOST}")
    clock.advance(hours=5)
    assert abandoned(ledger) == []
    assert ledger.deliverable() == []


def test_a_running_git_push_keeps_its_push(ledger: Ledger, clock: Clock) -> None:
    """Even with its waiter gone: the push may still land (or be rejected)."""
    with subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"]) as git:
        try:
            waiting_push(ledger, git_pid=git.pid, waiter=f"{dead_pid()}@{HOST}")
            clock.advance(hours=2)
            assert abandoned(ledger) == []
            clock.advance(days=1)  # but not forever: pids are recycled
            assert len(abandoned(ledger)) == 1
        finally:
            git.kill()


def test_a_waiter_that_never_started(ledger: Ledger, clock: Clock) -> None:
    waiting_push(ledger, git_pid=dead_pid(), waiter=None)
    clock.advance(seconds=30)
    assert abandoned(ledger) == []  # it may still be starting
    clock.advance(seconds=31)
    assert len(abandoned(ledger)) == 1


def test_without_a_git_push_pid_the_stale_time_counts(ledger: Ledger, clock: Clock) -> None:
    waiting_push(ledger, git_pid=None, waiter=None)
    clock.advance(minutes=9)
    assert abandoned(ledger) == []
    clock.advance(minutes=2)
    assert len(abandoned(ledger)) == 1


def test_a_waiter_on_another_host_is_judged_by_age(ledger: Ledger, clock: Clock) -> None:
    waiting_push(ledger, git_pid=None, waiter="1@another-host.invalid")
    clock.advance(minutes=9)
    assert abandoned(ledger) == []
    clock.advance(minutes=2)
    assert len(abandoned(ledger)) == 1


def test_settled_pushes_are_never_abandoned(ledger: Ledger, clock: Clock) -> None:
    gone = f"{dead_pid()}@{HOST}"
    ledger.mark_push_landed(waiting_push(ledger, git_pid=None, waiter=gone))
    ledger.mark_push_failed(waiting_push(ledger, git_pid=None, waiter=gone), "rejected")
    ledger.expire_push(waiting_push(ledger, git_pid=None, waiter=gone), "gave up")
    clock.advance(days=3)
    assert abandoned(ledger) == []


def test_a_version_1_ledger_is_migrated_keeping_its_rows(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite3"
    raw = sqlite3.connect(path, isolation_level=None)
    for statement in _MIGRATIONS[0]:
        raw.execute(statement)
    raw.execute(
        "INSERT INTO pushes (remote_name, remote_url, git_pid, tracking_before, foreground,"
        " state, created_at, updated_at) VALUES ('origin', 'u', NULL, '{}', 0, 'waiting',"
        " '2026-05-01T12:00:00.000000+00:00', '2026-05-01T12:00:00.000000+00:00')"
    )
    raw.execute("PRAGMA user_version = 1")
    raw.close()
    with Ledger(path) as ledger:
        [push] = ledger.pushes_after(0)
        assert (push.remote_name, push.state, push.waiter) == ("origin", "waiting", None)
        ledger.set_push_waiter(push.id, "7@h")
        assert ledger.get_push(push.id).waiter == "7@h"  # type: ignore[union-attr]
    check = sqlite3.connect(path)
    assert check.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 4
    check.close()


# ----------------------------------------------------------------------------- run vs. a sender


def manual_setup(dbt_repo: Path, sandbox: Sandbox) -> tuple[pygit2.Repository, TriggerPlan, int]:
    """A manual trigger recorded and claimed by a live process (this one), as a waiter would."""
    repo = pygit2.Repository(str(dbt_repo))
    settings = load_settings(config_yaml(sandbox.url), source="datachonk.yaml", env={})
    plan = plan_manual_trigger(settings, repo, "HEAD", allow_unpushed=True)
    with Ledger.for_repo(repo) as ledger:
        record, _ = ledger.add_trigger(
            host=plan.host or "",
            account_id=plan.account_id,
            job_id=plan.job_id,
            request=plan.request,
            source="push",
        )
        assert ledger.claim(record.id, owner=f"{os.getpid()}@{HOST}") is not None
    return repo, plan, record.id


def quick_client(sandbox: Sandbox) -> DbtCloudClient:
    return DbtCloudClient(
        sandbox.url, 12345, Token(TOKEN, "t"), Timeouts(1, 0.5), RetryPolicy(budget=0.5)
    )


def test_run_waits_for_the_other_sender_and_reports_its_run(
    dbt_repo: Path, sandbox: Sandbox
) -> None:
    repo, plan, trigger_id = manual_setup(dbt_repo, sandbox)
    said: list[str] = []

    def other_sender_finishes() -> None:
        time.sleep(0.3)
        with Ledger.for_repo(repo) as ledger, quick_client(sandbox) as client:
            run = client.trigger_run(plan.job_id, plan.request)
            ledger.mark_triggered(trigger_id, run_id=run.id, run_url=run.href, run_status=1)

    other = threading.Thread(target=other_sender_finishes)
    other.start()
    with quick_client(sandbox) as client:
        done = trigger_through_ledger(repo, plan, client, force=False, echo=said.append)
    other.join(10)
    assert (done.triggered, [r.id for r in sandbox.runs]) == (False, [done.run.id])
    assert said[0].startswith("another process is sending this trigger")


def test_run_sends_itself_when_the_other_sender_gives_up(dbt_repo: Path, sandbox: Sandbox) -> None:
    repo, plan, trigger_id = manual_setup(dbt_repo, sandbox)

    def other_sender_fails() -> None:
        time.sleep(0.3)
        with Ledger.for_repo(repo) as ledger:
            ledger.mark_pending(trigger_id, "dbt Cloud answered 503")

    other = threading.Thread(target=other_sender_fails)
    other.start()
    with quick_client(sandbox) as client:
        done = trigger_through_ledger(repo, plan, client, force=False, echo=lambda _: None)
    other.join(10)
    assert done.triggered and [r.id for r in sandbox.runs] == [done.run.id]


def test_run_gives_up_on_a_sender_that_takes_too_long(dbt_repo: Path, sandbox: Sandbox) -> None:
    repo, plan, _ = manual_setup(dbt_repo, sandbox)
    with quick_client(sandbox) as client, pytest.raises(BusyElsewhereError) as busy:
        trigger_through_ledger(repo, plan, client, force=False, echo=lambda _: None)
    assert busy.value.exit_code == ExitCode.TIMEOUT
    assert "is still being sent to dbt Cloud by another process" in str(busy.value)
    assert sandbox.runs == []
