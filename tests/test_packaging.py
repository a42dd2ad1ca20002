"""The layout the project card names: the package at the top level, `hooks/pre-push` a real
file the package ships, wheels and sdists that hold it, and pre-commit using the checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from pathlib import Path

import pytest

from tests.helpers import GENERATED_SQL, HAND_SQL, commit_files, config_yaml, remote_and_clone

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGED_HOOK = "datachonk_hooks/hooks/pre-push"
#: what a source tree holds besides the package and its tests (copied for the build)
SKIPPED = shutil.ignore_patterns(
    ".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".*_cache", ".hypothesis"
)


def test_the_top_level_is_the_cards() -> None:
    files = subprocess.run(
        ["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    top = {name.split("/", 1)[0] for name in files}
    assert {"pyproject.toml", ".pre-commit-hooks.yaml", "hooks", "datachonk_hooks", "tests"} <= top
    assert "README.md" in top
    assert "src" not in top


def test_hooks_pre_push_is_a_real_file_the_same_as_the_packaged_one() -> None:
    script = ROOT / "hooks" / "pre-push"
    assert script.is_file() and not script.is_symlink()
    assert os.access(script, os.X_OK)
    assert script.read_bytes() == (ROOT / PACKAGED_HOOK).read_bytes()


@pytest.mark.slow
def test_the_wheel_and_the_sdist_hold_the_hook_script(tmp_path: Path) -> None:
    source = tmp_path / "source"
    shutil.copytree(ROOT, source, ignore=SKIPPED)
    out = tmp_path / "dist"
    done = subprocess.run(
        [sys.executable, "-m", "build", "--outdir", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        assert PACKAGED_HOOK in names
        assert archive.read(PACKAGED_HOOK) == (ROOT / PACKAGED_HOOK).read_bytes()
        assert not any(name.startswith(("tests/", "bench/")) for name in names)
    with tarfile.open(sdist) as archive:
        names = [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]
        assert PACKAGED_HOOK in names and "hooks/pre-push" in names


@pytest.mark.slow
def test_pre_commit_try_repo_runs_the_hook_from_the_checkout(
    tmp_path: Path, pre_commit_home: Path
) -> None:
    """`pre-commit try-repo` installs the package from this checkout (uncommitted changes
    too) and runs the hook as a push would; a dry run, so nothing is recorded or sent."""
    _, work = remote_and_clone(tmp_path)
    base = commit_files(
        work,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "datachonk.yaml": config_yaml("http://127.0.0.1:9"),
            "models/staging/stg_customers.sql": HAND_SQL,
        },
        "Start the dbt project",
    )
    tip = commit_files(work, {"models/staging/stg_orders.sql": GENERATED_SQL}, "Add stg_orders")
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(pre_commit_home),
        "DATACHONK_DRY_RUN": "1",
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        [
            str(BIN / "pre-commit"),
            "try-repo",
            str(ROOT),
            "datachonk-dbt-cloud",
            "--hook-stage",
            "pre-push",
            "--from-ref",
            base,
            "--to-ref",
            tip,
            "--remote-name",
            "origin",
            "--remote-url",
            "origin",
            "--local-branch",
            "refs/heads/main",
            "--remote-branch",
            "refs/heads/main",
            "--verbose",
        ],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    out = done.stdout + done.stderr
    assert done.returncode == 0, out
    assert "Passed" in out
    assert "models/staging/stg_orders.sql" in out  # the hook saw the generated model
    assert "would POST http://127.0.0.1:9/api/v2/accounts/12345/jobs/11111/run/" in out
