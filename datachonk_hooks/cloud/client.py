"""The client that talks to dbt Cloud: `DbtCloudClient`'s endpoints (runs, jobs, projects,
artifacts), each turning JSON into the typed records of `cloud.records`.

Everything else in the package gets `Run`, `Job` and `Project` records from here and never
sees JSON or HTTP; how a request travels (deadlines, retries, redirects) is
`cloud.transport`'s. One rule shapes the code here: a trigger POST is never re-sent
blindly. When its outcome is unknown (a read timeout, a dropped connection, a 5xx or an
unreadable answer), the job's recent runs are searched for one with the same git_sha and
cause before anything is sent again.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Self

from datachonk_hooks.cloud import paging
from datachonk_hooks.cloud.errors import (
    BadResponseError,
    DbtCloudError,
    NotFoundError,
    RateLimitedError,
    ServerError,
    UnknownOutcomeError,
    UnreachableError,
)
from datachonk_hooks.cloud.records import Job, Project, Run
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.transport import (
    NoAnswer,
    NotSent,
    RetryPolicy,
    TimedOut,
    Timeouts,
    Transport,
    Tries,
)
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.settings.credentials import Token

__all__ = [
    "ARTIFACT_TIME_FACTOR",
    "LOOKUP_PAGES",
    "RUN_RELATED",
    "DbtCloudClient",
]

log = logging.getLogger(__name__)

#: pages of the run list read to find the run of a trigger with an unknown outcome: the
#: runs since its first attempt, however busy the job, within a bounded cost
LOOKUP_PAGES = 50
RUN_RELATED = ("run_steps", "job", "trigger")
#: an artifact (manifest.json can be hundreds of MB) gets this many HTTP timeouts in total
ARTIFACT_TIME_FACTOR = 10


@dataclass
class DbtCloudClient:
    """dbt Cloud's Administrative API for one account, over one `Transport`."""

    host: str
    account_id: int
    token: Token
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    transport: Transport = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.transport = Transport(
            self.host,
            self.account_id,
            self.token,
            self.timeouts,
            self.retry,
            self.sleep,
            self.clock,
        )

    def trigger_run(
        self, job_id: int, request: TriggerRequest, *, since: datetime | None = None
    ) -> Run:
        """Start a run of `job_id`; never sends the POST twice for one run.

        `since` is when the first attempt of this trigger was made (by this process or an
        earlier one); a run found after it with the same git_sha and cause is adopted.
        """
        path = f"/api/v2/accounts/{self.account_id}/jobs/{job_id}/run/"
        since = since or datetime.now(UTC)
        tries = Tries(self.transport)
        self.transport.deadline = tries.deadline
        try:
            return self._trigger(job_id, request, since, path, tries)
        finally:
            self.transport.deadline = None

    def _trigger(
        self, job_id: int, request: TriggerRequest, since: datetime, path: str, tries: Tries
    ) -> Run:
        # After a read timeout dbt Cloud may still be creating the run, and after a success
        # answer we cannot read (bad JSON, an odd id) it surely created it: from then on
        # only look for it (until the budget ends), never send it again, or it could run
        # twice.
        timed_out = False
        for _ in tries:
            if timed_out:
                found = self._look_for_run(job_id, request, since)
                if found is not None:
                    return found
                continue
            try:
                data = self.transport.send(
                    "POST", path, json_body=request.body(), what=("job", job_id)
                )
                return Run.from_api(_mapping(data))
            except NotSent as exc:
                tries.last = UnreachableError(self.transport.unreachable(str(exc)))
            except RateLimitedError as exc:  # refused, so nothing was created
                tries.last = exc
            except (NoAnswer, ServerError, BadResponseError) as exc:
                found = self._look_for_run(job_id, request, since)
                if found is not None:
                    return found
                # a gateway that gave up waiting (504) says nothing of what dbt Cloud behind
                # it did: like a read timeout
                gateway = isinstance(exc, ServerError) and exc.status == 504
                timed_out = isinstance(exc, TimedOut | BadResponseError) or gateway
                tries.last = _trigger_error(exc, job_id, looked_up_again=timed_out)
        raise tries.last_error()

    def _look_for_run(self, job_id: int, request: TriggerRequest, since: datetime) -> Run | None:
        """The run a trigger without a usable answer may have started, adopted if found."""
        try:
            found = self.find_run(job_id, request, since=since)
        except DbtCloudError as lookup_failed:
            raise UnknownOutcomeError(
                f"the trigger of job {job_id} got no usable answer and the run could not"
                f" be looked up: {lookup_failed}"
            ) from None
        if found is not None:
            log.info("trigger answer lost; adopted run %s found by git_sha", found.id)
        return found

    def find_run(self, job_id: int, request: TriggerRequest, *, since: datetime) -> Run | None:
        """A run of `job_id` for the request's git_sha and cause created since `since`.

        Used before re-sending a trigger whose outcome is unknown: every run of the job
        created since then is read, page by page (newest first, at most LOOKUP_PAGES pages),
        however many other runs the job had meanwhile. A few minutes of slack absorb clock
        skew between this machine and dbt Cloud.
        """
        window_start = since - timedelta(minutes=5)
        for run in self._runs_newest_first(job_id, pages=LOOKUP_PAGES):
            if run.created_at is not None and run.created_at < window_start:
                break
            same_sha = request.git_sha is None or run.git_sha == request.git_sha
            same_cause = run.cause is None or run.cause == request.cause
            if same_sha and same_cause:
                return run
        return None

    def find_run_for_sha(self, job_id: int, sha: str) -> Run | None:
        """The newest run of `job_id` for commit `sha` among the job's PAGE_SIZE newest runs.

        Asked before the first POST of a trigger: a run another clone, CI or an earlier clone
        of this repository started for the commit is adopted instead of a second one. One
        bounded request: a run older than the job's PAGE_SIZE newest is not found.
        """
        for run in self._runs_newest_first(job_id, pages=1):
            if run.git_sha == sha:
                return run
        return None

    def _runs_newest_first(self, job_id: int, *, pages: int) -> Iterator[Run]:
        params: dict[str, str | int] = {
            "order_by": "-id",
            "job_definition_id": job_id,
            "include_related": json.dumps(["trigger", "job"]),
        }
        path = f"/api/v2/accounts/{self.account_id}/runs/"
        items = paging.paginate(
            self.transport, path, params, limit=pages * paging.PAGE_SIZE, what=("job", job_id)
        )
        return (Run.from_api(item) for item in items)

    def get_run(self, run_id: int, *, related: Sequence[str] = RUN_RELATED) -> Run:
        params = {"include_related": json.dumps(list(related))} if related else {}
        path = f"/api/v2/accounts/{self.account_id}/runs/{run_id}/"
        return Run.from_api(_mapping(self.transport.get(path, params, what=("run", run_id))))

    def list_runs(
        self,
        job_id: int | None = None,
        *,
        limit: int | None = None,
        include_trigger: bool = False,
        status: RunStatus | None = None,
    ) -> list[Run]:
        """Runs newest first; `limit` None follows every page."""
        params: dict[str, str | int] = {"order_by": "-id"}
        if job_id is not None:
            params["job_definition_id"] = job_id
        if status is not None:
            params["status"] = int(status)
        if include_trigger:
            params["include_related"] = json.dumps(["trigger", "job"])
        path = f"/api/v2/accounts/{self.account_id}/runs/"
        items = paging.paginate(self.transport, path, params, limit=limit, what=("job", job_id))
        return [Run.from_api(item) for item in items]

    def cancel_run(self, run_id: int) -> Run:
        path = f"/api/v2/accounts/{self.account_id}/runs/{run_id}/cancel/"
        data = self.transport.with_retries("POST", path, None, ("run", run_id), json_body={})
        return Run.from_api(_mapping(data))

    def rerun_job(self, job_id: int) -> Run:
        """Rerun the job's latest run from its point of failure (a new run if it did not fail).

        Like a trigger, a rerun is not idempotent: it is only re-sent when it surely did not
        reach dbt Cloud (connection refused, 429).
        """
        path = f"/api/v2/accounts/{self.account_id}/jobs/{job_id}/rerun/"
        tries = Tries(self.transport)
        for _ in tries:
            try:
                data = self.transport.send("POST", path, json_body={}, what=("job", job_id))
                return Run.from_api(_mapping(data))
            except NotSent as exc:
                tries.last = UnreachableError(self.transport.unreachable(str(exc)))
            except RateLimitedError as exc:
                tries.last = exc
            except NoAnswer as exc:
                raise UnknownOutcomeError(
                    f"dbt Cloud did not answer the rerun of job {job_id} ({exc}); check the"
                    " job's runs before trying again"
                ) from None
        raise tries.last_error()

    def get_artifact(self, run_id: int, path: str) -> bytes:
        """A raw artifact file of a run (`manifest.json`, `run_results.json`...)."""
        url_path = f"/api/v2/accounts/{self.account_id}/runs/{run_id}/artifacts/{path}"
        try:
            data: bytes = self.transport.with_retries(
                "GET",
                url_path,
                None,
                ("run", run_id),
                raw=True,
                seconds=self.timeouts.read * ARTIFACT_TIME_FACTOR,
            )
        except NotFoundError:  # a 404 here mostly means the file, not the run, is missing
            raise NotFoundError(
                f"run {run_id} has no artifact {path} (HTTP 404); artifacts exist only for"
                " finished runs that saved them",
                status=404,
            ) from None
        return data

    def list_projects(self, *, with_repository: bool = False) -> list[Project]:
        """The account's projects; `with_repository` also asks for the git URL each clones."""
        path = f"/api/v3/accounts/{self.account_id}/projects/"
        params: dict[str, str | int] = {"include_related": "repository"} if with_repository else {}
        return [
            Project.from_api(p)
            for p in paging.paginate(self.transport, path, params, what=("account", None))
        ]

    def list_jobs(self, project_id: int | None = None) -> list[Job]:
        params: dict[str, str | int] = {"order_by": "id"}
        if project_id is not None:
            params["project_id"] = project_id
        path = f"/api/v2/accounts/{self.account_id}/jobs/"
        return [
            Job.from_api(j)
            for j in paging.paginate(self.transport, path, params, what=("project", project_id))
        ]

    def get_job(self, job_id: int) -> Job:
        path = f"/api/v2/accounts/{self.account_id}/jobs/{job_id}/"
        return Job.from_api(_mapping(self.transport.get(path, {}, what=("job", job_id))))

    def close(self) -> None:
        self.transport.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _trigger_error(exc: Exception, job_id: int, *, looked_up_again: bool) -> DbtCloudError:
    """Why a trigger without a usable answer failed, when no run was found for it."""
    again = "; it is looked up again before any new attempt" if looked_up_again else ""
    if isinstance(exc, BadResponseError):  # it answered: the run likely exists
        return UnknownOutcomeError(
            f"dbt Cloud's answer to the trigger of job {job_id} was unusable ({exc})"
            f" and no matching run was found{again}"
        )
    if isinstance(exc, ServerError) and exc.status == 504:
        return UnknownOutcomeError(
            f"dbt Cloud's gateway timed out on the trigger of job {job_id} (HTTP 504)"
            f" and no matching run was found{again}"
        )
    if isinstance(exc, DbtCloudError):
        return exc
    return UnknownOutcomeError(
        f"dbt Cloud did not answer the trigger of job {job_id} ({exc}) and no"
        f" matching run was found{again}"
    )


def _mapping(data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadResponseError("dbt Cloud returned an unexpected answer (no `data` object)")
    return data
