"""The simulated account behind the API: its clock, tokens, projects, jobs and runs.

The endpoints read and change only this (under its `lock`); the `Sandbox` owns one, seeds it
and lets tests change it. Simulated time runs from a swappable monotonic clock, so runs
progress lazily on every read and tests can drive time without background threads.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from datachonk_hooks.sandbox.wire import (
    _FIRST_TRIGGER_ID,
    FIRST_RUN_ID,
    _ApiError,
    _Environment,
    _Job,
    _Project,
    _Run,
    _Trigger,
    _User,
)

#: the account's one member, as `/users/` lists it
OWNER = _User(1001, "Sandbox", "Owner", "owner@sandbox.example.com")


class SimClock:
    """Simulated seconds since the sandbox's epoch, `time_scale` times faster than real."""

    def __init__(self, time_scale: float) -> None:
        self._time_scale = time_scale
        self._clock: Callable[[], float] = time.monotonic
        self._epoch_clock, self._epoch = self._clock(), datetime.now(UTC)

    def now(self) -> float:
        return (self._clock() - self._epoch_clock) * self._time_scale

    def at(self, sim_s: float) -> datetime:
        return self._epoch + timedelta(seconds=sim_s)

    def stamp(self, sim_s: float | None) -> str | None:
        """Run timestamps are space-separated in dbt Cloud (job timestamps use a `T`)."""
        return None if sim_s is None else f"{self.at(sim_s):%Y-%m-%d %H:%M:%S.%f}+00:00"

    def swap(self, clock: Callable[[], float]) -> None:
        """Swap the monotonic clock without a jump: simulated time goes on from here."""
        now = self.now()
        self._clock = clock
        self._epoch_clock = clock() - now / self._time_scale


@dataclass
class Account:
    """One dbt Cloud account as the endpoints see it; hold `lock` to read or change it."""

    account_id: int
    clock: SimClock
    tokens: dict[str, str]
    #: where the API is served (run `href`s point at it); set when the server starts
    url: str = ""
    projects: dict[int, _Project] = field(default_factory=dict)
    jobs: dict[int, _Job] = field(default_factory=dict)
    runs: dict[int, _Run] = field(default_factory=dict)
    name: str = "DataChonk Sandbox"
    users: tuple[_User, ...] = (OWNER,)
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)

    def job(self, job_id: int) -> _Job:
        if job_id not in self.jobs:
            raise _ApiError.envelope(404, "Job not found.")
        return self.jobs[job_id]

    def project(self, project_id: int) -> _Project:
        if project_id not in self.projects:
            raise _ApiError.envelope(404, "Project not found.")
        return self.projects[project_id]

    def environments(self, project_id: int | None = None) -> list[_Environment]:
        """The environments the jobs run in, by id (then project: the seed's two projects
        share environment 1, so it is listed once for each)."""
        found = {(job.environment_id, job.project_id) for job in self.jobs.values()}
        return [
            _Environment(env_id, project)
            for env_id, project in sorted(found)
            if project_id in (None, project)
        ]

    def environment(self, environment_id: int, project_id: int | None = None) -> _Environment:
        for environment in self.environments(project_id):
            if environment.id == environment_id:
                return environment
        raise _ApiError.envelope(404, "Environment not found.")

    def user(self, user_id: int) -> _User:
        for user in self.users:
            if user.id == user_id:
                return user
        raise _ApiError.envelope(404, "User not found.")

    def run(self, run_id: int) -> _Run:
        if run_id not in self.runs:
            raise _ApiError.envelope(404, "Run not found.")
        return self.runs[run_id]

    def create_run(self, job: _Job, trigger: _Trigger) -> _Run:
        if not job.active:
            raise _ApiError.envelope(400, "This job is deactivated and cannot be run.")
        n = len(self.runs)
        run = _Run(FIRST_RUN_ID + n, _FIRST_TRIGGER_ID + n, job, trigger, self.clock.now())
        self.runs[run.id] = run
        return run

    def project_slug(self, run: _Run) -> str:
        return re.sub(r"\W+", "_", self.projects[run.job.project_id].name.lower()).strip("_")
