"""gitpush.py: the `git push` running the hook, found through its parents, and its flags."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from datachonk_hooks.push.gitpush import PushCommand, git_push_command
from tests.helpers import GENERATED_SQL, commit_files, git, remote_and_clone

PROBE = """#!/bin/sh
"{python}" -c 'from datachonk_hooks.push.gitpush import git_push_command as c; print(c())' > "{out}"
"""


@pytest.fixture
def work(tmp_path: Path) -> Path:
    _, path = remote_and_clone(tmp_path)
    commit_files(path, {"dbt_project.yml": "name: shop\n"}, "Start")
    git(path, "push", "--quiet", "origin", "main")
    return path


def install_probe(work: Path, hook: str) -> Path:
    out = work / ".git" / f"{hook}.out"
    script = work / ".git" / "hooks" / hook
    script.write_text(PROBE.format(python=sys.executable, out=out))
    script.chmod(0o755)
    return out


def test_the_git_push_running_the_hook_is_found(work: Path) -> None:
    out = install_probe(work, "pre-push")
    commit_files(work, {"models/a.sql": GENERATED_SQL}, "Add a")
    git(work, "branch", "feature")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    argv = ["git", "push", "--quiet", "origin", "main", "feature"]
    process = subprocess.Popen(argv, cwd=work, env=env)
    assert process.wait(timeout=60) == 0
    assert out.read_text().strip() == f"PushCommand({process.pid}, {tuple(argv)!r})"


def test_under_another_git_command_there_is_none(work: Path) -> None:
    out = install_probe(work, "pre-commit")
    commit_files(work, {"models/a.sql": GENERATED_SQL}, "Add a")  # git commit runs the hook
    assert out.read_text().strip() == "None"


def test_without_a_push_there_is_none() -> None:
    assert git_push_command() is None
    assert git_push_command(start=1) is None
    assert git_push_command(start=0) is None
    with subprocess.Popen(["sleep", "10"]) as child:
        try:
            assert git_push_command(start=child.pid) is None
        finally:
            child.kill()
    gone = subprocess.Popen(["true"])
    gone.wait()
    assert git_push_command(start=gone.pid) is None


@pytest.mark.parametrize(
    ("args", "dry_run", "several"),
    [
        (["origin", "main"], False, False),
        (["--dry-run", "origin", "main"], True, False),
        (["-n", "origin"], True, False),
        (["--dry", "origin", "main"], True, False),  # git takes unique abbreviations
        (["--dry-run", "--no-dry-run", "origin", "main"], False, False),  # the last one wins
        (["--no-dry-run", "-n", "origin"], True, False),
        (["-fn", "origin", "main", "feature"], True, True),
        (["-u", "origin", "main:main", "HEAD:refs/heads/x"], False, True),
        (["--all", "origin"], False, True),
        (["--mirror", "backup"], False, True),
        (["-o", "n", "origin", "main"], False, False),  # -o takes a value
        (["-on", "origin"], False, False),  # -o's value, glued
        (["--push-option=x", "origin", "main"], False, False),
        (["origin", "--", "-n"], False, False),  # a ref named -n
        (["origin", "refs/heads/b-*:refs/heads/b-*"], False, True),  # a glob
        ([], False, False),  # push.default decides: one ref as far as we know
    ],
)
def test_what_the_command_line_asks(args: list[str], dry_run: bool, several: bool) -> None:
    command = PushCommand(1234, ("/usr/bin/git", "-c", "x.y=z", "push", *args))
    assert (command.dry_run, command.several_refs) == (dry_run, several)


def test_the_sources_of_the_refspecs() -> None:
    argv = ("git", "push", "-u", "origin", "docs", "+a1b2c3d:refs/heads/x", "HEAD:y", ":gone")
    assert PushCommand(1, (*argv, "b-*:b-*")).sources == ("docs", "a1b2c3d", "HEAD")
    assert PushCommand(1, ("git", "push")).sources == ()
