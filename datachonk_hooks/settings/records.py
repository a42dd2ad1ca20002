"""The typed settings: `Settings`, its branch routes and flags, and what a branch resolves to.

These are the records the rest of the package reads; how they are filled from the file, the
environment and the flags is `config`'s job.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from fnmatch import fnmatchcase

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.settings.defaults import (
    CLOUD_SECTION,
    CONFIG_NAME,
    DEFAULT_CAUSE,
    DEFAULT_REMOTE,
    DEFAULT_TIMEOUT,
    ENV_ACCOUNT_ID,
    ENV_JOB_ID,
    EXAMPLE_HOST,
    MAX_SCHEMA,
    SET_HOST,
)
from datachonk_hooks.settings.detect_rules import DetectRules
from datachonk_hooks.settings.messages import config_error, show
from datachonk_hooks.settings.values import parse_id


@dataclass(frozen=True)
class JobRoute:
    """A `jobs:` entry: pushes to branches matching the glob trigger this job.

    `job_id` None (`job_id: null` in the file) means "never trigger for these branches";
    the other fields, when set, beat the top-level values for these branches.
    """

    branch: str  # fnmatch glob, matched case-sensitively like git branch names
    job_id: int | None
    schema_override: str | None = None  # may use {branch}, made safe for a schema name
    select_changed: bool | None = None
    wait: bool | None = None
    follow: bool | None = None
    auto_trigger: bool | None = None


@dataclass(frozen=True)
class JobTarget:
    """What a branch resolves to: the job (None = do not trigger) and its run options."""

    job_id: int | None
    auto_trigger: bool
    select_changed: bool
    wait: bool
    #: the landing waiter follows the run to its end and records how it ended
    follow: bool
    schema_override: str | None
    #: where it came from, for `doctor` and dry runs: "jobs[0] (branch main)" or "job_id"
    source: str


def schema_name(branch: str) -> str:
    """A branch name made safe for a warehouse schema: [a-z0-9_], at most 63 characters."""
    safe = re.sub(r"[^a-z0-9_]+", "_", branch.lower()).strip("_")
    return (safe or "branch")[:MAX_SCHEMA]


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; None = not given. They beat the environment and the file."""

    host: str | None = None
    account_id: int | None = None
    project_id: int | None = None
    job_id: int | None = None
    timeout: int | None = None


class NoHostError(ConfigError):
    """No dbt Cloud host is configured (exit 2).

    There is no default host: the legacy https://cloud.getdbt.com stopped serving API
    clients on 2026-11-01, and every account has its own access URL, which only its owner
    can look up. So the message says what is missing, how to set it (`how`, which differs
    for `connect` and the local API) and where to find the value, in one line.
    """

    def __init__(self, how: str = SET_HOST) -> None:
        super().__init__(
            f"no dbt Cloud host: {how} to your account's access URL, shown in dbt Cloud under"
            f" Account settings; it looks like {EXAMPLE_HOST}"
        )


@dataclass(frozen=True)
class Settings:
    """The validated configuration, after flags > environment > datachonk.yaml > defaults."""

    #: normalised: scheme://host[:port], no trailing slash, no path; None when not configured
    #: (there is no default: see NoHostError), so each use decides, `require_host` or not
    host: str | None = None
    account_id: int | None = None
    project_id: int | None = None
    job_id: int | None = None
    auto_trigger: bool = True
    jobs: tuple[JobRoute, ...] = ()
    cause: str = DEFAULT_CAUSE
    select_changed: bool = False
    wait: bool = False
    #: the landing waiter follows pushed runs to their end (the outcome lines)
    follow: bool = True
    #: a desktop notification when a followed run ends
    notify: bool = False
    timeout: int = DEFAULT_TIMEOUT
    detect: DetectRules = field(default_factory=DetectRules)
    cancel_superseded: bool = False
    #: the git remote dbt Cloud builds from; pushes to any other remote trigger nothing
    remote: str = DEFAULT_REMOTE
    source: str | None = None  # label of the file the values came from; None if there was none

    @property
    def configured(self) -> bool:
        """True when an account id is known, i.e. a dbt Cloud connection is set up."""
        return self.account_id is not None

    def require_host(self) -> str:
        """The host, or the NoHostError that says how to set it and where to find it."""
        if self.host is None:
            raise NoHostError()
        return self.host

    def require_account_id(self) -> int:
        """The account id, or a ConfigError that says the ways to set one."""
        if self.account_id is None:
            raise ConfigError(
                f"no dbt Cloud account id: set {ENV_ACCOUNT_ID} or {CLOUD_SECTION}.account_id in"
                f" {CONFIG_NAME}, or run `datachonk-hook connect`"
            )
        return self.account_id

    def target_for_branch(self, branch: str | None) -> JobTarget:
        """The first `jobs:` entry whose glob matches the branch, else the top-level values."""
        name = branch.removeprefix("refs/heads/") if branch is not None else None
        for index, route in enumerate(self.jobs):
            if name is not None and fnmatchcase(name, route.branch):
                schema = route.schema_override
                return JobTarget(
                    job_id=route.job_id,
                    auto_trigger=_first(route.auto_trigger, self.auto_trigger),
                    select_changed=_first(route.select_changed, self.select_changed),
                    wait=_first(route.wait, self.wait),
                    follow=_first(route.follow, self.follow),
                    schema_override=(
                        schema.replace("{branch}", schema_name(name)) if schema else None
                    ),
                    source=f"jobs[{index}] (branch {route.branch})",
                )
        return JobTarget(
            job_id=self.job_id,
            auto_trigger=self.auto_trigger,
            select_changed=self.select_changed,
            wait=self.wait,
            follow=self.follow,
            schema_override=None,
            source="job_id",
        )

    def require_job_id(self, branch: str | None = None, explicit: int | None = None) -> int:
        """The job to trigger: `explicit` (a --job-id flag) > branch route > job_id."""
        if explicit is not None:
            return parse_id(explicit, where="--job-id")
        job_id = self.target_for_branch(branch).job_id
        if job_id is not None:
            return job_id
        for_branch = f" for branch {show(branch)}" if branch else ""
        raise config_error(
            f"no dbt Cloud job id{for_branch}: pass --job-id, set {ENV_JOB_ID}, or set"
            f" {CLOUD_SECTION}.job_id (or a jobs: entry for the branch) in {CONFIG_NAME}"
        )

    def manual_job(self, branch: str | None, explicit: int | None = None) -> tuple[int, str]:
        """(job, the setting that chose it) for a run asked for by hand: `explicit`, else the
        branch's route, else the top-level job_id, also when the route says never to
        trigger on push (asking by hand is explicit)."""
        if explicit is not None:
            return self.require_job_id(branch, explicit=explicit), "--job-id"
        target = self.target_for_branch(branch)
        if target.job_id is not None:
            return target.job_id, target.source
        return self.require_job_id(None), "job_id"


def _first(value: bool | None, fallback: bool) -> bool:
    return fallback if value is None else value
