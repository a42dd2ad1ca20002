"""The simulator: a fake dbt Cloud account over HTTP (`Sandbox`), started in a thread for
tests and the demo or served in the foreground (`serve`, the `sandbox` command).

The `Sandbox` owns the account's state (`state`), the faults tests ask for and the requests
it received; it answers each request through the routes table (`routes`) and serves them
with `server`. Tests change its state and read what clients sent through its methods.
"""

from __future__ import annotations

import contextlib
import re
import socket
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import replace
from pathlib import Path
from types import TracebackType

from datachonk_hooks.sandbox.faults import fault_response, redirect_response, with_odd_ids
from datachonk_hooks.sandbox.parsing import _decode_body
from datachonk_hooks.sandbox.routes import dispatch, token_of
from datachonk_hooks.sandbox.server import Server
from datachonk_hooks.sandbox.simulation import _progress
from datachonk_hooks.sandbox.state import Account, SimClock
from datachonk_hooks.sandbox.tls import (
    Authority,
    new_authority,
    remove_bundle,
    trust_lines,
    write_bundle,
)
from datachonk_hooks.sandbox.wire import (
    _FAULT_KINDS,
    _FAULT_OPTIONS,
    _GRANTS,
    _JOB_TYPES,
    _OUTCOMES,
    SandboxRequest,
    SandboxRun,
    _ApiError,
    _Fault,
    _Incoming,
    _Job,
    _Project,
    _Response,
)


class Sandbox:
    """A fake dbt Cloud account over HTTP: `start()` it and point a client at `url`.

    With `tls`, over https: a throw-away CA (needs the `tls` extra: trustme) issues a
    certificate for 127.0.0.1, localhost and ::1; clients trust the sandbox with the CA's
    certificate at `ca_bundle`, a file that exists while the sandbox runs.
    """

    def __init__(
        self,
        *,
        token: str = "sandbox-token",
        account_id: int = 12345,
        bind: str = "127.0.0.1",
        port: int = 0,
        time_scale: float = 1.0,
        seed: bool = True,
        tls: bool = False,
    ) -> None:
        if time_scale <= 0:
            raise ValueError("time_scale must be positive")
        self._token, self._bind, self._port = token, bind, port
        self._tls: Authority | None = new_authority(bind) if tls else None
        self._ca_bundle: Path | None = None
        self._account = Account(account_id, SimClock(time_scale), {token: "account_admin"})
        self._lock = self._account.lock
        self._faults: list[_Fault] = []
        self._requests: list[SandboxRequest] = []
        self._server: Server | None = None
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
        return f"{'https' if self._tls else 'http'}://{host}:{self._port}"

    @property
    def ca_bundle(self) -> Path | None:
        """The PEM file of the CA that signed the https certificate; None without tls."""
        if self._tls is None:
            return None
        if self._ca_bundle is None:
            raise RuntimeError("the sandbox has no CA bundle yet: call start() first")
        return self._ca_bundle

    @property
    def port(self) -> int:
        return self._port

    @property
    def account_id(self) -> int:
        return self._account.account_id

    @property
    def token(self) -> str:
        return self._token

    def start(self) -> Sandbox:
        """Serve in a daemon thread; a restart reuses the first port, as a real host would."""
        if self._server is not None:
            return self
        context = self._tls.context if self._tls is not None else None
        server = Server((self._bind, self._port), self, context)
        if self._tls is not None:
            try:
                self._ca_bundle = write_bundle(self._tls.ca_pem, self._ca_bundle)
            except OSError:
                server.server_close()
                raise
        self._server, self._port = server, int(server.server_address[1])
        self._account.url = self.url
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
        if server is not None and self._ca_bundle is not None:
            remove_bundle(self._ca_bundle)

    def __enter__(self) -> Sandbox:
        return self.start()

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()

    # ---------------------------------------------------------------- state for tests

    def add_project(self, project_id: int, name: str, repository_url: str | None = None) -> None:
        with self._lock:
            project = _Project(project_id, name, self._account.clock.now(), repository_url)
            self._account.projects[project_id] = project

    def set_repository(self, project_id: int, url: str | None) -> None:
        """Connect a project to the git repository at `url` (None: no repository)."""
        with self._lock:
            project = self._account.projects[project_id]
            self._account.projects[project_id] = replace(project, repository_url=url)

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
            if project_id not in self._account.projects:
                raise ValueError(f"no project {project_id}: add_project() it first")
            self._account.jobs[job_id] = _Job(
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
                self._account.clock.now(),
            )

    def set_tokens(self, tokens: Mapping[str, str]) -> None:
        unknown = set(tokens.values()) - set(_GRANTS)
        if unknown:
            raise ValueError(f"unknown permission sets {sorted(unknown)}; use {sorted(_GRANTS)}")
        with self._lock:
            self._account.tokens = dict(tokens)

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
            now = self._account.clock.now()
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
                    created_at=self._account.clock.at(run.created_s),
                )
                for run in self._account.runs.values()
            ]

    @property
    def requests(self) -> list[SandboxRequest]:
        with self._lock:
            return list(self._requests)

    def run_status(self, run_id: int) -> int:
        with self._lock:
            account = self._account
            return _progress(account.runs[run_id], account.clock.now()).status

    def set_clock(self, clock: Callable[[], float]) -> None:
        """Swap the monotonic clock without a jump: simulated time goes on from here."""
        with self._lock:
            self._account.clock.swap(clock)

    # ---------------------------------------------------------------- the server's desk

    def take_fault(self, method: str, path: str) -> _Fault | None:
        """The fault the next request with this method and path gets, counted down."""
        with self._lock:
            for i, fault in enumerate(self._faults):
                if fault.method in ("*", method) and fault.pattern.search(path):
                    if fault.times > 1:
                        self._faults[i] = replace(fault, times=fault.times - 1)
                    else:
                        del self._faults[i]
                    return fault
        return None

    def record(self, incoming: _Incoming, body: object | None) -> None:
        with self._lock:
            token = token_of(incoming.authorization)
            ok = token is not None and token in self._account.tokens
            self._requests.append(
                SandboxRequest(incoming.method, incoming.path, incoming.query, body, ok)
            )

    def respond(self, incoming: _Incoming, fault: _Fault | None) -> _Response:
        """Record the request, then answer it: with the fault's answer, or the endpoint's
        (its effect done) changed as the fault says."""
        body_error: _ApiError | None = None
        try:
            body = _decode_body(incoming)
        except _ApiError as err:
            body, body_error = incoming.raw.decode("utf-8", errors="replace"), err
        self.record(incoming, body)
        kind = fault.kind if fault is not None else ""
        if fault is not None and kind in ("500", "502_html", "503", "429", "404"):
            return fault_response(fault)
        if fault is not None and kind == "redirect":  # a proxy's answer: nothing happens
            return redirect_response(fault, incoming, self.url)
        try:
            with self._lock:
                response = dispatch(self._account, incoming, body, body_error)
        except _ApiError as err:
            response = err.response()
        if kind == "malformed_json":  # the request took effect; its answer arrives truncated
            response = replace(response, status=200, body=response.body[: len(response.body) // 2])
        if fault is not None and kind == "odd_id":  # the request took effect; its ids are odd
            response = with_odd_ids(response, fault.value("id"))
        return response


def serve(
    *,
    bind: str,
    port: int,
    token: str,
    time_scale: float,
    echo: Callable[[str], None],
    tls: bool = False,
) -> None:
    """Run a seeded sandbox in the foreground until Ctrl+C (the `sandbox` command); with
    `tls`, over https, and say how clients trust it (the CA bundle is removed on the way out).
    Raises ImportError (name "trustme") when tls is asked for without the tls extra."""
    sandbox = Sandbox(token=token, bind=bind, port=port, time_scale=time_scale, tls=tls).start()
    try:
        jobs = ", ".join(str(job_id) for job_id in sorted(sandbox._account.jobs))
        echo(
            f"dbt Cloud sandbox at {sandbox.url} (account {sandbox.account_id}, jobs {jobs});"
            " press Ctrl+C to stop"
        )
        if sandbox.ca_bundle is not None:
            for line in trust_lines(sandbox.ca_bundle, sandbox.url):
                echo(line)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        sandbox.stop()
