"""Which changed paths of a pushed range are DataChonk-generated dbt models, and their names.

This runs inside the pre-push hook on every push, so it stays cheap: one tree diff per update
(no rename detection), blobs read only for candidate paths and only their first few KB for the
marker, and ruamel.yaml imported only when a YAML file really has to be parsed (`model_yaml`).
Everything is read from the pushed commits, never from the work tree: the pushed tip is what
dbt Cloud builds.

Paths are `str` as pygit2 gives them: bytes that are not valid UTF-8 appear as lone surrogates
(surrogateescape), so they never crash anything but may not print cleanly.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import pygit2

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.prepush import fast_cache, fast_models
from datachonk_hooks.push.gitrepo import CommitInfo
from datachonk_hooks.push.limits import MAX_FILE_BYTES, MAX_MODEL_BYTES, blob_size, too_large
from datachonk_hooks.push.model_yaml import DEFAULT_MODEL_PATHS, model_names, parse_model_paths
from datachonk_hooks.settings.detect_rules import DetectRules

__all__ = [
    "MARKER_BYTES",
    "MARKER_LINES",
    "MARKER_LINE_CHARS",
    "MODEL_SUFFIXES",
    "PROJECT_FILE",
    "PROJECT_SEARCH_DEPTH",
    "TRAILER_WINDOW",
    "GeneratedModel",
    "detect_generated",
    "has_trailer",
    "project_folders",
]

MODEL_SUFFIXES = (".sql", ".py", ".yml", ".yaml")
#: The marker only counts in a file's first MARKER_LINES lines: a generator writes it at the top,
#: and a hand-written model that merely mentions DataChonk further down must not count.
MARKER_LINES = 10
#: At most this many bytes are decoded to find those lines, so a huge file costs nothing more.
MARKER_BYTES = 16 * 1024
#: Each of those lines is searched up to this many characters: a marker sits at the start of
#: a comment, and a bounded text keeps any pattern `safe_regex` allows cheap (a quadratic
#: one costs milliseconds on 10 such lines, where a 16 KiB single line would cost minutes).
MARKER_LINE_CHARS = 256
#: Only the end of a commit message is read for the trailer: git's trailer block is the last
#: paragraph, and a 100 MB message must not cost a push 100 MB of line splitting.
TRAILER_WINDOW = 64 * 1024
#: dbt_project.yml is searched in the root and in folders up to this many levels below it.
PROJECT_SEARCH_DEPTH = 3

PROJECT_FILE = "dbt_project.yml"
_YAML_SUFFIXES = (".yml", ".yaml")
# Regular files only: symlinks (0o120000) and submodules (0o160000) are never models.
_BLOB_MODES = frozenset({0o100644, 0o100755})

Change = Literal["added", "modified", "deleted"]
Reason = Literal["marker", "trailer"]


@dataclass(frozen=True)
class GeneratedModel:
    """A generated model file the push changes: what to tell dbt Cloud and the user."""

    path: str  # repo-relative, as pygit2 gives it
    names: tuple[str, ...]  # file stem for .sql/.py; models[].name for YAML (may be empty)
    change: Change
    reason: Reason


@dataclass(frozen=True)
class _Candidate:
    """A changed model-path file and the blob that decides it (the old one when deleted)."""

    path: str
    change: Change
    blob_id: pygit2.Oid


def project_folders(tree: pygit2.Tree) -> Iterator[str]:
    """Folders ("" for the root) that hold a dbt_project.yml, nearest first, found lazily:
    callers stop at the first one they need, before the rest of the tree is read."""
    return (folder for folder, _ in _project_files(tree))


def _project_files(tree: pygit2.Tree) -> Iterator[tuple[str, pygit2.Blob]]:
    """(folder, blob) of each dbt_project.yml, breadth-first; folder is "" for the root."""
    level: list[tuple[str, pygit2.Tree]] = [("", tree)]
    for depth in range(PROJECT_SEARCH_DEPTH + 1):
        below: list[tuple[str, pygit2.Tree]] = []
        for folder, node in level:
            for entry in node:
                name = entry.name
                if name is None:
                    continue
                if isinstance(entry, pygit2.Tree):
                    if depth < PROJECT_SEARCH_DEPTH:
                        below.append((f"{folder}{name}/", entry))
                elif (
                    name == PROJECT_FILE
                    and isinstance(entry, pygit2.Blob)
                    and entry.filemode in _BLOB_MODES
                ):
                    yield folder.rstrip("/"), entry
        level = below


def _project_model_paths(
    blob: pygit2.Blob, repo: pygit2.Repository | None = None, label: str = PROJECT_FILE
) -> tuple[str, ...]:
    """The model folders one dbt_project.yml declares, relative to its folder.

    Remembered by blob id (`prefilter`): the next push's fast path needs them without
    pygit2, and this path then needs no YAML parser. A file over MAX_FILE_BYTES is a
    ConfigError naming `label` (`dbt_project.yml@abc1234`), found from the object header
    before the blob is read.
    """
    blob_id = str(blob.id)
    paths = fast_cache.known_model_paths(blob_id)
    if paths is None:
        size = blob_size(repo, blob.id) if repo is not None else blob.size
        if size > MAX_FILE_BYTES:
            raise ConfigError(too_large(label, size))
        paths = parse_model_paths(blob.data)
        fast_cache.learn_model_paths(blob_id, paths)
    return paths


def has_trailer(message: str, trailer: str) -> bool:
    """True when `trailer` ("Key: value") is a line of the message's trailer block.

    Like git, the trailer block is the last paragraph, and never the subject paragraph. Keys
    and values compare case-insensitively, and spacing around the colon does not matter.
    Parsed by hand because `Commit.message_trailers` collapses duplicate keys.
    """
    key, sep, value = trailer.partition(":")
    want_key = key.strip().casefold()
    want_value = value.strip().casefold()
    cut = len(message) > TRAILER_WINDOW
    paragraphs = _paragraphs(message[-TRAILER_WINDOW:] if cut else message)
    if len(paragraphs) < 2:
        # Cut: the window's only paragraph may have begun before it, so it is not known
        # to be a complete trailer block; a last paragraph that long has no trailers.
        return False
    for line in paragraphs[-1]:
        if not sep:
            if line.strip().casefold() == want_key:
                return True
            continue
        got_key, got_sep, got_value = line.partition(":")
        if (
            got_sep
            and got_key.strip().casefold() == want_key
            and got_value.strip().casefold() == want_value
        ):
            return True
    return False


def _paragraphs(message: str) -> list[list[str]]:
    """The message's paragraphs (runs of non-blank lines)."""
    paragraphs: list[list[str]] = []
    current: list[str] = []
    for line in message.splitlines():
        if line.strip():
            current.append(line)
        elif current:
            paragraphs.append(current)
            current = []
    if current:
        paragraphs.append(current)
    return paragraphs


def detect_generated(
    repo: pygit2.Repository,
    tip: pygit2.Commit,
    commits: Sequence[pygit2.Commit],
    base: pygit2.Commit | None,
    rules: DetectRules,
    notes: list[str] | None = None,
) -> list[GeneratedModel]:
    """The generated model files changed between `base` (None: nothing) and `tip`, by path.

    A changed file under the tip's model paths counts when it carries `rules.marker` in its
    first MARKER_LINES lines (the old content for a deletion), or when one of the pushed
    `commits` whose message has `rules.trailer` changed it. The marker wins as the reason.
    A file too large to read for the marker is noted in `notes` (one line each for the user).
    """
    short = str(tip.id)[:7]
    projects = _ProjectLookup(tip.tree, repo, short)
    candidates = [
        cand
        for cand in _changed_files(base.tree if base else None, tip.tree)
        if cand.path.endswith(MODEL_SUFFIXES) and cand.path.startswith(projects.prefixes(cand.path))
    ]
    if not candidates:
        return []

    marker = re.compile(rules.marker)
    reasons: dict[str, Reason] = {}
    unmarked: list[_Candidate] = []
    for cand in candidates:
        size = blob_size(repo, cand.blob_id)
        if size > MAX_MODEL_BYTES:
            if notes is not None:
                label = f"{cand.path}@{short}"
                notes.append(
                    f"{too_large(label, size, MAX_MODEL_BYTES)}; not checked for the marker"
                )
        elif _has_marker(repo, cand.blob_id, marker):
            reasons[cand.path] = "marker"
        else:
            unmarked.append(cand)
    if unmarked:
        touched = _trailer_paths(commits, rules.trailer)
        for cand in unmarked:
            if cand.path in touched:
                reasons[cand.path] = "trailer"

    models = [
        GeneratedModel(cand.path, _names(repo, cand), cand.change, reasons[cand.path])
        for cand in candidates
        if cand.path in reasons
    ]
    return sorted(models, key=lambda m: m.path)


def _changed_files(
    old: pygit2.Tree | None, new: pygit2.Tree | None, prefix: str = ""
) -> Iterable[_Candidate]:
    """Regular files added, modified or deleted between two trees: a tree diff.

    Like libgit2's tree-to-tree diff without rename or type-change detection, but subtrees
    with the same id are skipped without being read, so a push that changes three files of a
    50,000-file repository reads a handful of trees. Symlinks and submodules are not files:
    a file replaced by a symlink counts as deleted, the other way round as added.
    """
    old_entries = {e.name: e for e in old} if old is not None else {}
    new_entries = {e.name: e for e in new} if new is not None else {}
    for name in sorted(old_entries.keys() | new_entries.keys(), key=str):
        before, after = old_entries.get(name), new_entries.get(name)
        if _same(before, after):
            continue
        path = f"{prefix}{name}"
        old_tree = before if isinstance(before, pygit2.Tree) else None
        new_tree = after if isinstance(after, pygit2.Tree) else None
        if old_tree is not None or new_tree is not None:
            yield from _changed_files(old_tree, new_tree, f"{path}/")
        old_file = before if _is_file(before) else None
        new_file = after if _is_file(after) else None
        if old_file is not None and new_file is not None:
            yield _Candidate(path, "modified", new_file.id)
        elif new_file is not None:
            yield _Candidate(path, "added", new_file.id)
        elif old_file is not None:
            yield _Candidate(path, "deleted", old_file.id)


def _same(before: pygit2.Object | None, after: pygit2.Object | None) -> bool:
    if before is None or after is None:
        return False
    return (before.id, before.filemode) == (after.id, after.filemode)


def _is_file(entry: pygit2.Object | None) -> bool:
    return isinstance(entry, pygit2.Blob) and entry.filemode in _BLOB_MODES


class _ProjectLookup:
    """Model-path prefixes for a file: those of the nearest dbt_project.yml above it.

    Looking up the file's parent folders (cached) costs a few tree reads per changed folder,
    where walking the whole tree for project files costs tens of milliseconds on a large
    repository. A file with no dbt_project.yml above it is in no project, unless the
    repository has none at all: then the default `models` at the root holds.
    """

    def __init__(
        self, tree: pygit2.Tree, repo: pygit2.Repository | None = None, short_sha: str = ""
    ) -> None:
        self.tree = tree
        self.repo = repo
        self.short_sha = short_sha  # for messages: dbt_project.yml@abc1234
        self.cache: dict[str, tuple[str, ...]] = {}

    def prefixes(self, path: str) -> tuple[str, ...]:
        return self._for_folder(posixpath.dirname(path))

    def _for_folder(self, folder: str) -> tuple[str, ...]:
        if folder in self.cache:
            return self.cache[folder]
        project = f"{folder}/{PROJECT_FILE}" if folder else PROJECT_FILE
        try:
            entry: pygit2.Object | None = self.tree[project]
        except KeyError:
            entry = None
        if _is_file(entry):
            assert isinstance(entry, pygit2.Blob)
            label = f"{project}@{self.short_sha}" if self.short_sha else project
            rels = _project_model_paths(entry, self.repo, label)
            joined = (fast_models.join_model_path(folder, rel) for rel in rels)
            found = tuple(sorted({prefix for prefix in joined if prefix is not None}))
        elif folder:
            found = self._for_folder(posixpath.dirname(folder))
        elif next(project_folders(self.tree), None) is None:
            found = tuple(f"{p}/" for p in DEFAULT_MODEL_PATHS)  # no dbt project anywhere
        else:
            found = ()  # outside every dbt project of the repository
        self.cache[folder] = found
        return found


def _blob(repo: pygit2.Repository, oid: pygit2.Oid) -> pygit2.Blob | None:
    obj = repo.get(oid)
    return obj if isinstance(obj, pygit2.Blob) else None


def _has_marker(repo: pygit2.Repository, oid: pygit2.Oid, marker: re.Pattern[str]) -> bool:
    """True when the marker is in one of the blob's first MARKER_LINES lines, each searched
    up to MARKER_LINE_CHARS characters (read from its head only; the caller checked its size)."""
    blob = _blob(repo, oid)
    if blob is None:
        return False
    head = memoryview(blob)[:MARKER_BYTES].tobytes()
    lines = head.decode("utf-8", errors="replace").split("\n", MARKER_LINES)[:MARKER_LINES]
    # Line by line: a pattern like `.*\s+x` that may cross lines would cost the cube of
    # the whole head where it costs the cube of one bounded line here.
    return any(marker.search(line[:MARKER_LINE_CHARS]) for line in lines)


def _trailer_paths(commits: Sequence[pygit2.Commit], trailer: str) -> set[str]:
    """Paths changed by those commits whose message carries the trailer (vs first parent)."""
    paths: set[str] = set()
    for commit in commits:
        if not has_trailer(CommitInfo.of(commit).message, trailer):
            continue
        parent = commit.parents[0].tree if commit.parents else None
        paths.update(cand.path for cand in _changed_files(parent, commit.tree))
    return paths


def _names(repo: pygit2.Repository, cand: _Candidate) -> tuple[str, ...]:
    """Model names: the file stem, or the `models[].name` entries of a YAML file."""
    base = posixpath.basename(cand.path)
    if not base.endswith(_YAML_SUFFIXES):
        return (posixpath.splitext(base)[0],)
    if blob_size(repo, cand.blob_id) > MAX_FILE_BYTES:
        return ()
    blob = _blob(repo, cand.blob_id)
    if blob is None:
        return ()
    return model_names(blob.data.decode("utf-8", errors="replace"))
