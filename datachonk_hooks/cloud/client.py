"""The client that talks to dbt Cloud, with bounded retries.

Everything else in the package gets `Run`, `Job` and `Project` records (`cloud.records`)
from here and never sees JSON or HTTP. Two rules shape the code:

* reads (GET, and the idempotent cancel) are retried on connection errors, 5xx and 429 with
  capped exponential backoff and jitter, honouring `Retry-After`, within a total time budget;
* a trigger POST is never re-sent blindly: when its outcome is unknown (a read timeout, a
  dropped connection, a 5xx or an unreadable answer), the job's recent runs are searched for
  one with the same git_sha and cause before anything is sent again.

Nothing the server does may hold a caller up or crash it: every exchange has a deadline for
the whole answer (not per read), redirects are followed only for GETs within the host's own
origin, ids must be 64-bit positive integers, and the server's messages and `Retry-After`
are cut to a sane size before anyone sees or sleeps them.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import urljoin, urlsplit

from datachonk_hooks import __version__
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    DbtCloudError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RedirectError,
    ServerError,
    UnknownOutcomeError,
    UnreachableError,
)
from datachonk_hooks.cloud.records import (
    Job,
    JSONDict,
    Project,
    Run,
    _clip,
    _int,
)
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.cloud.trigger_request import TriggerRequest
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.credentials import Token, redact

if TYPE_CHECKING:
    import requests

log = logging.getLogger(__name__)

LEGACY_HOST = "cloud.getdbt.com"
PAGE_SIZE = 100  # dbt Cloud refuses a larger `limit` on list endpoints
#: pages of the run list read to find the run of a trigger with an unknown outcome: the
#: runs since its first attempt, however busy the job, within a bounded cost
LOOKUP_PAGES = 50
RUN_RELATED = ("run_steps", "job", "trigger")
#: dbt Cloud's rate-limit cooldown is five minutes: a longer Retry-After is taken as this
RETRY_AFTER_CAP = 300.0
#: redirects a GET may follow (within the host's origin); a POST follows none
MAX_REDIRECTS = 3
#: an artifact (manifest.json can be hundreds of MB) gets this many HTTP timeouts in total
ARTIFACT_TIME_FACTOR = 10


# --------------------------------------------------------------------------- the client


@dataclass(frozen=True)
class RetryPolicy:
    """Capped exponential backoff with jitter, bounded in attempts and in total time."""

    attempts: int = 5
    base_delay: float = 0.5
    max_delay: float = 30.0
    budget: float = 90.0

    def delay(self, attempt: int) -> float:
        ceiling = min(self.max_delay, self.base_delay * 2.0**attempt)
        jitter: float = random.uniform(0, ceiling / 2)
        return ceiling / 2 + jitter


@dataclass(frozen=True)
class Timeouts:
    """`connect` bounds opening a connection; `read` bounds each read of the socket and,
    as a deadline, the whole exchange (connect, send, headers and body together): a read
    timeout alone would let a server sending a byte a second hold a request forever."""

    connect: float = 5.0
    read: float = 30.0


class _Tries:
    """The attempts of one request: capped backoff between them, bounded by the budget.

    Each method decides for itself which failures may be tried again (a trigger is never
    re-sent after an unknown outcome); this only counts, sleeps and gives up.
    """

    def __init__(self, client: DbtCloudClient) -> None:
        self.client = client
        self.deadline = client.clock() + client.retry.budget
        if client._deadline is not None:  # a lookup inside a trigger shares its budget
            self.deadline = min(self.deadline, client._deadline)
        self.last: DbtCloudError | None = None

    def __iter__(self) -> Iterator[int]:
        for attempt in range(self.client.retry.attempts):
            if attempt:
                self._backoff(attempt)
            yield attempt

    def _backoff(self, attempt: int) -> None:
        """Sleep before the next attempt, or give up when the budget would run out."""
        delay = self.client.retry.delay(attempt - 1)
        if isinstance(self.last, RateLimitedError) and self.last.retry_after is not None:
            delay = self.last.retry_after
        if self.client.clock() + delay > self.deadline:
            raise self.last_error()
        log.debug("retrying in %.1fs after: %s", delay, self.last)
        self.client.sleep(delay)

    def last_error(self) -> DbtCloudError:
        assert self.last is not None, "a failed attempt records its error"
        return self.last


class _NotSent(Exception):
    """The request never reached the server (connection refused, connect timeout)."""


class _NoAnswer(Exception):
    """The request may have reached the server but no usable answer came back."""


class _TimedOut(_NoAnswer):
    """No answer within the read timeout: the server may still be working on the request."""


_current = threading.local()  # the exchange the calling thread is in, for its connection


class _Exchange:
    """The deadline of one HTTP exchange, kept by a watchdog thread.

    requests' read timeout bounds each `recv`, not the answer: a server that sends a byte a
    second holds a request forever. The connection carrying the exchange registers itself
    here (`_watched_pool_classes`); if the deadline passes first, the watchdog shuts its
    socket down, which wakes the blocked read or write with an error at once.
    """

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.connection: object = None
        #: the connection's socket, kept: http.client hands it to the response and clears
        #: `connection.sock` once the headers are read when the answer ends by closing
        self.sock: socket.socket | None = None
        #: the watchdog cut the connection: whatever error follows is this deadline
        self.expired = False
        self._done = threading.Event()
        self._lock = threading.Lock()

    def __enter__(self) -> Self:
        _current.exchange = self
        threading.Thread(target=self._watch, name="datachonk-http-deadline", daemon=True).start()
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._done.set()
        _current.exchange = None

    def _watch(self) -> None:
        wait = self.seconds
        while not self._done.wait(max(0.0, wait)):
            with self._lock:
                if self._done.is_set():
                    return
                sock = self.sock or getattr(self.connection, "sock", None)
                if isinstance(sock, socket.socket):
                    self.expired = True
                    with contextlib.suppress(OSError):  # socket.socket's, not SSLSocket's
                        socket.socket.shutdown(sock, socket.SHUT_RDWR)
                    return
            wait = 0.05  # still connecting (the connect timeout bounds that): look again


def _register_connection(connection: object) -> None:
    exchange = getattr(_current, "exchange", None)
    if exchange is not None:
        exchange.connection = connection
        sock = getattr(connection, "sock", None)
        if isinstance(sock, socket.socket):
            exchange.sock = sock


_POOL_CLASSES: dict[str, type] = {}


def _watched_pool_classes() -> dict[str, type]:
    """urllib3 pools whose connections tell the current `_Exchange` they carry it.

    Made on first use: importing urllib3 is left to the first request, like requests.
    """
    if not _POOL_CLASSES:
        from urllib3.connection import HTTPConnection, HTTPSConnection
        from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

        class WatchedHTTPConnection(HTTPConnection):
            def connect(self) -> None:
                _register_connection(self)
                super().connect()
                _register_connection(self)  # now with its socket

            def request(self, *args: Any, **kwargs: Any) -> None:
                _register_connection(self)  # a kept-alive connection is not connected again
                super().request(*args, **kwargs)

        class WatchedHTTPSConnection(HTTPSConnection):
            def connect(self) -> None:
                _register_connection(self)  # the TLS handshake is part of the exchange
                super().connect()
                _register_connection(self)  # now with its socket

            def request(self, *args: Any, **kwargs: Any) -> None:
                _register_connection(self)
                super().request(*args, **kwargs)

        class WatchedHTTPPool(HTTPConnectionPool):
            ConnectionCls = WatchedHTTPConnection

        class WatchedHTTPSPool(HTTPSConnectionPool):
            ConnectionCls = WatchedHTTPSConnection

        _POOL_CLASSES.update(http=WatchedHTTPPool, https=WatchedHTTPSPool)
    return _POOL_CLASSES


def _watched_adapter() -> Any:
    """A requests adapter whose pools (direct or through an HTTP proxy) use watched
    connections, so every exchange's deadline can cut its socket."""
    from requests.adapters import HTTPAdapter
    from urllib3.connectionpool import HTTPConnectionPool

    class WatchedAdapter(HTTPAdapter):
        def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
            super().init_poolmanager(*args, **kwargs)
            self.poolmanager.pool_classes_by_scheme = _watched_pool_classes()

        def proxy_manager_for(self, proxy: Any, **kwargs: Any) -> Any:
            manager = super().proxy_manager_for(proxy, **kwargs)
            if manager.pool_classes_by_scheme.get("http") is HTTPConnectionPool:  # not SOCKS
                manager.pool_classes_by_scheme = _watched_pool_classes()
            return manager

    return WatchedAdapter()


def _origin(url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"http": 80, "https": 443}.get(scheme)
    return scheme, (parts.hostname or "").lower(), port if port is not None else default


@dataclass
class DbtCloudClient:
    """dbt Cloud's Administrative API for one account, over one `requests.Session`."""

    host: str
    account_id: int
    token: Token
    timeouts: Timeouts = field(default_factory=Timeouts)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    _session: requests.Session | None = field(default=None, init=False, repr=False)
    #: while a trigger runs, its budget's end: the lookups inside it share that budget
    _deadline: float | None = field(default=None, init=False, repr=False)

    # ------------------------------------------------------------------ operations

    def trigger_run(
        self, job_id: int, request: TriggerRequest, *, since: datetime | None = None
    ) -> Run:
        """Start a run of `job_id`; never sends the POST twice for one run.

        `since` is when the first attempt of this trigger was made (by this process or an
        earlier one); a run found after it with the same git_sha and cause is adopted.
        """
        path = f"/api/v2/accounts/{self.account_id}/jobs/{job_id}/run/"
        since = since or datetime.now(UTC)
        tries = _Tries(self)
        self._deadline = tries.deadline
        try:
            return self._trigger(job_id, request, since, path, tries)
        finally:
            self._deadline = None

    def _trigger(
        self, job_id: int, request: TriggerRequest, since: datetime, path: str, tries: _Tries
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
                data = self._send("POST", path, json_body=request.body(), what=("job", job_id))
                return Run.from_api(_mapping(data))
            except _NotSent as exc:
                tries.last = UnreachableError(self._unreachable(str(exc)))
            except RateLimitedError as exc:  # refused, so nothing was created
                tries.last = exc
            except (_NoAnswer, ServerError, BadResponseError) as exc:
                found = self._look_for_run(job_id, request, since)
                if found is not None:
                    return found
                # a gateway that gave up waiting (504) says nothing of what dbt Cloud behind
                # it did: like a read timeout
                gateway = isinstance(exc, ServerError) and exc.status == 504
                timed_out = isinstance(exc, _TimedOut | BadResponseError) or gateway
                again = "; it is looked up again before any new attempt" if timed_out else ""
                if isinstance(exc, BadResponseError):  # it answered: the run likely exists
                    tries.last = UnknownOutcomeError(
                        f"dbt Cloud's answer to the trigger of job {job_id} was unusable ({exc})"
                        f" and no matching run was found{again}"
                    )
                elif gateway:
                    tries.last = UnknownOutcomeError(
                        f"dbt Cloud's gateway timed out on the trigger of job {job_id} (HTTP 504)"
                        f" and no matching run was found{again}"
                    )
                elif isinstance(exc, DbtCloudError):
                    tries.last = exc
                else:
                    tries.last = UnknownOutcomeError(
                        f"dbt Cloud did not answer the trigger of job {job_id} ({exc}) and no"
                        f" matching run was found{again}"
                    )
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
        items = self._paginate(path, params, limit=pages * PAGE_SIZE, what=("job", job_id))
        return (Run.from_api(item) for item in items)

    def get_run(self, run_id: int, *, related: Sequence[str] = RUN_RELATED) -> Run:
        params = {"include_related": json.dumps(list(related))} if related else {}
        path = f"/api/v2/accounts/{self.account_id}/runs/{run_id}/"
        return Run.from_api(_mapping(self._get(path, params, what=("run", run_id))))

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
        items = self._paginate(path, params, limit=limit, what=("job", job_id))
        return [Run.from_api(item) for item in items]

    def cancel_run(self, run_id: int) -> Run:
        path = f"/api/v2/accounts/{self.account_id}/runs/{run_id}/cancel/"
        data = self._with_retries("POST", path, None, ("run", run_id), json_body={})
        return Run.from_api(_mapping(data))

    def rerun_job(self, job_id: int) -> Run:
        """Rerun the job's latest run from its point of failure (a new run if it did not fail).

        Like a trigger, a rerun is not idempotent: it is only re-sent when it surely did not
        reach dbt Cloud (connection refused, 429).
        """
        path = f"/api/v2/accounts/{self.account_id}/jobs/{job_id}/rerun/"
        tries = _Tries(self)
        for _ in tries:
            try:
                data = self._send("POST", path, json_body={}, what=("job", job_id))
                return Run.from_api(_mapping(data))
            except _NotSent as exc:
                tries.last = UnreachableError(self._unreachable(str(exc)))
            except RateLimitedError as exc:
                tries.last = exc
            except _NoAnswer as exc:
                raise UnknownOutcomeError(
                    f"dbt Cloud did not answer the rerun of job {job_id} ({exc}); check the"
                    " job's runs before trying again"
                ) from None
        raise tries.last_error()

    def get_artifact(self, run_id: int, path: str) -> bytes:
        """A raw artifact file of a run (`manifest.json`, `run_results.json`...)."""
        url_path = f"/api/v2/accounts/{self.account_id}/runs/{run_id}/artifacts/{path}"
        try:
            data: bytes = self._with_retries(
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
        return [Project.from_api(p) for p in self._paginate(path, params, what=("account", None))]

    def list_jobs(self, project_id: int | None = None) -> list[Job]:
        params: dict[str, str | int] = {"order_by": "id"}
        if project_id is not None:
            params["project_id"] = project_id
        path = f"/api/v2/accounts/{self.account_id}/jobs/"
        return [Job.from_api(j) for j in self._paginate(path, params, what=("project", project_id))]

    def get_job(self, job_id: int) -> Job:
        path = f"/api/v2/accounts/{self.account_id}/jobs/{job_id}/"
        return Job.from_api(_mapping(self._get(path, {}, what=("job", job_id))))

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ plumbing

    def _paginate(
        self,
        path: str,
        params: Mapping[str, str | int],
        *,
        what: tuple[str, int | None],
        limit: int | None = None,
    ) -> Iterator[JSONDict]:
        offset, seen = 0, 0
        while True:
            page_size = PAGE_SIZE if limit is None else min(PAGE_SIZE, limit - seen)
            envelope = self._get(
                path, {**params, "limit": page_size, "offset": offset}, what=what, envelope=True
            )
            items = envelope.get("data")
            if not isinstance(items, list):
                raise BadResponseError(f"dbt Cloud returned no list for {path}")
            for item in items:
                if isinstance(item, Mapping):
                    yield dict(item)
            seen += len(items)
            offset += len(items)
            total = _int(_dig(envelope, "extra", "pagination", "total_count"))
            if not items or len(items) < page_size or (total is not None and offset >= total):
                return
            if limit is not None and seen >= limit:
                return

    def _get(
        self,
        path: str,
        params: Mapping[str, str | int],
        *,
        what: tuple[str, int | None],
        envelope: bool = False,
    ) -> Any:
        return self._with_retries("GET", path, params, what, envelope=envelope)

    def _with_retries(
        self,
        method: str,
        path: str,
        params: Mapping[str, str | int] | None,
        what: tuple[str, int | None],
        *,
        json_body: JSONDict | None = None,
        envelope: bool = False,
        raw: bool = False,
        seconds: float | None = None,
    ) -> Any:
        """An idempotent request, retried on transient failures within the budget."""
        tries = _Tries(self)
        for _ in tries:
            try:
                return self._send(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    what=what,
                    envelope=envelope,
                    raw=raw,
                    seconds=seconds,
                )
            except _NotSent as exc:
                tries.last = UnreachableError(self._unreachable(str(exc)))
            except _NoAnswer as exc:
                tries.last = UnreachableError(f"dbt Cloud did not answer {method} {path}: {exc}")
            except DbtCloudError as exc:
                if not exc.transient:
                    raise
                tries.last = exc
        raise tries.last_error()

    def _send(
        self,
        method: str,
        path: str,
        *,
        what: tuple[str, int | None],
        params: Mapping[str, str | int] | None = None,
        json_body: JSONDict | None = None,
        envelope: bool = False,
        raw: bool = False,
        seconds: float | None = None,
    ) -> Any:
        """One HTTP exchange, done within `seconds` (the read timeout) from its start to the
        last byte of the answer, same-origin GET redirects included; returns `data` (the
        whole envelope, or with `raw` the body's bytes, for files that have no envelope) or
        raises."""
        started = time.monotonic()
        with _Exchange(seconds or self.timeouts.read) as exchange:
            url: str | None = self.host + path
            hops = 0
            while url is not None:
                response = self._exchange(exchange, method, url, params, json_body)
                url = self._redirect(method, path, response, hops)
                params, hops = None, hops + 1  # a Location carries its own query
        if exchange.expired:  # cut: even an answer that looks whole may be cut short
            raise _TimedOut(f"no complete answer within {exchange.seconds:g} s")
        log.debug(
            "%s %s -> %s in %.0f ms",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if raw and response.status_code < 400:
            return response.content
        body = _json_or_none(response)
        if response.status_code >= 400:
            raise self._error(response, body, what)
        if not isinstance(body, Mapping):
            kind = _describe_body(response)
            raise BadResponseError(
                f"dbt Cloud answered HTTP {response.status_code} on {method} {path} with {kind}"
                " instead of JSON",
                status=response.status_code,
            )
        return body if envelope else body.get("data")

    def _exchange(
        self,
        exchange: _Exchange,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        json_body: JSONDict | None,
    ) -> requests.Response:
        """One request and its whole answer, read within the exchange's deadline."""
        import requests

        try:
            return self._get_session().request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if exchange.expired:  # the watchdog cut it: it may have reached the server
                raise _TimedOut(f"no complete answer within {exchange.seconds:g} s") from None
            raise self._classify(exc) from None

    def _classify(self, exc: BaseException) -> Exception:
        """The internal error saying whether the request may have reached dbt Cloud."""
        import requests

        if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
            return _NotSent(self._clean(exc))
        if isinstance(exc, requests.ConnectionError):
            # urllib3 reports refused connections as NewConnectionError; anything else
            # (a reset or a dropped answer) may have reached the server.
            if "NewConnectionError" in repr(exc) or "NameResolutionError" in repr(exc):
                return _NotSent(self._clean(exc))
            return _NoAnswer(self._clean(exc))
        if isinstance(exc, requests.ReadTimeout):
            return _TimedOut(self._clean(exc))
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            # the status line came, the body was cut: the server did the work (for a trigger,
            # created the run), so it counts as unanswered, never as not done
            return _TimedOut(f"the answer was cut short ({self._clean(exc)})")
        return _NoAnswer(self._clean(exc))

    def _redirect(
        self, method: str, path: str, response: requests.Response, hops: int
    ) -> str | None:
        """Where a redirect may be followed to, None for any other answer.

        A POST (a trigger, a cancel) follows none: re-sent elsewhere, or turned into a GET
        as browsers do, it could start a run twice or answer with something that is not
        the run. A GET follows at most MAX_REDIRECTS within the host's origin, so the token
        never goes to another host, port or scheme.
        """
        status = response.status_code
        if not 300 <= status < 400:
            return None
        location = response.headers.get("Location")
        target = urljoin(response.url, location) if location else ""
        shown = _clip(sanitize(target), 120) if target else "nowhere (no Location header)"
        check = "check that `host` is the account's access URL (Account settings)"
        if not target and method == "GET":
            raise RedirectError(
                f"dbt Cloud answered GET {path} with HTTP {status} and no Location: {check}",
                status=status,
            )
        if method != "GET":
            raise RedirectError(
                f"dbt Cloud answered {method} {path} with a redirect (HTTP {status}) to"
                f" {shown}; a {method} is never followed elsewhere, so nothing was sent"
                f" there: {check}",
                status=status,
            )
        if _origin(target) != _origin(self.host):
            raise RedirectError(
                f"dbt Cloud redirected GET {path} to another origin ({shown}, HTTP {status});"
                f" only redirects within {self.host} are followed: {check}",
                status=status,
            )
        if hops >= MAX_REDIRECTS:
            raise RedirectError(
                f"dbt Cloud redirected GET {path} more than {MAX_REDIRECTS} times (last to"
                f" {shown}); {check}",
                status=status,
            )
        return target

    def _get_session(self) -> requests.Session:
        if self._session is None:
            import requests

            session = requests.Session()
            session.headers.update(
                {
                    "Authorization": f"Token {self.token.value}",
                    "Accept": "application/json",
                    "User-Agent": f"datachonk-hooks/{__version__} python-requests/"
                    f"{requests.__version__}",
                }
            )
            session.trust_env = True
            adapter = _watched_adapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def _clean(self, exc: BaseException) -> str:
        return redact(_network_reason(exc), [self.token.value])

    def _unreachable(self, detail: str) -> str:
        return f"could not reach dbt Cloud at {self.host}: {detail}"

    def _error(
        self, response: requests.Response, body: object, what: tuple[str, int | None]
    ) -> DbtCloudError:
        status = response.status_code
        # the server's words reach terminals, logs and the ledger: through the one sanitizer
        # the token is redacted before the cut (no part of it survives the ellipsis), and
        # escape sequences go before it too (none is cut in half)
        said_raw = redact(_server_message(body, response), [self.token.value])
        server_says = _clip(sanitize(said_raw))
        said = f" ({server_says})" if server_says else ""
        if status == 401:
            hint = (
                " Your account may use its own access URL: set `host` in datachonk.yaml (or"
                " DBT_CLOUD_HOST) to the URL shown under Account settings, such as"
                " https://ab123.us1.dbt.com; cell-based accounts answer 401 on the legacy host."
                if urlsplit(self.host).hostname == LEGACY_HOST
                else " Check DBT_CLOUD_API_TOKEN, and that `host` is your account's access URL"
                " (Account settings); cell-based accounts answer 401 on another host."
            )
            return AuthenticationError(
                f"dbt Cloud at {self.host} rejected the API token (HTTP 401{said}).{hint}",
                status=status,
            )
        if status == 403:
            return PermissionDeniedError(
                f"the API token is not allowed to do this (HTTP 403{said}). Triggering and"
                " cancelling runs needs a service token with the Job Runner or Job Admin"
                " permission set; listing projects needs Job Admin or Account Viewer.",
                status=status,
            )
        if status == 404:
            kind, ident = what
            subject = f"{kind} {ident}" if ident is not None else kind
            return NotFoundError(
                f"dbt Cloud found no {subject} in account {self.account_id} at {self.host}"
                f" (HTTP 404{said}); check the id, and that the token can see it",
                status=status,
            )
        if status == 429:
            retry_after = _retry_after(response.headers.get("Retry-After"))
            when = f" retry after {retry_after:.0f}s" if retry_after is not None else ""
            return RateLimitedError(
                f"dbt Cloud is rate limiting this account (HTTP 429{said}); it enforces a"
                f" five-minute cooldown.{when}".rstrip("."),
                retry_after=retry_after,
            )
        if status >= 500:
            return ServerError(
                f"dbt Cloud had a server error (HTTP {status}{said}) on"
                f" {response.request.method} {urlsplit(response.url).path}",
                status=status,
            )
        return BadRequestError(
            f"dbt Cloud refused the request (HTTP {status}{said})", status=status
        )


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def _network_reason(exc: BaseException) -> str:
    """A short reason for a network failure instead of urllib3's nested repr."""
    text = str(exc) or type(exc).__name__
    if "Read timed out" in text:
        return "no answer in time (read timeout)"
    if "ConnectTimeout" in repr(exc) or "connect timeout" in text:
        return "connection timed out"
    if "NameResolutionError" in text or "Name or service not known" in text:
        return "cannot resolve the host name"
    if "RemoteDisconnected" in text or "without response" in text:
        return "the connection was closed without an answer"
    if match := _ERRNO.search(text):
        return match.group(1).strip().lower()
    return _clip(text)


def _mapping(data: object) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BadResponseError("dbt Cloud returned an unexpected answer (no `data` object)")
    return data


def _dig(data: object, *keys: str) -> object:
    for key in keys:
        if not isinstance(data, Mapping):
            return None
        data = data.get(key)
    return data


def _json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def _describe_body(response: requests.Response) -> str:
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or response.text.lstrip().lower().startswith("<"):
        return "an HTML page"
    return "a body that is not valid JSON" if response.text else "an empty body"


def _server_message(body: object, response: requests.Response) -> str:
    """What the server said, from either error shape, in one short line."""
    if isinstance(body, Mapping):
        status = body.get("status")
        parts: list[str] = []
        if isinstance(status, Mapping) and isinstance(status.get("user_message"), str):
            parts.append(status["user_message"])
        if isinstance(body.get("detail"), str):
            parts.append(body["detail"])
        data = body.get("data")
        if isinstance(data, Mapping):
            for key, value in data.items():
                text = "; ".join(map(str, value)) if isinstance(value, list) else str(value)
                parts.append(f"{key}: {text}")
        return " ".join(" ".join(parts).split())  # cut by the caller, after redaction
    if response.text:
        return _describe_body(response)
    return ""


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (a number or an HTTP date), at most RETRY_AFTER_CAP.

    What no server means (nan, infinity, a negative number, garbage) counts as absent, and
    an absurd wait (1e308) as the cap: it is shown in messages and slept, so it must be sane.
    """
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        from email.utils import parsedate_to_datetime

        try:
            when = parsedate_to_datetime(value)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = max(0.0, (when - datetime.now(UTC)).total_seconds())
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return min(seconds, RETRY_AFTER_CAP)
