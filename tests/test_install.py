"""install.py: the standalone pre-push hook, installed next to (never over) an existing one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pygit2
import pytest

from datachonk_hooks.commands.install import (
    HOOK,
    LEGACY,
    MARKER,
    config_hook_command,
    config_hooks_supported,
    git_version,
    hook_script,
    hooks_dir,
    install,
    install_git_config,
    is_ours,
    require_config_hooks,
    uninstall,
    uninstall_git_config,
)
from datachonk_hooks.errors import DatachonkError
from tests.helpers import git

FOREIGN = "#!/bin/sh\necho foreign hook\n"


def open_repo(path: Path) -> pygit2.Repository:
    return pygit2.Repository(str(path))


def write_hook(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


def snapshot(folder: Path) -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(folder.iterdir()) if p.is_file()}


def test_hook_script_names_the_python_and_carries_the_marker() -> None:
    script = hook_script("/opt/venv/bin/python")
    assert script.startswith("#!/bin/sh\n")
    assert MARKER in script
    assert "DATACHONK_PYTHON='/opt/venv/bin/python'" in script
    assert "@PYTHON@" not in script


def test_fresh_install(dbt_repo: Path) -> None:
    result = install(open_repo(dbt_repo))
    hook = dbt_repo / ".git" / "hooks" / HOOK
    assert (result.path, result.action, result.legacy) == (hook, "installed", None)
    assert hook.read_text() == hook_script()
    assert os.access(hook, os.X_OK)
    assert is_ours(hook)
    assert not (hook.parent / LEGACY).exists()


def test_install_twice_is_unchanged(dbt_repo: Path) -> None:
    install(open_repo(dbt_repo))
    hook = dbt_repo / ".git" / "hooks" / HOOK
    before = hook.stat().st_mtime_ns
    result = install(open_repo(dbt_repo))
    assert (result.action, result.legacy) == ("unchanged", None)
    assert hook.stat().st_mtime_ns == before


def test_install_updates_an_old_copy_of_ours(dbt_repo: Path) -> None:
    hook = write_hook(dbt_repo / ".git" / "hooks" / HOOK, f"#!/bin/sh\n# {MARKER}\n# old\n")
    legacy = write_hook(hook.parent / LEGACY, FOREIGN)
    result = install(open_repo(dbt_repo))
    assert (result.action, result.legacy) == ("updated", legacy)
    assert hook.read_text() == hook_script()
    assert legacy.read_text() == FOREIGN  # left where it is


@pytest.mark.parametrize("relative", [True, False])
def test_core_hooks_path(dbt_repo: Path, tmp_path: Path, relative: bool) -> None:
    target = dbt_repo / "githooks" if relative else tmp_path / "shared-hooks"
    git(dbt_repo, "config", "core.hooksPath", "githooks" if relative else str(target))
    repo = open_repo(dbt_repo)
    assert hooks_dir(repo) == target
    result = install(repo)
    assert result.path == target / HOOK
    assert is_ours(target / HOOK)
    assert not (dbt_repo / ".git" / "hooks" / HOOK).exists()


def test_core_hooks_path_relative_from_a_subfolder(dbt_repo: Path) -> None:
    """git resolves a relative core.hooksPath against the work tree, wherever we run."""
    git(dbt_repo, "config", "core.hooksPath", ".githooks")
    repo = pygit2.Repository(str(dbt_repo / "models" / "staging"))
    assert hooks_dir(repo) == dbt_repo.resolve() / ".githooks"


def test_core_hooks_path_with_a_tilde(dbt_repo: Path) -> None:
    git(dbt_repo, "config", "core.hooksPath", "~/hooks")
    assert hooks_dir(open_repo(dbt_repo)) == Path.home() / "hooks"


def test_an_existing_hook_is_kept_as_legacy(dbt_repo: Path) -> None:
    hook = write_hook(dbt_repo / ".git" / "hooks" / HOOK, FOREIGN)
    result = install(open_repo(dbt_repo))
    legacy = hook.parent / LEGACY
    assert (result.action, result.legacy) == ("installed", legacy)
    assert legacy.read_text() == FOREIGN
    assert os.access(legacy, os.X_OK)
    assert hook.read_text() == hook_script()


def test_both_hook_and_legacy_existing_is_an_error_and_changes_nothing(dbt_repo: Path) -> None:
    hooks = dbt_repo / ".git" / "hooks"
    write_hook(hooks / HOOK, FOREIGN)
    write_hook(hooks / LEGACY, "#!/bin/sh\necho older\n")
    before = snapshot(hooks)
    with pytest.raises(DatachonkError, match=r"exists and so does .*nothing was changed"):
        install(open_repo(dbt_repo))
    assert snapshot(hooks) == before


def test_pre_commits_own_hook_is_not_chained(dbt_repo: Path) -> None:
    """pre-commit's script refuses to run as another hook's .legacy: chaining it would fail
    every push. The real `pre-commit install` writes the hook here."""
    env = {**os.environ, "PRE_COMMIT_HOME": str(dbt_repo.parent / "pre-commit-home")}
    subprocess.run(
        [str(Path(sys.executable).parent / "pre-commit"), "install", "-t", "pre-push"],
        cwd=dbt_repo,
        env=env,
        check=True,
        capture_output=True,
    )
    hooks = dbt_repo / ".git" / "hooks"
    before = snapshot(hooks)
    with pytest.raises(DatachonkError, match=r"is pre-commit's hook: add the datachonk-dbt-cloud"):
        install(open_repo(dbt_repo))
    assert snapshot(hooks) == before


def test_uninstall_restores_the_legacy_hook(dbt_repo: Path) -> None:
    hook = write_hook(dbt_repo / ".git" / "hooks" / HOOK, FOREIGN)
    install(open_repo(dbt_repo))
    result = uninstall(open_repo(dbt_repo))
    assert (result.action, result.legacy) == ("uninstalled", hook)
    assert hook.read_text() == FOREIGN
    assert os.access(hook, os.X_OK)
    assert not (hook.parent / LEGACY).exists()


def test_uninstall_without_legacy_removes_the_hook(dbt_repo: Path) -> None:
    install(open_repo(dbt_repo))
    result = uninstall(open_repo(dbt_repo))
    assert (result.action, result.legacy) == ("uninstalled", None)
    assert not (dbt_repo / ".git" / "hooks" / HOOK).exists()


@pytest.mark.parametrize("existing", [None, FOREIGN])
def test_uninstall_leaves_a_foreign_hook_alone(dbt_repo: Path, existing: str | None) -> None:
    hook = dbt_repo / ".git" / "hooks" / HOOK
    if existing is not None:
        write_hook(hook, existing)
    result = uninstall(open_repo(dbt_repo))
    assert result.action == "absent"
    assert (hook.read_text() if hook.exists() else None) == existing


# ----------------------------------------------------------------------------- the script

STDIN = (
    f"refs/heads/main {'a' * 40} refs/heads/main {'0' * 40}\nrefs/tags/v1 {'b' * 40} x {'0' * 40}\n"
)


def run_hook(
    repo: Path, stdin: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the installed hook the way git does: cwd the work tree, remote and URL as args."""
    if env is None:
        env = {**os.environ, "DATACHONK_DRY_RUN": "1"}
    return subprocess.run(
        [str(repo / ".git" / "hooks" / HOOK), "origin", "git@example.com:shop.git"],
        cwd=repo,
        input=stdin,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )


def add_legacy(repo: Path, exit_code: int) -> Path:
    saw = repo / ".git" / "legacy-saw"
    write_hook(
        repo / ".git" / "hooks" / HOOK,
        f'#!/bin/sh\necho "$@" > "{saw}.args"\ncat > "{saw}"\necho legacy ran >&2\n'
        f"exit {exit_code}\n",
    )
    install(open_repo(repo))
    return saw


def test_installed_script_runs_the_legacy_hook_first_with_the_same_input(dbt_repo: Path) -> None:
    saw = add_legacy(dbt_repo, 0)
    done = run_hook(dbt_repo, STDIN)
    assert done.returncode == 0, done.stderr
    assert saw.read_text() == STDIN
    assert saw.with_suffix(".args").read_text() == "origin git@example.com:shop.git\n"
    # then ours, with the same lines: the dry run lists both refs
    assert done.stderr.index("legacy ran") < done.stderr.index("Dry run")
    assert "refs/heads/main aaaaaaa -> refs/heads/main" in done.stderr
    assert "refs/tags/v1 bbbbbbb -> x" in done.stderr


@pytest.mark.parametrize("exit_code", [1, 3])
def test_a_failing_legacy_hook_stops_the_push(dbt_repo: Path, exit_code: int) -> None:
    saw = add_legacy(dbt_repo, exit_code)
    done = run_hook(dbt_repo, STDIN)
    assert done.returncode == exit_code
    assert saw.read_text() == STDIN
    assert "legacy ran" in done.stderr
    assert "Dry run" not in done.stderr  # ours never ran


def test_installed_script_without_legacy(dbt_repo: Path) -> None:
    install(open_repo(dbt_repo))
    done = run_hook(dbt_repo, STDIN)
    assert done.returncode == 0
    assert "Dry run: nothing is recorded or sent." in done.stderr


def test_installed_script_with_a_quote_in_the_python_path(dbt_repo: Path, tmp_path: Path) -> None:
    folder = tmp_path / "o'brien $HOME"
    folder.mkdir()
    (folder / "venv").symlink_to(Path(sys.prefix))  # the test venv, under a quoted name
    python = folder / "venv" / "bin" / Path(sys.executable).name
    hook = write_hook(dbt_repo / ".git" / "hooks" / HOOK, hook_script(str(python)))
    probe = subprocess.run(
        ["sh", "-c", f'eval "$(grep ^DATACHONK_PYTHON= {hook})"; printf %s "$DATACHONK_PYTHON"'],
        capture_output=True,
        text=True,
        check=True,
    )
    assert probe.stdout == str(python)
    assert "Dry run" in run_hook(dbt_repo, STDIN).stderr


def test_installed_script_falls_back_to_the_command_on_path(dbt_repo: Path) -> None:
    hook = dbt_repo / ".git" / "hooks" / HOOK
    write_hook(hook, hook_script("/nonexistent/python"))
    bindir = Path(sys.executable).parent
    env = {**os.environ, "DATACHONK_DRY_RUN": "1", "PATH": f"{bindir}{os.pathsep}/usr/bin:/bin"}
    done = run_hook(dbt_repo, STDIN, env)
    assert done.returncode == 0
    assert "Dry run" in done.stderr
    env["PATH"] = "/usr/bin:/bin"
    done = run_hook(dbt_repo, STDIN, env)
    assert done.returncode == 0  # never blocks the push
    assert "datachonk-hook not found; nothing triggered" in done.stderr


# ----------------------------------------------------------------------------- --git-config


def config_values(repo: Path, key: str) -> list[str]:
    done = subprocess.run(
        ["git", "config", "--local", "--get-all", key],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.splitlines()


def test_git_config_install_writes_the_two_keys(dbt_repo: Path) -> None:
    result = install_git_config(open_repo(dbt_repo), "/opt/venv/bin/python")
    assert (result.path, result.action) == (dbt_repo / ".git" / "config", "installed")
    assert config_values(dbt_repo, "hook.datachonk.event") == ["pre-push"]
    assert config_values(dbt_repo, "hook.datachonk.command") == [
        "/opt/venv/bin/python -m datachonk_hooks pre-push"
    ]
    again = install_git_config(open_repo(dbt_repo), "/opt/venv/bin/python")
    assert again.action == "unchanged"
    moved = install_git_config(open_repo(dbt_repo), "/new venv/bin/python")
    assert moved.action == "updated"
    assert config_values(dbt_repo, "hook.datachonk.event") == ["pre-push"]  # not twice
    assert config_values(dbt_repo, "hook.datachonk.command") == [
        "'/new venv/bin/python' -m datachonk_hooks pre-push"
    ]
    assert not (dbt_repo / ".git" / "hooks" / HOOK).exists()  # no file written


def test_git_config_uninstall_removes_only_ours(dbt_repo: Path) -> None:
    git(dbt_repo, "config", "hook.lint.event", "pre-push")
    git(dbt_repo, "config", "hook.lint.command", "make lint")
    install_git_config(open_repo(dbt_repo))
    assert uninstall_git_config(open_repo(dbt_repo)).action == "uninstalled"
    assert config_values(dbt_repo, "hook.datachonk.event") == []
    assert config_values(dbt_repo, "hook.datachonk.command") == []
    assert "datachonk" not in (dbt_repo / ".git" / "config").read_text()  # no empty section
    assert config_values(dbt_repo, "hook.lint.command") == ["make lint"]
    assert uninstall_git_config(open_repo(dbt_repo)).action == "absent"


def test_git_config_uninstall_keeps_a_command_other_events_use(dbt_repo: Path) -> None:
    git(dbt_repo, "config", "--add", "hook.datachonk.event", "post-merge")
    install_git_config(open_repo(dbt_repo), "/opt/venv/bin/python")
    assert config_values(dbt_repo, "hook.datachonk.event") == ["post-merge", "pre-push"]
    uninstall_git_config(open_repo(dbt_repo))
    assert config_values(dbt_repo, "hook.datachonk.event") == ["post-merge"]
    assert config_values(dbt_repo, "hook.datachonk.command") != []


def test_git_config_command_runs_the_way_git_runs_it(dbt_repo: Path) -> None:
    # git runs a configured command through the shell with the hook's arguments appended
    command = config_hook_command()
    done = subprocess.run(
        ["sh", "-c", f'{command} "$@"', command, "origin", "git@example.com:shop.git"],
        cwd=dbt_repo,
        input=STDIN,
        env={**os.environ, "DATACHONK_DRY_RUN": "1"},
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Dry run" in done.stderr


@pytest.mark.parametrize(
    ("version", "ok"),
    [
        ((2, 39, 5), False),
        ((2, 53, 9), False),
        ((2, 54, 0), True),
        ((3, 0, 0), True),
        (None, False),
    ],
)
def test_config_hooks_need_git_2_54(version: tuple[int, ...] | None, ok: bool) -> None:
    assert config_hooks_supported(version) is ok
    if ok:
        require_config_hooks(version)
    else:
        with pytest.raises(
            DatachonkError, match=r"needs git 2\.54 or newer.*datachonk-hook install"
        ):
            require_config_hooks(version)


def test_cli_install_git_config(
    dbt_repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from datachonk_hooks.cli import main
    from datachonk_hooks.commands import install as installer

    monkeypatch.chdir(dbt_repo)
    monkeypatch.setattr(installer, "git_version", lambda: (2, 39, 5))
    assert main(["install", "--git-config"]) == 2
    assert "git 2.39.5 does not run config-based hooks" in capsys.readouterr().err
    assert config_values(dbt_repo, "hook.datachonk.event") == []  # nothing changed

    monkeypatch.setattr(installer, "git_version", lambda: (2, 54, 0))
    assert main(["install"]) == 0  # the standalone hook too: it would run twice
    capsys.readouterr()
    assert main(["install", "--git-config"]) == 0
    out = capsys.readouterr().out
    assert "set hook.datachonk.event = pre-push and hook.datachonk.command" in out
    assert "the standalone hook" in out and "install --uninstall" in out
    assert config_values(dbt_repo, "hook.datachonk.event") == ["pre-push"]
    assert main(["install", "--uninstall", "--git-config"]) == 0
    assert "removed hook.datachonk (pre-push)" in capsys.readouterr().out
    assert config_values(dbt_repo, "hook.datachonk.event") == []
    assert is_ours(dbt_repo / ".git" / "hooks" / HOOK)  # --git-config left the file alone


def test_git_version_reads_the_machines_git() -> None:
    version = git_version()
    assert version is not None and version >= (2, 0, 0)
