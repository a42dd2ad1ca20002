from __future__ import annotations

import os
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import (
    _MIGRATIONS,
    SCHEMA_VERSION,
    Ledger,
    LedgerError,
    TriggerRecord,
    TriggerState,
    common_dir,
)
from datachonk_hooks.errors import ExitCode
from tests.helpers import START, Clock, git

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER_SHA = "89abcdef0123456789abcdef0123456789abcdef"


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "ledger.sqlite3"


@pytest.fixture
def ledger(db_path: Path, clock: Clock) -> Iterator[Ledger]:
    with Ledger(db_path, clock=clock) as opened:
        yield opened


def request(sha: str | None = SHA, **kwargs: object) -> TriggerRequest:
    fields: dict[str, object] = {"cause": "Add stg_orders", "git_sha": sha, "git_branch": "main"}
    fields.update(kwargs)
    return TriggerRequest(**fields)  # type: ignore[arg-type]


def add(
    ledger: Ledger, sha: str = SHA, *, job_id: int = 11111, **kwargs: object
) -> tuple[TriggerRecord, bool]:
    options: dict[str, object] = {"source": "push"}
    options.update(kwargs)
    return ledger.add_trigger(
        host="https://ab123.us1.dbt.com",
        account_id=12345,
        job_id=job_id,
        request=request(sha),
        **options,  # type: ignore[arg-type]
    )


def push(ledger: Ledger, **kwargs: object) -> int:
    options: dict[str, object] = {
        "remote_name": "origin",
        "remote_url": "git@example.invalid:shop.git",
        "git_pid": 4242,
        "tracking_before": {"refs/remotes/origin/main": OTHER_SHA},
        "foreground": False,
    }
    options.update(kwargs)
    return ledger.record_push(**options).id  # type: ignore[arg-type]


def dead_pid() -> int:
    """The pid of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def assert_one_line(err: pytest.ExceptionInfo[LedgerError], path: Path) -> str:
    message = str(err.value)
    assert str(path) in message
    assert "\n" not in message
    assert err.value.exit_code == ExitCode.USAGE
    assert err.value.__cause__ is None
    return message


# --------------------------------------------------------------------------- schema


def test_first_use_creates_the_tables_and_the_version(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        assert ledger.path == db_path
        assert ledger.history() == []
    with sqlite3.connect(db_path) as raw:
        assert raw.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        tables = {row[0] for row in raw.execute("SELECT name FROM sqlite_master")}
    assert {"pushes", "triggers"} <= tables
    with Ledger(db_path) as again:  # reopening an existing file changes nothing
        assert again.history() == []


def test_a_closed_ledger_says_so(db_path: Path) -> None:
    with Ledger(db_path) as ledger:
        pass
    ledger.close()  # twice is fine
    with pytest.raises(LedgerError, match="is closed"):
        ledger.history()


# --------------------------------------------------------------------------- add_trigger


def test_add_trigger_stores_the_request_and_rebuilds_it(ledger: Ledger, clock: Clock) -> None:
    wanted = request(steps_override=("dbt build --select stg_orders+",), schema_override="dev")
    record, new = ledger.add_trigger(
        host="https://ab123.us1.dbt.com",
        account_id=70403103999999,
        job_id=11111,
        request=wanted,
        source="manual",
    )
    assert new
    assert record.request == wanted
    assert record.request.steps_override == ("dbt build --select stg_orders+",)
    assert (record.account_id, record.job_id, record.sha) == (70403103999999, 11111, SHA)
    assert record.branch == "main"
    assert record.state is TriggerState.PENDING
    assert (record.source, record.push_id, record.attempts) == ("manual", None, 0)
    assert record.reason is None
    assert (record.run_id, record.run_url, record.run_status) == (None, None, None)
    assert (record.first_attempt_at, record.claimed_by, record.claimed_at) == (None, None, None)
    assert record.created_at == record.updated_at == START
    assert record.created_at.tzinfo is not None
    assert ledger.get(record.id) == record


def test_add_trigger_needs_a_sha_and_a_known_source(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="git_sha"):
        add(ledger, sha=None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="source"):
        add(ledger, source="cron")
    with pytest.raises(LedgerError, match="no push 99"):
        add(ledger, push_id=99, awaiting_push=True)
    assert ledger.history() == []


def test_the_same_key_twice_is_one_row(ledger: Ledger) -> None:
    first, new = add(ledger)
    again, new_again = add(ledger, source="manual")
    assert new
    assert not new_again
    assert again == first
    assert len(ledger.history()) == 1
    other_job, new_job = add(ledger, job_id=22222)
    other_sha, new_sha = add(ledger, sha=OTHER_SHA)
    assert new_job
    assert new_sha
    assert len({first.id, other_job.id, other_sha.id}) == 3


@pytest.mark.parametrize("state", ["awaiting", "sending", "triggered", "finished"])
def test_a_known_key_is_returned_unchanged_in_any_live_state(ledger: Ledger, state: str) -> None:
    if state == "awaiting":
        record, _ = add(ledger, push_id=push(ledger), awaiting_push=True)
    else:
        record, _ = add(ledger)
        claimed = ledger.claim(record.id)
        assert claimed is not None
        record = claimed
        if state in ("triggered", "finished"):
            record = ledger.mark_triggered(record.id, run_id=1, run_url=None, run_status=1)
        if state == "finished":
            record = ledger.update_run_status(record.id, 10)
    again, new = add(ledger, source="manual")
    assert not new
    assert again == record


def test_force_adds_a_second_row(ledger: Ledger, clock: Clock) -> None:
    first, _ = add(ledger)
    clock.advance(seconds=1)
    second, new = add(ledger, force=True, source="manual")
    assert new
    assert second.id != first.id
    assert ledger.find(12345, 11111, SHA) == second
    assert [r.id for r in ledger.history()] == [second.id, first.id]


def test_a_failed_push_is_re_armed_by_the_next_push(ledger: Ledger) -> None:
    failed_push = push(ledger)
    record, _ = add(ledger, push_id=failed_push, awaiting_push=True)
    [failed] = ledger.mark_push_failed(failed_push, "rejected: non-fast-forward")
    assert failed.state is TriggerState.PUSH_FAILED
    assert failed.reason == "rejected: non-fast-forward"

    next_push = push(ledger)
    rearmed, new = add(ledger, push_id=next_push, awaiting_push=True)
    assert new
    assert rearmed.id == record.id
    assert (rearmed.state, rearmed.push_id, rearmed.reason) == (
        TriggerState.AWAITING_PUSH,
        next_push,
        None,
    )
    assert len(ledger.history()) == 1

    ledger.mark_push_failed(next_push, "the remote hung up")
    manual, new = add(ledger, source="manual")
    assert new
    assert (manual.id, manual.state, manual.push_id, manual.source) == (
        record.id,
        TriggerState.PENDING,
        None,
        "manual",
    )


def test_a_live_row_wins_over_a_failed_one(ledger: Ledger) -> None:
    failed_push = push(ledger)
    add(ledger, push_id=failed_push, awaiting_push=True)
    ledger.mark_push_failed(failed_push, "rejected")
    live, _ = add(ledger, force=True)
    again, new = add(ledger)
    assert not new
    assert again == live


# --------------------------------------------------------------------------- pushes


def test_record_push_and_get_push(ledger: Ledger) -> None:
    record = ledger.record_push(
        remote_name="origin",
        remote_url="https://example.invalid/shop.git",
        git_pid=None,
        tracking_before={"refs/remotes/origin/main": SHA, "refs/remotes/origin/dev": OTHER_SHA},
        foreground=True,
    )
    assert record.state == "waiting"
    assert record.reason is None
    assert record.git_pid is None
    assert record.foreground is True
    assert record.tracking_before == {
        "refs/remotes/origin/main": SHA,
        "refs/remotes/origin/dev": OTHER_SHA,
    }
    assert record.created_at == START
    assert ledger.get_push(record.id) == record
    assert ledger.get_push(record.id + 1) is None


def test_a_landed_push_makes_its_triggers_pending(ledger: Ledger) -> None:
    landed_push, other_push = push(ledger), push(ledger)
    mine, _ = add(ledger, push_id=landed_push, awaiting_push=True)
    mine_too, _ = add(ledger, job_id=22222, push_id=landed_push, awaiting_push=True)
    theirs, _ = add(ledger, sha=OTHER_SHA, push_id=other_push, awaiting_push=True)
    assert mine.state is TriggerState.AWAITING_PUSH
    assert ledger.deliverable() == []

    moved = ledger.mark_push_landed(landed_push)

    assert [r.id for r in moved] == [mine.id, mine_too.id]
    assert {r.state for r in moved} == {TriggerState.PENDING}
    assert ledger.triggers_for_push(landed_push) == moved
    assert ledger.get_push(landed_push).state == "landed"  # type: ignore[union-attr]
    assert ledger.get(theirs.id) == theirs
    assert [r.id for r in ledger.deliverable()] == [mine.id, mine_too.id]


def test_landing_twice_moves_nothing_more(ledger: Ledger) -> None:
    push_id = push(ledger)
    add(ledger, push_id=push_id, awaiting_push=True)
    assert len(ledger.mark_push_landed(push_id)) == 1
    assert ledger.mark_push_landed(push_id) == []


def test_a_failed_push_sends_nothing(ledger: Ledger) -> None:
    push_id = push(ledger)
    add(ledger, push_id=push_id, awaiting_push=True)
    [failed] = ledger.mark_push_failed(push_id, "rejected by the server")
    assert failed.state is TriggerState.PUSH_FAILED
    pushed = ledger.get_push(push_id)
    assert pushed is not None
    assert (pushed.state, pushed.reason) == ("failed", "rejected by the server")
    assert ledger.deliverable() == []
    assert ledger.claim(failed.id) is None


def test_an_expired_push_leaves_its_triggers_pending_for_retry(ledger: Ledger) -> None:
    push_id = push(ledger)
    record, _ = add(ledger, push_id=push_id, awaiting_push=True)
    [expired] = ledger.expire_push(push_id, "gave up waiting for the push after 600 s")
    assert (expired.id, expired.state) == (record.id, TriggerState.PENDING)
    assert expired.reason == "gave up waiting for the push after 600 s"
    pushed = ledger.get_push(push_id)
    assert pushed is not None
    assert pushed.state == "expired"
    assert ledger.deliverable() == [expired]


@pytest.mark.parametrize(
    "settle",
    [
        lambda lg: lg.mark_push_landed(7),
        lambda lg: lg.mark_push_failed(7, "x"),
        lambda lg: lg.expire_push(7, "x"),
    ],
)
def test_settling_an_unknown_push_is_an_error(
    ledger: Ledger, settle: Callable[[Ledger], object]
) -> None:
    with pytest.raises(LedgerError, match="no push 7"):
        settle(ledger)


# --------------------------------------------------------------------------- claims


def test_the_life_of_a_trigger(ledger: Ledger, clock: Clock) -> None:
    record, _ = add(ledger)
    clock.advance(seconds=5)
    claimed = ledger.claim(record.id)
    assert claimed is not None
    assert claimed.state is TriggerState.SENDING
    assert claimed.attempts == 1
    assert claimed.first_attempt_at == claimed.claimed_at == START + timedelta(seconds=5)
    assert claimed.claimed_by == f"{os.getpid()}@{socket.gethostname()}"
    assert ledger.claim(record.id) is None  # held by a live process: this one
    assert ledger.deliverable() == []

    clock.advance(seconds=5)
    pending = ledger.mark_pending(record.id, "dbt Cloud answered 503")
    assert (pending.state, pending.reason) == (TriggerState.PENDING, "dbt Cloud answered 503")
    assert (pending.claimed_by, pending.claimed_at) == (None, None)
    assert pending.updated_at == START + timedelta(seconds=10)

    clock.advance(seconds=5)
    again = ledger.claim(record.id, owner="waiter-1")
    assert again is not None
    assert (again.attempts, again.claimed_by) == (2, "waiter-1")
    assert again.first_attempt_at == START + timedelta(seconds=5)

    url = "https://ab123.us1.dbt.com/deploy/12345/projects/67890/runs/777/"
    triggered = ledger.mark_triggered(record.id, run_id=777, run_url=url, run_status=1)
    assert triggered.state is TriggerState.TRIGGERED
    assert (triggered.run_id, triggered.run_url, triggered.run_status) == (777, url, 1)
    assert (triggered.reason, triggered.claimed_by) == (None, None)
    assert ledger.claim(record.id) is None

    running = ledger.update_run_status(record.id, 3)
    assert (running.state, running.run_status) == (TriggerState.TRIGGERED, 3)
    done = ledger.update_run_status(record.id, 20)
    assert (done.state, done.run_status) == (TriggerState.FINISHED, 20)
    assert ledger.update_run_status(record.id, 3) == done  # a finished run never changes


def test_terminal_status_finishes(ledger: Ledger) -> None:
    record, _ = add(ledger)
    ledger.claim(record.id)
    ledger.mark_triggered(record.id, run_id=5, run_url=None, run_status=1)
    finished = ledger.update_run_status(record.id, 10)
    assert (finished.state, finished.run_status, finished.run_id) == (TriggerState.FINISHED, 10, 5)


def test_a_late_failure_never_undoes_a_known_run(ledger: Ledger) -> None:
    record, _ = add(ledger)
    ledger.claim(record.id)
    triggered = ledger.mark_triggered(record.id, run_id=5, run_url=None, run_status=1)
    assert ledger.mark_pending(record.id, "timeout") == triggered
    assert ledger.deliverable() == []


def test_only_pending_triggers_can_be_claimed(ledger: Ledger) -> None:
    awaiting, _ = add(ledger, push_id=push(ledger), awaiting_push=True)
    assert ledger.claim(awaiting.id) is None
    assert ledger.claim(12345) is None
    assert ledger.get(12345) is None


@pytest.mark.parametrize(
    "call",
    [
        lambda lg: lg.mark_triggered(9, run_id=1, run_url=None, run_status=1),
        lambda lg: lg.mark_pending(9, "x"),
        lambda lg: lg.update_run_status(9, 10),
        lambda lg: lg.trigger_did_not_land(9, None, "x"),
    ],
)
def test_marking_an_unknown_trigger_is_an_error(
    ledger: Ledger, call: Callable[[Ledger], object]
) -> None:
    with pytest.raises(LedgerError, match="no trigger 9"):
        call(ledger)


def test_two_ledgers_on_one_file_cannot_both_claim(db_path: Path) -> None:
    with Ledger(db_path) as one, Ledger(db_path) as two:
        record, _ = add(one)
        assert two.get(record.id) == record
        won = one.claim(record.id, owner=f"{os.getpid()}@{socket.gethostname()}")
        assert won is not None
        assert two.claim(record.id) is None
        assert two.get(record.id) == won


def test_a_claim_by_a_dead_process_is_stale(ledger: Ledger) -> None:
    record, _ = add(ledger)
    owner = f"{dead_pid()}@{socket.gethostname()}"
    claimed = ledger.claim(record.id, owner=owner)
    assert claimed is not None
    assert ledger.deliverable() == [claimed]

    reclaimed = ledger.claim(record.id)
    assert reclaimed is not None
    assert reclaimed.attempts == 2
    assert reclaimed.claimed_by == f"{os.getpid()}@{socket.gethostname()}"
    assert reclaimed.first_attempt_at == claimed.first_attempt_at


def test_a_claim_from_another_host_is_only_judged_by_its_age(ledger: Ledger, clock: Clock) -> None:
    record, _ = add(ledger)
    ledger.claim(record.id, owner=f"{dead_pid()}@another-host.invalid")
    assert ledger.claim(record.id) is None
    clock.advance(minutes=10)
    assert ledger.claim(record.id) is None
    clock.advance(seconds=1)
    assert ledger.claim(record.id) is not None


def test_a_claim_held_too_long_is_stale(db_path: Path, clock: Clock) -> None:
    with Ledger(db_path, clock=clock, stale_after=timedelta(seconds=30)) as ledger:
        record, _ = add(ledger)
        held = ledger.claim(record.id)  # this process is alive: only time can free it
        assert held is not None
        clock.advance(seconds=30)
        assert ledger.claim(record.id) is None
        assert ledger.deliverable() == []
        clock.advance(seconds=1)
        assert [r.id for r in ledger.deliverable()] == [record.id]
        taken = ledger.claim(record.id, owner="next")
        assert taken is not None
        assert (taken.attempts, taken.claimed_by) == (2, "next")


def test_deliverable_is_oldest_first(ledger: Ledger, clock: Clock) -> None:
    first, _ = add(ledger)
    clock.advance(seconds=1)
    second, _ = add(ledger, sha=OTHER_SHA)
    clock.advance(seconds=1)
    held, _ = add(ledger, job_id=22222)
    ledger.claim(held.id)
    clock.advance(seconds=1)
    triggered, _ = add(ledger, job_id=33333)
    ledger.claim(triggered.id)
    ledger.mark_triggered(triggered.id, run_id=1, run_url=None, run_status=1)
    assert [r.id for r in ledger.deliverable()] == [first.id, second.id]


# --------------------------------------------------------------------------- queries


def test_find_get_and_history(ledger: Ledger, clock: Clock) -> None:
    assert ledger.find(12345, 11111, SHA) is None
    ids = []
    for job_id in range(1, 6):
        clock.advance(seconds=1)
        ids.append(add(ledger, job_id=job_id)[0].id)
    assert ledger.find(12345, 3, SHA) == ledger.get(ids[2])
    assert ledger.find(54321, 3, SHA) is None
    assert [r.id for r in ledger.history()] == ids[::-1]
    assert [r.id for r in ledger.history(limit=2)] == ids[:-3:-1]
    assert ledger.triggers_for_push(1) == []


# --------------------------------------------------------------------------- races

CLAIM_SCRIPT = """
import sys
from pathlib import Path
from datachonk_hooks.delivery.ledger import Ledger
with Ledger(Path(sys.argv[1])) as ledger:
    print("ready", flush=True)
    sys.stdin.readline()
    print("won" if ledger.claim(int(sys.argv[2])) else "lost", flush=True)
    sys.stdin.readline()  # stay alive: a dead owner's claim is stale and may be taken over
"""

ADD_SCRIPT = """
import sys
from pathlib import Path
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.delivery.ledger import Ledger
with Ledger(Path(sys.argv[1])) as ledger:
    print("ready", flush=True)
    sys.stdin.readline()
    _, new = ledger.add_trigger(
        host="https://ab123.us1.dbt.com", account_id=12345, job_id=11111, source="push",
        request=TriggerRequest(cause="race", git_sha=sys.argv[2], git_branch="main"),
    )
    print("new" if new else "old", flush=True)
    sys.stdin.readline()
"""


def race(script: str, *args: str, processes: int = 8) -> list[str]:
    """Start the processes, let them all open the ledger, then release them at once.

    They stay alive until every one has answered, as concurrent senders would be.
    """
    children = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    try:
        for child in children:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready", child.stderr
        for child in children:
            assert child.stdin is not None
            child.stdin.write("go\n")
            child.stdin.flush()
        answers = []
        for child in children:  # all still running: the race is over only when each answered
            assert child.stdout is not None
            answers.append(child.stdout.readline().strip())
        for child in children:
            _, err = child.communicate("done\n", timeout=30)
            assert child.returncode == 0, err
        return answers
    finally:
        for child in children:
            if child.poll() is None:
                child.kill()
                child.wait()


def test_eight_processes_claim_one_trigger_and_one_wins(ledger: Ledger) -> None:
    record, _ = add(ledger)
    answers = race(CLAIM_SCRIPT, str(ledger.path), str(record.id))
    assert sorted(answers) == ["lost"] * 7 + ["won"]
    claimed = ledger.get(record.id)
    assert claimed is not None
    assert claimed.state is TriggerState.SENDING
    assert claimed.attempts == 1


def test_eight_processes_add_one_key_and_one_row_results(ledger: Ledger) -> None:
    answers = race(ADD_SCRIPT, str(ledger.path), SHA)
    assert sorted(answers) == ["new"] + ["old"] * 7
    [row] = ledger.history()
    assert row.sha == SHA


# --------------------------------------------------------------------------- location


def test_for_repo_lives_under_the_common_dir_and_worktrees_share_it(dbt_repo: Path) -> None:
    linked = dbt_repo.parent / "linked"
    git(dbt_repo, "worktree", "add", "--quiet", "-b", "feature", str(linked))
    main_repo = pygit2.Repository(str(dbt_repo))
    linked_repo = pygit2.Repository(str(linked))
    assert Path(linked_repo.path).resolve() != Path(main_repo.path).resolve()
    expected = Path(git(linked, "rev-parse", "--path-format=absolute", "--git-common-dir"))
    assert common_dir(linked_repo) == common_dir(main_repo) == expected.resolve()

    with Ledger.for_repo(main_repo) as here, Ledger.for_repo(linked_repo) as there:
        assert here.path == there.path == (dbt_repo / ".git" / "datachonk" / "ledger.sqlite3")
        assert here.path.resolve() == there.path.resolve()
        record, _ = add(here)
        assert there.get(record.id) == record
        assert not add(there)[1]


def test_for_repo_of_a_bare_repository(tmp_path: Path) -> None:
    bare = tmp_path / "shop.git"
    git(tmp_path, "init", "--quiet", "--bare", str(bare))
    with Ledger.for_repo(pygit2.Repository(str(bare))) as ledger:
        assert ledger.path == bare.resolve() / "datachonk" / "ledger.sqlite3"
        assert ledger.path.is_file()


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("content", "what"),
    [
        (b"this is not a database\x00\xff" * 200, "is not a valid SQLite database"),
        (b"", "is empty (0 bytes)"),
    ],
)
def test_a_damaged_file_is_moved_aside_never_silently_replaced(
    db_path: Path, capsys: pytest.CaptureFixture[str], content: bytes, what: str
) -> None:
    db_path.write_bytes(content)
    with Ledger(db_path) as ledger:
        add(ledger)
        moved = ledger.moved_aside
    assert moved is not None and moved.name.startswith(f"{db_path.name}.corrupt-")
    assert moved.read_bytes() == content  # kept as it was, beside the new one
    assert capsys.readouterr().err == (
        f"datachonk: warning: the ledger {db_path} {what}; it was moved to {moved} and a new"
        " one started (triggers pending in it are not sent)\n"
    )
    with Ledger(db_path) as reopened:  # the new one is a ledger like any other
        assert reopened.moved_aside is None and len(reopened.history()) == 1


def test_a_folder_in_the_way_is_a_clear_error(db_path: Path) -> None:
    db_path.mkdir()
    with pytest.raises(LedgerError) as err:
        Ledger(db_path)
    assert "cannot open the ledger" in assert_one_line(err, db_path)


@pytest.mark.skipif(os.name == "nt" or os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_clear_error(db_path: Path) -> None:
    Ledger(db_path).close()
    db_path.chmod(0)
    try:
        with pytest.raises(LedgerError) as err:
            Ledger(db_path)
        assert_one_line(err, db_path)
    finally:
        db_path.chmod(0o600)


def test_a_newer_schema_is_refused(db_path: Path) -> None:
    with sqlite3.connect(db_path) as raw:
        raw.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(LedgerError) as err:
        Ledger(db_path)
    assert "newer datachonk-hooks" in assert_one_line(err, db_path)


def test_a_locked_file_is_a_clear_error(db_path: Path) -> None:
    Ledger(db_path).close()
    blocker = sqlite3.connect(db_path, isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        with pytest.raises(LedgerError) as err:
            Ledger(db_path, busy_timeout=0.05)
        assert "locked by another process" in assert_one_line(err, db_path)
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()


def test_a_write_blocked_beyond_the_timeout_is_rolled_back(db_path: Path) -> None:
    with Ledger(db_path, busy_timeout=0.05) as ledger:
        blocker = sqlite3.connect(db_path, isolation_level=None)
        try:
            blocker.execute("BEGIN EXCLUSIVE")
            with pytest.raises(LedgerError) as err:
                add(ledger)
            assert "locked by another process" in assert_one_line(err, db_path)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        record, new = add(ledger)  # nothing was left half-done
        assert new
        assert ledger.history() == [record]


# --------------------------------------------------------------------------- refs per commit


def test_every_ref_that_carried_a_commit_is_linked_to_its_trigger(ledger: Ledger) -> None:
    first, second = push(ledger), push(ledger)
    record, created = add(ledger, push_id=first, remote_ref="refs/heads/aaa", awaiting_push=True)
    assert created
    again, created = add(ledger, push_id=first, remote_ref="refs/heads/main", awaiting_push=True)
    assert (again.id, created) == (record.id, False)
    add(ledger, push_id=second, remote_ref="refs/heads/main", awaiting_push=True)
    carried = [(p.id, ref) for p, ref in ledger.refs_of(record.id)]
    assert carried == [
        (first, "refs/heads/aaa"),
        (first, "refs/heads/main"),
        (second, "refs/heads/main"),
    ]
    assert [t.id for t in ledger.triggers_for_push(second)] == [record.id]


def test_a_failed_push_leaves_a_trigger_another_push_still_carries(ledger: Ledger) -> None:
    first, second = push(ledger), push(ledger)
    record, _ = add(ledger, push_id=first, remote_ref="refs/heads/aaa", awaiting_push=True)
    add(ledger, push_id=second, remote_ref="refs/heads/main", awaiting_push=True)
    assert ledger.settle_judged(first, {}, [record.id], "rejected") == []  # second may land it
    assert ledger.get_push(first).state == "failed"  # type: ignore[union-attr]
    assert ledger.get(record.id).state is TriggerState.AWAITING_PUSH  # type: ignore[union-attr]
    assert ledger.expire_push(first, "gone") == []  # nor does expiring the first move it
    assert ledger.settle_judged(second, {record.id: "main"}, [], None) == []
    landed = ledger.get(record.id)
    assert landed is not None
    assert (landed.state, landed.branch, landed.request.git_branch) == (
        TriggerState.PENDING,
        "main",
        "main",
    )


def test_two_rejected_pushes_of_one_commit_fail_it_whatever_the_order(ledger: Ledger) -> None:
    """The later judgement sees the earlier push settled: the commit is not left waiting."""
    first, second = push(ledger), push(ledger)
    record, _ = add(ledger, push_id=first, remote_ref="refs/heads/aaa", awaiting_push=True)
    add(ledger, push_id=second, remote_ref="refs/heads/bbb", awaiting_push=True)
    assert ledger.settle_judged(first, {}, [record.id], "aaa rejected") == []
    [failed] = ledger.settle_judged(second, {}, [record.id], "bbb rejected")
    assert (failed.id, failed.state, failed.reason) == (
        record.id,
        TriggerState.PUSH_FAILED,
        "bbb rejected",
    )


def test_a_trigger_no_push_carries_any_more_fails(ledger: Ledger) -> None:
    first = push(ledger)
    record, _ = add(ledger, push_id=first, awaiting_push=True)
    [failed] = ledger.settle_judged(first, {}, [record.id], "rejected")
    assert (failed.state, failed.reason) == (TriggerState.PUSH_FAILED, "rejected")
    assert ledger.settle_judged(first, {record.id: None}, [], None) == []  # settled for good
    assert ledger.get(record.id).state is TriggerState.PUSH_FAILED  # type: ignore[union-attr]


def test_a_version_2_ledger_links_its_triggers_to_their_push(db_path: Path) -> None:
    raw = sqlite3.connect(db_path, isolation_level=None)
    for statements in _MIGRATIONS[:2]:
        for statement in statements:
            raw.execute(statement)
    now = "2026-05-01T12:00:00.000000+00:00"
    raw.execute(
        "INSERT INTO pushes (remote_name, remote_url, git_pid, tracking_before, foreground,"
        " state, created_at, updated_at) VALUES ('origin', 'u', NULL, '{}', 0, 'waiting', ?, ?)",
        (now, now),
    )
    raw.execute(
        "INSERT INTO triggers (host, account_id, job_id, sha, branch, request, state, push_id,"
        " source, created_at, updated_at) VALUES ('h', 1, 2, ?, 'main', '{}', 'awaiting_push',"
        " 1, 'push', ?, ?)",
        (SHA, now, now),
    )
    raw.execute("PRAGMA user_version = 2")
    raw.close()
    with Ledger(db_path) as ledger:
        [(carrier, ref)] = ledger.refs_of(1)
    assert (carrier.id, ref) == (1, "refs/heads/main")


def test_a_refused_token_is_remembered_by_fingerprint_only(ledger: Ledger, db_path: Path) -> None:
    host = "https://ab123.us1.dbt.com"
    assert ledger.token_refused(host, 12345, "f1") is None
    ledger.note_token_refused(host, 12345, 401, "f1")
    assert ledger.token_refused(host, 12345, "f1") == 401
    assert ledger.token_refused(host, 12345, "f2") is None  # another token
    assert ledger.token_refused(host, 99999, "f1") is None  # another account
    ledger.note_token_accepted(host, 12345)
    assert ledger.token_refused(host, 12345, "f1") is None


def test_in_flight_tells_what_live_processes_are_doing(ledger: Ledger) -> None:
    """What `retry` prints instead of "nothing pending" while a waiter is busy."""
    here = socket.gethostname()
    waiting = push(ledger, git_pid=os.getpid())  # its `git push` still runs
    ledger.set_push_waiter(waiting, f"{os.getpid()}@{here}")
    awaiting, _ = add(ledger, push_id=waiting, awaiting_push=True)
    sending, _ = add(ledger, OTHER_SHA)
    assert ledger.claim(sending.id, owner=f"{os.getpid()}@{here}") is not None
    dead, _ = add(ledger, "f" * 40)
    assert ledger.claim(dead.id, owner=f"{dead_pid()}@{here}") is not None  # stale: not busy
    described = {record.id: doing for record, doing in ledger.in_flight()}
    assert described == {
        awaiting.id: f"waiting for its push to origin to land (waiter pid {os.getpid()})"
        f" since {START:%H:%M:%S} UTC",
        sending.id: f"being sent by waiter pid {os.getpid()} since {START:%H:%M:%S} UTC",
    }
