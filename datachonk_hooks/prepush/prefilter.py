"""The pre-push hook's fast path: a push that certainly triggers nothing costs a git call or two.

The hook is `always_run`, so its process starts on every push, and most pushes touch no
dbt model at all. Importing pygit2 alone costs about 70 ms; this module answers "nothing to
do" with the standard library's cheapest modules and `git diff` instead, and otherwise
lets the normal hook (`hook.pre_push_main`, the slow path) decide.

It may only skip when the slow path would certainly record, print and start nothing, so
anything unusual falls through: a dry run, a forced or foreground trigger, a delete, a tag, a
new branch whose base cannot be told from the remote-tracking refs (`_base`), a pre-commit
push of several refs (the hook records those for the waiter), unreadable input.
For each pushed ref with a base this clone has the push is skipped when:

- no changed path is named `dbt_project.yml` or `datachonk.yaml`; so the model paths are
  those of the pushed tree's current project files, and the settings did not change;
- no changed path with a model suffix lies under `models/` or under the model paths of
  its nearest `dbt_project.yml` (none above it: `models/`), a superset of the slow path's
  rule. Each project file's `model-paths` come from a small cache keyed by its blob id,
  filled by the slow path (`detect`), so a miss falls through and the next push hits;
- the ledger holds no trigger the hook would deliver (pending, sending or awaiting a push:
  a superset of `Ledger.deliverable`), so the backlog still reaches the waiter, and no
  run whose follower died, so a waiter takes it over. Runs that ended untold
  (`Ledger.untold`) do not need the slow path: `tell_outcomes` prints their lines.

The cache (`<git common dir>/datachonk/prefilter.cache`) also keeps the detection rules
parsed from a datachonk.yaml with a `detect:` section, by a digest of its text, so a push of
hand-written models does not import ruamel.yaml while that file is unchanged. It is a plain
text file (hex fields) because `json` alone would cost the hook more than git does; it ends
with a digest of its lines, and a file cut short or edited is no cache at all.
"""

from __future__ import annotations

import os
import sys

#: `typing` and `collections.abc` cost the hook more than a git call: the annotations are
#: strings (`from __future__ import annotations`), and type checkers take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Mapping, Sequence
    from typing import Any

MODEL_SUFFIXES = (".sql", ".py", ".yml", ".yaml")  # as detect.MODEL_SUFFIXES
PROJECT_FILE = "dbt_project.yml"  # as detect.PROJECT_FILE
CONFIG_NAME = "datachonk.yaml"  # as config.CONFIG_NAME
DEFAULT_PREFIXES = ("models/",)  # detect.DEFAULT_MODEL_PATHS joined at the root
STATE_DIR = "datachonk"  # as ledger.state_dir
LEDGER_FILE = "ledger.sqlite3"  # as ledger.LEDGER_FILE
CACHE_FILE = "prefilter.cache"
#: entries of each kind kept in the cache; a repository has a handful of project files
CACHE_LIMIT = 64
#: more folders than this to look up for project files: let the slow path do it
MAX_FOLDERS = 2000
#: hook.ENV_DRY_RUN, ENV_FORCE and ENV_FOREGROUND: each means more than detection
ENV_DRY_RUN = "DATACHONK_DRY_RUN"
ENV_FORCE = "DATACHONK_FORCE_TRIGGER"
ENV_FOREGROUND = "DATACHONK_PUSH_FOREGROUND"
#: ledger states the hook may act on (`Ledger.deliverable` keeps a subset of these rows)
BACKLOG_STATES = ("pending", "sending", "awaiting_push")

_HEX = frozenset("0123456789abcdef")
_REGULAR_MODES = (b"100644", b"100755")  # a symlinked dbt_project.yml is no project
_CACHE_HEADER = "datachonk-prefilter 2"
#: The changed paths of a range, as a tree diff (the slow path's: no renames), whatever the
#: user's diff config says. Not `git diff-tree`: it reads the whole index first (10 ms on a
#: 50,000-file work tree), which `git diff A B` does not.
_DIFF = (
    "diff",
    "--name-only",
    "-z",
    "--no-renames",
    "--no-relative",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
)
_SQLITE_MAGIC = b"SQLite format 3\0"


class Verdict:
    """What the fast path decided, and why (the reason is for tests and debugging)."""

    __slots__ = ("reason", "skip")

    def __init__(self, skip: bool, reason: str) -> None:
        self.skip = skip
        self.reason = reason

    def __repr__(self) -> str:
        return f"Verdict(skip={self.skip}, reason={self.reason!r})"


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def _is_sha(text: str) -> bool:
    return len(text) in (40, 64) and _HEX.issuperset(text)


# ----------------------------------------------------------------------------- git


class _Git:
    """One git process whose stdout is read later, so several can run at once."""

    def __init__(self, args: Sequence[str]) -> None:
        self.args = ["git", *args]
        if hasattr(os, "posix_spawnp"):  # no `subprocess` import: it costs more than git
            read, write = os.pipe()
            actions = [
                (os.POSIX_SPAWN_OPEN, 0, os.devnull, os.O_RDONLY, 0),
                (os.POSIX_SPAWN_DUP2, write, 1),
                (os.POSIX_SPAWN_OPEN, 2, os.devnull, os.O_WRONLY, 0),
            ]
            try:
                self.pid = os.posix_spawnp("git", self.args, os.environ, file_actions=actions)
            finally:
                os.close(write)
            self.fd = read
        else:  # pragma: no cover - Windows
            self.pid, self.fd = -1, -1

    def output(self) -> bytes | None:
        """git's stdout, or None when it failed."""
        if self.pid < 0:  # pragma: no cover - Windows
            import subprocess

            done = subprocess.run(self.args, capture_output=True, check=False)
            return done.stdout if done.returncode == 0 else None
        chunks = []
        try:
            while chunk := os.read(self.fd, 65536):
                chunks.append(chunk)
        finally:
            os.close(self.fd)
        _, status = os.waitpid(self.pid, 0)
        return b"".join(chunks) if os.waitstatus_to_exitcode(status) == 0 else None


def _common_dir(env: Mapping[str, str]) -> str | None:
    """The git common dir without pygit2: `./.git` when it is a folder (git runs hooks at the
    top of the work tree), else what `git rev-parse --git-common-dir` says."""
    if not any(k in env for k in ("GIT_DIR", "GIT_COMMON_DIR")) and os.path.isdir(".git"):
        return os.path.abspath(".git")
    out = _Git(["rev-parse", "--path-format=absolute", "--git-common-dir"]).output()
    text = out.decode("utf-8", "surrogateescape").strip() if out else ""
    return text or None


# ----------------------------------------------------------------------------- the cache


class Cache:
    """Model paths by dbt_project.yml blob id, and detection rules by datachonk.yaml digest."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.projects: dict[str, tuple[str, ...]] = {}
        self.rules: dict[str, tuple[str, str]] = {}
        #: the ledger file's signature when it last held nothing to deliver
        self.idle_ledger = ""
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
        if lines[-1] != f"end {_text_digest(chr(10).join(lines[:-1]))[:16]}":
            return cache
        lines = lines[:-1]
        try:
            for line in lines[1:]:
                kind, key, *fields = line.split(" ")
                values = tuple("" if field == "-" else _unhex(field) for field in fields)
                if kind == "project" and _is_sha(key):
                    cache.projects[key] = values
                elif kind == "rules" and len(values) == 2:
                    cache.rules[key] = (values[0], values[1])
                elif kind == "ledger":
                    cache.idle_ledger = key
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
            lines.append(f"ledger {self.idle_ledger}")
        lines.append(f"end {_text_digest(chr(10).join(lines))[:16]}")
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


def _text_digest(text: str) -> str:
    import hashlib

    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


class _State:
    """What this process's fast path learned, for the slow path that may follow it."""

    cache: Cache | None = None
    #: None: not checked; False: the ledger holds nothing the hook would deliver
    backlog: bool | None = None
    #: the ledger file, when it holds outcomes nobody was told yet (`tell_outcomes`)
    untold: str | None = None


def reset() -> None:
    """Forget this process's cache and ledger verdict (a process that checks several pushes)."""
    _State.cache = None
    _State.backlog = None
    _State.untold = None


def activate(common_dir: str) -> Cache:
    """Load the clone's cache so the slow path in this process can use and fill it."""
    path = os.path.join(common_dir, STATE_DIR, CACHE_FILE)
    if _State.cache is None or _State.cache.path != path:
        _State.cache = Cache.load(path)
    return _State.cache


def known_model_paths(blob_id: str) -> tuple[str, ...] | None:
    """The cached `model-paths` of the dbt_project.yml blob (None: not cached, or no cache)."""
    cache = _State.cache
    return None if cache is None else cache.projects.get(blob_id)


def learn_model_paths(blob_id: str, paths: tuple[str, ...]) -> None:
    """Note what the slow path read from a dbt_project.yml blob (no-op without a cache)."""
    if _State.cache is not None:
        _State.cache.learn_project(blob_id, paths)


def known_rules(config_text: str) -> tuple[str, str] | None:
    """(marker, trailer) parsed earlier from this exact datachonk.yaml text, or None."""
    cache = _State.cache
    return None if cache is None else cache.rules.get(_text_digest(config_text))


def learn_rules(config_text: str, marker: str, trailer: str) -> None:
    """Note the detection rules a datachonk.yaml text gave (no-op without a cache)."""
    if _State.cache is not None:
        _State.cache.learn_rules(_text_digest(config_text), (marker, trailer))


def save_learned() -> None:
    """Write what the slow path taught the cache, if anything."""
    if _State.cache is not None and _State.cache.dirty:
        _State.cache.save()


def tell_outcomes(echo: Callable[[str], None]) -> None:
    """Print the outcome lines of runs that ended since the last push or command, from the
    ledger the fast path found them in, without the slow path's imports (pygit2)."""
    if _State.untold is None:
        return
    from pathlib import Path

    from datachonk_hooks.delivery.ledger import Ledger
    from datachonk_hooks.monitor.outcomes import tell

    with Ledger(Path(_State.untold), busy_timeout=1.0) as ledger:
        tell(ledger, echo)
    _State.untold = None


def ledger_is_idle() -> bool:
    """True when the fast path found no trigger in the ledger the hook could deliver, so the
    slow path need not open the ledger for a push that records nothing."""
    return _State.backlog is False


def _has_backlog(common_dir: str, cache: Cache) -> bool:
    """Whether the ledger may hold work for the slow path (True when unsure): a trigger to
    deliver, or a run nobody follows any more (its waiter was killed). Outcomes to tell
    are noted in `_State.untold`: the fast path tells them itself (`tell_outcomes`).

    Asking SQLite costs its import (7 ms), so a ledger seen idle is remembered by its file
    signature (`_ledger_signature`); only a changed ledger is queried again. A ledger with
    runs being followed is not remembered as idle: a follower can die without a write.
    """
    path = os.path.join(common_dir, STATE_DIR, LEDGER_FILE)
    if not os.path.exists(path):
        return False
    signature = _ledger_signature(path)
    if signature is not None and signature == cache.idle_ledger:
        return False
    import sqlite3
    from datetime import UTC, datetime

    from datachonk_hooks.delivery.ledger import FOLLOW_FOR, follower_gone

    marks = ", ".join("?" for _ in BACKLOG_STATES)
    since = (datetime.now(UTC) - FOLLOW_FOR).isoformat(timespec="microseconds")
    try:
        uri = "file:" + path.replace("?", "%3f").replace("#", "%23") + "?mode=ro"
        conn = sqlite3.connect(uri, uri=True, timeout=0.5)
        try:
            row = conn.execute(
                f"SELECT 1 FROM triggers WHERE state IN ({marks}) LIMIT 1", BACKLOG_STATES
            ).fetchone()
            untold = conn.execute(
                "SELECT 1 FROM triggers WHERE state = 'finished' AND told_at IS NULL LIMIT 1"
            ).fetchone()
            followers = [
                followed_by
                for (followed_by,) in conn.execute(
                    "SELECT followed_by FROM triggers WHERE state = 'triggered'"
                    " AND run_id IS NOT NULL AND push_id IS NOT NULL AND created_at >= ?",
                    (since,),
                )
            ]
        finally:
            conn.close()
    except sqlite3.Error:
        return True
    if row is not None or any(follower_gone(f) for f in followers):
        return True
    if untold is not None:
        _State.untold = path
        return False
    if signature is not None and not followers:  # taken before the query: a write changes it
        cache.idle_ledger = signature
        cache.dirty = True
    return False


def _ledger_signature(path: str) -> str | None:
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


# ----------------------------------------------------------------------------- the push


class _Update:
    __slots__ = ("local_sha", "remote_ref", "remote_sha")

    def __init__(self, local_sha: str, remote_ref: str, remote_sha: str) -> None:
        self.local_sha, self.remote_ref, self.remote_sha = local_sha, remote_ref, remote_sha


def _from_pre_commit(env: Mapping[str, str]) -> list[_Update] | str:
    """The one update in pre-commit's variables, or why the slow path must read them."""
    to_sha = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_SOURCE") or ""
    from_sha = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_ORIGIN") or ""
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH") or ""
    if not (_is_sha(to_sha) and _is_sha(from_sha)):
        return "pre-commit gave no shas (a root push, or symbolic refs)"
    if not remote_ref:
        return "pre-commit gave no remote branch"
    return [_Update(to_sha, remote_ref, from_sha)]


def _from_stdin(lines: Iterable[str]) -> list[_Update] | str:
    """git's stdin lines as updates, or why the slow path must read them."""
    updates = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4 or not (_is_sha(fields[1]) and _is_sha(fields[3])):
            return "unexpected pre-push input"
        updates.append(_Update(fields[1], fields[2], fields[3]))
    return updates


def _ancestors(path: str) -> list[str]:
    """The folders above `path`, nearest first, "" (the root) last."""
    folders = []
    folder = path.rpartition("/")[0]
    while folder:
        folders.append(folder)
        folder = folder.rpartition("/")[0]
    folders.append("")
    return folders


def join_model_path(folder: str, rel: str) -> str | None:
    """The repo-relative prefix of a project's model path; None if it leaves the repository.
    Here, standard library only, for the fast path; `detect` uses it too."""
    import posixpath

    rel = rel.strip().replace("\\", "/")
    if rel.startswith("/"):
        return None
    joined = posixpath.normpath(posixpath.join(folder, rel)) if folder else posixpath.normpath(rel)
    if joined == ".." or joined.startswith("../"):
        return None
    return "" if joined == "." else f"{joined}/"


def _project_file(folder: str) -> str:
    return f"{folder}/{PROJECT_FILE}" if folder else PROJECT_FILE


def _projects(listing: bytes) -> dict[str, str]:
    """`git ls-tree -z` output -> {folder: blob id} of the regular dbt_project.yml files."""
    found = {}
    for record in listing.split(b"\0"):
        info, tab, name = record.partition(b"\t")
        fields = info.split(b" ")
        if tab and len(fields) == 3 and fields[0] in _REGULAR_MODES and fields[1] == b"blob":
            path = name.decode("utf-8", "surrogateescape")
            found[path.rpartition("/")[0]] = fields[2].decode("ascii")
    return found


def _models_touched(paths: Sequence[str], projects: Mapping[str, str], cache: Cache) -> str | None:
    """Why these changed paths may hold a model (None: certainly none), given the tip's
    project files by folder."""
    for path in paths:
        prefixes: Iterable[str | None] = DEFAULT_PREFIXES
        for folder in _ancestors(path):
            blob = projects.get(folder)
            if blob is None:
                continue
            rels = cache.projects.get(blob)
            if rels is None:
                return f"model paths of {_project_file(folder)} not cached"
            prefixes = (join_model_path(folder, rel) for rel in rels)
            break
        if any(prefix is not None and path.startswith(prefix) for prefix in prefixes):
            return f"a model path changed: {path}"
    return None


def check(
    env: Mapping[str, str],
    stdin_lines: Callable[[], list[str]],
    *,
    dry_run: bool = False,
    remote: str | None = None,
) -> Verdict:
    """Decide whether the push certainly triggers nothing (skip) or needs the slow path.

    Reads git's stdin through `stdin_lines` only when pre-commit is not running the hook (as
    `hook.read_push` does); the caller keeps the lines for the slow path. A strange push
    falls through; the caller also falls through on any exception.
    """
    _State.backlog = None
    early = None
    if dry_run or _truthy(env.get(ENV_DRY_RUN)):
        early = "a dry run"
    elif _truthy(env.get(ENV_FORCE)) or env.get(ENV_FOREGROUND):
        early = "`datachonk push` runs the hook"
    if early is not None:
        common = _common_dir(env)
        if common is not None:  # the slow path still uses (and fills) the cache
            activate(common)
        return Verdict(False, early)
    if any(
        env.get(k) for k in ("PRE_COMMIT_TO_REF", "PRE_COMMIT_SOURCE", "PRE_COMMIT_LOCAL_BRANCH")
    ):
        from datachonk_hooks.push.gitpush import git_push_command

        command = git_push_command()
        if command is not None and command.several_refs:  # pre-commit shows only the first
            return Verdict(False, "a push of several refs, of which pre-commit shows one")
        updates = _from_pre_commit(env)
    else:
        updates = _from_stdin(stdin_lines())
    if isinstance(updates, str):
        return Verdict(False, updates)
    try:
        reason = _why_not_skip(env, updates, remote)
    except (OSError, ValueError, UnicodeError) as exc:
        reason = f"{type(exc).__name__}: {exc}"
    return Verdict(reason is None, reason or "nothing to do")


def _why_not_skip(
    env: Mapping[str, str], updates: Sequence[_Update], remote: str | None = None
) -> str | None:
    common = _common_dir(env)
    if common is None:
        return "no git common dir"
    activate(common)  # the slow path, if it runs, reads and fills the cache too
    reason = None
    for update in updates:
        if set(update.local_sha) == {"0"}:
            reason = "a delete"
        elif not update.remote_ref.startswith("refs/heads/"):
            reason = f"{update.remote_ref} is not a branch"
    bases: list[str | None] = []
    if reason is None:
        for update in updates:
            base, reason = _base(update, remote)
            if reason is not None:
                break
            bases.append(base)
    diffs = (
        []
        if reason
        else [
            _Git([*_DIFF, base, u.local_sha, "--"]) if base else None
            for u, base in zip(updates, bases, strict=True)
        ]
    )
    # While git diffs: the ledger. Known either way, so a slow path that records nothing
    # need not open the ledger (and import what that takes) again.
    _State.backlog = _has_backlog(common, activate(common))
    changed = [diff.output() if diff else b"" for diff in diffs]  # reap every process
    if reason is None:
        reason = _paths_reason(updates, changed)
    if reason is None and _State.backlog:
        return "the ledger holds triggers to deliver"
    return reason


def _base(update: _Update, remote: str | None) -> tuple[str | None, str | None]:
    """(the commit the update's changes are diffed from, or None when it brings no new
    commit; why the slow path must judge it instead).

    An existing branch builds on the old remote sha. A new branch, as `push.pushed_range`
    computes it: its commits are those no remote-tracking ref of `remote` reaches (a remote
    named `origin/x` keeps its own refs below `refs/remotes/origin/x/`), based on the first
    parent of the oldest. A root commit, or a remote without tracking refs (a URL), is
    left to the slow path.
    """
    if set(update.remote_sha) != {"0"}:
        return update.remote_sha, None
    if not remote:
        return None, "a new branch"
    prefix = f"refs/remotes/{remote}/"
    listing = _Git(["for-each-ref", "--format=%(objectname) %(refname)", prefix])
    names = _Git(["remote"])
    refs, others = listing.output(), names.output()
    if refs is None or others is None:
        return None, "a new branch (git for-each-ref failed)"
    nested = tuple(
        f"refs/remotes/{name}/"
        for name in others.decode("utf-8", "surrogateescape").split()
        if name.startswith(f"{remote}/")
    )
    tips = [
        sha
        for sha, _, name in (
            line.partition(" ") for line in refs.decode("utf-8", "surrogateescape").splitlines()
        )
        if not name.endswith("/HEAD") and not name.startswith(nested)
    ]
    if not tips:
        return None, "a new branch of a remote without tracking refs"
    walk = ["rev-list", "--topo-order", "--reverse", "--parents", update.local_sha, "--not"]
    out = _Git([*walk, *tips]).output()
    if out is None:
        return None, "a new branch (git rev-list failed)"
    oldest = out.split(b"\n", 1)[0].split()
    if not oldest:
        return None, None  # only commits the remote already has: nothing new to judge
    if len(oldest) < 2:
        return None, "a new branch starting at a root commit"
    return oldest[1].decode("ascii"), None


def _paths(output: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in output.split(b"\0") if p]


def _paths_reason(updates: Sequence[_Update], changed: Sequence[bytes | None]) -> str | None:
    """Why the changed paths need the slow path, or None."""
    candidates: list[tuple[_Update, list[str]]] = []
    for update, out in zip(updates, changed, strict=True):
        if out is None:
            return f"git diff {update.remote_sha[:7]} {update.local_sha[:7]} failed"
        paths = _paths(out)
        for path in paths:
            if path.rpartition("/")[2] in (PROJECT_FILE, CONFIG_NAME):
                return f"{path} changed"
        suffixed = [p for p in paths if p.endswith(MODEL_SUFFIXES)]
        if suffixed:
            candidates.append((update, suffixed))
    if not candidates:
        return None
    # `models/` is a model path in most repositories: fall through at once (always safe)
    # rather than look its projects up; a push of models pays for no `git ls-tree`.
    for _, suffixed in candidates:
        for path in suffixed:
            if path.startswith(DEFAULT_PREFIXES):
                return f"a model path changed: {path}"
    cache = _State.cache
    assert cache is not None
    listings = []
    for update, suffixed in candidates:
        folders = {folder for path in suffixed for folder in _ancestors(path)}
        if len(folders) > MAX_FOLDERS:
            return "too many changed folders"
        files = sorted(_project_file(folder) for folder in folders)
        args = ["--literal-pathspecs", "ls-tree", "-z", "--full-tree", update.local_sha, "--"]
        listings.append(_Git([*args, *files]))
    outputs = [listing.output() for listing in listings]
    for (update, suffixed), out in zip(candidates, outputs, strict=True):
        if out is None:
            return f"git ls-tree {update.local_sha[:7]} failed"
        reason = _models_touched(suffixed, _projects(out), cache)
        if reason is not None:
            return reason
    return None


def main() -> int:  # pragma: no cover - a debugging aid, run with `python -m`
    """Print the verdict for git's stdin (or pre-commit's variables) without running the hook."""
    verdict = check(os.environ, lambda: sys.stdin.read().splitlines())
    print(verdict)
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
