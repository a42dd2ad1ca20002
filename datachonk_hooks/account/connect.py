"""`datachonk-hook connect`: ask for the connection, check it, then save it.

`connect` is the only command that asks questions. It checks everything with dbt Cloud
before it writes anything, so a wrong token, host or account id leaves datachonk.yaml and the
stored tokens exactly as they were. The token is read from a hidden prompt or from stdin,
never from an argument: arguments end up in shell history and in `ps`.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import click

from datachonk_hooks.account.verify import Missing, verify
from datachonk_hooks.account.workspace import (
    QUICK_RETRY,
    Echo,
    Workspace,
    current_settings,
    is_legacy_host,
    sanitized_echo,
    settings_or_env,
)
from datachonk_hooks.cloud.records import Job, Project
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings.config import load_settings, read_config_text
from datachonk_hooks.settings.credentials import (
    ENV_TOKEN,
    Token,
    check_token_text,
    forget_token,
    store_token,
)
from datachonk_hooks.settings.defaults import EXAMPLE_HOST, MAX_ID, SET_HOST
from datachonk_hooks.settings.records import NoHostError, Settings
from datachonk_hooks.settings.values import normalize_host


@dataclass(frozen=True)
class ConnectOptions:
    """The flags of `connect`; None means "ask" (or, with --token-stdin, "keep the current")."""

    host: str | None = None
    account_id: int | None = None
    project_id: int | None = None
    job_id: int | None = None
    token_stdin: bool = False


@dataclass(frozen=True)
class Connection:
    """What `connect` verified and saved (project and job are None when not chosen)."""

    host: str
    account_id: int
    project: Project | None
    job: Job | None
    #: the account's projects; None when the token may not list them (Job Runner)
    projects: tuple[Project, ...] | None
    config_file: Path
    token_stored_in: str

    @property
    def written_keys(self) -> tuple[str, ...]:
        return (
            ("host", "account_id")
            + (("project_id",) if self.project else ())
            + (("job_id",) if self.job else ())
        )


def connect(ws: Workspace, options: ConnectOptions, *, echo: Echo = click.echo) -> Connection:
    """`datachonk-hook connect`: ask for what the flags leave open, then `connect_account`.

    With --token-stdin nothing is asked: values not given as flags are taken from the
    settings in force (datachonk.yaml, environment), so a token can be rotated with
    `connect --token-stdin` alone.
    """
    from datachonk_hooks.settings import config_edit

    echo = sanitized_echo(echo)
    target = ws.target_file()
    text = read_config_text(target)
    config_edit.check_editable(text, str(target))  # fail before asking
    current = settings_or_env(lambda: load_settings(text, source=str(target), env=ws.env), ws.env)
    ask = not options.token_stdin
    if ask:
        echo(
            "Connect this repository to dbt Cloud. The access URL and the account id are shown"
            " in dbt Cloud under Account settings."
        )
    host = _host(options, current, ask)
    account_id = _account_id(options, current, ask)
    token = _read_token(ask)
    same_account = (host, account_id) == (current.host, current.account_id)
    connection = connect_account(
        ws.cwd,
        ws.env,
        host=host,
        account_id=account_id,
        token=token,
        project_id=options.project_id or (None if ask else current.project_id),
        job_id=options.job_id or (None if ask else current.job_id),
        config_path=ws.config_path,
        missing="ask" if ask else "error",
        defaults=(current.project_id, current.job_id) if same_account else (None, None),
        echo=echo,
    )
    project, job = connection.project, connection.job
    echo(f"dbt Cloud at {host} accepted the token for account {account_id}")
    if project is not None:
        echo(f"project: {project.id} {project.name}".rstrip())
    if job is not None:
        echo(f"job:     {job.id} {job.name}" + ("" if job.active else " (deactivated)"))
    keys = connection.written_keys
    echo(
        f"saved {', '.join(keys[:-1])} and {keys[-1]} under deploy.dbt_cloud in"
        f" {connection.config_file}"
    )
    echo(f"stored the token in {connection.token_stored_in}")
    if ws.env.get(ENV_TOKEN, "").strip():
        echo(f"note: {ENV_TOKEN} is set here and is used before the stored token")
    if job is not None and not job.active:
        echo(f"note: job {job.id} is deactivated; dbt Cloud will refuse to run it")
    if is_legacy_host(host):
        echo(
            f"note: {host} works for this account, but getdbt.com URLs are being retired;"
            " prefer the access URL shown under Account settings"
        )
    echo(
        "next: commit datachonk.yaml (the hook reads it from the pushed commit), then run"
        " `datachonk-hook doctor`"
    )
    return connection


def connect_account(
    repo: Path,
    env: Mapping[str, str],
    *,
    account_id: int,
    token: str,
    host: str | None = None,
    project_id: int | None = None,
    job_id: int | None = None,
    config_path: Path | None = None,
    missing: Missing = "keep",
    defaults: tuple[int | None, int | None] = (None, None),
    echo: Echo = lambda line: None,
) -> Connection:
    """Check the credentials with dbt Cloud, then store the token and write datachonk.yaml.

    `repo` is a folder in the repository (datachonk.yaml is found from there, or
    `config_path`). Nothing is written unless dbt Cloud accepted the token and the project and
    job exist; a refusal is a `RefusedError` (exit 5) or a `ConfigError` (exit 2) whose one
    line ends in "Nothing was saved.". The local API calls this directly. `host` None keeps
    the host in force (datachonk.yaml, DBT_CLOUD_HOST); with none there either, a
    NoHostError: there is no default host to fall back on.
    """
    from datachonk_hooks.settings import config_edit

    echo = sanitized_echo(echo)
    ws = Workspace(env, repo, config_path)
    target = ws.target_file()
    # Read again rather than taken from `connect`: the user may have edited the file while
    # the prompts waited, and the new text is what gets the connection keys.
    text = read_config_text(target)
    config_edit.check_editable(text, str(target))
    host = normalize_host(host, where="host") if host else current_settings(ws).host
    if host is None:
        raise NoHostError(f"pass the host, or {SET_HOST},")
    token = check_token_text(token)
    from datachonk_hooks.delivery.clients import new_client

    client = new_client(host, account_id, env, token=Token(token, "connect"), retry=QUICK_RETRY)
    with client:
        projects, project, job = verify(client, project_id, job_id, missing, defaults, echo)
    values: dict[str, str | int] = {"host": host, "account_id": account_id}
    if project is not None:
        values["project_id"] = project.id
    if job is not None:
        values["job_id"] = job.id
    new_text = config_edit.set_connection(text, values, source=str(target))
    stored_in = store_token(host, account_id, token)
    _write_config_text(target, new_text)
    return Connection(host, account_id, project, job, projects, target, stored_in)


def forget(ws: Workspace, host: str | None, account_id: int | None) -> list[str]:
    """`connect --forget`: remove the stored token of the configured (or given) account."""
    settings = current_settings(ws)
    host = normalize_host(host, where="--host") if host else settings.host
    account_id = account_id or settings.account_id
    if account_id is None:
        raise ConfigError(
            "connect --forget: which account? pass --account-id (and --host), or run it where"
            " datachonk.yaml names the account"
        )
    if host is None:  # stored tokens are kept per host and account
        raise NoHostError(f"pass --host, or {SET_HOST},")
    return forget_token(host, account_id)


def _host(options: ConnectOptions, current: Settings, ask: bool) -> str:
    """--host, else the host in force (asked again, as the prompt's default), else asked with
    no default: there is none since cloud.getdbt.com stopped serving API clients, and each
    account's access URL is its own, so the prompt says where to find it."""
    if options.host is not None:
        return normalize_host(options.host, where="--host")
    if not ask:
        if current.host is None:
            raise NoHostError(f"pass --host, or {SET_HOST},")
        return current.host

    def check(value: str) -> str:
        try:
            return normalize_host(value, where="access URL")
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None

    return str(
        click.prompt(
            f"Access URL (Account settings in dbt Cloud; like {EXAMPLE_HOST})",
            default=current.host,
            value_proc=check,
        )
    )


def _account_id(options: ConnectOptions, current: Settings, ask: bool) -> int:
    if options.account_id is not None:
        return options.account_id
    if not ask:
        if current.account_id is None:
            raise ConfigError(
                "--account-id is needed with --token-stdin (there is no account_id in"
                " datachonk.yaml to keep)"
            )
        return current.account_id
    return int(
        click.prompt(
            "Account id (the number after /accounts/ in dbt Cloud's URLs)",
            type=click.IntRange(1, MAX_ID),
            default=current.account_id,
        )
    )


def _read_token(ask: bool) -> str:
    """From a hidden prompt, or the whole of stdin with --token-stdin."""
    if not ask:
        stream = sys.stdin
        if stream is None or stream.isatty():
            raise ConfigError(
                "--token-stdin: pipe the token in, e.g. `datachonk-hook connect ... --token-stdin"
                " < token.txt`"
            )
        text = stream.read()
        if not text.strip():
            raise ConfigError("--token-stdin: nothing was read from stdin")
        return check_token_text(text)

    def check(value: str) -> str:
        try:
            return check_token_text(value)
        except ConfigError as exc:
            raise click.BadParameter(str(exc)) from None

    return str(click.prompt("API token (input is hidden)", hide_input=True, value_proc=check))


def _write_config_text(path: Path, text: str) -> None:
    """Replace the file atomically, keeping its permission bits."""
    from datachonk_hooks.fileio import atomic_write

    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(path, text)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot write the file ({exc.strerror or exc})") from None
