"""The processes named in the ledger ("pid@host": a claim's sender, a run's follower, a
push's waiter), and whether they still live.

A process that died leaves its claims and runs behind; these checks let the next one take
them over. Standard library only: the hook's fast path asks the same questions
(`follower_gone`, `claim_stale`, `push_abandoned`) as the `Ledger`, so the two agree on
which work a live process still holds.
"""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta
from pathlib import Path

#: how long after its trigger a run is still followed (and taken over from a follower that
#: died): the waiter's lifetime cap
FOLLOW_FOR = timedelta(hours=6)

#: a claim to send a trigger older than this is stale whoever holds it; so is a waiting push
#: whose waiter runs on another host (`Ledger(stale_after=...)` by default)
STALE_AFTER = timedelta(minutes=10)
#: A push still "waiting" this long after it was recorded is abandoned whatever the process
#: ids say: pids are recycled, and a trigger must not wait for a dead waiter forever.
ABANDONED_AFTER = timedelta(days=1)
#: A landing waiter records itself within a second of being started; one that has not after
#: this long (and after its `git push` ended) never will.
WAITER_START_GRACE = timedelta(seconds=60)

#: `followed_by` of a run nobody follows to its end (`follow: false`, or its follower's time
#: limit passed): `history` asks about it, no waiter takes it over.
NOT_FOLLOWED = "-"


def default_owner() -> str:
    """This process as the ledger names it: `pid@host`."""
    return f"{os.getpid()}@{socket.gethostname()}"


def describe_owner(owner: str | None) -> str:
    """`1234@host` as people read it: "waiter pid 1234" (and the host when it is another)."""
    pid, _, host = (owner or "").partition("@")
    if not pid.isdigit():
        return "another process"
    elsewhere = f" on {host}" if host and host != socket.gethostname() else ""
    return f"waiter pid {pid}{elsewhere}"


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


def _local_pid(owner: str | None) -> int | None:
    """The pid of `pid@host` when host is this one, else None."""
    pid_text, sep, host = (owner or "").partition("@")
    if sep and host == socket.gethostname() and pid_text.isdigit():
        return int(pid_text)
    return None


def claim_stale(
    claimed_by: str | None,
    claimed_at: datetime | None,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
) -> bool:
    """Whether a claim to send a trigger may be taken over: its owner died (on this host)
    or it has run out of time. Times are aware (UTC)."""
    if claimed_at is None or now - claimed_at > stale_after:
        return True
    pid = _local_pid(claimed_by)
    return pid is not None and not pid_alive(pid)


def push_abandoned(
    created_at: datetime,
    waiter: str | None,
    git_pid: int | None,
    now: datetime,
    stale_after: timedelta = STALE_AFTER,
) -> bool:
    """Whether nobody will settle a push still "waiting", so `retry` (or the next push's
    waiter) must.

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
    age = now - created_at
    if age > ABANDONED_AFTER:
        return True
    _, sep, host = (waiter or "").partition("@")
    if sep and host != socket.gethostname():  # its pid cannot be checked here
        return age > stale_after
    if git_pid is not None and pid_alive(git_pid):
        return False
    pid = _local_pid(waiter)
    if pid is not None:
        return not pid_alive(pid)
    return age > (WAITER_START_GRACE if git_pid is not None else stale_after)
