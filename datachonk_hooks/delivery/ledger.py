"""The package's state: one SQLite file under the git common dir, shared by all worktrees.

The ledger is what guarantees that a commit triggers one run and that nothing is lost. A
trigger is keyed by (account_id, job_id, sha); every read-modify-write runs inside one
`BEGIN IMMEDIATE` transaction, so two processes at once (two pushes, two landing waiters, a
waiter and a manual `run`) can never both record, or both claim, the same trigger. Nothing
secret is ever stored: a `TriggerRequest` carries no token.
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import sqlite3
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import closing, contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.errors import DatachonkError, ExitCode
from datachonk_hooks.fileio import private_dir, private_file

if TYPE_CHECKING:
    import pygit2

#: Bumped whenever the tables change; `_MIGRATIONS[n]` takes a file from version n to n + 1.
SCHEMA_VERSION = 4

#: A push still "waiting" this long after it was recorded is abandoned whatever the process
#: ids say: pids are recycled, and a trigger must not wait for a dead waiter forever.
ABANDONED_AFTER = timedelta(days=1)
#: A landing waiter records itself within a second of being started; one that has not after
#: this long (and after its `git push` ended) never will.
WAITER_START_GRACE = timedelta(seconds=60)

#: how long after its trigger a run is still followed (and taken over from a follower that
#: died): the waiter's lifetime cap
FOLLOW_FOR = timedelta(hours=6)

#: `followed_by` of a run nobody follows to its end (`follow: false`, or its follower's time
#: limit passed): `history` asks about it, no waiter takes it over.
NOT_FOLLOWED = "-"

#: dbt Cloud run statuses after which a run never changes again (Success, Error, Cancelled).
TERMINAL_RUN_STATUSES = frozenset({10, 20, 30})

SOURCES = frozenset({"push", "manual", "ci"})

_MIGRATIONS: tuple[tuple[str, ...], ...] = (
    (
        """
        CREATE TABLE IF NOT EXISTS pushes (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            remote_name TEXT NOT NULL,
            remote_url TEXT NOT NULL,
            git_pid INTEGER,
            tracking_before TEXT NOT NULL,
            foreground INTEGER NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        """
        CREATE TABLE IF NOT EXISTS triggers (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            host TEXT NOT NULL,
            account_id INTEGER NOT NULL,
            job_id INTEGER NOT NULL,
            sha TEXT NOT NULL,
            branch TEXT,
            request TEXT NOT NULL,
            state TEXT NOT NULL,
            reason TEXT,
            run_id INTEGER,
            run_url TEXT,
            run_status INTEGER,
            push_id INTEGER REFERENCES pushes (id),
            source TEXT NOT NULL,
            attempts INTEGER NOT NULL DEFAULT 0,
            first_attempt_at TEXT,
            claimed_by TEXT,
            claimed_at TEXT,
            created_at TEXT NOT NULL,
            updated_at TEXT NOT NULL
        )
        """,
        "CREATE INDEX IF NOT EXISTS triggers_key ON triggers (account_id, job_id, sha)",
        "CREATE INDEX IF NOT EXISTS triggers_push ON triggers (push_id)",
        "CREATE INDEX IF NOT EXISTS triggers_state ON triggers (state)",
    ),
    # 2: the landing waiter of a push ("pid@host"), so a waiter that was killed is noticed
    ("ALTER TABLE pushes ADD COLUMN waiter TEXT",),
    # 3: every ref of every push that carried a trigger's commit (landing is judged per
    # commit: one landed ref is enough), and dbt Cloud refusing a token (for honest lines)
    (
        """
        CREATE TABLE IF NOT EXISTS trigger_refs (
            trigger_id INTEGER NOT NULL REFERENCES triggers (id),
            push_id INTEGER NOT NULL REFERENCES pushes (id),
            remote_ref TEXT NOT NULL,
            PRIMARY KEY (trigger_id, push_id, remote_ref)
        )
        """,
        "CREATE INDEX IF NOT EXISTS trigger_refs_push ON trigger_refs (push_id)",
        # the commits the `git push` command line named (a sha, a detached HEAD): the
        # waiter looks for the refs pre-commit did not show among tracking refs moved to them
        "ALTER TABLE pushes ADD COLUMN pushed_tips TEXT",
        # when a send of the trigger last ended without knowing whether dbt Cloud created the
        # run (no answer, a sender that died mid-send): it is not sent again for a while
        "ALTER TABLE triggers ADD COLUMN unknown_since TEXT",
        "INSERT OR IGNORE INTO trigger_refs (trigger_id, push_id, remote_ref)"
        " SELECT id, push_id, 'refs/heads/' || branch FROM triggers"
        " WHERE push_id IS NOT NULL AND branch IS NOT NULL",
        """
        CREATE TABLE IF NOT EXISTS token_refusals (
            host TEXT NOT NULL,
            account_id INTEGER NOT NULL,
            status INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            at TEXT NOT NULL,
            PRIMARY KEY (host, account_id)
        )
        """,
    ),
    # 4: how a followed run ended (the outcome lines and notifications), and when the
    # developer was told; runs that ended before this version are not told again
    (
        "ALTER TABLE triggers ADD COLUMN finished_at TEXT",
        "ALTER TABLE triggers ADD COLUMN duration_s REAL",
        "ALTER TABLE triggers ADD COLUMN failed_step_index INTEGER",
        "ALTER TABLE triggers ADD COLUMN failed_step TEXT",
        "ALTER TABLE triggers ADD COLUMN error_line TEXT",
        "ALTER TABLE triggers ADD COLUMN log_tail TEXT",
        "ALTER TABLE triggers ADD COLUMN told_at TEXT",
        "UPDATE triggers SET told_at = updated_at WHERE state = 'finished'",
        # who follows the run ("pid@host"; NOT_FOLLOWED: nobody will), so one process does
        "ALTER TABLE triggers ADD COLUMN followed_by TEXT",
        "ALTER TABLE triggers ADD COLUMN followed_at TEXT",
        # versions before 4 recorded the retired default host when none was configured:
        # an undelivered trigger goes to the host configured when it is sent (the same one
        # if cloud.getdbt.com is configured on purpose), never to that one by default
        "UPDATE triggers SET host = '' WHERE host = 'https://cloud.getdbt.com'"
        " AND run_id IS NULL AND state IN ('awaiting_push', 'pending', 'sending')",
    ),
)
assert len(_MIGRATIONS) == SCHEMA_VERSION


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (the default clock)."""
    return datetime.now(UTC)


class LedgerError(DatachonkError):
    """The ledger file cannot be used; the message names the file and what to do."""

    exit_code = ExitCode.USAGE

    def __init__(self, message: str, *, damaged: bool = False) -> None:
        super().__init__(message)
        #: the file is no SQLite database (or a damaged one): it can be moved aside
        self.damaged = damaged


class TriggerState(StrEnum):
    """Where a trigger is in its life; only PENDING (and stale SENDING) rows get sent."""

    AWAITING_PUSH = "awaiting_push"
    PENDING = "pending"
    SENDING = "sending"
    TRIGGERED = "triggered"
    FINISHED = "finished"
    PUSH_FAILED = "push_failed"


@dataclass(frozen=True)
class RunOutcome:
    """How a run ended, as the ledger keeps it for the outcome line and `history`.

    The failing step's text is dbt Cloud's (and the dbt project's): kept as received and
    sanitized where it is shown. `log_tail` holds the last lines of that step's logs.
    """

    status: int
    finished_at: datetime | None = None
    duration_s: float | None = None
    failed_step_index: int | None = None
    failed_step: str | None = None
    error_line: str | None = None
    log_tail: str | None = None


@dataclass(frozen=True)
class TriggerRecord:
    """One trigger of one dbt Cloud job for one commit, as the ledger holds it."""

    id: int
    #: "" when pushed while no host was configured, until it is sent (`record_host`)
    host: str
    account_id: int
    job_id: int
    sha: str
    branch: str | None
    request: TriggerRequest
    state: TriggerState
    reason: str | None
    run_id: int | None
    run_url: str | None
    run_status: int | None
    push_id: int | None
    source: str
    attempts: int
    first_attempt_at: datetime | None
    claimed_by: str | None
    claimed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    #: a send ended without an answer at this time: the run may yet appear in dbt Cloud
    unknown_since: datetime | None = None
    #: how the run ended, once a follower or a refresh saw its end
    outcome: RunOutcome | None = None
    #: when the developer was told that outcome (an outcome line, a `watch` to its end, the
    #: `history` table); None: not yet. A desktop notification does not count.
    told_at: datetime | None = None


@dataclass(frozen=True)
class PushRecord:
    """One `git push` the pre-push hook saw, so the waiter can tell when it has landed."""

    id: int
    remote_name: str
    remote_url: str
    git_pid: int | None
    tracking_before: dict[str, str]
    foreground: bool
    state: str
    reason: str | None
    created_at: datetime
    #: the landing waiter waiting for it ("pid@host"), once it has started
    waiter: str | None = None
    #: commits the `git push` command line named, besides local branch tips
    pushed_tips: tuple[str, ...] = ()


# --------------------------------------------------------------------------- helpers


def as_utc(moment: datetime) -> datetime:
    """The same moment in UTC; a naive time is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def _to_text(moment: datetime) -> str:
    """ISO text in UTC with a fixed shape, so text order is time order."""
    return as_utc(moment).isoformat(timespec="microseconds")


def _from_text(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _outcome(row: sqlite3.Row) -> RunOutcome | None:
    """The outcome columns of a finished trigger (None while its run has not ended)."""
    if row["state"] != TriggerState.FINISHED or row["run_status"] is None:
        return None
    return RunOutcome(
        status=row["run_status"],
        finished_at=_from_text(row["finished_at"]),
        duration_s=row["duration_s"],
        failed_step_index=row["failed_step_index"],
        failed_step=row["failed_step"],
        error_line=row["error_line"],
        log_tail=row["log_tail"],
    )


def _request_json(request: TriggerRequest) -> str:
    return json.dumps(dataclasses.asdict(request), sort_keys=True)


def _request_from_json(text: str) -> TriggerRequest:
    data = json.loads(text)
    if not isinstance(data, dict):
        raise ValueError("the stored request is not an object")
    known = {f.name for f in dataclasses.fields(TriggerRequest)}
    kwargs: dict[str, Any] = {k: v for k, v in data.items() if k in known}
    if kwargs.get("steps_override") is not None:
        kwargs["steps_override"] = tuple(kwargs["steps_override"])
    return TriggerRequest(**kwargs)


def _default_owner() -> str:
    return f"{os.getpid()}@{socket.gethostname()}"


def _who(owner: str | None) -> str:
    """`1234@host` as people read it: "waiter pid 1234" (and the host when it is another)."""
    pid, _, host = (owner or "").partition("@")
    if not pid.isdigit():
        return "another process"
    elsewhere = f" on {host}" if host and host != socket.gethostname() else ""
    return f"waiter pid {pid}{elsewhere}"


def _since(moment: datetime | None) -> str:
    return f" since {as_utc(moment):%H:%M:%S} UTC" if moment is not None else ""


def _is_empty_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False


def follower_gone(followed_by: str | None) -> bool:
    """Whether the follower `pid@host` of a run has ended (None: there never was one).
    One on another host is taken to live: its own machine's next push takes it over."""
    if followed_by is None:
        return True
    if followed_by == NOT_FOLLOWED:
        return False
    pid_text, _, host = followed_by.partition("@")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    return not pid_alive(int(pid_text))


def pid_alive(pid: int) -> bool:
    """Whether a process with this pid is running on this host.

    A zombie (ended, not yet reaped) counts as ended: a killed waiter stays one until its
    new parent reaps it, which a container's init may do only a second or so later, and
    until then its claims and pushes would look held.
    """
    if os.name == "nt":  # os.kill would terminate the process on Windows: rely on the timeout
        return True
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it exists, but belongs to another user
        return True
    except OSError:
        return True
    try:
        state = (Path("/proc") / str(pid) / "stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):  # no /proc (macOS): it exists
        return True
    return state != "Z"


# --------------------------------------------------------------------------- the ledger


class Ledger:
    """Transactional access to the ledger file; open one per process and close it."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
        busy_timeout: float = 10.0,
        stale_after: timedelta = timedelta(minutes=10),
    ) -> None:
        self.path = Path(path)
        self._clock = clock
        self._busy_timeout = busy_timeout
        self._stale_after = stale_after
        self._conn: sqlite3.Connection | None = None
        #: where a damaged file was moved before a new ledger was started, if it was
        self.moved_aside: Path | None = None
        # A new ledger takes its name only once its tables exist, so a 0-byte file is never
        # one being created by another process: it was truncated, and SQLite would silently
        # take it for a new, empty database (the dedup history gone).
        if not self.path.exists():
            self._create()
        elif _is_empty_file(self.path):
            self._repair("is empty (0 bytes)", lambda: _is_empty_file(self.path))
        try:
            self._open()
        except LedgerError as exc:
            if not exc.damaged:
                raise
            self._repair("is not a valid SQLite database", self._is_damaged)
            self._open()

    def _is_damaged(self) -> bool:
        try:
            with closing(sqlite3.connect(self.path, timeout=self._busy_timeout)) as conn:
                conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
        except sqlite3.DatabaseError as exc:
            return getattr(exc, "sqlite_errorname", "").startswith(
                ("SQLITE_NOTADB", "SQLITE_CORRUPT")
            )
        return False

    def _repair(self, what: str, still_damaged: Callable[[], bool]) -> None:
        """Move a damaged file aside and start a new ledger, once: processes opening it at
        the same moment take turns (a lock file beside it), and each looks again before
        acting, so the first repairs it and the others open the new one."""
        lock = self.path.with_name(self.path.name + ".repair-lock")
        try:
            handle = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        except OSError:
            handle = None
        try:
            if handle is not None:
                with suppress(ImportError, OSError):
                    import fcntl

                    fcntl.flock(handle, fcntl.LOCK_EX)
            if self.path.exists() and still_damaged():
                self._move_aside(what)
            if not self.path.exists():
                self._create()
        finally:
            if handle is not None:
                os.close(handle)  # closing it releases the lock

    def _create(self) -> None:
        """Write a new ledger under a temporary name and link it into place; another process
        that did the same first wins, and its file is used."""
        temporary = self.path.with_name(f".{self.path.name}.{os.getpid()}.{os.urandom(4).hex()}")
        try:
            with self._guard():
                self._conn = sqlite3.connect(temporary, isolation_level=None)
            try:
                self._ensure_schema()
            finally:
                self.close()
            private_file(temporary)
            with suppress(FileExistsError):
                os.link(temporary, self.path)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the ledger {self.path} ({exc.strerror or exc}); check that you"
                " may write to its folder"
            ) from None
        finally:
            with suppress(OSError):
                temporary.unlink()

    def _open(self) -> None:
        with self._guard():
            self._conn = sqlite3.connect(
                self.path, timeout=self._busy_timeout, isolation_level=None, check_same_thread=True
            )
        private_file(self.path)  # SQLite creates it with the umask's bits
        try:
            with self._guard():
                self._conn.row_factory = sqlite3.Row
                self._conn.execute("PRAGMA foreign_keys = ON")
            self._ensure_schema()
        except BaseException:
            self.close()
            raise

    def _move_aside(self, what: str) -> None:
        """Keep a damaged ledger (its dedup history) beside a new one, and say so: it is never
        silently replaced. dbt Cloud's run list still prevents a second run of a commit."""
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
        unique = f"{os.getpid()}-{os.urandom(2).hex()}"
        target = self.path.with_name(f"{self.path.name}.corrupt-{stamp}-{unique}")
        try:
            # only the file: a journal beside it may already be the new ledger's
            self.path.rename(target)
        except OSError as exc:
            raise LedgerError(
                f"the ledger {self.path} {what} and cannot be moved aside"
                f" ({exc.strerror or exc}); move it away by hand"
            ) from None
        self.moved_aside = target
        sys.stderr.write(
            f"datachonk: warning: the ledger {self.path} {what}; it was moved to {target}"
            " and a new one started (triggers pending in it are not sent)\n"
        )

    @classmethod
    def for_repo(
        cls,
        repo: pygit2.Repository,
        *,
        clock: Callable[[], datetime] = utcnow,
        busy_timeout: float = 10.0,
        stale_after: timedelta = timedelta(minutes=10),
    ) -> Ledger:
        """The ledger of `repo`'s clone: `<git common dir>/datachonk/ledger.sqlite3`."""
        folder = state_dir(repo)
        try:
            private_dir(folder)
        except OSError as exc:
            raise LedgerError(
                f"cannot create the ledger folder {folder} ({exc.strerror or exc}); "
                "check that you may write to the repository's .git folder"
            ) from None
        return cls(
            folder / LEDGER_FILE,
            clock=clock,
            busy_timeout=busy_timeout,
            stale_after=stale_after,
        )

    # ------------------------------------------------------------------ lifecycle

    def close(self) -> None:
        """Release the file; safe to call twice."""
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Ledger({str(self.path)!r})"

    # ------------------------------------------------------------------ plumbing

    @property
    def _db(self) -> sqlite3.Connection:
        if self._conn is None:
            raise LedgerError(f"the ledger {self.path} is closed; open it again")
        return self._conn

    @contextmanager
    def _guard(self) -> Iterator[None]:
        """Turn every sqlite3 error into a one-line LedgerError naming the file."""
        try:
            yield
        except sqlite3.Error as exc:
            raise self._translate(exc) from None

    def _translate(self, exc: sqlite3.Error) -> LedgerError:
        detail = " ".join(str(exc).split()) or type(exc).__name__
        name = getattr(exc, "sqlite_errorname", "") or ""
        where = f"the ledger {self.path}"
        if name.startswith(("SQLITE_NOTADB", "SQLITE_CORRUPT")):
            return LedgerError(
                f"{where} is not a valid SQLite database ({detail}); "
                "move it away, pending triggers in it are lost",
                damaged=True,
            )
        if name.startswith(("SQLITE_BUSY", "SQLITE_LOCKED")):
            return LedgerError(
                f"{where} is locked by another process (waited {self._busy_timeout:g} s); "
                "try again when that process has finished"
            )
        if name.startswith("SQLITE_CANTOPEN"):
            return LedgerError(
                f"cannot open {where} ({detail}); "
                "check that it is a file you may read and write, in a folder that exists"
            )
        if name.startswith(("SQLITE_READONLY", "SQLITE_PERM", "SQLITE_AUTH")):
            return LedgerError(f"{where} cannot be written ({detail}); check its permissions")
        if name.startswith(("SQLITE_IOERR", "SQLITE_FULL")):
            return LedgerError(f"{where} could not be read or written ({detail}); check the disk")
        return LedgerError(f"{where} failed: {detail}")

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """One `BEGIN IMMEDIATE` transaction: the check and the update are atomic."""
        conn = self._db
        with self._guard():
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
                conn.execute("COMMIT")
            except BaseException:
                if conn.in_transaction:
                    with suppress(sqlite3.Error):
                        conn.execute("ROLLBACK")
                raise

    def _ensure_schema(self) -> None:
        """Create the tables on first use; refuse a file written by a newer version."""
        with self._guard():
            version = self._user_version(self._db)
        self._check_version(version)
        if version == SCHEMA_VERSION:
            return
        with self._write() as conn:
            version = self._user_version(conn)
            self._check_version(version)
            for statements in _MIGRATIONS[version:]:
                for statement in statements:
                    conn.execute(statement)
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION:d}")

    @staticmethod
    def _user_version(conn: sqlite3.Connection) -> int:
        return int(conn.execute("PRAGMA user_version").fetchone()[0])

    def _check_version(self, version: int) -> None:
        if version > SCHEMA_VERSION:
            raise LedgerError(
                f"the ledger {self.path} was written by a newer datachonk-hooks "
                f"(schema {version}, this version knows up to {SCHEMA_VERSION}); "
                "upgrade datachonk-hooks, or move the file away and lose its pending triggers"
            )

    def _now(self) -> str:
        return _to_text(self._clock())

    def _trigger(self, row: sqlite3.Row) -> TriggerRecord:
        try:
            return TriggerRecord(
                id=row["id"],
                host=row["host"],
                account_id=row["account_id"],
                job_id=row["job_id"],
                sha=row["sha"],
                branch=row["branch"],
                request=_request_from_json(row["request"]),
                state=TriggerState(row["state"]),
                reason=row["reason"],
                run_id=row["run_id"],
                run_url=row["run_url"],
                run_status=row["run_status"],
                push_id=row["push_id"],
                source=row["source"],
                attempts=row["attempts"],
                first_attempt_at=_from_text(row["first_attempt_at"]),
                claimed_by=row["claimed_by"],
                claimed_at=_from_text(row["claimed_at"]),
                created_at=datetime.fromisoformat(row["created_at"]),
                updated_at=datetime.fromisoformat(row["updated_at"]),
                unknown_since=_from_text(row["unknown_since"]),
                outcome=_outcome(row),
                told_at=_from_text(row["told_at"]),
            )
        except (ValueError, TypeError) as exc:
            raise LedgerError(
                f"the ledger {self.path} holds an unreadable trigger (id {row['id']}: {exc}); "
                "move the file away, pending triggers in it are lost"
            ) from None

    def _push(self, row: sqlite3.Row) -> PushRecord:
        try:
            tracking = json.loads(row["tracking_before"])
            if not isinstance(tracking, dict):
                raise ValueError("tracking_before is not an object")
            return PushRecord(
                id=row["id"],
                remote_name=row["remote_name"],
                remote_url=row["remote_url"],
                git_pid=row["git_pid"],
                tracking_before={str(k): str(v) for k, v in tracking.items()},
                foreground=bool(row["foreground"]),
                state=row["state"],
                reason=row["reason"],
                created_at=datetime.fromisoformat(row["created_at"]),
                waiter=row["waiter"],
                pushed_tips=tuple(json.loads(row["pushed_tips"] or "[]")),
            )
        except (ValueError, TypeError) as exc:
            raise LedgerError(
                f"the ledger {self.path} holds an unreadable push (id {row['id']}: {exc}); "
                "move the file away, pending triggers in it are lost"
            ) from None

    def _select_triggers(self, where: str, params: tuple[object, ...] = ()) -> list[TriggerRecord]:
        with self._guard():
            rows = self._db.execute(f"SELECT * FROM triggers {where}", params).fetchall()
        return [self._trigger(row) for row in rows]

    def _must_get(self, conn: sqlite3.Connection, trigger_id: int) -> sqlite3.Row:
        row: sqlite3.Row | None = conn.execute(
            "SELECT * FROM triggers WHERE id = ?", (trigger_id,)
        ).fetchone()
        if row is None:
            raise LedgerError(f"there is no trigger {trigger_id} in the ledger {self.path}")
        return row

    def _update_trigger(
        self, conn: sqlite3.Connection, trigger_id: int, **values: object
    ) -> TriggerRecord:
        values["updated_at"] = self._now()
        columns = ", ".join(f"{name} = ?" for name in values)
        conn.execute(f"UPDATE triggers SET {columns} WHERE id = ?", (*values.values(), trigger_id))
        return self._trigger(self._must_get(conn, trigger_id))

    def _is_stale(self, claimed_by: str | None, claimed_at: str | None) -> bool:
        """A claim is stale when its owner died (on this host) or it has run out of time."""
        if claimed_at is None:
            return True
        if as_utc(self._clock()) - as_utc(datetime.fromisoformat(claimed_at)) > self._stale_after:
            return True
        pid_text, sep, host = (claimed_by or "").partition("@")
        if sep and host == socket.gethostname() and pid_text.isdigit():
            return not pid_alive(int(pid_text))
        return False

    # ------------------------------------------------------------------ pushes

    def record_push(
        self,
        *,
        remote_name: str,
        remote_url: str,
        git_pid: int | None,
        tracking_before: Mapping[str, str],
        foreground: bool,
        pushed_tips: Sequence[str] = (),
    ) -> PushRecord:
        """Remember a push the hook saw, in state "waiting", before it lands."""
        now = self._now()
        with self._write() as conn:
            cursor = conn.execute(
                "INSERT INTO pushes (remote_name, remote_url, git_pid, tracking_before,"
                " foreground, state, reason, created_at, updated_at, pushed_tips)"
                " VALUES (?, ?, ?, ?, ?, 'waiting', NULL, ?, ?, ?)",
                (
                    remote_name,
                    remote_url,
                    git_pid,
                    json.dumps(dict(tracking_before), sort_keys=True),
                    int(foreground),
                    now,
                    now,
                    json.dumps(list(pushed_tips)),
                ),
            )
            row = conn.execute("SELECT * FROM pushes WHERE id = ?", (cursor.lastrowid,)).fetchone()
        return self._push(row)

    @staticmethod
    def _push_exists(conn: sqlite3.Connection, push_id: int) -> bool:
        return conn.execute("SELECT 1 FROM pushes WHERE id = ?", (push_id,)).fetchone() is not None

    def get_push(self, push_id: int) -> PushRecord | None:
        with self._guard():
            row = self._db.execute("SELECT * FROM pushes WHERE id = ?", (push_id,)).fetchone()
        return None if row is None else self._push(row)

    def pushes_after(self, push_id: int) -> list[PushRecord]:
        """Pushes recorded after `push_id` (0 for all), oldest first."""
        with self._guard():
            rows = self._db.execute(
                "SELECT * FROM pushes WHERE id > ? ORDER BY id", (push_id,)
            ).fetchall()
        return [self._push(row) for row in rows]

    def last_push_id(self) -> int:
        with self._guard():
            row = self._db.execute("SELECT COALESCE(MAX(id), 0) AS last FROM pushes").fetchone()
        return int(row["last"])

    def _settle_push(
        self,
        push_id: int,
        push_state: str,
        reason: str | None,
        trigger_state: TriggerState,
        *,
        only_waiting: bool = False,
    ) -> list[TriggerRecord]:
        """Move a push to its final state and its AWAITING_PUSH triggers along with it.

        A trigger another push still waits for is left to that push when this one failed or
        expired: its commit may yet land through the other, whose waiter judges it. With
        `only_waiting`, a push something else has settled meanwhile is left alone.
        """
        now = self._now()
        with self._write() as conn:
            found = conn.execute(
                "UPDATE pushes SET state = ?, reason = ?, updated_at = ? WHERE id = ?"
                + (" AND state = 'waiting'" if only_waiting else ""),
                (push_state, reason, now, push_id),
            )
            if found.rowcount == 0:
                if only_waiting and self._push_exists(conn, push_id):
                    return []
                raise LedgerError(f"there is no push {push_id} in the ledger {self.path}")
            ids = self._awaiting_ids(conn, push_id)
            if push_state != "landed":
                ids = [i for i in ids if not self._waited_for_elsewhere(conn, i, push_id)]
            return [
                self._update_trigger(conn, trigger_id, state=trigger_state.value, reason=reason)
                for trigger_id in ids
            ]

    _PUSH_TRIGGERS = (
        "(push_id = ? OR id IN (SELECT trigger_id FROM trigger_refs WHERE push_id = ?))"
    )

    def _awaiting_ids(self, conn: sqlite3.Connection, push_id: int) -> list[int]:
        return [
            int(row["id"])
            for row in conn.execute(
                f"SELECT id FROM triggers WHERE {self._PUSH_TRIGGERS} AND state = ? ORDER BY id",
                (push_id, push_id, TriggerState.AWAITING_PUSH.value),
            )
        ]

    @staticmethod
    def _waited_for_elsewhere(
        conn: sqlite3.Connection, trigger_id: int, push_id: int | None
    ) -> bool:
        """Whether a push (other than `push_id`) that carried this trigger's commit is still
        in flight."""
        row = conn.execute(
            "SELECT 1 FROM trigger_refs JOIN pushes ON pushes.id = trigger_refs.push_id"
            " WHERE trigger_refs.trigger_id = ? AND trigger_refs.push_id IS NOT ?"
            " AND pushes.state = 'waiting' LIMIT 1",
            (trigger_id, push_id),
        ).fetchone()
        return row is not None

    def settle_judged(
        self,
        push_id: int,
        landed: Mapping[int, str | None],
        failed: Sequence[int],
        reason: str | None,
    ) -> list[TriggerRecord]:
        """Record a waiter's judgement of its push in one transaction: the push's state, the
        triggers whose commit landed (id -> the branch it landed on, when another than its
        own) become PENDING, and those that did not become PUSH_FAILED unless another push
        of the commit is still in flight. Returns the triggers that failed.

        One transaction, the push's state first: of two waiters judging one commit at once,
        the later sees the earlier's push settled, so the commit is never left waiting for
        a push that is over.
        """
        state = "failed" if failed and not landed else "landed"
        now = self._now()
        with self._write() as conn:
            conn.execute(
                "UPDATE pushes SET state = ?, reason = ?, updated_at = ? WHERE id = ?",
                (state, reason if failed else None, now, push_id),
            )
            for trigger_id, branch in landed.items():
                row = self._must_get(conn, trigger_id)
                if row["state"] == TriggerState.AWAITING_PUSH:
                    self._update_trigger(
                        conn,
                        trigger_id,
                        state=TriggerState.PENDING.value,
                        reason=None,
                        **self._branch_change(row, branch),
                    )
            return [
                record
                for trigger_id in failed
                if (record := self._fail_unless_carried(conn, trigger_id, push_id, reason or ""))
            ]

    def _fail_unless_carried(
        self, conn: sqlite3.Connection, trigger_id: int, push_id: int | None, reason: str
    ) -> TriggerRecord | None:
        """PUSH_FAILED for a trigger not sent yet, unless a push other than `push_id` that
        carried its commit is still in flight; the failed record, or None."""
        row = self._must_get(conn, trigger_id)
        if row["state"] not in (TriggerState.AWAITING_PUSH, TriggerState.PENDING):
            return None
        if self._waited_for_elsewhere(conn, trigger_id, push_id):
            return None
        return self._update_trigger(
            conn, trigger_id, state=TriggerState.PUSH_FAILED.value, reason=reason
        )

    def retarget_branch(self, trigger_id: int, branch: str) -> TriggerRecord:
        """A trigger not sent yet is asked for `branch`, where its commit really landed."""
        return self._move(
            trigger_id,
            (TriggerState.AWAITING_PUSH, TriggerState.PENDING),
            **self._branch_change(self._must_get(self._db, trigger_id), branch),
        )

    def record_host(self, trigger_id: int, host: str) -> TriggerRecord:
        """Note the host a trigger recorded without one (`host` "": none was configured
        when it was pushed) was sent to. Only an empty host is filled, and only by the
        sender that got the run: while pending, the row keeps "" so that each attempt uses
        the host configured at that time, and a mistyped host is never kept."""
        with self._write() as conn:
            conn.execute(
                "UPDATE triggers SET host = ?, updated_at = ? WHERE id = ? AND host = ''",
                (host, self._now(), trigger_id),
            )
            return self._trigger(self._must_get(conn, trigger_id))

    @staticmethod
    def _branch_change(row: sqlite3.Row, branch: str | None) -> dict[str, object]:
        if branch is None or branch == row["branch"]:
            return {}
        request = dataclasses.replace(_request_from_json(row["request"]), git_branch=branch)
        return {"branch": branch, "request": _request_json(request)}

    def trigger_did_not_land(
        self, trigger_id: int, push_id: int | None, reason: str
    ) -> TriggerRecord:
        """No ref that carried the commit reached the remote: PUSH_FAILED, unless a push
        other than `push_id` (None: any push) that carried it is still in flight."""
        with self._write() as conn:
            failed = self._fail_unless_carried(conn, trigger_id, push_id, reason)
            return failed or self._trigger(self._must_get(conn, trigger_id))

    def refs_of(self, trigger_id: int) -> list[tuple[PushRecord, str]]:
        """Every (push, remote ref) that carried the trigger's commit, oldest push first."""
        with self._guard():
            rows = self._db.execute(
                "SELECT pushes.*, trigger_refs.remote_ref AS carried_ref FROM trigger_refs"
                " JOIN pushes ON pushes.id = trigger_refs.push_id"
                " WHERE trigger_refs.trigger_id = ? ORDER BY pushes.id, trigger_refs.remote_ref",
                (trigger_id,),
            ).fetchall()
        return [(self._push(row), str(row["carried_ref"])) for row in rows]

    def mark_push_landed(self, push_id: int) -> list[TriggerRecord]:
        """The push reached the remote: its triggers become deliverable; returns them."""
        return self._settle_push(push_id, "landed", None, TriggerState.PENDING)

    def mark_push_failed(self, push_id: int, reason: str) -> list[TriggerRecord]:
        """The push was rejected or failed: its triggers are never sent; returns them."""
        return self._settle_push(push_id, "failed", reason, TriggerState.PUSH_FAILED)

    def expire_push(self, push_id: int, reason: str) -> list[TriggerRecord]:
        """The waiter gave up before knowing: keep the triggers PENDING for `retry`."""
        return self._settle_push(push_id, "expired", reason, TriggerState.PENDING)

    def set_push_waiter(self, push_id: int, owner: str | None = None) -> None:
        """Note the landing waiter of a push (`pid@host`, default this process): `retry`
        tells by it a push whose waiter was killed from one that is still waited for."""
        with self._write() as conn:
            conn.execute(
                "UPDATE pushes SET waiter = ?, updated_at = ? WHERE id = ?",
                (owner or _default_owner(), self._now(), push_id),
            )

    def _push_abandoned(self, row: sqlite3.Row, now: datetime) -> bool:
        """Whether nobody will settle this push any more, so `retry` must.

        A push stays "waiting" only while its landing waiter runs, and the waiter records
        itself (`pid@host`) when it starts. A waiting push whose `git push` (pid recorded by
        the hook) still runs is never abandoned: it may still land. Once that has ended, it
        is abandoned when
        - its waiter has ended: it was killed or crashed before settling the push;
        - no waiter has recorded itself WAITER_START_GRACE after the push was recorded: it
          died while starting (without a known `git push`, a hook run by hand, this waits
          `stale_after`, 10 minutes, as long as a waiter waits for a push by default);
        Pids can only be checked on this host: a push whose waiter runs on another one is
        abandoned after `stale_after`. And any push is abandoned after ABANDONED_AFTER (a
        day), whatever the pids say, as pids are recycled. Expiring one is safe even if a
        waiter still lives: once `git push` has ended, whether the push landed is settled,
        and the ledger's claim lets only one process send a trigger.
        """
        if row["state"] != "waiting":
            return False
        age = now - as_utc(datetime.fromisoformat(row["created_at"]))
        if age > ABANDONED_AFTER:
            return True
        pid_text, sep, host = (row["waiter"] or "").partition("@")
        if sep and host != socket.gethostname():
            return age > self._stale_after
        git_pid = row["git_pid"]
        if git_pid is not None and pid_alive(int(git_pid)):
            return False
        if sep and pid_text.isdigit():
            return not pid_alive(int(pid_text))
        return age > (WAITER_START_GRACE if git_pid is not None else self._stale_after)

    def abandoned_pushes(self) -> list[PushRecord]:
        """Pushes still "waiting" that no waiter will settle (see `_push_abandoned`)."""
        now = as_utc(self._clock())
        with self._guard():
            rows = self._db.execute(
                "SELECT * FROM pushes WHERE state = 'waiting' ORDER BY id"
            ).fetchall()
        return [self._push(row) for row in rows if self._push_abandoned(row, now)]

    def expire_abandoned_pushes(self, reason: str) -> list[PushRecord]:
        """Expire the abandoned pushes: their triggers become PENDING for `retry`, which
        checks that the push landed before sending (as for a push the waiter gave up on)."""
        expired = []
        for push in self.abandoned_pushes():
            self._settle_push(push.id, "expired", reason, TriggerState.PENDING, only_waiting=True)
            expired.append(push)
        return expired

    def triggers_for_push(self, push_id: int) -> list[TriggerRecord]:
        """The triggers whose commit this push carried (recorded by it, or linked to it)."""
        return self._select_triggers(f"WHERE {self._PUSH_TRIGGERS} ORDER BY id", (push_id, push_id))

    # ------------------------------------------------------------------ triggers

    def add_trigger(
        self,
        *,
        host: str,
        account_id: int,
        job_id: int,
        request: TriggerRequest,
        source: str,
        push_id: int | None = None,
        remote_ref: str | None = None,
        awaiting_push: bool = False,
        force: bool = False,
    ) -> tuple[TriggerRecord, bool]:
        """Record a trigger unless its (account, job, sha) is already known.

        Returns the record and whether it is new (or re-armed). A row left by a failed push
        is re-armed, because the same commit pushed again must trigger; `force` always adds.
        With `push_id`, the push's ref (`remote_ref`, default the request's branch) is noted
        as carrying the commit, also for a known row not sent yet: landing is judged per
        commit, and any ref that carried it and landed lets it be sent.
        """
        sha = request.git_sha
        if not sha:
            raise ValueError("a trigger needs the commit's sha (request.git_sha)")
        if source not in SOURCES:
            raise ValueError(f"source must be one of {sorted(SOURCES)}, not {source!r}")
        state = TriggerState.AWAITING_PUSH if awaiting_push else TriggerState.PENDING
        if remote_ref is None and request.git_branch:
            remote_ref = f"refs/heads/{request.git_branch}"
        now = self._now()
        with self._write() as conn:
            if push_id is not None and not self._push_exists(conn, push_id):
                raise LedgerError(f"there is no push {push_id} in the ledger {self.path}")

            def link(trigger_id: int) -> None:
                if push_id is not None and remote_ref:
                    conn.execute(
                        "INSERT OR IGNORE INTO trigger_refs (trigger_id, push_id, remote_ref)"
                        " VALUES (?, ?, ?)",
                        (trigger_id, push_id, remote_ref),
                    )

            if not force:
                rows = conn.execute(
                    "SELECT * FROM triggers WHERE account_id = ? AND job_id = ? AND sha = ?"
                    " ORDER BY (state = ?), id DESC",
                    (account_id, job_id, sha, TriggerState.PUSH_FAILED.value),
                ).fetchall()
                if rows and rows[0]["state"] != TriggerState.PUSH_FAILED:
                    if rows[0]["state"] in (TriggerState.AWAITING_PUSH, TriggerState.PENDING):
                        link(int(rows[0]["id"]))
                    return self._trigger(rows[0]), False
                if rows:
                    record = self._update_trigger(
                        conn,
                        int(rows[0]["id"]),
                        host=host,
                        branch=request.git_branch,
                        request=_request_json(request),
                        state=state.value,
                        reason=None,
                        push_id=push_id,
                        source=source,
                    )
                    link(record.id)
                    return record, True
            cursor = conn.execute(
                "INSERT INTO triggers (host, account_id, job_id, sha, branch, request, state,"
                " push_id, source, attempts, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?)",
                (
                    host,
                    account_id,
                    job_id,
                    sha,
                    request.git_branch,
                    _request_json(request),
                    state.value,
                    push_id,
                    source,
                    now,
                    now,
                ),
            )
            assert cursor.lastrowid is not None
            link(cursor.lastrowid)
            return self._trigger(self._must_get(conn, cursor.lastrowid)), True

    def claim(self, trigger_id: int, owner: str | None = None) -> TriggerRecord | None:
        """Take a trigger for sending; None when another process holds it or it is not due.

        A PENDING trigger, or a SENDING one whose claim is stale (its owner died, or it has
        held it longer than `stale_after`), becomes SENDING for `owner`. Only one caller can
        win: the check and the update run in one IMMEDIATE transaction.
        """
        owner = owner or _default_owner()
        with self._write() as conn:
            row = conn.execute("SELECT * FROM triggers WHERE id = ?", (trigger_id,)).fetchone()
            if row is None:
                return None
            state = row["state"]
            if state == TriggerState.SENDING:
                if not self._is_stale(row["claimed_by"], row["claimed_at"]):
                    return None
            elif state != TriggerState.PENDING:
                return None
            now = self._now()
            return self._update_trigger(
                conn,
                trigger_id,
                state=TriggerState.SENDING.value,
                attempts=int(row["attempts"]) + 1,
                first_attempt_at=row["first_attempt_at"] or now,
                claimed_by=owner,
                claimed_at=now,
            )

    def _move(
        self,
        trigger_id: int,
        only_from: tuple[TriggerState, ...] | None,
        **changes: object,
    ) -> TriggerRecord:
        """Change one trigger in a transaction; with `only_from`, other states stay as they are."""
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            if only_from is not None and row["state"] not in only_from:
                return self._trigger(row)
            return self._update_trigger(conn, trigger_id, **changes)

    def mark_triggered(
        self, trigger_id: int, *, run_id: int, run_url: str | None, run_status: int
    ) -> TriggerRecord:
        """dbt Cloud accepted the trigger: record its run and release the claim."""
        return self._move(
            trigger_id,
            None,
            state=TriggerState.TRIGGERED.value,
            reason=None,
            run_id=run_id,
            run_url=run_url,
            run_status=run_status,
            claimed_by=None,
            claimed_at=None,
            unknown_since=None,
        )

    def mark_pending(
        self, trigger_id: int, reason: str, *, unknown_since: datetime | None = None
    ) -> TriggerRecord:
        """A delivery failed: back to PENDING with the reason, so `retry` sends it later.

        Only a SENDING or PENDING trigger moves; one whose run is already known (or whose
        push failed) is returned unchanged, so a late failure never causes a second run.
        `unknown_since`: when the last send without an answer went out (dbt Cloud may still
        create its run).
        """
        from datachonk_hooks.sanitize import sanitize  # the reason is mostly dbt Cloud's words

        changes: dict[str, object] = {
            "state": TriggerState.PENDING.value,
            "reason": sanitize(reason),
            "claimed_by": None,
            "claimed_at": None,
        }
        if unknown_since is not None:
            changes["unknown_since"] = _to_text(unknown_since)
        return self._move(trigger_id, (TriggerState.SENDING, TriggerState.PENDING), **changes)

    def update_run_status(self, trigger_id: int, run_status: int) -> TriggerRecord:
        """A status seen while watching; a terminal one (10, 20, 30) finishes the trigger."""
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            if row["state"] == TriggerState.FINISHED:
                return self._trigger(row)  # a finished run never changes again
            if run_status in TERMINAL_RUN_STATUSES:
                return self._update_trigger(
                    conn,
                    trigger_id,
                    state=TriggerState.FINISHED.value,
                    run_status=run_status,
                    claimed_by=None,
                    claimed_at=None,
                )
            return self._update_trigger(conn, trigger_id, run_status=run_status)

    def record_outcome(
        self, trigger_id: int, outcome: RunOutcome, *, told: bool = False
    ) -> TriggerRecord:
        """A run's end (see `finish_run`); the record as it is now."""
        return self.finish_run(trigger_id, outcome, told=told)[0]

    def finish_run(
        self, trigger_id: int, outcome: RunOutcome, *, told: bool = False
    ) -> tuple[TriggerRecord, bool]:
        """A run's end, with what the outcome line needs; (the record, whether this call
        recorded the end). `told`: the developer saw it end (a foreground `watch`), so it is
        not told again. A first recorded end is kept: dbt Cloud never changes a finished
        run, and two processes may see the same end (only the first notifies). A status
        that is not an end is just noted."""
        if outcome.status not in TERMINAL_RUN_STATUSES:
            return self.update_run_status(trigger_id, outcome.status), False
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            told_at = self._now() if told else row["told_at"]
            if row["state"] == TriggerState.FINISHED and row["finished_at"] is not None:
                return self._update_trigger(conn, trigger_id, told_at=told_at), False
            finished = self._update_trigger(
                conn,
                trigger_id,
                state=TriggerState.FINISHED.value,
                run_status=outcome.status,
                claimed_by=None,
                claimed_at=None,
                finished_at=_to_text(outcome.finished_at or self._clock()),
                duration_s=outcome.duration_s,
                failed_step_index=outcome.failed_step_index,
                failed_step=outcome.failed_step,
                error_line=outcome.error_line,
                log_tail=outcome.log_tail,
                told_at=told_at,
            )
            return finished, True

    def triggers_for_run(self, run_id: int) -> list[TriggerRecord]:
        return self._select_triggers("WHERE run_id = ? ORDER BY id", (run_id,))

    def follow(self, trigger_id: int, owner: str | None = None) -> bool:
        """Claim following a run to its end for `owner` (default: this process); False when
        a live process follows it already, or it has ended or is not to be followed."""
        owner = owner or _default_owner()
        with self._write() as conn:
            row = self._must_get(conn, trigger_id)
            if row["state"] != TriggerState.TRIGGERED or row["run_id"] is None:
                return False
            current = row["followed_by"]
            if current not in (None, owner) and not follower_gone(current):
                return False
            conn.execute(
                "UPDATE triggers SET followed_by = ?, followed_at = ? WHERE id = ?",
                (owner, self._now(), trigger_id),
            )
            return True

    def stop_following(self, trigger_id: int) -> None:
        """Nobody follows this run any more (`follow: false`, or the time limit passed):
        no waiter takes it over; `history` asks dbt Cloud about it."""
        with self._write() as conn:
            conn.execute(
                "UPDATE triggers SET followed_by = ?, followed_at = ? WHERE id = ?",
                (NOT_FOLLOWED, self._now(), trigger_id),
            )

    def untold(self) -> list[TriggerRecord]:
        """Runs that ended since the developer was last told, oldest first."""
        return self._select_triggers(
            "WHERE state = ? AND told_at IS NULL ORDER BY updated_at, id",
            (TriggerState.FINISHED.value,),
        )

    def mark_told(self, trigger_ids: Sequence[int]) -> list[int]:
        """Mark outcomes as told; returns the ids this call marked (another process telling
        at the same moment gets the others), so each outcome is told once."""
        marked = []
        with self._write() as conn:
            now = self._now()
            for trigger_id in trigger_ids:
                done = conn.execute(
                    "UPDATE triggers SET told_at = ? WHERE id = ? AND told_at IS NULL",
                    (now, trigger_id),
                )
                if done.rowcount:
                    marked.append(trigger_id)
        return marked

    def unfinished_runs(self, limit: int = 50) -> list[TriggerRecord]:
        """Triggered runs whose end this ledger has not seen, newest first."""
        return self._select_triggers(
            "WHERE state = ? AND run_id IS NOT NULL ORDER BY id DESC LIMIT ?",
            (TriggerState.TRIGGERED.value, limit),
        )

    def unfollowed_runs(self, max_age: timedelta = FOLLOW_FOR) -> list[TriggerRecord]:
        """Unfinished runs of pushes younger than `max_age` that nobody follows although
        someone should (a follower that was killed, or a run delivered by `retry`), oldest
        first: the next waiter takes them over."""
        since = _to_text(as_utc(self._clock()) - max_age)
        with self._guard():
            rows = self._db.execute(
                "SELECT id, followed_by FROM triggers WHERE state = ? AND run_id IS NOT NULL"
                " AND push_id IS NOT NULL AND created_at >= ? ORDER BY id",
                (TriggerState.TRIGGERED.value, since),
            ).fetchall()
        ids = [row["id"] for row in rows if follower_gone(row["followed_by"])]
        return [record for i in ids if (record := self.get(i)) is not None]

    # ------------------------------------------------------------------ queries

    def deliverable(self) -> list[TriggerRecord]:
        """PENDING triggers, SENDING ones with a stale claim and AWAITING_PUSH ones of an
        abandoned push (`expire_abandoned_pushes` makes those pending), oldest first."""
        abandoned = {push.id for push in self.abandoned_pushes()}
        with self._guard():
            rows = self._db.execute(
                "SELECT * FROM triggers WHERE state IN (?, ?, ?) ORDER BY created_at, id",
                (
                    TriggerState.PENDING.value,
                    TriggerState.SENDING.value,
                    TriggerState.AWAITING_PUSH.value,
                ),
            ).fetchall()
        return [
            self._trigger(row)
            for row in rows
            if row["state"] == TriggerState.PENDING
            or (row["state"] == TriggerState.AWAITING_PUSH and row["push_id"] in abandoned)
            or (
                row["state"] == TriggerState.SENDING
                and self._is_stale(row["claimed_by"], row["claimed_at"])
            )
        ]

    def in_flight(self) -> list[tuple[TriggerRecord, str]]:
        """Triggers another live process is working on, with what it is doing: being sent
        (a claim that is not stale), or waiting for its push to land (a push not abandoned).
        `retry` shows these instead of saying there is nothing to do."""
        abandoned = {push.id for push in self.abandoned_pushes()}
        found = []
        for record in self._select_triggers(
            "WHERE state IN (?, ?) ORDER BY id",
            (TriggerState.SENDING.value, TriggerState.AWAITING_PUSH.value),
        ):
            if record.state is TriggerState.SENDING:
                claimed_at = _to_text(record.claimed_at) if record.claimed_at else None
                if self._is_stale(record.claimed_by, claimed_at):
                    continue
                found.append(
                    (record, f"being sent by {_who(record.claimed_by)}{_since(record.claimed_at)}")
                )
            elif record.push_id is not None and record.push_id not in abandoned:
                push = self.get_push(record.push_id)
                if push is not None and push.state == "waiting":
                    waiter = f" ({_who(push.waiter)})" if push.waiter else ""
                    found.append(
                        (
                            record,
                            f"waiting for its push to {push.remote_name} to land{waiter}"
                            f"{_since(push.created_at)}",
                        )
                    )
        return found

    def find(self, account_id: int, job_id: int, sha: str) -> TriggerRecord | None:
        """The newest trigger for this (account, job, sha), whatever its state."""
        found = self._select_triggers(
            "WHERE account_id = ? AND job_id = ? AND sha = ? ORDER BY id DESC LIMIT 1",
            (account_id, job_id, sha),
        )
        return found[0] if found else None

    def get(self, trigger_id: int) -> TriggerRecord | None:
        found = self._select_triggers("WHERE id = ?", (trigger_id,))
        return found[0] if found else None

    def history(self, limit: int = 50) -> list[TriggerRecord]:
        """The latest triggers, newest first."""
        return self._select_triggers("ORDER BY id DESC LIMIT ?", (limit,))

    # ------------------------------------------------------------------ the token

    def note_token_refused(self, host: str, account_id: int, status: int, fingerprint: str) -> None:
        """dbt Cloud answered 401/403 to the token with this fingerprint (`Token.fingerprint`,
        a one-way digest): the next push with the same token says so."""
        with self._write() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO token_refusals (host, account_id, status, fingerprint,"
                " at) VALUES (?, ?, ?, ?, ?)",
                (host, account_id, status, fingerprint, self._now()),
            )

    def note_token_accepted(self, host: str, account_id: int) -> None:
        """A request with the token went through: forget an earlier refusal."""
        with self._write() as conn:
            conn.execute(
                "DELETE FROM token_refusals WHERE host = ? AND account_id = ?",
                (host, account_id),
            )

    def token_refused(self, host: str, account_id: int, fingerprint: str) -> int | None:
        """The HTTP status of dbt Cloud's last refusal of this token, if it refused it."""
        with self._guard():
            row = self._db.execute(
                "SELECT status FROM token_refusals WHERE host = ? AND account_id = ?"
                " AND fingerprint = ?",
                (host, account_id, fingerprint),
            ).fetchone()
        return None if row is None else int(row["status"])


LEDGER_FILE = "ledger.sqlite3"


def state_dir(repo: pygit2.Repository) -> Path:
    """`<git common dir>/datachonk`: the package's state, shared by all worktrees."""
    return common_dir(repo) / "datachonk"


def ledger_file(repo: pygit2.Repository) -> Path:
    """Where the clone's ledger is (it may not exist yet)."""
    return state_dir(repo) / LEDGER_FILE


def common_dir(repo: pygit2.Repository) -> Path:
    """The git common dir: `.git` of the main worktree, shared by every linked worktree.

    pygit2 gives a linked worktree's own folder (`.git/worktrees/<name>/`); like
    `git rev-parse --git-common-dir`, follow the `commondir` file found there.
    """
    git_dir = Path(repo.path)
    pointer = git_dir / "commondir"
    try:
        target = pointer.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return git_dir.resolve()
    except OSError as exc:
        raise LedgerError(f"cannot read {pointer} ({exc.strerror or exc})") from None
    return (git_dir / target).resolve() if target else git_dir.resolve()
