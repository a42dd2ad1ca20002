"""The account side of the setup: `connect`, `status`, `projects` and `jobs`.

`connect` is the only command that asks questions. It checks everything with dbt Cloud
before it writes anything, so a wrong token, host or account id leaves datachonk.yaml and the
stored tokens exactly as they were. The token is read from a hidden prompt or from stdin,
never from an argument: arguments end up in shell history and in `ps`.

Project names, job names and dbt Cloud's messages are text from outside: every line these
commands show (the tables, `status`, what `connect` says) goes through `sanitize`.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypeVar
from urllib.parse import urlsplit

import click

from datachonk_hooks.cloud.client import LEGACY_HOST, DbtCloudClient, RetryPolicy
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    DbtCloudError,
    NotFoundError,
    PermissionDeniedError,
)
from datachonk_hooks.cloud.records import Job, Project, Run
from datachonk_hooks.errors import ConfigError, DatachonkError, ExitCode
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.config import (
    CONFIG_NAME,
    EXAMPLE_HOST,
    MAX_ID,
    SET_HOST,
    NoHostError,
    Settings,
    find_config_file,
    load_settings,
    load_settings_file,
    normalize_host,
    read_config_text,
)
from datachonk_hooks.settings.credentials import (
    ENV_TOKEN,
    Token,
    check_token_text,
    forget_token,
    resolve_token,
    store_token,
)

#: Interactive commands should fail fast: a few quick retries, not the hook's patient budget.
QUICK_RETRY = RetryPolicy(attempts=2, base_delay=0.2, max_delay=1.0, budget=10.0)
NOTHING_SAVED = "Nothing was saved."

Echo = Callable[[str], None]


def _sanitized(echo: Echo) -> Echo:
    """`echo` for lines that name projects and jobs, or quote dbt Cloud."""
    return lambda line: echo(sanitize(line))


class RefusedError(DbtCloudError):
    """dbt Cloud turned the connection down; the message says which part is wrong (exit 5)."""


# --------------------------------------------------------------------------- where things are


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
    from datachonk_hooks.delivery.trigger import new_client

    account_id = settings.require_account_id()
    return new_client(settings.require_host(), account_id, env, token=token, retry=QUICK_RETRY)


def is_legacy_host(host: str) -> bool:
    return urlsplit(host).hostname == LEGACY_HOST


# --------------------------------------------------------------------------- connect


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


#: What to do about a project or job id that was not given: ask with a numbered list,
#: refuse (scripts must say), or leave datachonk.yaml's value alone (the local API).
Missing = Literal["ask", "error", "keep"]


def connect(ws: Workspace, options: ConnectOptions, *, echo: Echo = click.echo) -> Connection:
    """`datachonk-hook connect`: ask for what the flags leave open, then `connect_account`.

    With --token-stdin nothing is asked: values not given as flags are taken from the
    settings in force (datachonk.yaml, environment), so a token can be rotated with
    `connect --token-stdin` alone.
    """
    from datachonk_hooks.settings import config_edit

    echo = _sanitized(echo)
    target = ws.target_file()
    text = read_config_text(target)
    config_edit.check_editable(text, str(target))  # fail before asking
    current = _settings_or_env(lambda: load_settings(text, source=str(target), env=ws.env), ws.env)
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

    echo = _sanitized(echo)
    ws = Workspace(env, repo, config_path)
    target = ws.target_file()
    # Read again rather than taken from `connect`: the user may have edited the file while
    # the prompts waited, and the new text is what gets the connection keys.
    text = read_config_text(target)
    config_edit.check_editable(text, str(target))
    host = normalize_host(host, where="host") if host else _current_settings(ws).host
    if host is None:
        raise NoHostError(f"pass the host, or {SET_HOST},")
    token = check_token_text(token)
    from datachonk_hooks.delivery.trigger import new_client

    client = new_client(host, account_id, env, token=Token(token, "connect"), retry=QUICK_RETRY)
    with client:
        projects, project, job = _verify(client, project_id, job_id, missing, defaults, echo)
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
    settings = _current_settings(ws)
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


def refusal(error: DbtCloudError, host: str, account_id: int, *, job_id: int | None = None) -> str:
    """The one-line message for dbt Cloud turning `connect` down, by what is wrong."""
    if isinstance(error, AuthenticationError):
        if is_legacy_host(host):
            return (
                f"dbt Cloud at {host} rejected the token (HTTP 401). Accounts with their own"
                " access URL answer 401 on this legacy host: pass --host with the access URL"
                f" shown under Account settings (such as {EXAMPLE_HOST})."
                f" {NOTHING_SAVED}"
            )
        return (
            f"dbt Cloud at {host} rejected the token (HTTP 401): check that it was copied"
            f" whole and is not revoked, and that {host} is the access URL of account"
            f" {account_id} (Account settings). {NOTHING_SAVED}"
        )
    if isinstance(error, PermissionDeniedError):
        if job_id is not None:
            return (
                f"the token may not read job {job_id} (HTTP 403); it needs the Job Runner or"
                f" Job Admin permission set. {NOTHING_SAVED}"
            )
        return (
            f"the token may not list the projects of account {account_id} (HTTP 403). Use a"
            " service token with the Job Admin permission set; a Job Runner token can run jobs"
            " but not list projects, so pass --project-id and --job-id with it."
            f" {NOTHING_SAVED}"
        )
    if isinstance(error, NotFoundError):
        return (
            f"dbt Cloud at {host} has no account {account_id} that this token can see"
            " (HTTP 404): the account id is the number after /accounts/ in dbt Cloud's URLs"
            f" ({EXAMPLE_HOST}/accounts/12345/...), and the token must belong to that"
            f" account. {NOTHING_SAVED}"
        )
    text = str(error)
    return f"{text}{'' if text.endswith('.') else '.'} {NOTHING_SAVED}"


def _verify(
    client: DbtCloudClient,
    project_id: int | None,
    job_id: int | None,
    missing: Missing,
    defaults: tuple[int | None, int | None],
    echo: Echo,
) -> tuple[tuple[Project, ...] | None, Project | None, Job | None]:
    """(the account's projects, the project, the job), each checked with dbt Cloud."""
    host, account_id = client.host, client.account_id
    try:
        projects = tuple(client.list_projects())
    except PermissionDeniedError as exc:
        if project_id is None or job_id is None:
            raise RefusedError(refusal(exc, host, account_id), status=403) from None
        # A Job Runner token cannot list projects but can read the job it is meant to run.
        job = _get_job(client, job_id)
        _check_job_project(job, project_id)
        echo("note: this token may not list projects; the project was checked through the job")
        return None, Project(project_id, "", account_id), job
    except DbtCloudError as exc:
        raise RefusedError(refusal(exc, host, account_id), status=exc.status) from None
    if project_id is None and missing == "keep":
        if job_id is not None:
            raise ConfigError(f"a job_id needs its project_id too. {NOTHING_SAVED}")
        return projects, None, None
    if not projects:
        raise ConfigError(
            f"account {account_id} has no projects yet; create one in dbt Cloud, then connect"
            f" again. {NOTHING_SAVED}"
        )
    project = _pick(
        "project",
        projects,
        project_id,
        label=lambda p: p.name,
        ask=missing == "ask",
        default=defaults[0],
        echo=echo,
        where=f"account {account_id}",
    )
    if job_id is None and missing == "keep":
        return projects, project, None
    try:
        jobs = client.list_jobs(project.id)
    except DbtCloudError as exc:
        raise RefusedError(refusal(exc, host, account_id), status=exc.status) from None
    if not jobs:
        raise ConfigError(
            f"project {project.id} ({project.name}) has no jobs; create a deploy job in dbt"
            f" Cloud (Deploy > Jobs), then connect again. {NOTHING_SAVED}"
        )
    if job_id is not None and job_id not in {job.id for job in jobs}:
        other = _get_job_or_none(client, job_id)
        if other is not None:  # say where the job is, when it exists elsewhere
            _check_job_project(other, project.id)
    job = _pick(
        "job",
        jobs,
        job_id,
        label=_job_label,
        ask=missing == "ask",
        default=defaults[1],
        echo=echo,
        where=f"project {project.id} ({project.name})",
    )
    return projects, project, job


_Item = TypeVar("_Item", Project, Job)


def _pick(
    kind: str,
    items: Sequence[_Item],
    wanted: int | None,
    *,
    label: Callable[[_Item], str],
    ask: bool,
    default: int | None,
    echo: Echo,
    where: str,
) -> _Item:
    """The item with id `wanted`, else the user's choice from a numbered list."""
    by_id = {item.id: item for item in items}
    if wanted is not None:
        if wanted not in by_id:
            known = ", ".join(f"{item.id} {label(item)}".strip() for item in items[:10])
            raise ConfigError(f"{where} has no {kind} {wanted} (it has: {known}). {NOTHING_SAVED}")
        return by_id[wanted]
    if not ask:
        raise ConfigError(
            f"--{kind}-id is needed with --token-stdin (there is no {kind}_id in"
            f" datachonk.yaml to keep). {NOTHING_SAVED}"
        )
    if len(items) == 1:
        echo(f"{kind}: {items[0].id} {label(items[0])} (the only one in {where})")
        return items[0]
    echo(f"{kind.capitalize()}s in {where}:")
    width = len(str(len(items)))
    for number, item in enumerate(items, start=1):
        echo(f"  {number:>{width}}) {item.id}  {label(item)}")
    ids = [item.id for item in items]
    choice = click.prompt(
        kind.capitalize(),
        type=click.IntRange(1, len(items)),
        default=ids.index(default) + 1 if default in ids else 1,
    )
    return items[int(choice) - 1]


def _job_label(job: Job) -> str:
    details = [job.job_type or "job"] + ([] if job.active else ["deactivated"])
    return f"{job.name} ({', '.join(details)})"


def _get_job(client: DbtCloudClient, job_id: int) -> Job:
    try:
        return client.get_job(job_id)
    except NotFoundError:
        raise ConfigError(
            f"dbt Cloud at {client.host} has no job {job_id} in account"
            f" {client.account_id}. {NOTHING_SAVED}"
        ) from None
    except DbtCloudError as exc:
        message = refusal(exc, client.host, client.account_id, job_id=job_id)
        raise RefusedError(message, status=exc.status) from None


def _get_job_or_none(client: DbtCloudClient, job_id: int) -> Job | None:
    try:
        return client.get_job(job_id)
    except DbtCloudError:
        return None


def _check_job_project(job: Job, project_id: int) -> None:
    if job.project_id is not None and job.project_id != project_id:
        raise ConfigError(
            f"job {job.id} ({job.name}) belongs to project {job.project_id},"
            f" not to project {project_id}. {NOTHING_SAVED}"
        )


def _current_settings(ws: Workspace) -> Settings:
    """The settings in force now, for defaults; a broken file gives just the environment."""
    return _settings_or_env(ws.settings, ws.env)


def _settings_or_env(load: Callable[[], Settings], env: Mapping[str, str]) -> Settings:
    """`load()`, else the environment's settings when it fails, else the defaults."""
    try:
        return load()
    except DatachonkError:
        try:
            return load_settings_file(None, env=env)
        except DatachonkError:
            return Settings()


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


# --------------------------------------------------------------------------- status


@dataclass(frozen=True)
class Status:
    """Whether the connection works, for `status`; never holds the token."""

    host: str | None
    account_id: int | None
    project_id: int | None
    job_id: int | None
    config_file: Path | None
    token_source: str | None
    accepted: bool
    problem: str | None
    projects: tuple[Project, ...] | None  # None: not listed (no connection, or not allowed)
    exit_code: int

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "account_id": self.account_id,
            "project_id": self.project_id,
            "job_id": self.job_id,
            "config_file": str(self.config_file) if self.config_file else None,
            "token_source": self.token_source,
            "accepted": self.accepted,
            "problem": self.problem,
            "projects": None if self.projects is None else projects_json(self.projects),
        }

    def lines(self) -> list[str]:
        def shown(value: object) -> str:
            return "not set" if value is None else str(value)

        if self.accepted:
            connection = "ok, the token is accepted"
        else:
            connection = f"not working: {self.problem}"
        lines = [
            f"config:     {shown(self.config_file)}",
            f"host:       {shown(self.host)}",
            f"account:    {shown(self.account_id)}",
            f"project:    {shown(self.project_id)}",
            f"job:        {shown(self.job_id)}",
            f"token:      {'from ' + self.token_source if self.token_source else 'none found'}",
            f"connection: {connection}",
        ]
        if self.projects is not None:
            lines.append(f"projects:   {len(self.projects)}")
            lines += [f"  {p.id}  {p.name}" for p in self.projects]
        elif self.accepted and self.problem:
            lines.append(f"projects:   {self.problem}")
        return [sanitize(line) for line in lines]


def check_status(ws: Workspace) -> Status:
    """Settings, token source and one call to dbt Cloud; problems are reported, not raised."""
    settings = ws.settings()
    base: dict[str, Any] = {
        "host": settings.host,
        "account_id": settings.account_id,
        "project_id": settings.project_id,
        "job_id": settings.job_id,
        "config_file": Path(settings.source) if settings.source else None,
    }
    if settings.account_id is None:
        return Status(
            **base,
            token_source=None,
            accepted=False,
            problem="no account configured; run `datachonk-hook connect`",
            projects=None,
            exit_code=ExitCode.USAGE,
        )
    if settings.host is None:
        try:  # stored tokens are kept per host: only the environment's can be told
            source: str | None = resolve_token(ws.env).source
        except ConfigError:
            source = None
        return Status(
            **base,
            token_source=source,
            accepted=False,
            problem=str(NoHostError()),
            projects=None,
            exit_code=ExitCode.USAGE,
        )
    try:
        token = resolve_token(ws.env, host=settings.host, account_id=settings.account_id)
    except ConfigError as exc:
        return Status(
            **base,
            token_source=None,
            accepted=False,
            problem=str(exc),
            projects=None,
            exit_code=exc.exit_code,
        )
    with client_for(settings, ws.env, token=token) as client:
        try:
            projects = tuple(client.list_projects())
        except PermissionDeniedError:
            return Status(
                **base,
                token_source=token.source,
                accepted=True,
                problem="this token may not list projects (a Job Runner token can still run jobs)",
                projects=None,
                exit_code=ExitCode.OK,
            )
        except DbtCloudError as exc:
            return Status(
                **base,
                token_source=token.source,
                accepted=False,
                problem=str(exc),
                projects=None,
                exit_code=exc.exit_code,
            )
    return Status(
        **base,
        token_source=token.source,
        accepted=True,
        problem=None,
        projects=projects,
        exit_code=ExitCode.OK,
    )


# --------------------------------------------------------------------------- projects and jobs


def list_projects(ws: Workspace) -> list[Project]:
    settings = ws.settings()
    with client_for(settings, ws.env) as client:
        return client.list_projects()


def projects_json(projects: Sequence[Project]) -> list[dict[str, Any]]:
    return [{"id": p.id, "name": p.name} for p in projects]


def projects_table(projects: Sequence[Project]) -> list[str]:
    if not projects:
        return ["no projects in this account"]
    return table(["ID", "NAME"], [[str(p.id), p.name] for p in projects])


@dataclass(frozen=True)
class JobRow:
    """A job and its most recent run (None when it never ran)."""

    job: Job
    last_run: Run | None

    def to_json(self) -> dict[str, Any]:
        job, run = self.job, self.last_run
        return {
            "id": job.id,
            "name": job.name,
            "project_id": job.project_id,
            "environment_id": job.environment_id,
            "job_type": job.job_type,
            "active": job.active,
            "triggers": list(job.triggers),
            "last_run": None
            if run is None
            else {
                "id": run.id,
                "status": int(run.status),
                "status_humanized": run.status.label,
                "href": run.href,
                "created_at": run.created_at.isoformat() if run.created_at else None,
                "finished_at": run.finished_at.isoformat() if run.finished_at else None,
            },
        }


def list_jobs(ws: Workspace, project_id: int | None = None) -> list[JobRow]:
    """The jobs of `project_id` (default: the configured project, else the whole account)."""
    settings = ws.settings()
    project_id = project_id or settings.project_id
    with client_for(settings, ws.env) as client:
        jobs = client.list_jobs(project_id)
        return [JobRow(job, next(iter(client.list_runs(job.id, limit=1)), None)) for job in jobs]


def jobs_table(rows: Sequence[JobRow], *, with_project: bool = False) -> list[str]:
    if not rows:
        return ["no jobs"]
    header = ["ID", "NAME", *(["PROJECT"] if with_project else [])]
    header += ["ENVIRONMENT", "TYPE", "ACTIVE", "TRIGGERS", "LAST RUN"]
    body = []
    for row in rows:
        job = row.job
        cells = [str(job.id), job.name, *([str(job.project_id or "-")] if with_project else [])]
        cells += [
            str(job.environment_id or "-"),
            job.job_type or "-",
            "yes" if job.active else "no",
            ",".join(job.triggers) or "-",
            row.last_run.status.label if row.last_run else "never ran",
        ]
        body.append(cells)
    return table(header, body)


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Left-aligned columns two spaces apart, no trailing spaces; cells are sanitized first
    (names come from dbt Cloud), so the widths are those of what is shown."""
    lines = [[sanitize(str(cell)) for cell in line] for line in [header, *rows]]
    widths = [max(len(cell) for cell in column) for column in zip(*lines, strict=True)]
    return [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in lines
    ]
