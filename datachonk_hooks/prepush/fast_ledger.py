"""What the fast path asks the ledger: whether it holds work for the slow path (a trigger to
deliver, a run whose follower died), and how runs ended that nobody was told about yet.

Asking SQLite costs its import (7 ms), so a ledger seen idle is remembered in the cache by
its file signature (until its first resting trigger becomes due); the SQL itself is the
`Ledger`'s own (`delivery.ledger.backlog`).
"""

from __future__ import annotations

import os

from datachonk_hooks.delivery.ledger.backlog import (
    DUE_FOR_A_PUSH,
    LEDGER_FILE,
    PENDING_REST_SECONDS,
    RUNS_TO_FOLLOW,
    STATE_DIR,
    UNTOLD,
)
from datachonk_hooks.prepush.fast_cache import State

#: `typing` and `collections.abc` cost the hook more than a git call: the annotations are
#: strings (`from __future__ import annotations`), and type checkers take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable

    from datachonk_hooks.prepush.fast_cache import Cache

_SQLITE_MAGIC = b"SQLite format 3\0"


def tell_outcomes(echo: Callable[[str], None]) -> None:
    """Print the outcome lines of runs that ended since the last push or command, from the
    ledger the fast path found them in, without the slow path's imports (pygit2)."""
    if State.untold is None:
        return
    from pathlib import Path

    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.monitor.outcomes import tell

    with Ledger(Path(State.untold), busy_timeout=1.0) as ledger:
        tell(ledger, echo)
    State.untold = None


def ledger_is_idle() -> bool:
    """True when the fast path found no trigger in the ledger the hook could deliver, so the
    slow path need not open the ledger for a push that records nothing. The rest a pending
    trigger gets spares only the fast path: a slow path already paid for (a push of the
    settings, say, after fixing what kept the trigger pending) hands it over."""
    return State.backlog is False and not State.resting


def has_backlog(common_dir: str, cache: Cache) -> bool:
    """Whether the ledger may hold work for the slow path (True when unsure): a trigger due
    for delivery (a pending one once it has rested `PENDING_REST_SECONDS` since its last
    attempt), or a run nobody follows any more (its waiter was killed). Outcomes to tell
    are noted in `State.untold`: the fast path tells them itself (`tell_outcomes`).

    Asking SQLite costs its import (7 ms), so a ledger seen idle is remembered by its file
    signature (`ledger_signature`); only a changed ledger is queried again, or one whose
    resting trigger has become due since (no write marks that moment: the cache keeps it).
    A ledger with runs being followed is not remembered: a follower can die without a write.
    """
    path = os.path.join(common_dir, STATE_DIR, LEDGER_FILE)
    if not os.path.exists(path):
        return False
    signature = ledger_signature(path)
    if signature is not None and signature == cache.idle_ledger:
        if not cache.resting_until:
            return False
        import time

        if time.time() < cache.resting_until:
            State.resting = True
            return False
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from datachonk_hooks.delivery.ledger.owners import FOLLOW_FOR, follower_gone

    now = datetime.now(UTC)
    since = (now - FOLLOW_FOR).isoformat(timespec="microseconds")
    rest = timedelta(seconds=PENDING_REST_SECONDS)
    try:
        uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=0.5)
        try:
            due = f"SELECT 1 FROM triggers WHERE {DUE_FOR_A_PUSH} LIMIT 1"
            row = conn.execute(due, ((now - rest).isoformat(timespec="microseconds"),)).fetchone()
            oldest = "SELECT MIN(updated_at) FROM triggers WHERE state = 'pending'"
            (rests_since,) = conn.execute(oldest).fetchone()
            untold = conn.execute(f"SELECT 1 FROM triggers WHERE {UNTOLD} LIMIT 1").fetchone()
            followers = [followed_by for _, followed_by in conn.execute(RUNS_TO_FOLLOW, (since,))]
        finally:
            conn.close()
        until = (
            0
            if rests_since is None
            else int((datetime.fromisoformat(rests_since) + rest).timestamp())
        )
    except (sqlite3.Error, ValueError, TypeError):
        return True
    State.resting = until > 0
    if row is not None or any(follower_gone(f) for f in followers):
        return True
    if untold is not None:
        State.untold = path
        return False
    # taken before the query: a write changes it; a resting trigger becomes due at `until`
    if signature is not None and not followers:
        cache.idle_ledger, cache.resting_until = signature, until
        cache.dirty = True
    return False


def ledger_signature(path: str) -> str | None:
    """Identity, size, mtime and SQLite's file change counter (header offset 24, bumped by
    every transaction that writes, in rollback-journal mode) of the ledger file; None when
    it cannot vouch for the content: WAL mode, a journal left behind, not a SQLite file."""
    if os.path.exists(f"{path}-journal") or os.path.exists(f"{path}-wal"):
        return None
    try:
        with open(path, "rb") as handle:
            info = os.fstat(handle.fileno())
            header = handle.read(100)
    except OSError:
        return None
    if len(header) < 100 or not header.startswith(_SQLITE_MAGIC) or header[18] != 1:
        return None
    counter = int.from_bytes(header[24:28], "big")
    return f"{info.st_dev}:{info.st_ino}:{info.st_size}:{info.st_mtime_ns}:{counter}"
