"""The ledger file itself: creating it, opening it, repairing a damaged one, its schema
version, and the transactions every operation runs in.

The operations (`pushes`, `triggers`, `runs`, `tokens`) build on `LedgerStore`; they only
ever see the connection through `_write` (one `BEGIN IMMEDIATE` transaction) and `_guard`
(every sqlite3 error as one `LedgerError` line that names the file).
"""

from __future__ import annotations

import os
import sqlite3
import sys
from collections.abc import Callable, Iterator
from contextlib import closing, contextmanager, suppress
from datetime import UTC, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from datachonk_hooks.delivery.ledger.owners import STALE_AFTER
from datachonk_hooks.delivery.ledger.records import LedgerError, to_text, utcnow
from datachonk_hooks.delivery.ledger.schema import _MIGRATIONS, SCHEMA_VERSION
from datachonk_hooks.fileio import private_file


def _is_empty_file(path: Path) -> bool:
    try:
        return path.is_file() and path.stat().st_size == 0
    except OSError:
        return False


class LedgerStore:
    """One open ledger file; `Ledger` adds the operations."""

    def __init__(
        self,
        path: Path,
        *,
        clock: Callable[[], datetime] = utcnow,
        busy_timeout: float = 10.0,
        stale_after: timedelta = STALE_AFTER,
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
                f"{where} is locked by another process (waited {self._busy_timeout:.2g} s); "
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
        return to_text(self._clock())
