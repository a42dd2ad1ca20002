"""The hook's last resort: it gives up after its bound, says so in one line, exits 0, and never
cuts the ledger write."""

from __future__ import annotations

import re
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from datachonk_hooks.delivery import planning
from datachonk_hooks.delivery.ledger import Ledger, TriggerState
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.prepush.hook import pre_push_main
from datachonk_hooks.prepush.watchdog import HookTimeout, Watchdog, current, time_left
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import GENERATED_SQL, TOKEN, commit_files, config_yaml, git, remote_and_clone


@pytest.fixture
def work(tmp_path: Path, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch) -> Path:
    _, path = remote_and_clone(tmp_path)
    commit_files(
        path,
        {"dbt_project.yml": "name: shop\n", "datachonk.yaml": config_yaml(sandbox.url)},
        "Start",
    )
    git(path, "push", "--quiet", "origin", "main")
    monkeypatch.chdir(path)
    return path


def _hook(path: Path, lines: list[str], time_limit: float) -> int:
    known = git(path, "rev-parse", "origin/main")
    stdin = [f"refs/heads/main {git(path, 'rev-parse', 'main')} refs/heads/main {known}"]
    return pre_push_main(
        remote="origin",
        url=str(path.parent / "remote.git"),
        dry_run=False,
        as_json=False,
        env={"DBT_CLOUD_API_TOKEN": TOKEN, "DATACHONK_PUSH_FOREGROUND": "1"},
        stdin_lines=lambda: stdin,
        echo=lines.append,
        echo_json=lambda data: lines.append(str(data)),
        time_limit=time_limit,
    )


def test_a_runaway_regex_is_interrupted() -> None:
    """`re` checks for signals while it backtracks: the timer stops even `(a+)+$`."""
    pattern = re.compile(r"(a+)+$")
    started = time.monotonic()
    watchdog = Watchdog(0.3)
    watchdog.stage = "matching"
    with pytest.raises(HookTimeout, match=r"gave up after 0.3 s \(matching\)"), watchdog:
        pattern.search("a" * 34 + "!")
    assert time.monotonic() - started < 1.5
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)  # disarmed
    assert current() is None


def test_the_hook_gives_up_and_lets_the_push_go_on(
    work: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sha = commit_files(work, {"models/a.sql": GENERATED_SQL}, "Add a")

    def forever(*args: Any, **kwargs: Any) -> Any:
        while True:
            pass

    monkeypatch.setattr(planning, "plan_push_update", forever)
    previous = signal.getsignal(signal.SIGALRM)
    lines: list[str] = []
    started = time.monotonic()
    assert _hook(work, lines, time_limit=0.5) == ExitCode.OK
    assert time.monotonic() - started < 2.0
    assert lines == [
        f"datachonk: gave up after 0.5 s (reading refs/heads/main at {sha[:7]}); nothing was"
        " triggered; the push goes on. To trigger it by hand: `datachonk-hook run --ref"
        f" {sha[:12]}`"
    ]
    assert not (work / ".git" / "datachonk" / "ledger.sqlite3").exists()
    assert signal.getsignal(signal.SIGALRM) is previous
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_timer_never_cuts_the_ledger_write(work: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Firing while the triggers are written, the timer waits: the trigger is recorded whole,
    the hook says what it recorded, and the ledger is not left locked."""
    sha = commit_files(work, {"models/a.sql": GENERATED_SQL}, "Add a")
    record_push = Ledger.record_push

    def slow_record_push(self: Ledger, **kwargs: Any) -> Any:
        time.sleep(0.6)  # the timer fires in here (0.3 s from the start)
        return record_push(self, **kwargs)

    monkeypatch.setattr(Ledger, "record_push", slow_record_push)
    lines: list[str] = []
    assert _hook(work, lines, time_limit=0.3) == ExitCode.OK
    assert lines == [
        f"datachonk: dbt Cloud job 11111 will run for {sha[:7]} (main) once the push lands"
    ]
    ledger_file = work / ".git" / "datachonk" / "ledger.sqlite3"
    with Ledger(ledger_file) as ledger:
        [record] = ledger.history()
    assert (record.sha, record.state) == (sha, TriggerState.AWAITING_PUSH)
    connection = sqlite3.connect(ledger_file, timeout=0)  # no lock left behind
    try:
        connection.execute("BEGIN IMMEDIATE")
        connection.rollback()
    finally:
        connection.close()
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_ledger_wait_shrinks_with_the_time_left() -> None:
    assert time_left(2.0) == 2.0  # no watchdog
    with Watchdog(60):
        assert 1.9 < time_left(2.0) <= 2.0
    with Watchdog(0.5, started=time.monotonic() - 0.45):
        assert time_left(2.0) == 0.25  # never less: a brief lock must not fail the write


def test_off_the_main_thread_only_the_input_bounds_hold() -> None:
    """signal handlers belong to the main thread: elsewhere the watchdog arms nothing."""
    armed: list[bool] = []

    def body() -> None:
        with Watchdog(0.1) as watchdog:
            armed.append(watchdog.armed)

    thread = threading.Thread(target=body)
    thread.start()
    thread.join()
    assert armed == [False]


def test_no_time_left_at_the_start() -> None:
    with pytest.raises(HookTimeout), Watchdog(1.0, started=time.monotonic() - 2):
        pass
    assert current() is None
