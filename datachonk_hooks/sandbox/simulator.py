"""The simulator: its state, its endpoints, and the HTTP server that serves them."""

from __future__ import annotations

import contextlib
import json
import re
import socket
import struct
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlencode, urlsplit

from datachonk_hooks.sandbox.simulation import (
    _artifact,
    _dbt_logs,
    _progress,
    _updated,
)
from datachonk_hooks.sandbox.wire import (
    _BAD_GATEWAY,
    _DENIED,
    _FAULT_KINDS,
    _FAULT_OPTIONS,
    _FIRST_STEP_ID,
    _FIRST_TRIGGER_ID,
    _GATEWAY_TIMEOUT,
    _GRANTS,
    _JOB_FIXED,
    _JOB_TYPES,
    _OUTCOMES,
    _OVERRIDES,
    _PROJECT_FIXED,
    _RUN_FIXED,
    CANCELLED,
    ERROR,
    FIRST_RUN_ID,
    QUEUED,
    RUNNING,
    STATUS_NAMES,
    SUCCESS,
    TERMINAL,
    SandboxRequest,
    SandboxRun,
    _ApiError,
    _Call,
    _decode_body,
    _Fault,
    _hms,
    _humanize,
    _Incoming,
    _int_param,
    _Job,
    _json_response,
    _list_param,
    _ok,
    _ordering,
    _page,
    _parse_trigger,
    _Progress,
    _Project,
    _Response,
    _Run,
    _Trigger,
)


class Sandbox:
    """A fake dbt Cloud account over HTTP: `start()` it and point a client at `url`."""

    def __init__(
        self,
        *,
        token: str = "sandbox-token",
        account_id: int = 12345,
        bind: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        seed: bool = True,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._token, self._account_id, self._time_scale = token, account_id, time_scale
        self._bind, self._port = bind, port
        self._lock = threading.RLock()
        self._clock: Callable[[], float] = time.monotonic
        self._epoch_clock, self._epoch = self._clock(), datetime.now(UTC)
        self._tokens: dict[str, str] = {token: "account_admin"}
        self._projects: dict[int, _Project] = {}
        self._jobs: dict[int, _Job] = {}
        self._runs: dict[int, _Run] = {}
        self._faults: list[_Fault] = []
        self._requests: list[SandboxRequest] = []
        self._server: _Server | None = None
        self._thread: threading.Thread | None = None
        if seed:
            self.add_project(67890, "jaffle_shop")
            self.add_job(11111, project_id=67890, name="DataChonk CI")
            self.add_job(22222, project_id=67890, name="Production daily", job_type="scheduled")
            self.add_job(33333, project_id=67890, name="Nightly (fails)", outcome="error")
            self.add_job(44444, project_id=67890, name="Long running", running_s=600)
            self.add_project(67891, "marketing")
            self.add_job(55555, project_id=67891, name="Marketing build")

    # ---------------------------------------------------------------- lifecycle

    @property
    def url(self) -> str:
        if not self._port:
            raise RuntimeError("the sandbox has no port yet: call start() first")
        host = "127.0.0.1" if self._bind in ("", "0.0.0.0") else self._bind
        return f"http://{host}:{self._port}"

    @property
    def port(self) -> int:
        return self._port

    @property
    def account_id(self) -> int:
        return self._account_id

    @property
    def token(self) -> str:
        return self._token

    def start(self) -> Sandbox:
        """Serve in a daemon thread; a restart reuses the first port, as a real host would."""
        if self._server is not None:
            return self
        server = _Server((self._bind, self._port), self)
        self._server, self._port = server, int(server.server_address[1])
        self._thread = threading.Thread(
            target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Go down: new connections are refused and open keep-alive connections are cut."""
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            with contextlib.suppress(OSError):  # wakes the serving loop now, not at its next poll
                server.socket.shutdown(socket.SHUT_RDWR)
            server.shutdown()
            server.server_close()
            server.cut_connections()
        if thread is not None:
            thread.join(timeout=5)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- state for tests

    def add_project(self, project_id: int, name: str, repository_url: str | None = None) -> None:
        with self._lock:
            self._projects[project_id] = _Project(project_id, name, self._sim_now(), repository_url)

    def set_repository(self, project_id: int, url: str | None) -> None:
        """Connect a project to the git repository at `url` (None: no repository)."""
        with self._lock:
            project = self._projects[project_id]
            self._projects[project_id] = replace(project, repository_url=url)

    def add_job(
        self,
        job_id: int,
        *,
        project_id: int,
        name: str,
        outcome: str = "success",
        queued_s: float = 1.0,
        starting_s: float = 1.0,
        running_s: float = 3.0,
        environment_id: int = 1,
        job_type: str = "other",
        active: bool = True,
        execute_steps: tuple[str, ...] = ("dbt build",),
    ) -> None:
        if outcome not in _OUTCOMES or job_type not in _JOB_TYPES:
            raise ValueError(f"bad outcome {outcome!r} or job_type {job_type!r}")
        if min(queued_s, starting_s, running_s) < 0 or not execute_steps:
            raise ValueError("durations must be >= 0 and execute_steps must not be empty")
        with self._lock:
            if project_id not in self._projects:
                raise ValueError(f"no project {project_id}: add_project() it first")
            self._jobs[job_id] = _Job(
                job_id,
                project_id,
                name,
                outcome,
                queued_s,
                starting_s,
                running_s,
                environment_id,
                job_type,
                active,
                tuple(execute_steps),
                self._sim_now(),
            )

    def set_tokens(self, tokens: Mapping[str, str]) -> None:
        unknown = set(tokens.values()) - set(_GRANTS)
        if unknown:
            raise ValueError(f"unknown permission sets {sorted(unknown)}; use {sorted(_GRANTS)}")
        with self._lock:
            self._tokens = dict(tokens)

    def fail(
        self, kind: str, *, method: str = "*", path: str = ".*", times: int = 1, **options: object
    ) -> None:
        """Give the next `times` requests whose method matches and whose path `re.search`es
        `path` the fault `kind`; later requests are answered normally again. Options:
        `retry_after` (429), `message` (500: the server's text), `delay` (slow, in real
        seconds: time_scale does not apply), `interval` and `body_only` (drip: the answer,
        headers too unless `body_only`, goes out one byte per `interval` real seconds, after
        the request took effect), `port`, `status` and `bare` (redirect: a 302, or `status`,
        to the same path on `port`, by default this server's own, without doing anything;
        `bare` leaves the Location header out), `id`
        (odd_id: the answer's `data.id`, or every listed item's, becomes this value)."""
        if kind not in _FAULT_KINDS:
            raise ValueError(f"unknown fault {kind!r}; use one of {sorted(_FAULT_KINDS)}")
        unknown = set(options) - _FAULT_OPTIONS.get(kind, set())
        if unknown or times < 1:
            raise ValueError(f"fault {kind!r}: bad options {sorted(unknown)} or times {times}")
        fault = _Fault(kind, method.upper(), re.compile(path), times, tuple(options.items()))
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    @property
    def runs(self) -> list[SandboxRun]:
        with self._lock:
            now = self._sim_now()
            return [
                SandboxRun(
                    id=run.id,
                    job_id=run.job.id,
                    project_id=run.job.project_id,
                    cause=run.trigger.cause,
                    git_sha=run.trigger.git_sha,
                    git_branch=run.trigger.git_branch,
                    steps_override=run.trigger.steps_override,
                    schema_override=run.trigger.schema_override,
                    status=_progress(run, now).status,
                    created_at=self._at(run.created_s),
                )
                for run in self._runs.values()
            ]

    @property
    def requests(self) -> list[SandboxRequest]:
        with self._lock:
            return list(self._requests)

    def run_status(self, run_id: int) -> int:
        with self._lock:
            return _progress(self._runs[run_id], self._sim_now()).status

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Swap the monotonic clock without a jump: simulated time goes on from here."""
        with self._lock:
            now = self._sim_now()
            self._clock = clock
            self._epoch_clock = clock() - now / self._time_scale

    # ---------------------------------------------------------------- request handling

    def _sim_now(self) -> float:
        return (self._clock() - self._epoch_clock) * self._time_scale

    def _at(self, sim_s: float) -> datetime:
        return self._epoch + timedelta(seconds=sim_s)

    def _stamp(self, sim_s: float | None) -> str | None:
        """Run timestamps are space-separated in dbt Cloud (job timestamps use a `T`)."""
        return None if sim_s is None else f"{self._at(sim_s):%Y-%m-%d %H:%M:%S.%f}+00:00"

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.method in ("*", method) and fault.pattern.search(path):
                    if fault.times > 1:
                        self._faults[i] = replace(fault, times=fault.times - 1)
                    else:
                        del self._faults[i]
                    return fault
        return None

    def _record(self, incoming: _Incoming, body: object | None) -> None:
        with self._lock:
            token = _token_of(incoming.authorization)
            ok = token is not None and token in self._tokens
            self._requests.append(
                SandboxRequest(incoming.method, incoming.path, incoming.query, body, ok)
            )

    def _respond(self, incoming: _Incoming, fault: _Fault | None) -> _Response:
        body_error: _ApiError | None = None
        try:
            body = _decode_body(incoming)
        except _ApiError as err:
            body, body_error = incoming.raw.decode("utf-8", errors="replace"), err
        self._record(incoming, body)
        kind = fault.kind if fault is not None else ""
        if fault is not None and kind in ("500", "502_html", "503", "429", "404"):
            return _fault_response(fault)
        if fault is not None and kind == "redirect":  # a proxy's answer: nothing happens
            return _redirect_response(fault, incoming, self.url)
        try:
            with self._lock:
                response = self._route(incoming, body, body_error)
        except _ApiError as err:
            response = err.response()
        if kind == "malformed_json":  # the request took effect; its answer arrives truncated
            response = replace(response, status=200, body=response.body[: len(response.body) // 2])
        if fault is not None and kind == "odd_id":  # the request took effect; its ids are odd
            response = _with_odd_ids(response, fault.value("id"))
        return response

    def _route(
        self, incoming: _Incoming, body: object | None, body_error: _ApiError | None
    ) -> _Response:
        """Django's order: resolve the URL, authenticate, check the method, then permissions."""
        for route in _ROUTES:
            match = route.pattern.fullmatch(incoming.path)
            if match:
                break
        else:
            if _RUN_WITHOUT_SLASH.fullmatch(incoming.path):
                # the POST is redirected to .../run/ as a GET, which that view refuses
                raise _ApiError.detail(405, 'Method "GET" not allowed.')
            raise _ApiError.detail(404, "Not found.")
        permission = self._tokens.get(_token_of(incoming.authorization) or "")
        if permission is None:
            raise _ApiError.envelope(401, "Invalid token.", developer=None)
        if incoming.method != route.method:
            raise _ApiError.detail(405, f'Method "{incoming.method}" not allowed.')
        if int(match["account"]) != self._account_id:
            raise _ApiError.envelope(404, "Account not found.")
        if route.grant not in _GRANTS[permission]:
            raise _ApiError.envelope(403, _DENIED[route.grant])
        key, rest = match.groupdict().get("key"), match.groupdict().get("rest")
        call = _Call(int(key or 0), rest or "", incoming.query, body, body_error)
        return route.endpoint(self, call)

    def _job(self, job_id: int) -> _Job:
        if job_id not in self._jobs:
            raise _ApiError.envelope(404, "Job not found.")
        return self._jobs[job_id]

    def _run(self, run_id: int) -> _Run:
        if run_id not in self._runs:
            raise _ApiError.envelope(404, "Run not found.")
        return self._runs[run_id]

    def _create_run(self, job: _Job, trigger: _Trigger) -> _Response:
        if not job.active:
            raise _ApiError.envelope(400, "This job is deactivated and cannot be run.")
        n = len(self._runs)
        run = _Run(FIRST_RUN_ID + n, _FIRST_TRIGGER_ID + n, job, trigger, self._sim_now())
        self._runs[run.id] = run
        return _ok(self._run_json(run, {"trigger", "job"}))

    # ---------------------------------------------------------------- endpoints

    def _trigger(self, call: _Call) -> _Response:
        job = self._job(call.key)
        if call.body_error is not None:
            raise call.body_error
        return self._create_run(job, _parse_trigger(call.body))

    def _rerun(self, call: _Call) -> _Response:
        """Retry from failure when the job's latest run errored, else a plain new run."""
        job = self._job(call.key)
        runs = [run for run in self._runs.values() if run.job.id == job.id]
        if runs and _progress(runs[-1], self._sim_now()).status == ERROR:
            cause = f"Rerun from failure of run {runs[-1].id}"
            trigger = replace(runs[-1].trigger, cause=cause, cause_category="rerun")
        else:
            trigger = _Trigger(cause="Triggered via rerun API")
        return self._create_run(job, trigger)

    def _get_run(self, call: _Call) -> _Response:
        wanted = set(_list_param(call.query, "include_related"))
        include = wanted & {"trigger", "job", "run_steps", "environment"}
        return _ok(self._run_json(self._run(call.key), include))

    def _cancel(self, call: _Call) -> _Response:
        run, now = self._run(call.key), self._sim_now()
        if _progress(run, now).status not in TERMINAL:
            run = self._runs[run.id] = replace(run, cancelled_s=now)
        return _ok(self._run_json(run, set()))

    def _list_runs(self, call: _Call) -> _Response:
        query, now = call.query, self._sim_now()
        rows = [_RunRow(run, _progress(run, now)) for run in self._runs.values()]
        filters: dict[str, object] = {"state": "all", "account_id": self._account_id}
        for name in ("job_definition_id", "project_id", "status"):
            wanted = _int_param(query, name)
            if wanted is not None:
                rows = [row for row in rows if row.value(name) == wanted]
                filters[name] = wanted
        if query.get("status__in"):
            try:
                statuses = [int(s) for s in _list_param(query, "status__in")]
            except ValueError:
                raise _ApiError.invalid({"status__in": ["Enter a number."]}) from None
            rows = [row for row in rows if row.progress.status in statuses]
            filters["status__in"] = statuses
        order_by = _ordering(query, ("id", "created_at", "updated_at", "finished_at", "status"))
        rows.sort(key=lambda row: row.sort_key(order_by), reverse=order_by.startswith("-"))
        page, extra = _page(rows, query, filters, order_by)
        include = {"trigger", "job", "environment"} & set(_list_param(query, "include_related"))
        return _ok([self._run_json(row.run, include) for row in page], extra)

    def _list_jobs(self, call: _Call) -> _Response:
        jobs = list(self._jobs.values())
        filters: dict[str, object] = {"state": "active", "account_id": self._account_id}
        for name in ("project_id", "environment_id"):
            wanted = _int_param(call.query, name)
            if wanted is not None:
                jobs = [job for job in jobs if getattr(job, name) == wanted]
                filters[name] = wanted
        order_by = _ordering(call.query, ("id", "name", "created_at"))
        field = {"created_at": "created_s"}.get(order_by.lstrip("-"), order_by.lstrip("-"))
        jobs.sort(key=lambda job: (getattr(job, field), job.id), reverse=order_by.startswith("-"))
        page, extra = _page(jobs, call.query, filters, order_by)
        return _ok([self._job_json(job) for job in page], extra)

    def _get_job(self, call: _Call) -> _Response:
        return _ok(self._job_json(self._job(call.key)))

    def _list_projects(self, call: _Call) -> _Response:
        needle = (call.query.get("name__icontains") or [""])[-1].lower()
        projects = [p for p in self._projects.values() if needle in p.name.lower()]
        order_by = _ordering(call.query, ("id", "name"))
        field = order_by.lstrip("-")
        projects.sort(key=lambda p: (getattr(p, field), p.id), reverse=order_by.startswith("-"))
        page, extra = _page(projects, call.query, {"account_id": self._account_id}, order_by)
        related = ",".join(call.query.get("include_related") or []).split(",")
        return _ok(
            [self._project_json(project, "repository" in related) for project in page], extra
        )

    def _list_artifacts(self, call: _Call) -> _Response:
        run = self._run(call.key)
        succeeded = _progress(run, self._sim_now()).status == SUCCESS
        return _ok(["manifest.json", "run_results.json"] if succeeded else [])

    def _get_artifact(self, call: _Call) -> _Response:
        """The raw file, no envelope; only a successful run has saved its artifacts."""
        run = self._run(call.key)
        p = _progress(run, self._sim_now())
        if p.status != SUCCESS or call.rest not in ("manifest.json", "run_results.json"):
            raise _ApiError.envelope(404, f"Artifact {call.rest} not found for run {run.id}.")
        kind = "manifest/v12" if call.rest == "manifest.json" else "run-results/v6"
        metadata: dict[str, object] = {
            "dbt_schema_version": f"https://schemas.getdbt.com/dbt/{kind}.json",
            "dbt_version": "1.9.1",
            "generated_at": f"{self._at(p.finished_s or 0):%Y-%m-%dT%H:%M:%S.%f}Z",
            "invocation_id": str(uuid.UUID(int=run.id)),
            "env": {
                "DBT_CLOUD_PROJECT_ID": str(run.job.project_id),
                "DBT_CLOUD_JOB_ID": str(run.job.id),
                "DBT_CLOUD_RUN_ID": str(run.id),
                "DBT_CLOUD_RUN_REASON": run.trigger.cause,
                "DBT_CLOUD_RUN_REASON_CATEGORY": run.trigger.cause_category,
            },
        }
        return _json_response(200, _artifact(call.rest, self._project_slug(run), metadata))

    # ---------------------------------------------------------------- JSON shapes

    def _project_slug(self, run: _Run) -> str:
        return re.sub(r"\W+", "_", self._projects[run.job.project_id].name.lower()).strip("_")

    def _run_json(self, run: _Run, include: set[str]) -> dict[str, object]:
        now = self._sim_now()
        p, job = _progress(run, now), run.job
        done = p.status in TERMINAL
        end = p.finished_s if p.finished_s is not None else now
        queued = (p.started_s if p.started_s is not None else end) - run.created_s
        ran = end - p.started_s if p.started_s is not None else 0.0
        data: dict[str, object] = {
            "id": run.id,
            "trigger_id": run.trigger_id,
            "account_id": self._account_id,
            "environment_id": job.environment_id,
            "project_id": job.project_id,
            "job_definition_id": job.id,
            "status": p.status,
            **json.loads(_RUN_FIXED),
        }
        data.update(
            job_id=job.id,
            status_humanized=STATUS_NAMES[p.status],
            status_message=p.message,
            git_branch=run.trigger.git_branch,
            git_sha=run.trigger.git_sha,
            executed_by_thread_id=None if p.dequeued_s is None else f"scheduler-run-{run.id}",
            artifacts_saved=p.status == SUCCESS,
            artifact_s3_path=f"prod-us-c1/runs/{run.id}/artifacts/target" if done else None,
            notifications_sent=done,
            created_at=self._stamp(run.created_s),
            updated_at=self._stamp(_updated(run, p)),
            dequeued_at=self._stamp(p.dequeued_s),
            started_at=self._stamp(p.started_s),
            finished_at=self._stamp(p.finished_s),
            run_steps=self._steps_json(run, p, now) if "run_steps" in include else [],
            in_progress=not done,
            is_complete=done,
            is_success=p.status == SUCCESS,
            is_error=p.status == ERROR,
            is_cancelled=p.status == CANCELLED,
            is_running=p.status == RUNNING,
            duration=_hms(end - run.created_s),
            queued_duration=_hms(queued),
            run_duration=_hms(ran),
            duration_humanized=_humanize(end - run.created_s),
            queued_duration_humanized=_humanize(queued),
            run_duration_humanized=_humanize(ran),
            created_at_humanized=f"{_humanize(now - run.created_s)} ago",
            finished_at_humanized=f"{_humanize(now - end)} ago" if done else "0 minutes from now",
            can_retry=p.status == ERROR,
            retry_not_supported_reason=None if p.status == ERROR else "RETRY_NOT_FAILED_RUN",
            href=f"{self.url}/deploy/{self._account_id}/projects/{job.project_id}/runs/{run.id}/",
        )
        if "trigger" in include:
            data["trigger"] = self._trigger_json(run)
        if "job" in include:
            data["job"] = self._job_json(job)
        if "environment" in include:
            data["environment"] = {
                "id": job.environment_id,
                "account_id": self._account_id,
                "project_id": job.project_id,
                "name": "Production",
                "type": "deployment",
                "deployment_type": "production",
                "dbt_version": "versionless",
                "state": 1,
            }
        return data

    def _trigger_json(self, run: _Run) -> dict[str, object]:
        t = run.trigger
        data: dict[str, object] = {"id": run.trigger_id, "cause": t.cause}
        data.update(dict.fromkeys(_OVERRIDES), job_definition_id=run.job.id, job=None)
        data.update(t.other_overrides, created_at=self._stamp(run.created_s))
        data.update(git_sha=t.git_sha, git_branch=t.git_branch, schema_override=t.schema_override)
        data.update(steps_override=list(t.steps_override) if t.steps_override else None)
        return {**data, "cause_humanized": t.cause, "cause_category": t.cause_category}

    def _job_json(self, job: _Job) -> dict[str, object]:
        created = f"{self._at(job.created_s):%Y-%m-%dT%H:%M:%S.%f}+00:00"
        data: dict[str, object] = json.loads(_JOB_FIXED)
        data.update(
            id=job.id,
            account_id=self._account_id,
            project_id=job.project_id,
            environment_id=job.environment_id,
            name=job.name,
            execute_steps=list(job.execute_steps),
            # a job whose runs "time out" has the timeout its runs exceed
            execution={
                "timeout_seconds": round(job.running_s) if job.outcome == "cancelled" else 0
            },
            deactivated=not job.active,
            job_type=job.job_type,
            triggers={
                "github_webhook": job.job_type == "ci",
                "git_provider_webhook": job.job_type == "ci",
                "schedule": job.job_type == "scheduled",
                "on_merge": job.job_type == "merge",
            },
            created_at=created,
            updated_at=created,
        )
        return data

    def _project_json(self, project: _Project, repository: bool = False) -> dict[str, object]:
        """A project; `repository`: with its repository object (`include_related=repository`),
        shaped as dbt Cloud's (`remote_url` is what it clones)."""
        stamp = self._stamp(project.created_s)
        data = {"id": project.id, "name": project.name, "account_id": self._account_id}
        data = {**data, **json.loads(_PROJECT_FIXED), "created_at": stamp, "updated_at": stamp}
        repository_id = 900000 + project.id if project.repository_url else None
        data["repository_id"] = repository_id
        if repository:
            data["repository"] = project.repository_url and {
                "id": repository_id,
                "account_id": self._account_id,
                "project_id": project.id,
                "remote_url": project.repository_url,
                "remote_backend": "git",
                "git_clone_strategy": "deploy_key",
                "state": 1,
                "created_at": stamp,
                "updated_at": stamp,
            }
        return data

    def _steps_json(self, run: _Run, p: _Progress, now: float) -> list[dict[str, object]]:
        """The three setup steps take a few seconds, the dbt commands share the rest of the
        Running phase; the last step carries the run's outcome."""
        names, done, span = run.step_names, p.status in TERMINAL, run.job.running_s
        setup = min(5.0, span / (2 * len(names)))
        commands = len(names) - 3
        # offsets into the Running phase; the last is exactly `span`, so the final step ends
        # on the very float the run finishes at
        bounds = [setup * i for i in range(4)]
        bounds += [3 * setup + (span - 3 * setup) * j / commands for j in range(1, commands)]
        bounds.append(span)
        end = p.finished_s if p.finished_s is not None else now
        steps: list[dict[str, object]] = []
        for i, name in enumerate(names):
            begin = stop = None
            if p.started_s is not None:
                begin, stop = p.started_s + bounds[i], p.started_s + bounds[i + 1]
            if begin is None or stop is None or end < begin:
                if done:
                    continue  # a step that never started is not reported for a finished run
                status, finished = QUEUED, None
            elif stop <= end:
                status, finished = (p.status if stop == p.finished_s else SUCCESS), stop
            else:
                status, finished = (CANCELLED if done else RUNNING), None
            logs = "" if status == QUEUED else self._step_logs(run, i, name, status)
            steps.append(
                {
                    "id": _FIRST_STEP_ID + (run.id - FIRST_RUN_ID) * 100 + i,
                    "run_id": run.id,
                    "account_id": self._account_id,
                    "index": i + 1,
                    "name": name,
                    "status": status,
                    "status_humanized": STATUS_NAMES[status],
                    "logs": logs,
                    "debug_logs": logs,
                    "created_at": self._stamp(run.created_s),
                    "started_at": self._stamp(begin if status != QUEUED else None),
                    "finished_at": self._stamp(finished),
                    "duration": _hms((finished or end) - begin if begin is not None else 0),
                }
            )
        return steps

    def _step_logs(self, run: _Run, index: int, name: str, status: int) -> str:
        if index == 0:
            ref = run.trigger.git_sha or run.trigger.git_branch or "main"
            lines = [
                "Cloning into 'target'...",
                "Successfully cloned repository.",
                f"Checked out {ref}.",
            ]
        elif index == 1:
            profile = f"/tmp/jobs/{run.id}/.dbt/profiles.yml"
            lines = ["Using connection 'Snowflake'", f"Writing profile to {profile}", "Done."]
        elif index == 2:
            lines = ["Running with dbt=1.9.1", "Installing dbt-labs/dbt_utils", "Up to date!"]
        else:
            command = name.removeprefix("Invoke dbt with `").removesuffix("`")
            lines = _dbt_logs(command, self._project_slug(run), failing=status == ERROR)
        return "\n".join(lines[:3] if status in (RUNNING, CANCELLED) else lines)


@dataclass(frozen=True)
class _RunRow:
    """A run with its progress at the time of one list request, to filter and sort on."""

    run: _Run
    progress: _Progress

    def value(self, name: str) -> float | None:
        p = self.progress
        return {
            "id": self.run.id,
            "job_definition_id": self.run.job.id,
            "project_id": self.run.job.project_id,
            "status": p.status,
            "created_at": self.run.created_s,
            "finished_at": p.finished_s,
            "updated_at": _updated(self.run, p),
        }[name]

    def sort_key(self, order_by: str) -> tuple[bool, float, int]:
        value = self.value(order_by.lstrip("-"))
        return (value is None, value or 0.0, self.run.id)  # NULLs last, as Postgres sorts them


def _token_of(header: str | None) -> str | None:
    """`Token <t>` and `Bearer <t>` are equivalent in dbt Cloud."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()


def _fault_response(fault: _Fault) -> _Response:
    if fault.kind == "500":
        text = "There was a server error. Please contact support at support@getdbt.com."
        return _ApiError.detail(500, str(fault.value("message", text))).response()
    if fault.kind == "502_html":
        return _Response(502, _BAD_GATEWAY, content_type="text/html")
    if fault.kind in ("503", "404"):
        message = "Not found." if fault.kind == "404" else "Service temporarily unavailable."
        return _ApiError.envelope(int(fault.kind), message).response()
    wait = fault.option("retry_after", 300)
    message = f"Request was throttled. Expected available in {wait:g} seconds."
    headers = (("Retry-After", f"{wait:g}"),) if "retry_after" in dict(fault.options) else ()
    return _ApiError.envelope(429, message).response(headers)


def _redirect_response(fault: _Fault, incoming: _Incoming, own_url: str) -> _Response:
    """A redirect to the same path and query, on another port when the fault names one."""
    port = int(fault.option("port", 0))
    origin = f"http://127.0.0.1:{port}" if port else own_url
    query = f"?{urlencode(incoming.query, doseq=True)}" if incoming.query else ""
    status = int(fault.option("status", 302))
    body = b'{"detail": "Moved."}'
    if fault.option("bare", 0):
        return _Response(status, body)
    return _Response(status, body, headers=(("Location", f"{origin}{incoming.path}{query}"),))


def _with_odd_ids(response: _Response, odd: object) -> _Response:
    """The answer with `data.id` (or each listed item's id) replaced by `odd`."""
    try:
        payload = json.loads(response.body)
    except ValueError:
        return response
    data = payload.get("data") if isinstance(payload, dict) else None
    for item in data if isinstance(data, list) else [data]:
        if isinstance(item, dict):
            item["id"] = odd
    return replace(response, body=json.dumps(payload).encode())


@dataclass(frozen=True)
class _Route:
    pattern: re.Pattern[str]
    method: str
    grant: str
    endpoint: Callable[[Sandbox, _Call], _Response]


_V2 = r"/api/v2/accounts/(?P<account>\d+)"
_ROUTES = tuple(
    _Route(re.compile(pattern), method, grant, endpoint)
    for pattern, method, grant, endpoint in (
        (rf"{_V2}/jobs/(?P<key>\d+)/run/", "POST", "run", Sandbox._trigger),
        (rf"{_V2}/jobs/(?P<key>\d+)/rerun/", "POST", "run", Sandbox._rerun),
        (rf"{_V2}/jobs/", "GET", "read", Sandbox._list_jobs),
        (rf"{_V2}/jobs/(?P<key>\d+)/", "GET", "read", Sandbox._get_job),
        (rf"{_V2}/runs/", "GET", "read", Sandbox._list_runs),
        (rf"{_V2}/runs/(?P<key>\d+)/", "GET", "read", Sandbox._get_run),
        (rf"{_V2}/runs/(?P<key>\d+)/cancel/", "POST", "cancel", Sandbox._cancel),
        (rf"{_V2}/runs/(?P<key>\d+)/artifacts/", "GET", "read", Sandbox._list_artifacts),
        (rf"{_V2}/runs/(?P<key>\d+)/artifacts/(?P<rest>.+)", "GET", "read", Sandbox._get_artifact),
        (r"/api/v3/accounts/(?P<account>\d+)/projects/", "GET", "projects", Sandbox._list_projects),
    )
)
_RUN_WITHOUT_SLASH = re.compile(rf"{_V2}/jobs/\d+/run")


class _Server(ThreadingHTTPServer):
    """Remembers open connections, so `stop()` cuts keep-alive clients off too."""

    daemon_threads = True
    request_queue_size = 128  # many clients at once must queue, not be refused

    def __init__(self, address: tuple[str, int], sandbox: Sandbox) -> None:
        self.sandbox = sandbox
        self.connections: set[socket.socket] = set()
        self.connections_lock = threading.Lock()
        super().__init__(address, _Handler)

    def cut_connections(self) -> None:
        with self.connections_lock:
            for connection in self.connections:
                with contextlib.suppress(OSError):
                    connection.shutdown(socket.SHUT_RDWR)

    def handle_error(
        self, request: socket.socket | tuple[bytes, socket.socket], client_address: object
    ) -> None:
        """A client that hung up (timeouts, dropped faults) is normal here, not an error."""
        if not isinstance(sys.exc_info()[1], OSError):
            super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as clients use against the real service
    disable_nagle_algorithm = True  # headers and body go out apart: no 40 ms delayed-ACK stall
    server: _Server

    def setup(self) -> None:
        super().setup()
        with self.server.connections_lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.connections_lock:
                self.server.connections.discard(self.connection)

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: tests and the demo read `Sandbox.requests` instead."""

    def do_GET(self) -> None:
        sandbox = self.server.sandbox
        parts = urlsplit(self.path)
        fault = sandbox._take_fault(self.command, parts.path)
        kind = fault.kind if fault is not None else ""
        length = 0 if kind == "reset" else int(self.headers.get("Content-Length") or 0)
        incoming = _Incoming(
            self.command,
            parts.path,
            parse_qs(parts.query, keep_blank_values=True),
            self.headers.get("Authorization"),
            self.headers.get("Content-Type", ""),
            self.rfile.read(length),
        )
        if kind == "reset":  # nothing read, nothing done: the client sees a reset connection
            sandbox._record(incoming, None)
            self.close_connection = True
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
            return
        if fault is not None and kind == "slow":
            time.sleep(fault.option("delay", 5.0))
        response = sandbox._respond(incoming, fault)
        if kind == "drop_after_create":  # done, but the answer is lost on its way back
            self.close_connection = True
            self.connection.shutdown(socket.SHUT_RDWR)
            return
        if kind == "504_after_create":  # done, but a gateway gave up waiting and says so
            response = _Response(504, _GATEWAY_TIMEOUT, content_type="text/html")
        if fault is not None and kind == "drip":
            self._drip(response, fault)
            return
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    do_POST = do_PUT = do_PATCH = do_DELETE = do_GET

    def _drip(self, response: _Response, fault: _Fault) -> None:
        """Send the answer a byte at a time: each read on the client's side gets data in
        time, so only a deadline for the whole answer ends the wait. Ends when the client
        hangs up (the write fails) or the sandbox stops (its connections are cut)."""
        self.close_connection = True
        head = [f"HTTP/1.1 {response.status} {self.responses.get(response.status, ('',))[0]}"]
        head += [f"Content-Type: {response.content_type}", f"Content-Length: {len(response.body)}"]
        head += [f"{name}: {value}" for name, value in response.headers]
        head_bytes = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1")
        interval = fault.option("interval", 1.0)
        if fault.option("body_only", 0):
            self.wfile.write(head_bytes)
            self.wfile.flush()
            head_bytes = b""
        for byte in head_bytes + response.body:
            self.wfile.write(bytes([byte]))
            self.wfile.flush()
            time.sleep(interval)


def serve(
    *, bind: str, port: int, token: str, time_scale: float, echo: Callable[[str], None]
) -> None:
    """Run a seeded sandbox in the foreground until Ctrl+C (the `sandbox` command)."""
    sandbox = Sandbox(token=token, bind=bind, port=port, time_scale=time_scale).start()
    try:
        jobs = ", ".join(str(job_id) for job_id in sorted(sandbox._jobs))
        echo(
            f"dbt Cloud sandbox at {sandbox.url} (account {sandbox.account_id}, jobs {jobs});"
            " press Ctrl+C to stop"
        )
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
