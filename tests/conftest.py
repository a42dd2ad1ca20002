"""Shared fixtures: an isolated environment, real git repositories, a real simulator."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from tests.helpers import (
    FOREIGN_PREFIXES,
    GENERATED_SQL,
    GIT_IDENTITY,
    TOKEN,
    add_origin,
    commit_files,
    git,
)

pytest_plugins = ["tests.e2e", "tests.reliability"]

if TYPE_CHECKING:
    from datachonk_hooks.sandbox import Sandbox


@pytest.fixture(autouse=True)
def isolated_env(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """No test sees the developer's git config, dbt Cloud variables or home folder."""
    home = tmp_path_factory.mktemp("home")
    for name in list(os.environ):
        if name.startswith(FOREIGN_PREFIXES) or name == "CI":
            monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))
    monkeypatch.setenv("XDG_DATA_HOME", str(home / ".local" / "share"))
    monkeypatch.setenv("XDG_STATE_HOME", str(home / ".local" / "state"))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    for name, value in GIT_IDENTITY.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def sandbox() -> Iterator[Sandbox]:
    from datachonk_hooks.sandbox import Sandbox

    with Sandbox(token=TOKEN) as server:
        yield server


@pytest.fixture
def dbt_repo(tmp_path: Path) -> Path:
    """A git repository on branch main holding a small dbt project (not yet configured)."""
    repo = tmp_path / "work"
    repo.mkdir()
    git(repo, "init", "--quiet", "--initial-branch=main")
    commit_files(
        repo,
        {
            "dbt_project.yml": "name: shop\nversion: '1.0'\nprofile: shop\n",
            "models/staging/stg_orders.sql": GENERATED_SQL,
        },
        "Add stg_orders",
    )
    add_origin(repo)  # where dbt Cloud would clone from (nothing pushed yet)
    return repo
