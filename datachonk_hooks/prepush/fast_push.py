"""The push as the fast path reads it from git: git's stdin lines or pre-commit's variables as
updates, the commit each update's changes are diffed from, and the changed paths.

git runs as processes started with `posix_spawn` (`Git`), several at once, without importing
`subprocess` (it costs more than a git call). Anything it cannot read plainly is a reason
for the slow path (a string), never an error.
"""

from __future__ import annotations

import os

#: `typing` and `collections.abc` cost the hook more than a git call: the annotations are
#: strings (`from __future__ import annotations`), and type checkers take this as True.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

_HEX = frozenset("0123456789abcdef")


def is_sha(text: str) -> bool:
    """Whether `text` is a full commit or object id (SHA-1 or SHA-256, lowercase hex)."""
    return len(text) in (40, 64) and _HEX.issuperset(text)


class Git:
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


def git_common_dir(env: Mapping[str, str]) -> str | None:
    """The git common dir without pygit2: `./.git` when it is a folder (git runs hooks at the
    top of the work tree), else what `git rev-parse --git-common-dir` says."""
    if not any(k in env for k in ("GIT_DIR", "GIT_COMMON_DIR")) and os.path.isdir(".git"):
        return os.path.abspath(".git")
    out = Git(["rev-parse", "--path-format=absolute", "--git-common-dir"]).output()
    text = out.decode("utf-8", "surrogateescape").strip() if out else ""
    return text or None


#: The changed paths of a range, as a tree diff (the slow path's: no renames), whatever the
#: user's diff config says. Not `git diff-tree`: it reads the whole index first (10 ms on a
#: 50,000-file work tree), which `git diff A B` does not.
DIFF = (
    "diff",
    "--name-only",
    "-z",
    "--no-renames",
    "--no-relative",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
)


class Update:
    __slots__ = ("local_sha", "remote_ref", "remote_sha")

    def __init__(self, local_sha: str, remote_ref: str, remote_sha: str) -> None:
        self.local_sha, self.remote_ref, self.remote_sha = local_sha, remote_ref, remote_sha


def from_pre_commit(env: Mapping[str, str]) -> list[Update] | str:
    """The one update in pre-commit's variables, or why the slow path must read them."""
    to_sha = env.get("PRE_COMMIT_TO_REF") or env.get("PRE_COMMIT_SOURCE") or ""
    from_sha = env.get("PRE_COMMIT_FROM_REF") or env.get("PRE_COMMIT_ORIGIN") or ""
    remote_ref = env.get("PRE_COMMIT_REMOTE_BRANCH") or ""
    if not (is_sha(to_sha) and is_sha(from_sha)):
        return "pre-commit gave no shas (a root push, or symbolic refs)"
    if not remote_ref:
        return "pre-commit gave no remote branch"
    return [Update(to_sha, remote_ref, from_sha)]


def from_stdin(lines: Iterable[str]) -> list[Update] | str:
    """git's stdin lines as updates, or why the slow path must read them."""
    updates = []
    for line in lines:
        if not line.strip():
            continue
        fields = line.split()
        if len(fields) != 4 or not (is_sha(fields[1]) and is_sha(fields[3])):
            return "unexpected pre-push input"
        updates.append(Update(fields[1], fields[2], fields[3]))
    return updates


class TrackingTips:
    """The tips of a remote's remote-tracking refs, listed once per push however many new
    branches it carries (a remote named `origin/x` keeps its own refs below
    `refs/remotes/origin/x/`, which are not origin's)."""

    def __init__(self, remote: str | None) -> None:
        self.remote = remote
        self._listed: tuple[list[str], str | None] | None = None

    def get(self) -> tuple[list[str], str | None]:
        """(the tips; why they cannot be used, or None)."""
        if self._listed is None:
            self._listed = self._list()
        return self._listed

    def _list(self) -> tuple[list[str], str | None]:
        if not self.remote:
            return [], "a new branch"
        prefix = f"refs/remotes/{self.remote}/"
        listing = Git(["for-each-ref", "--format=%(objectname) %(refname)", prefix])
        names = Git(["remote"])
        refs, others = listing.output(), names.output()
        if refs is None or others is None:
            return [], "a new branch (git for-each-ref failed)"
        nested = tuple(
            f"refs/remotes/{name}/"
            for name in others.decode("utf-8", "surrogateescape").split()
            if name.startswith(f"{self.remote}/")
        )
        tips = [
            sha
            for sha, _, name in (
                line.partition(" ") for line in refs.decode("utf-8", "surrogateescape").splitlines()
            )
            if not name.endswith("/HEAD") and not name.startswith(nested)
        ]
        if not tips:
            return [], "a new branch of a remote without tracking refs"
        return tips, None


def base_of(update: Update, tracking: TrackingTips) -> tuple[str | None, str | None]:
    """(the commit the update's changes are diffed from, or None when it brings no new
    commit; why the slow path must judge it instead).

    An existing branch builds on the old remote sha. A new branch, as `push.pushed_range`
    computes it: its commits are those no remote-tracking ref of the remote reaches, based
    on the first parent of the oldest. A root commit, or a remote without tracking refs (a
    URL), is left to the slow path.
    """
    if set(update.remote_sha) != {"0"}:
        return update.remote_sha, None
    tips, why_not = tracking.get()
    if why_not is not None:
        return None, why_not
    walk = ["rev-list", "--topo-order", "--reverse", "--parents", update.local_sha, "--not"]
    out = Git([*walk, *tips]).output()
    if out is None:
        return None, "a new branch (git rev-list failed)"
    oldest = out.split(b"\n", 1)[0].split()
    if not oldest:
        return None, None  # only commits the remote already has: nothing new to judge
    if len(oldest) < 2:
        return None, "a new branch starting at a root commit"
    return oldest[1].decode("ascii"), None


def changed_paths(output: bytes) -> list[str]:
    return [p.decode("utf-8", "surrogateescape") for p in output.split(b"\0") if p]
