"""`datachonk-hook install`: put the standalone pre-push hook in place, never silently.

The hooks folder is `core.hooksPath` when set (relative to the work tree, as git reads it),
else `<git common dir>/hooks`. An existing pre-push hook that is not ours is kept as
`pre-push.legacy` and run first by ours, the way pre-commit chains hooks.

`install --git-config` uses git's config-based hooks instead (git 2.54 and newer): it sets
`hook.datachonk.event = pre-push` and `hook.datachonk.command` in the repository's own
config, beside any other hooks of that event, and writes no file.
"""

from __future__ import annotations

import os
import re
import shlex
import stat
import subprocess
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


# ----------------------------------------------------------------------------- config hooks

#: the friendly name of our config-based hook: `hook.datachonk.command` / `.event`
CONFIG_HOOK = "datachonk"
CONFIG_EVENT_KEY = f"hook.{CONFIG_HOOK}.event"
CONFIG_COMMAND_KEY = f"hook.{CONFIG_HOOK}.command"
#: the first git that runs hooks configured with hook.<name>.event / hook.<name>.command
CONFIG_HOOKS_GIT = (2, 54)


def git_version() -> tuple[int, ...] | None:
    """The version of the `git` on PATH, (2, 54, 0), or None when it cannot be told."""
    try:
        done = subprocess.run(
            ["git", "--version"], capture_output=True, text=True, check=False, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    found = re.search(r"(\d+)\.(\d+)(?:\.(\d+))?", done.stdout)
    if done.returncode != 0 or found is None:
        return None
    return tuple(int(part) for part in found.groups("0"))


def config_hooks_supported(version: tuple[int, ...] | None) -> bool:
    return version is not None and version[:2] >= CONFIG_HOOKS_GIT


def require_config_hooks(version: tuple[int, ...] | None) -> None:
    """Refuse to set config-based hooks that this machine's git would never run."""
    if config_hooks_supported(version):
        return
    have = "git" if version is None else "git " + ".".join(map(str, version))
    need = ".".join(map(str, CONFIG_HOOKS_GIT))
    raise DatachonkError(
        f"{have} does not run config-based hooks (hook.<name>.command needs git {need} or"
        " newer); nothing was changed: run `datachonk-hook install` for the hook file instead"
    )


def config_hook_command(python: str = sys.executable) -> str:
    """The shell command git runs; git appends the remote name and URL as arguments."""
    return f"{shlex.quote(python)} -m datachonk_hooks pre-push"


def _git_config(repo: pygit2.Repository, *args: str, check: bool = True) -> list[str]:
    done = subprocess.run(
        ["git", "config", "--local", *args],
        cwd=work_tree(repo),
        capture_output=True,
        text=True,
        check=False,
    )
    # 1: the key (or the value to unset) is not there, which is an answer, not a failure
    if check and done.returncode not in (0, 1):
        raise DatachonkError(f"git config {' '.join(args)} failed: {done.stderr.strip()}")
    return done.stdout.splitlines()


def install_git_config(repo: pygit2.Repository, python: str = sys.executable) -> InstallResult:
    """Set `hook.datachonk.event = pre-push` and `hook.datachonk.command` (git 2.54+)."""
    path = common_dir(repo) / "config"
    command = config_hook_command(python)
    events = _git_config(repo, "--get-all", CONFIG_EVENT_KEY)
    current = _git_config(repo, "--get-all", CONFIG_COMMAND_KEY)
    if HOOK in events and current == [command]:
        return InstallResult(path, "unchanged")
    if HOOK not in events:
        _git_config(repo, "--add", CONFIG_EVENT_KEY, HOOK)
    _git_config(repo, "--replace-all", CONFIG_COMMAND_KEY, command)
    return InstallResult(path, "updated" if current or events else "installed")


def uninstall_git_config(repo: pygit2.Repository) -> InstallResult:
    """Remove our command and its pre-push event; other events of the name are kept."""
    path = common_dir(repo) / "config"
    events = _git_config(repo, "--get-all", CONFIG_EVENT_KEY)
    current = _git_config(repo, "--get-all", CONFIG_COMMAND_KEY)
    if HOOK not in events and not current:
        return InstallResult(path, "absent")
    if HOOK in events:
        _git_config(repo, "--unset-all", CONFIG_EVENT_KEY, f"^{HOOK}$")
    if current and not [event for event in events if event != HOOK]:
        _git_config(repo, "--unset-all", CONFIG_COMMAND_KEY)
    if not _git_config(repo, "--get-regexp", rf"^hook\.{CONFIG_HOOK}\."):
        _git_config(repo, "--remove-section", f"hook.{CONFIG_HOOK}", check=False)
    return InstallResult(path, "uninstalled")
