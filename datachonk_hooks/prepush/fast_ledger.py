"""What the fast path asks the ledger: whether it holds work for the slow path (a trigger to
deliver, a run whose follower died), and how runs ended that nobody was told about yet.

Asking SQLite costs its import (7 ms), so a ledger seen idle is remembered in the cache by
its file signature (until its first resting trigger becomes due); the SQL itself is the
`Ledger`'s own (`delivery.ledger.backlog`).
"""

from __future__ import annotations

import os

from datachonk_hooks.delivery.ledger.backlog import (
    AWAITED_PUSHES,
    LEDGER_FILE,
    OLDEST_PENDING,
    PENDING_REST_SECONDS,
    RUNS_TO_FOLLOW,
    SENDING_CLAIMS,
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
    """Whether the ledger may hold work for the slow path (True when unsure), as
    `Ledger.deliverable` and `Ledger.unfollowed_runs` judge it: a trigger being sent by a
    process that died, or awaiting a push nobody will settle; a pending one once it has
    rested `PENDING_REST_SECONDS` since its last attempt; a run nobody follows any more.
    Work a live process holds (a waiter sending, awaiting its push, following a run) is
    its own, not the next push's. Outcomes to tell are noted in `State.untold`: the fast
    path tells them itself (`tell_outcomes`).

    Asking SQLite costs its import (7 ms), so a ledger seen idle is remembered by its file
    signature (`ledger_signature`); only a changed ledger is queried again, or one whose
    resting trigger has become due since (no write marks that moment: the cache keeps it).
    A ledger whose work a live process holds is not remembered: it can die without a write.
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

    try:
        found = _read(path)
    except (sqlite3.Error, ValueError, TypeError, OverflowError):
        return True
    State.resting = found.until > 0
    if found.due:
        return True
    if found.untold:
        State.untold = path
        return False
    # taken before the query: a write changes it; a resting trigger becomes due at `until`
    if signature is not None and not found.held:
        cache.idle_ledger, cache.resting_until = signature, found.until
        cache.dirty = True
    return False


class _Found:
    """What the ledger holds for the fast path."""

    __slots__ = ("due", "held", "until", "untold")

    def __init__(self, due: bool, held: bool, until: int, untold: bool) -> None:
        self.due = due  # work for the next waiter
        self.held = held  # work a live process holds
        self.until = until  # when the oldest resting trigger becomes due (0: none rests)
        self.untold = untold  # runs ended that nobody was told about


def _read(path: str) -> _Found:
    import sqlite3
    from datetime import UTC, datetime, timedelta

    from datachonk_hooks.delivery.ledger.owners import (
        FOLLOW_FOR,
        claim_stale,
        follower_gone,
        push_abandoned,
    )

    def moment(text: str | None) -> datetime | None:
        return None if text is None else datetime.fromisoformat(text)

    now = datetime.now(UTC)
    since = (now - FOLLOW_FOR).isoformat(timespec="microseconds")
    uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
    conn = sqlite3.connect(uri, uri=True, timeout=0.5)
    try:
        (oldest,) = conn.execute(OLDEST_PENDING).fetchone()
        claims = conn.execute(SENDING_CLAIMS).fetchall()
        pushes = conn.execute(AWAITED_PUSHES).fetchall()
        untold = conn.execute(f"SELECT 1 FROM triggers WHERE {UNTOLD} LIMIT 1").fetchone()
        followers = [followed_by for _, followed_by in conn.execute(RUNS_TO_FOLLOW, (since,))]
    finally:
        conn.close()
    last_attempt = moment(oldest)
    rest = timedelta(seconds=PENDING_REST_SECONDS)
    rested = None if last_attempt is None else last_attempt + rest
    due = (
        (rested is not None and rested <= now)
        or any(claim_stale(by, moment(at), now) for by, at in claims)
        or any(push_abandoned(datetime.fromisoformat(at), by, pid, now) for at, by, pid in pushes)
        or any(follower_gone(f) for f in followers)
    )
    until = 0 if rested is None else int(rested.timestamp()) + 1
    return _Found(bool(due), bool(claims or pushes or followers), until, untold is not None)


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
