"""The fast path's cache file, and what this process's fast path learned for its slow path.

The cache (`<git common dir>/datachonk/prefilter.cache`) keeps each dbt_project.yml's
`model-paths` by blob id (filled by the slow path, `detect`), the detection rules parsed
from a datachonk.yaml by a digest of its text (so a push of hand-written models does not
import ruamel.yaml while that file is unchanged), and the ledger file's signature when it
last held nothing to deliver (with the moment its first resting trigger becomes due, if
any). It is a plain text file (hex fields) because `json` alone would cost the hook more
than git does; it ends with a digest of its lines, and a file cut short or edited is no
cache at all.
"""

from __future__ import annotations

import os

from datachonk_hooks.delivery.ledger.backlog import STATE_DIR
from datachonk_hooks.prepush.fast_push import is_sha

#: `typing` and `collections.abc` cost the hook more than a git call: the annotations are
#: strings (`from __future__ import annotations`), and type checkers take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

CACHE_FILE = "prefilter.cache"
#: entries of each kind kept in the cache; a repository has a handful of project files
CACHE_LIMIT = 64
#: 3: the ledger line may carry `resting_until`, which a reader of version 2 would ignore
#: (taking a ledger with a resting trigger as idle for good): each version misses the other's
_CACHE_HEADER = "datachonk-prefilter 3"


class Cache:
    """Model paths by dbt_project.yml blob id, and detection rules by datachonk.yaml digest."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.projects: dict[str, tuple[str, ...]] = {}
        self.rules: dict[str, tuple[str, str]] = {}
        #: the ledger file's signature when it last held nothing to deliver
        self.idle_ledger = ""
        #: with `idle_ledger`: when (epoch seconds) its first resting trigger becomes due for
        #: a push; 0 when it holds none
        self.resting_until = 0
        self.dirty = False

    @classmethod
    def load(cls, path: str) -> Cache:
        """The cache at `path`; empty when it is missing or unreadable (a miss, never an error)."""
        cache = cls(path)
        try:
            with open(path, encoding="ascii") as handle:
                lines = handle.read().splitlines()
        except (OSError, ValueError):
            return cache
        # A file cut short or damaged would let the fast path skip real models: it must end
        # with the digest of everything above it, else it is no cache at all.
        if len(lines) < 2 or lines[0] != _CACHE_HEADER:
            return cache
        if lines[-1] != f"end {text_digest(chr(10).join(lines[:-1]))[:16]}":
            return cache
        lines = lines[:-1]
        try:
            for line in lines[1:]:
                kind, key, *fields = line.split(" ")
                values = tuple("" if field == "-" else _unhex(field) for field in fields)
                if kind == "project" and is_sha(key):
                    cache.projects[key] = values
                elif kind == "rules" and len(values) == 2:
                    cache.rules[key] = (values[0], values[1])
                elif kind == "ledger" and len(values) <= 1:
                    cache.idle_ledger = key
                    cache.resting_until = int(values[0]) if values else 0
        except ValueError:
            return cls(path)
        return cache

    def save(self) -> None:
        """Write the cache atomically (best effort: a cache that cannot be written is a miss)."""
        lines = [_CACHE_HEADER]
        for blob, paths in self.projects.items():
            lines.append(" ".join(["project", blob, *(_hex(p) for p in paths)]))
        for digest, (marker, trailer) in self.rules.items():
            lines.append(f"rules {digest} {_hex(marker)} {_hex(trailer)}")
        if self.idle_ledger:
            until = f" {_hex(str(self.resting_until))}" if self.resting_until else ""
            lines.append(f"ledger {self.idle_ledger}{until}")
        lines.append(f"end {text_digest(chr(10).join(lines))[:16]}")
        folder = os.path.dirname(self.path)
        temporary = f"{self.path}.{os.getpid()}.tmp"
        try:
            os.makedirs(folder, mode=0o700, exist_ok=True)
            descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with open(descriptor, "w", encoding="ascii") as handle:
                handle.write("\n".join(lines) + "\n")
            os.replace(temporary, self.path)
        except OSError:
            import contextlib

            with contextlib.suppress(OSError):
                os.unlink(temporary)
            return
        self.dirty = False

    def learn_project(self, blob_id: str, paths: tuple[str, ...]) -> None:
        if self.projects.get(blob_id) != paths:
            self.projects[blob_id] = paths
            _trim(self.projects)
            self.dirty = True

    def learn_rules(self, digest: str, rules: tuple[str, str]) -> None:
        if self.rules.get(digest) != rules:
            self.rules[digest] = rules
            _trim(self.rules)
            self.dirty = True


def _hex(text: str) -> str:
    return text.encode("utf-8", "surrogatepass").hex() or "-"


def _unhex(field: str) -> str:
    return bytes.fromhex(field).decode("utf-8", "surrogatepass")


def _trim(entries: dict[str, Any]) -> None:
    while len(entries) > CACHE_LIMIT:
        del entries[next(iter(entries))]


def text_digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class State:
    """What this process's fast path learned, for the slow path that may follow it."""

    cache: Cache | None = None
    #: None: not checked; False: the ledger holds nothing the hook would deliver
    backlog: bool | None = None
    #: the ledger file, when it holds outcomes nobody was told yet (`tell_outcomes`)
    untold: str | None = None
    #: the ledger holds a pending trigger still resting (not due for a push that triggers
    #: nothing); a slow path taken for another reason hands it over all the same
    resting: bool = False


def reset() -> None:
    """Forget this process's cache and ledger verdict (a process that checks several pushes)."""
    State.cache = None
    State.backlog = None
    State.untold = None
    State.resting = False


def activate(common_dir: str) -> Cache:
    """Load the clone's cache so the slow path in this process can use and fill it."""
    path = os.path.join(common_dir, STATE_DIR, CACHE_FILE)
    if State.cache is None or State.cache.path != path:
        State.cache = Cache.load(path)
    return State.cache


def known_model_paths(blob_id: str) -> tuple[str, ...] | None:
    """The cached `model-paths` of the dbt_project.yml blob (None: not cached, or no cache)."""
    cache = State.cache
    return None if cache is None else cache.projects.get(blob_id)


def learn_model_paths(blob_id: str, paths: tuple[str, ...]) -> None:
    """Note what the slow path read from a dbt_project.yml blob (no-op without a cache)."""
    if State.cache is not None:
        State.cache.learn_project(blob_id, paths)


def known_rules(config_text: str) -> tuple[str, str] | None:
    """(marker, trailer) parsed earlier from this exact datachonk.yaml text, or None."""
    cache = State.cache
    return None if cache is None else cache.rules.get(text_digest(config_text))


def learn_rules(config_text: str, marker: str, trailer: str) -> None:
    """Note the detection rules a datachonk.yaml text gave (no-op without a cache)."""
    if State.cache is not None:
        State.cache.learn_rules(text_digest(config_text), (marker, trailer))


def save_learned() -> None:
    """Write what the slow path taught the cache, if anything."""
    if State.cache is not None and State.cache.dirty:
        State.cache.save()
