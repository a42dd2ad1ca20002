"""The published pre-commit manifest: valid, pre-push only, and installable by pre-commit."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from datachonk_hooks.sandbox import Sandbox
from tests.helpers import (
    GENERATED_SQL,
    HAND_SQL,
    TOKEN,
    commit_files,
    config_yaml,
    git,
    remote_and_clone,
)

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent


def load_hooks() -> list[dict[str, Any]]:
    hooks = YAML(typ="safe").load(MANIFEST.read_text())
    assert isinstance(hooks, list)
    return hooks


@pytest.fixture(scope="module")
def hook() -> dict[str, Any]:
    [only] = load_hooks()
    return only


def test_validate_manifest() -> None:
    done = subprocess.run(
        [str(BIN / "pre-commit"), "validate-manifest", str(MANIFEST)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr


def test_hook_id_and_stages(hook: dict[str, Any]) -> None:
    assert hook["id"] == "datachonk-dbt-cloud"
    assert hook["stages"] == ["pre-push", "manual"]  # never at commit time
    assert hook["language"] == "python"
    assert hook["pass_filenames"] is False  # it reads the push itself
    assert hook["require_serial"] is True


def test_entry_is_a_console_script(hook: dict[str, Any]) -> None:
    command, *args = hook["entry"].split()
    pyproject = (ROOT / "pyproject.toml").read_text()
    assert re.search(rf'^{re.escape(command)} = "datachonk_hooks\.entry:main"$', pyproject, re.M)
    assert args == ["pre-push"]


def test_hook_runs_for_every_push(hook: dict[str, Any]) -> None:
    # pre-commit drops changed paths missing from the work tree before matching `files:`,
    # so a filter would skip pushes of a branch that is not checked out; the hook decides
    assert hook["always_run"] is True
    assert "files" not in hook and "types" not in hook and "types_or" not in hook
    assert hook["minimum_pre_commit_version"] == "3.2.0"


# ----------------------------------------------------------------------------- the real install


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home-manifest")


@pytest.fixture
def cloud() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, time_scale=20) as server:
        yield server


def eventually(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        list(args), cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert done.returncode == 0, f"{args} failed:\n{done.stdout}{done.stderr}"
    assert TOKEN not in done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_pre_commit_installs_the_manifest_and_a_push_triggers_one_run(
    tmp_path: Path, pre_commit_home: Path, cloud: Sandbox
) -> None:
    rev = git(ROOT, "rev-parse", "HEAD")
    hooks_repo = tmp_path / "hooks-repo"  # a throw-away copy: others work in ROOT meanwhile
    git(tmp_path, "clone", "--quiet", "--no-checkout", str(ROOT), str(hooks_repo))
    assert git(hooks_repo, "rev-parse", "HEAD") == rev

    env = {
        **os.environ,
        "DBT_CLOUD_API_TOKEN": TOKEN,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "DATACHONK_LANDING_TIMEOUT": "60",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    _, work = remote_and_clone(tmp_path)
    config = (
        "default_install_hook_types: [pre-push]\n"
        "repos:\n"
        f"  - repo: {hooks_repo}\n"
        f"    rev: {rev}\n"
        "    hooks:\n"
        "      - id: datachonk-dbt-cloud\n"
    )
    commit_files(
        work,
        {
            ".pre-commit-config.yaml": config,
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "datachonk.yaml": config_yaml(cloud.url),
            "models/staging/stg_customers.sql": HAND_SQL,
        },
        "Start the dbt project",
    )
    installed = run(work, env, str(BIN / "pre-commit"), "install")
    assert "pre-push" in installed.stdout
    run(work, env, str(BIN / "pre-commit"), "install-hooks")  # pip-installs the package
    run(work, env, "git", "push", "--quiet", "origin", "main")  # root push: nothing generated
    sha = commit_files(work, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    pushed = run(work, env, "git", "push", "origin", "main")
    output = pushed.stdout + pushed.stderr
    assert "datachonk-dbt-cloud" in output or "trigger dbt Cloud" in output
    assert f"will run for {sha[:7]}" in output

    eventually(lambda: len(cloud.runs) >= 1, timeout=60)
    time.sleep(1.0)  # a second run would show up by now
    [triggered] = cloud.runs
    assert (triggered.job_id, triggered.git_sha, triggered.git_branch) == (11111, sha, "main")
    assert triggered.cause == "Add stg_orders"
