"""Invalid DATACHONK_* numbers of seconds: an error where someone watches, a default where not.

The CLI stops with one line and exit 2 (a typo there is seen and fixed at once); the
pre-push hook and the landing waiter run unattended, so they warn and use the default: a
typo in the environment must neither crash the waiter nor leave a trigger waiting for a
manual `retry`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from datachonk_hooks.delivery.clients import (
    SECONDS_VARIABLES,
    check_seconds_env,
    without_bad_seconds,
)
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.sandbox import Sandbox
from tests.e2e import BIN, make_clone, settled
from tests.helpers import GENERATED_SQL, TOKEN, commit_files, config_yaml, publish
from tests.reliability import wait_for

HOOK = str(BIN / "datachonk-hook")
BAD = {
    "DATACHONK_HTTP_TIMEOUT": "abc",
    "DATACHONK_RETRY_BUDGET": "-1",
    "DATACHONK_LANDING_TIMEOUT": "nan",
}


def test_the_three_variables_are_checked() -> None:
    assert set(SECONDS_VARIABLES) == set(BAD)
    check_seconds_env({"DATACHONK_HTTP_TIMEOUT": "2.5", "DATACHONK_LANDING_TIMEOUT": " 60 "})
    for name, value in BAD.items():
        with pytest.raises(ConfigError, match=f"^{name}: expected a number of seconds"):
            check_seconds_env({name: value})


def test_without_bad_seconds_warns_and_drops_only_the_bad_ones() -> None:
    warnings: list[str] = []
    env = {**BAD, "DATACHONK_HTTP_TIMEOUT": "2", "OTHER": "kept"}
    kept = without_bad_seconds(env, warnings.append)
    assert kept == {"DATACHONK_HTTP_TIMEOUT": "2", "OTHER": "kept"}
    assert warnings == [
        "warning: DATACHONK_RETRY_BUDGET: expected a number of seconds above 0, got '-1';"
        " using the default",
        "warning: DATACHONK_LANDING_TIMEOUT: expected a number of seconds above 0, got 'nan';"
        " using the default",
    ]


@pytest.fixture
def run_repo(dbt_repo: Path, sandbox: Sandbox) -> Path:
    commit_files(dbt_repo, {"datachonk.yaml": config_yaml(sandbox.url)}, "Configure dbt Cloud")
    commit_files(dbt_repo, {"models/orders.sql": "select 1"}, "Add orders model")
    publish(dbt_repo)
    return dbt_repo


@pytest.mark.parametrize("name", sorted(BAD))
def test_a_bad_value_is_one_line_and_exit_2_in_the_cli(
    run_repo: Path, sandbox: Sandbox, name: str
) -> None:
    for command in ("run", "retry", "status"):
        done = subprocess.run(
            [sys.executable, "-m", "datachonk_hooks", command],
            cwd=run_repo,
            env={**_environ(), name: BAD[name]},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 2, (command, done.stdout, done.stderr)
        expected = f"Error: {name}: expected a number of seconds above 0, got {BAD[name]!r}\n"
        assert done.stderr == expected
    assert sandbox.requests == []


def test_help_still_works_with_a_bad_value(run_repo: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "datachonk_hooks", "run", "--help"],
        cwd=run_repo,
        env={**_environ(), **BAD},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0 and "Usage:" in done.stdout


def test_the_hook_and_the_waiter_warn_and_deliver_with_the_defaults(
    tmp_path: Path, remote: Path, env: dict[str, str], cloud: Sandbox
) -> None:
    """The hook warns and hands the waiter a clean environment; a waiter started with the
    bad values itself (`land`) warns too, instead of crashing, and the push is delivered."""
    clone = make_clone(tmp_path, "work", remote, env)
    sha = clone.commit({"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    bad_env = {**env, **BAD}
    line = f"refs/heads/main {sha} refs/heads/main {'0' * 40}\n"
    hooked = subprocess.run(
        [HOOK, "pre-push", "origin", str(remote)],
        cwd=clone.path,
        env=bad_env,
        input=line,
        capture_output=True,
        text=True,
        check=False,
    )
    assert hooked.returncode == 0, hooked.stderr
    for name in BAD:
        assert f"warning: {name}: expected a number of seconds above 0" in hooked.stderr
    assert "will run for" in hooked.stderr
    land = subprocess.Popen(
        [HOOK, "land", "1"],
        cwd=clone.path,
        env=bad_env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    clone.push("--no-verify", "origin", "main")  # now it lands
    out, err = land.communicate(timeout=60)
    assert land.returncode == 0, out + err
    assert "a bug" not in err and "Traceback" not in err
    for name in BAD:
        assert f"warning: {name}: expected a number of seconds above 0" in out
    wait_for(lambda: settled(clone), 30, "the waiters")
    assert [run.git_sha for run in cloud.runs] == [sha]
    with clone.ledger() as ledger:
        [record] = ledger.history()
    assert record.run_id == cloud.runs[0].id
    assert "warning" not in clone.waiter_log()  # the hook's waiter got a clean environment


def _environ() -> dict[str, str]:
    import os

    return {**os.environ, "DBT_CLOUD_API_TOKEN": TOKEN}
