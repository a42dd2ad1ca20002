"""The processes named in the ledger ("pid@host": a claim's sender, a run's follower, a
push's waiter), and whether they still live.

A process that died leaves its claims and runs behind; these checks let the next one take
them over. Standard library only: the hook's fast path asks `follower_gone` too.
"""

from __future__ import annotations

import os
import socket
from datetime import timedelta
from pathlib import Path

#: how long after its trigger a run is still followed (and taken over from a follower that
#: died): the waiter's lifetime cap
FOLLOW_FOR = timedelta(hours=6)

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
