"""The README is the user's manual: every command, key, variable and exit code is in it."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from datachonk_hooks.cli import cli
from datachonk_hooks.delivery import landing
from datachonk_hooks.errors import ExitCode
from datachonk_hooks.prepush import switches
from datachonk_hooks.settings import defaults, values

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def visible_commands() -> list[str]:
    assert isinstance(cli, click.Group)
    return [name for name, command in cli.commands.items() if not command.hidden]


@pytest.mark.parametrize("name", visible_commands())
def test_every_command_is_documented_with_its_options(name: str) -> None:
    assert f"`{name}" in README or f"datachonk-hook {name}" in README, name
    command = cli.commands[name]
    for param in command.params:
        if isinstance(param, click.Option):
            assert any(opt in README for opt in param.opts), f"{name} {param.opts}"


@pytest.mark.parametrize(
    "key", [*values.CLOUD_KEYS, *(f"detect.{k}" for k in defaults.DETECT_KEYS)]
)
def test_every_config_key_is_documented(key: str) -> None:
    assert f"`{key}`" in README, key


@pytest.mark.parametrize(
    "variable",
    [
        defaults.ENV_TOKEN,
        defaults.ENV_HOST,
        defaults.ENV_ACCOUNT_ID,
        defaults.ENV_PROJECT_ID,
        defaults.ENV_JOB_ID,
        switches.ENV_DRY_RUN,
        switches.ENV_STRICT,
        landing.ENV_LANDING_TIMEOUT,
    ],
)
def test_every_environment_variable_is_documented(variable: str) -> None:
    assert f"`{variable}" in README, variable


@pytest.mark.parametrize("code", [int(c) for c in ExitCode])
def test_every_exit_code_is_documented(code: int) -> None:
    assert f"| {code} |" in README, code


def test_quick_start_commands() -> None:
    assert "$ make demo" in README and "$ make test" in README


def test_readme_shows_the_real_help(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    from datachonk_hooks.cli import main

    monkeypatch.setenv("COLUMNS", "80")
    assert main(["--help"]) == 0
    assert "$ datachonk-hook --help\n" + capsys.readouterr().out + "```" in README
