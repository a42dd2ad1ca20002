"""`datachonk-hook install`: put the standalone pre-push hook in place, never silently.

The hooks folder is `core.hooksPath` when set (relative to the work tree, as git reads it),
else `<git common dir>/hooks`. An existing pre-push hook that is not ours is kept as
`pre-push.legacy` and run first by ours, the way pre-commit chains hooks.
"""

from __future__ import annotations

import os
import stat
import sys
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import pygit2

from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.gitrepo import work_tree
from datachonk_hooks.ledger import common_dir

MARKER = "datachonk-hooks standalone pre-push hook"
HOOK = "pre-push"
LEGACY = "pre-push.legacy"


@dataclass(frozen=True)
class InstallResult:
    path: Path
    action: str  # "installed" | "updated" | "unchanged" | "uninstalled" | "absent"
    legacy: Path | None = None


def hooks_dir(repo: pygit2.Repository) -> Path:
    try:
        configured = repo.config["core.hooksPath"]
    except KeyError:
        configured = None
    if not configured:
        return common_dir(repo) / "hooks"
    path = Path(os.path.expanduser(configured))
    return path if path.is_absolute() else work_tree(repo) / path


def hook_script(python: str = sys.executable) -> str:
    text = resources.files("datachonk_hooks").joinpath("hooks", HOOK).read_text()
    # the path goes between single quotes in sh: a quote in it (/home/o'brien) is closed,
    # escaped and reopened
    return text.replace("@PYTHON@", python.replace("'", "'\\''"))


def is_ours(path: Path) -> bool:
    try:
        return MARKER in path.read_text(errors="replace")
    except OSError:
        return False


def install(repo: pygit2.Repository) -> InstallResult:
    folder = hooks_dir(repo)
    folder.mkdir(parents=True, exist_ok=True)
    hook, legacy = folder / HOOK, folder / LEGACY
    script = hook_script()
    kept = None
    if hook.exists() or hook.is_symlink():
        if is_ours(hook):
            if hook.read_text() == script:
                return InstallResult(hook, "unchanged", legacy if legacy.exists() else None)
            _write(hook, script)
            return InstallResult(hook, "updated", legacy if legacy.exists() else None)
        if legacy.exists() or legacy.is_symlink():
            raise DatachonkError(
                f"{hook} exists and so does {legacy}; move one of them away, then run install"
                " again (nothing was changed)"
            )
        hook.rename(legacy)
        kept = legacy
    _write(hook, script)
    return InstallResult(hook, "installed", kept)


def uninstall(repo: pygit2.Repository) -> InstallResult:
    folder = hooks_dir(repo)
    hook, legacy = folder / HOOK, folder / LEGACY
    if not is_ours(hook):
        return InstallResult(hook, "absent")
    hook.unlink()
    if legacy.exists() or legacy.is_symlink():
        legacy.rename(hook)
        return InstallResult(hook, "uninstalled", hook)
    return InstallResult(hook, "uninstalled")


def _write(path: Path, text: str) -> None:
    path.write_text(text)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
