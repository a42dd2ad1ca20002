"""Replace a file atomically, so a reader (or a crash) never sees it half written.

datachonk.yaml, the credentials file and the production manifest are all written the same
way: a temporary file in the same folder, fsync, then `os.replace`. The git hook may import
this through `credentials`, so only the standard library's cheapest modules are used here.
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

_ATTEMPTS = 100  # names tried before giving up, like tempfile.TMP_MAX
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_BINARY", 0)


def atomic_write(path: Path, data: bytes | str, *, mode: int | None = None) -> None:
    """Replace `path` with `data` (str is written as UTF-8, newlines untouched).

    `mode` None gives what a plain `open(path, "w")` would: an existing file keeps its
    permission bits, a new one gets 0o666 less the umask. An explicit `mode` (0o600 for
    secrets) is set while the temporary file is still private, before it takes the name.
    The temporary file is removed on any failure; OSError reaches the caller.
    """
    payload = data.encode("utf-8") if isinstance(data, str) else data
    final = mode
    if final is None:
        with contextlib.suppress(FileNotFoundError):
            final = stat.S_IMODE(os.stat(path).st_mode)
    # Private (0600) until chmod when the mode is known; else let the kernel apply the umask.
    handle, temporary = _create_temporary(path, 0o600 if final is not None else 0o666)
    try:
        try:
            view = memoryview(payload)
            while view:
                view = view[os.write(handle, view) :]
            os.fsync(handle)
        finally:
            os.close(handle)
        if final is not None:
            os.chmod(temporary, final)
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):  # keep the first error, not the cleanup's
            os.unlink(temporary)
        raise


def _create_temporary(path: Path, create_mode: int) -> tuple[int, Path]:
    """A new, exclusively created file next to `path` (same filesystem, so rename is atomic)."""
    for _ in range(_ATTEMPTS):
        temporary = path.with_name(f".{path.name}-{os.urandom(6).hex()}.tmp")
        try:
            return os.open(temporary, _CREATE, create_mode), temporary
        except FileExistsError:
            continue
    raise FileExistsError(f"no free temporary file name next to {path}")


def private_dir(path: Path) -> None:
    """Create `path` and any missing parent as 0700, whatever the umask (an existing folder
    is left as it is): the package's state and secrets are nobody else's business."""
    missing = []
    current = path
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for folder in reversed(missing):
        with contextlib.suppress(FileExistsError):  # another process made it meanwhile
            folder.mkdir(mode=0o700)
            os.chmod(folder, 0o700)  # mkdir's mode is cut by the umask


def private_file(path: Path) -> None:
    """Make an existing file 0600 (SQLite and open() create files with the umask's bits)."""
    with contextlib.suppress(OSError):
        if stat.S_IMODE(os.stat(path).st_mode) != 0o600:
            os.chmod(path, 0o600)


def open_private_append(path: Path) -> int:
    """A descriptor appending to `path`, created 0600 whatever the umask (a log file)."""
    handle = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
    os.fchmod(handle, 0o600)
    return handle
