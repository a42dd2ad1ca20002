"""Where the account commands find their settings, and the quick dbt Cloud client they use.

Shared by `connect`, `status`, `projects`, `jobs` and `doctor`: the environment, the current
folder and `--config` decide which datachonk.yaml is in force, and people are waiting, so the
client gives up after a few quick retries.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from datachonk_hooks.cloud.answers import LEGACY_HOST
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.transport import RetryPolicy
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.config import find_config_file, load_settings_file
from datachonk_hooks.settings.credentials import Token
from datachonk_hooks.settings.defaults import CONFIG_NAME
from datachonk_hooks.settings.records import Settings

#: Interactive commands should fail fast: a few quick retries, not the hook's patient budget.
QUICK_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0, budget=10.0)


Echo = Callable[[str], None]


def sanitized_echo(echo: Echo) -> Echo:
    """`echo` for lines that name projects and jobs, or quote dbt Cloud."""
    return lambda line: echo(sanitize(line))


@dataclass(frozen=True)
class Workspace:
    """The environment, the current folder and `--config`: where settings come from."""

    env: Mapping[str, str]
    cwd: Path
    config_path: Path | None = None

    def repo_top(self) -> Path | None:
        from datachonk_hooks.push.gitrepo import open_repo, work_tree

        try:
            return work_tree(open_repo(self.cwd))
        except DatachonkError:
            return None

    def config_file(self) -> Path | None:
        """`--config`, else the nearest datachonk.yaml up to the repository root."""
        if self.config_path is not None:
            return self.config_path
        return find_config_file(self.cwd, self.repo_top())

    def target_file(self) -> Path:
        """Where `connect` writes: the file in use, else datachonk.yaml at the repo root."""
        return self.config_file() or (self.repo_top() or self.cwd) / CONFIG_NAME

    def settings(self) -> Settings:
        return load_settings_file(self.config_file(), env=self.env)


def client_for(
    settings: Settings, env: Mapping[str, str], *, token: Token | None = None
) -> DbtCloudClient:
    """A client for the configured account that gives up quickly (people are waiting)."""
    from datachonk_hooks.delivery.clients import new_client

    account_id = settings.require_account_id()
    return new_client(settings.require_host(), account_id, env, token=token, retry=QUICK_RETRY)


def is_legacy_host(host: str) -> bool:
    return urlsplit(host).hostname == LEGACY_HOST


def current_settings(ws: Workspace) -> Settings:
    """The settings in force now, for defaults; a broken file gives just the environment."""
    return settings_or_env(ws.settings, ws.env)


def settings_or_env(load: Callable[[], Settings], env: Mapping[str, str]) -> Settings:
    """`load()`, else the environment's settings when it fails, else the defaults."""
    try:
        return load()
    except DatachonkError:
        try:
            return load_settings_file(None, env=env)
        except DatachonkError:
            return Settings()
