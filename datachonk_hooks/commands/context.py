"""What every command shares: the AppContext, `pass_app`, and the one way to print.

Kept small and light (click and the sanitizer only): cli.py imports it to define the
commands, so `--help` loads it too. Lines that carry text from outside (dbt Cloud's words,
branch names, causes, ledger reasons) are printed through `say`, which passes them through
the one sanitizer first.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast

import click

from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.sanitize import sanitize

if TYPE_CHECKING:
    from datachonk_hooks.account.workspace import Workspace
    from datachonk_hooks.settings.records import Settings

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class AppContext:
    """What every command shares: the environment and where datachonk.yaml is."""

    env: dict[str, str] = field(default_factory=lambda: dict(os.environ))
    config_path: Path | None = None
    cwd: Path = field(default_factory=Path.cwd)

    def settings(self, *, job_id: int | None = None, timeout: int | None = None) -> Settings:
        from datachonk_hooks.push.gitrepo import open_repo, work_tree
        from datachonk_hooks.settings.config import find_config_file, load_settings_file
        from datachonk_hooks.settings.records import Overrides

        path = self.config_path
        if path is None:
            try:
                top = work_tree(open_repo(self.cwd))
            except DatachonkError:
                top = None
            path = find_config_file(self.cwd, top)
        return load_settings_file(
            path, env=self.env, overrides=Overrides(job_id=job_id, timeout=timeout)
        )

    def workspace(self) -> Workspace:
        """The account commands' view of the same environment, folder and `--config`."""
        from datachonk_hooks.account.workspace import Workspace

        return Workspace(env=self.env, cwd=self.cwd, config_path=self.config_path)


_pass_app = click.make_pass_decorator(AppContext, ensure=True)
#: commands that run without anyone watching: a bad DATACHONK_* number is a warning there
_UNATTENDED = ("pre-push", "land")
#: commands that do not print how earlier runs ended: the unattended ones (the hook tells
#: in its own way), and the servers and the demo, which are about something else
_UNTOLD = (*_UNATTENDED, "serve", "sandbox", "demo")


def pass_app(fn: F) -> F:
    """Hand a command the AppContext, after checking the DATACHONK_* numbers of seconds.

    A bad one is a one-line error with exit 2 where someone watches, rather than a default
    that hides the typo (unattended commands warn and use the default instead). Checked once
    click has parsed the command's own options, so `--help` works whatever the environment.
    Then, on stderr, one line per run that ended since the developer was last told
    (`outcomes.tell`: from the ledger, no network).
    """

    @functools.wraps(fn)
    def checked(app: AppContext, /, *args: Any, **kwargs: Any) -> Any:
        name = click.get_current_context().info_name
        if name not in _UNATTENDED:
            from datachonk_hooks.delivery.clients import check_seconds_env

            check_seconds_env(app.env)
        if name not in _UNTOLD:
            from datachonk_hooks.monitor.outcomes import tell_in

            tell_in(app.cwd, lambda line: click.echo(line, err=True))
        return fn(app, *args, **kwargs)

    return cast(F, _pass_app(checked))


def say(text: str, *, err: bool = False) -> None:
    """`click.echo` for text from outside; intended line breaks stay, controls do not."""
    click.echo(sanitize(text, multiline=True), err=err)


def say_err(text: str) -> None:
    """`say` on stderr, for the log callbacks of the delivery code."""
    say(text, err=True)


def status(as_json: bool) -> Callable[[str], None]:
    """Human lines go to stdout, or to stderr when stdout carries JSON."""
    return lambda line: say(line, err=as_json)


def echo_json(data: object) -> None:
    import json

    click.echo(json.dumps(data, indent=2, sort_keys=False))
