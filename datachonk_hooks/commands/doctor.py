"""`datachonk-hook doctor`: check the whole setup and say how to fix what is broken.

Every check is one line with a mark (`ok`, `FAIL`, or `skip` when an earlier failure makes
it meaningless) and, for a failure, a fix. Nothing here raises for a broken setup: no config,
no token, no network and no repository are all just failed checks.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    DbtCloudError,
    NotFoundError,
    PermissionDeniedError,
)
from datachonk_hooks.cloud.records import Job, Project
from datachonk_hooks.commands.account import Workspace, client_for, is_legacy_host
from datachonk_hooks.commands.install import PRE_COMMIT_MARKER
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.settings.config import (
    ENV_ACCOUNT_ID,
    EXAMPLE_HOST,
    SET_HOST,
    Settings,
    find_config_file,
    load_settings_file,
)
from datachonk_hooks.settings.credentials import Token, resolve_token

if TYPE_CHECKING:
    import pygit2

HOOK_ID = "datachonk-dbt-cloud"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
CONNECT = "run `datachonk-hook connect`"
#: what a check that talks to dbt Cloud says while no host is configured
NEEDS_HOST = "needs the dbt Cloud host (see the host check)"
# `- id: datachonk-dbt-cloud` on a line that is not commented out
_HOOK_ID_LINE = re.compile(
    rf"^[ \t]*(?:-[ \t]+)?id:[ \t]*[\"']?{re.escape(HOOK_ID)}[\"']?[ \t]*(?:#.*)?$", re.MULTILINE
)
_MARKS = {True: "ok", False: "FAIL", None: "skip"}


@dataclass(frozen=True)
class Check:
    """One line of the report; `passed` None means skipped because of an earlier failure."""

    name: str
    passed: bool | None
    detail: str
    fix: str | None = None

    def line(self) -> str:
        fix = f"; fix: {self.fix}" if self.fix and self.passed is False else ""
        return f"{_MARKS[self.passed]:<4}  {self.name}: {self.detail}{fix}"


def doctor_lines(checks: list[Check]) -> list[str]:
    failed = sum(check.passed is False for check in checks)
    skipped = sum(check.passed is None for check in checks)
    if not failed and not skipped:
        summary = f"all {len(checks)} checks passed"
    else:
        summary = f"{failed} of {len(checks)} checks failed" + (
            f", {skipped} skipped" if skipped else ""
        )
    return [check.line() for check in checks] + [summary]


def run_doctor(ws: Workspace) -> list[Check]:
    return list(_Doctor(ws).checks())


@dataclass
class _Doctor:
    ws: Workspace
    #: the repository of the current folder, opened once; `repo_error` says why there is none
    repo: pygit2.Repository | None = None
    repo_error: DatachonkError | None = None
    #: datachonk.yaml in use (`--config`, else the nearest one), looked for once
    config_path: Path | None = None
    settings: Settings | None = None
    token: Token | None = None
    #: the account answered: projects listed (None when the token may not list them)
    connected: bool = False
    projects: list[Project] | None = None
    #: dbt Cloud answered 401 (on the legacy host: likely a cell-based account)
    rejected: bool = False
    jobs: dict[int, Job | DbtCloudError] = field(default_factory=dict)

    def checks(self) -> Iterator[Check]:
        self.locate()
        yield self.config()
        yield from self.committed()
        yield self.token_found()
        yield self.token_accepted()
        yield self.host()
        yield self.project()
        yield self.remote()
        yield from self.job_checks()
        yield from self.branch_route()
        yield from self.hook_checks()
        yield self.ledger()

    # --- datachonk.yaml

    def locate(self) -> None:
        """Open the repository and find datachonk.yaml once for every check, as Workspace does."""
        from datachonk_hooks.push.gitrepo import open_repo, work_tree

        top = None
        try:
            self.repo = open_repo(self.ws.cwd)
            top = work_tree(self.repo)
        except DatachonkError as exc:
            self.repo_error = exc
        self.config_path = self.ws.config_path or find_config_file(self.ws.cwd, top)

    def config(self) -> Check:
        name = "datachonk.yaml"
        path = self.config_path
        try:
            self.settings = load_settings_file(path, env=self.ws.env)
        except DatachonkError as exc:
            return Check(name, False, str(exc), "correct the file at the place named")
        if path is None or not path.is_file():
            if self.settings.configured:
                return Check(name, True, "none; the account comes from the environment")
            return Check(name, False, "not found", CONNECT)
        if not self.settings.configured:
            return Check(
                name,
                False,
                f"{path} names no dbt Cloud account",
                f"{CONNECT} (or set {ENV_ACCOUNT_ID})",
            )
        return Check(name, True, f"{path} is valid")

    def committed(self) -> Iterator[Check]:
        """The hook reads datachonk.yaml from the pushed commit: local edits do not count."""
        path = self.config_path
        if path is None or not path.is_file():
            return
        try:
            import pygit2

            from datachonk_hooks.push.gitrepo import open_repo, read_blob, work_tree

            repo = self.repo
            if repo is None or self.ws.config_path is not None:  # --config: maybe another clone
                repo = open_repo(path.parent)
            relative = path.resolve().relative_to(work_tree(repo)).as_posix()
            head = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit)
            committed = read_blob(head, relative) if head is not None else None
            on_disk = path.read_bytes()
        except (DatachonkError, ValueError, OSError):
            return
        name = "datachonk.yaml in git"
        if committed is None:
            yield Check(
                name, True, "not committed yet (pushes use the work tree's copy until it is)"
            )
        elif committed != on_disk:
            yield Check(
                name,
                False,
                "it has changes that are not committed; pushes use the committed version",
                f"commit {relative}",
            )
        else:
            yield Check(name, True, "the committed version is the one on disk")

    # --- the token and dbt Cloud

    def token_found(self) -> Check:
        name = "token"
        if self.settings is None or self.settings.account_id is None:
            return Check(name, None, "needs the account from datachonk.yaml")
        host, account_id = self.settings.host, self.settings.account_id
        if host is None:  # tokens are stored per host; the host check says how to set it
            return Check(name, None, NEEDS_HOST)
        try:
            self.token = resolve_token(self.ws.env, host=host, account_id=account_id)
        except DatachonkError as exc:  # none found (it says how to add one), or an unsafe file
            return Check(name, False, str(exc))
        return Check(name, True, f"from {self.token.source}")

    def token_accepted(self) -> Check:
        name = "dbt Cloud"
        if self.settings is not None and self.settings.host is None:
            return Check(name, None, NEEDS_HOST)
        if self.settings is None or self.token is None:
            return Check(name, None, "needs a token")
        host, account_id = self.settings.require_host(), self.settings.account_id
        try:
            with self._client() as client:
                self.projects = client.list_projects(with_repository=True)
        except PermissionDeniedError:
            self.connected = True
            return Check(
                name,
                True,
                f"{host} accepted the token for account {account_id} (it may not list"
                " projects: a Job Runner token)",
            )
        except AuthenticationError:
            self.rejected = True
            fix = (
                "set host in datachonk.yaml to the access URL from Account settings"
                if is_legacy_host(host)
                else "store a valid token: " + CONNECT
            )
            return Check(name, False, f"{host} rejected the token (HTTP 401)", fix)
        except NotFoundError:
            return Check(
                name,
                False,
                f"{host} has no account {account_id} that this token can see (HTTP 404)",
                "check account_id (the number after /accounts/ in dbt Cloud URLs) and that"
                " the token belongs to that account",
            )
        except DbtCloudError as exc:
            return Check(name, False, str(exc), "check the network and host, then try again")
        self.connected = True
        return Check(name, True, f"{host} accepted the token for account {account_id}")

    def host(self) -> Check:
        name = "host"
        if self.settings is None:
            return Check(name, None, "needs datachonk.yaml")
        host = self.settings.host
        if host is None and not self.settings.configured:  # `connect` sets both
            return Check(name, None, "needs the account from datachonk.yaml")
        if host is None:
            return Check(
                name,
                False,
                "no dbt Cloud host is configured (there is no default: cloud.getdbt.com no"
                " longer serves API clients)",
                f"{SET_HOST} to your account's access URL, shown in dbt Cloud under Account"
                f" settings; it looks like {EXAMPLE_HOST}",
            )
        if not is_legacy_host(host):
            return Check(name, True, f"{host} is not the legacy cloud.getdbt.com")
        if self.rejected:
            return Check(
                name,
                False,
                f"{host} is the legacy host, where accounts with their own access URL"
                " (cell-based) answer 401",
                "set deploy.dbt_cloud.host to the access URL shown under Account settings,"
                " such as https://ab123.us1.dbt.com",
            )
        if not self.connected:
            return Check(name, None, f"{host} is the legacy host; cannot tell without a connection")
        return Check(
            name,
            True,
            f"{host} works for this account (getdbt.com URLs are being retired: prefer the"
            " access URL from Account settings)",
        )

    def project(self) -> Check:
        name = "project"
        settings = self.settings
        if settings is not None and settings.host is None:
            return Check(name, None, NEEDS_HOST)
        if settings is None or not self.connected:
            return Check(name, None, "needs a working connection")
        if settings.project_id is None:
            return Check(name, False, "no project_id in datachonk.yaml", CONNECT)
        if self.projects is None:
            job = self._job(settings.job_id) if settings.job_id else None
            if isinstance(job, Job) and job.project_id == settings.project_id:
                return Check(
                    name,
                    True,
                    f"{settings.project_id} (seen through job {job.id}: the token"
                    " may not list projects)",
                )
            return Check(name, None, f"{settings.project_id}: the token may not list projects")
        found = next((p for p in self.projects if p.id == settings.project_id), None)
        if found is None:
            return Check(
                name,
                False,
                f"account {settings.account_id} has no project {settings.project_id}",
                f"{CONNECT} to choose one (`datachonk-hook projects` lists them)",
            )
        return Check(name, True, f"{found.id} {found.name}")

    def remote(self) -> Check:
        """Pushes trigger only for the remote dbt Cloud builds from: it must exist here, and
        when dbt Cloud tells the project's repository, be that repository."""
        from datachonk_hooks.push.gitrepo import same_repository

        name = "git remote"
        if self.settings is None or self.repo is None:
            return Check(name, None, "needs datachonk.yaml and a repository")
        remote = self.settings.remote
        fix = (
            "set deploy.dbt_cloud.remote to the remote dbt Cloud builds from"
            " (`git remote -v` lists them)"
        )
        try:
            url = self.repo.remotes[remote].url or ""
        except (KeyError, ValueError):
            return Check(name, False, f"this clone has no remote {remote!r}", fix)
        project = next((p for p in self.projects or () if p.id == self.settings.project_id), None)
        if project is None or project.repository_url is None:
            return Check(name, True, f"pushes to {remote} ({url}) trigger")
        if not same_repository(url, project.repository_url, self.repo.workdir):
            return Check(
                name,
                False,
                f"{remote} is {url}, but dbt Cloud project {project.id} builds from"
                f" {project.repository_url}",
                fix,
            )
        return Check(name, True, f"pushes to {remote} trigger; dbt Cloud builds from {url} too")

    def job_checks(self) -> Iterator[Check]:
        settings = self.settings
        if settings is not None and settings.host is None:
            yield Check("job", None, NEEDS_HOST)
            return
        if settings is None or not self.connected:
            yield Check("job", None, "needs a working connection")
            return
        if settings.job_id is None and not settings.jobs:
            yield Check("job", False, "no job_id in datachonk.yaml", CONNECT)
            return
        if settings.job_id is not None:
            yield self._job_check("job", settings.job_id, settings.project_id)
        for index, route in enumerate(settings.jobs):
            name = f"jobs[{index}] ({route.branch})"
            if route.job_id is None:
                yield Check(name, True, "no job: pushes to these branches trigger nothing")
            else:
                yield self._job_check(name, route.job_id, settings.project_id)

    def branch_route(self) -> Iterator[Check]:
        """Which `jobs:` entry the current branch resolves to (information, always ok)."""
        from datachonk_hooks.push.gitrepo import branch_of

        if self.settings is None or not self.settings.configured or self.repo is None:
            return
        try:
            branch = branch_of(self.repo, "HEAD")
        except DatachonkError:
            return
        if branch is None:
            return
        target = self.settings.target_for_branch(branch)
        if target.job_id is None:
            yield Check(f"branch {branch}", True, f"{target.source}: pushes trigger nothing")
            return
        extras = [
            f"schema {target.schema_override}" if target.schema_override else "",
            "select changed models" if target.select_changed else "",
            "wait for the run" if target.wait else "",
            "" if target.auto_trigger else "only by hand (auto_trigger false)",
        ]
        detail = ", ".join(e for e in extras if e)
        yield Check(
            f"branch {branch}",
            True,
            f"pushes trigger job {target.job_id} via {target.source}"
            + (f"; {detail}" if detail else ""),
        )

    def _job_check(self, name: str, job_id: int, project_id: int | None) -> Check:
        job = self._job(job_id)
        if isinstance(job, NotFoundError):
            return Check(
                name,
                False,
                f"no job {job_id} in the account",
                "pick an existing job (`datachonk-hook jobs` lists them)",
            )
        if isinstance(job, DbtCloudError):
            return Check(name, False, f"job {job_id}: {job}", "check the token's permissions")
        if not job.active:
            return Check(
                name,
                False,
                f"{job.id} {job.name} is deactivated",
                "reactivate it in dbt Cloud, or choose another job",
            )
        if project_id is not None and job.project_id not in (None, project_id):
            return Check(
                name,
                False,
                f"{job.id} {job.name} belongs to project {job.project_id}, not {project_id}",
                "choose a job of the configured project",
            )
        return Check(name, True, f"{job.id} {job.name} (active, in project {job.project_id})")

    def _job(self, job_id: int) -> Job | DbtCloudError:
        if job_id not in self.jobs:
            try:
                with self._client() as client:
                    self.jobs[job_id] = client.get_job(job_id)
            except DbtCloudError as exc:
                self.jobs[job_id] = exc
        return self.jobs[job_id]

    def _client(self) -> DbtCloudClient:
        assert self.settings is not None
        return client_for(self.settings, self.ws.env, token=self.token)

    # --- this clone

    def hook_checks(self) -> Iterator[Check]:
        from datachonk_hooks.commands.install import hooks_dir, is_ours
        from datachonk_hooks.push.gitrepo import work_tree

        if self.repo is None:
            problem = str(self.repo_error or "not in a git repository")
            yield Check("pre-push hook", False, problem, "run this in the dbt repository")
            return
        top = work_tree(self.repo)
        hook = hooks_dir(self.repo) / "pre-push"
        configured = _pre_commit_runs_hook(top / PRE_COMMIT_CONFIG)
        installed = _hook_kind(hook, is_ours(hook))
        shown = _relative(hook, top)
        if configured:
            yield Check("pre-commit", True, f"{PRE_COMMIT_CONFIG} runs hook {HOOK_ID}")
        elif installed != "standalone":  # the standalone hook needs no pre-commit
            yield Check(
                "pre-commit",
                False,
                f"no {PRE_COMMIT_CONFIG} runs hook {HOOK_ID}",
                f"add hook id {HOOK_ID} to {PRE_COMMIT_CONFIG}, or use `datachonk-hook install`"
                " instead",
            )
        if installed == "standalone":
            yield Check("pre-push hook", True, f"the standalone datachonk hook is at {shown}")
        elif installed == "pre-commit":
            yield Check("pre-push hook", True, f"pre-commit's hook is installed at {shown}")
        elif installed == "other":
            yield Check(
                "pre-push hook",
                False,
                f"{shown} is neither pre-commit's nor datachonk's",
                "run `datachonk-hook install` (it keeps that hook and runs it first)",
            )
        else:
            yield Check(
                "pre-push hook",
                False,
                f"not installed in this clone ({shown} is missing)",
                "run `pre-commit install -t pre-push`"
                if configured
                else "run `datachonk-hook install`",
            )

    def ledger(self) -> Check:
        name = "pending triggers"
        from datachonk_hooks.delivery.ledger import Ledger, ledger_file

        repo = self.repo
        if repo is None:
            return Check(name, None, "needs a git repository")
        try:
            if not ledger_file(repo).exists():
                return Check(name, True, "none (nothing triggered yet)")
            with Ledger.for_repo(repo) as ledger:
                pending = ledger.deliverable()
        except DatachonkError as exc:  # the message says what to do
            return Check(name, False, str(exc))
        if not pending:
            return Check(name, True, "none")
        oldest = pending[0]
        return Check(
            name,
            False,
            f"{len(pending)} not delivered; the oldest, job {oldest.job_id} for"
            f" {oldest.sha[:7]}: {oldest.reason or 'not sent yet'}",
            "run `datachonk-hook retry` (`datachonk-hook history` shows them)",
        )


def _pre_commit_runs_hook(path: Path) -> bool:
    try:
        return _HOOK_ID_LINE.search(path.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:
        return False


def _hook_kind(hook: Path, ours: bool) -> str | None:
    """ "standalone", "pre-commit", "other", or None when there is no pre-push hook."""
    if ours:
        return "standalone"
    try:
        text = hook.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return "pre-commit" if PRE_COMMIT_MARKER in text else "other"


def _relative(path: Path, top: Path) -> str:
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        return str(path)
