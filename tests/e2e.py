"""Fixtures for end-to-end tests: a bare remote, clones driven like a user drives git, the
real pre-commit or the standalone hook, and the simulator as dbt Cloud."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from datachonk_hooks.ledger import Ledger, TriggerState
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import HAND_SQL, TOKEN, commit_files, config_yaml, git

BIN = Path(sys.executable).parent
HOOK_ENTRY = f"{BIN / 'datachonk-hook'} pre-push"

PRE_COMMIT_CONFIG = f"""\
default_install_hook_types: [pre-push]
repos:
  - repo: local
    hooks:
      - id: datachonk-dbt-cloud
        name: trigger dbt Cloud for DataChonk-generated models
        entry: {HOOK_ENTRY}
        language: unsupported
        stages: [pre-push, manual]
        files: '\\.(sql|py|ya?ml)$'
        pass_filenames: false
        require_serial: true
        verbose: true
"""


@pytest.fixture(scope="session")
def pre_commit_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("pre-commit-home")


@pytest.fixture
def cloud() -> Iterator[Sandbox]:
    with Sandbox(token=TOKEN, time_scale=20) as server:
        yield server


@pytest.fixture
def env(pre_commit_home: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DBT_CLOUD_API_TOKEN": TOKEN,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "DATACHONK_LANDING_TIMEOUT": "30",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


class Clone:
    """A work clone of a bare remote, driven like a user drives git."""

    def __init__(self, path: Path, remote: Path, env: dict[str, str]) -> None:
        self.path, self.remote, self.env = path, remote, env

    def run(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            list(args), cwd=self.path, env=self.env, capture_output=True, text=True, check=False
        )
        if check and done.returncode != 0:
            raise AssertionError(f"{args} failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        assert TOKEN not in done.stdout + done.stderr
        return done

    def push(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return self.run("git", "push", *args, check=check)

    def commit(self, files: dict[str, str], message: str) -> str:
        return commit_files(self.path, files, message)

    def ledger(self) -> Ledger:
        return Ledger(self.path / ".git" / "datachonk" / "ledger.sqlite3")

    def waiter_log(self) -> str:
        log = self.path / ".git" / "datachonk" / "waiter.log"
        return log.read_text() if log.exists() else ""


def make_clone(tmp_path: Path, name: str, remote: Path, env: dict[str, str]) -> Clone:
    path = tmp_path / name
    git(tmp_path, "clone", "--quiet", str(remote), str(path))
    return Clone(path, remote, env)


@pytest.fixture
def remote(tmp_path: Path, cloud: Sandbox) -> Path:
    """A bare remote whose main holds a configured dbt project (no generated model yet)."""
    bare = tmp_path / "remote.git"
    git(tmp_path, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = tmp_path / "seed"
    git(tmp_path, "init", "--quiet", "--initial-branch=main", str(seed))
    commit_files(
        seed,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "datachonk.yaml": config_yaml(cloud.url),
            "models/staging/stg_customers.sql": HAND_SQL,
        },
        "Start the dbt project",
    )
    git(seed, "push", "--quiet", str(bare), "main")
    return bare


def pre_commit_clone(
    tmp_path: Path, remote: Path, env: dict[str, str], name: str = "work", extra: str = ""
) -> Clone:
    """A clone whose pre-push hook is pre-commit running our hook (`extra`: more config)."""
    clone = make_clone(tmp_path, name, remote, env)
    (clone.path / ".pre-commit-config.yaml").write_text(PRE_COMMIT_CONFIG + extra)
    clone.run("git", "add", ".pre-commit-config.yaml")
    clone.run("git", "commit", "--quiet", "-m", "Use pre-commit")
    clone.run(str(BIN / "pre-commit"), "install")
    return clone


@pytest.fixture
def with_pre_commit(tmp_path: Path, remote: Path, env: dict[str, str]) -> Clone:
    return pre_commit_clone(tmp_path, remote, env)


@pytest.fixture
def standalone(tmp_path: Path, remote: Path, env: dict[str, str]) -> Clone:
    clone = make_clone(tmp_path, "work", remote, env)
    clone.run(str(BIN / "datachonk-hook"), "install")
    return clone


def eventually(condition: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def settled(clone: Clone) -> bool:
    """No trigger of the clone is still waiting for its push or being sent."""
    with clone.ledger() as ledger:
        busy = (TriggerState.AWAITING_PUSH, TriggerState.SENDING)
        return all(t.state not in busy for t in ledger.history(100))
