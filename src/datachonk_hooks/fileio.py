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
