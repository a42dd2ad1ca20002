"""Whether changed paths may hold a dbt model: the fast path's rules, a superset of the slow
path's (`detect`), so what they let skip the slow path would skip too.

A path may be a model when it has a model suffix and lies under `models/` or under the
`model-paths` of its nearest dbt_project.yml (read from the cache, by blob id: a miss falls
through). A changed dbt_project.yml or datachonk.yaml always falls through.
"""

from __future__ import annotations

from datachonk_hooks.prepush.fast_cache import State
from datachonk_hooks.prepush.fast_push import Git, changed_paths

#: `typing` and `collections.abc` cost the hook more than a git call: the annotations are
#: strings (`from __future__ import annotations`), and type checkers take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from datachonk_hooks.prepush.fast_cache import Cache
    from datachonk_hooks.prepush.fast_push import Update

MODEL_SUFFIXES = (".sql", ".py", ".yml", ".yaml")  # as detect.MODEL_SUFFIXES
PROJECT_FILE = "dbt_project.yml"  # as detect.PROJECT_FILE
CONFIG_NAME = "datachonk.yaml"  # as config.CONFIG_NAME
DEFAULT_PREFIXES = ("models/",)  # detect.DEFAULT_MODEL_PATHS joined at the root
#: more folders than this to look up for project files: let the slow path do it
MAX_FOLDERS = 2000

_REGULAR_MODES = (b"100644", b"100755")  # a symlinked dbt_project.yml is no project


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


def paths_reason(updates: Sequence[Update], changed: Sequence[bytes | None]) -> str | None:
    """Why the changed paths need the slow path, or None."""
    candidates: list[tuple[Update, list[str]]] = []
    for update, out in zip(updates, changed, strict=True):
        if out is None:
            return f"git diff {update.remote_sha[:7]} {update.local_sha[:7]} failed"
        paths = changed_paths(out)
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
    cache = State.cache
    assert cache is not None
    listings = []
    for update, suffixed in candidates:
        folders = {folder for path in suffixed for folder in _ancestors(path)}
        if len(folders) > MAX_FOLDERS:
            return "too many changed folders"
        files = sorted(_project_file(folder) for folder in folders)
        args = ["--literal-pathspecs", "ls-tree", "-z", "--full-tree", update.local_sha, "--"]
        listings.append(Git([*args, *files]))
    outputs = [listing.output() for listing in listings]
    for (update, suffixed), out in zip(candidates, outputs, strict=True):
        if out is None:
            return f"git ls-tree {update.local_sha[:7]} failed"
        reason = _models_touched(suffixed, _projects(out), cache)
        if reason is not None:
            return reason
    return None
