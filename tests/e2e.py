"""Fixtures for end-to-end tests: a bare remote, clones driven like a user drives git, the
real pre-commit or the standalone hook, and the simulator as dbt Cloud."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from datachonk_hooks.delivery.ledger import Ledger, TriggerState, pid_alive
from datachonk_hooks.sandbox import Sandbox
from tests.helpers import HAND_SQL, TOKEN, clean_environ, commit_files, config_yaml, git

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
        always_run: true
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


def hook_env(pre_commit_home: Path) -> dict[str, str]:
    """The environment pushes run in: the token, this venv first on PATH, a shared
    PRE_COMMIT_HOME (prek keeps its cache beside it)."""
    return {
        **clean_environ(),
        "DBT_CLOUD_API_TOKEN": TOKEN,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "PREK_HOME": str(pre_commit_home / "prek"),
        "DATACHONK_LANDING_TIMEOUT": "30",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }


@pytest.fixture
def env(pre_commit_home: Path) -> dict[str, str]:
    return hook_env(pre_commit_home)


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


def make_remote(top: Path, host: str, *, config: str | None = None) -> Path:
    """A bare remote `top/remote.git` whose main holds a dbt project configured for `host`
    (or with the datachonk.yaml text `config`), no generated model yet."""
    bare = top / "remote.git"
    git(top, "init", "--quiet", "--bare", "--initial-branch=main", str(bare))
    seed = top / "seed"
    git(top, "init", "--quiet", "--initial-branch=main", str(seed))
    commit_files(
        seed,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "datachonk.yaml": config_yaml(host) if config is None else config,
            "models/staging/stg_customers.sql": HAND_SQL,
        },
        "Start the dbt project",
    )
    git(seed, "push", "--quiet", str(bare), "main")
    return bare


@pytest.fixture
def remote(tmp_path: Path, cloud: Sandbox) -> Path:
    """A bare remote whose main holds a configured dbt project (no generated model yet)."""
    return make_remote(tmp_path, cloud.url)


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


def quiet(clone: Clone) -> bool:
    """The clone's pushes are all judged and its waiters have ended: nothing it recorded can
    still start a run. True when it recorded nothing (no ledger)."""
    if not (clone.path / ".git" / "datachonk" / "ledger.sqlite3").exists():
        return True
    with clone.ledger() as ledger:
        pushes = ledger.pushes_after(0)
        busy = (TriggerState.AWAITING_PUSH, TriggerState.SENDING)
        return all(t.state not in busy for t in ledger.history(1000)) and all(
            p.state != "waiting" and not _alive(p.waiter) for p in pushes
        )


def _alive(waiter: str | None) -> bool:
    pid, _, _ = (waiter or "").partition("@")
    return pid.isdigit() and pid_alive(int(pid))


def runs_for(cloud: Sandbox, sha: str) -> list[str | None]:
    """The branches of the runs dbt Cloud got for `sha`, one entry per run."""
    return [run.git_branch for run in cloud.runs if run.git_sha == sha]


# ----------------------------------------------------------------------------- hook managers

#: lefthook.yml as the README shows it. A script, not a `run:` command: lefthook skips a
#: pre-push command when the checked-out branch has nothing to push ("no matching push
#: files"), so a push of another branch would be missed; scripts get git's arguments, and
#: `use_stdin` hands them git's stdin.
LEFTHOOK_CONFIG = """\
pre-push:
  scripts:
    "datachonk-dbt-cloud.sh":
      runner: sh
      use_stdin: true
"""

#: .lefthook/pre-push/datachonk-dbt-cloud.sh, the script lefthook.yml names
LEFTHOOK_SCRIPT = 'exec datachonk-hook pre-push "$@"\n'

#: .husky/pre-push as the README shows it
HUSKY_PRE_PUSH = 'datachonk-hook pre-push "$@"\n'


@pytest.fixture(scope="session")
def husky_bin(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """husky's command (`bin.js`), installed from npm once per session."""
    npm = shutil.which("npm")
    if npm is None:
        pytest.skip("npm is not installed: husky cannot be installed from npm")
    folder = tmp_path_factory.mktemp("husky")
    done = subprocess.run(
        [npm, "install", "--no-audit", "--no-fund", "--silent", "--prefix", str(folder), "husky"],
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    if done.returncode != 0:
        pytest.skip(f"npm install husky failed: {(done.stderr or done.stdout).strip()[-300:]}")
    package = folder / "node_modules" / "husky"
    bin_field = json.loads((package / "package.json").read_text())["bin"]
    return package / (bin_field if isinstance(bin_field, str) else bin_field["husky"])
