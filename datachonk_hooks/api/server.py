"""The optional local integration API (`datachonk-hook serve`, the `server` extra).

Editor extensions, local UIs and scripts get the CLI's operations over HTTP on the developer's
own machine. The API can spend the developer's dbt Cloud token, so every request needs the
bearer key printed at start, browsers' cross-site requests are refused (a web page must not
drive it through the user's browser), and the server binds to loopback unless told otherwise.
FastAPI and uvicorn are imported only here, and this module only by the `serve` command: the
git hook never pays for them.

Text from outside is handled at both ends: a `git_branch` or `cause` holding control, bidi
or zero-width characters is refused (422) before anything is sent to dbt Cloud, and what the
API returns or logs from dbt Cloud (names, status messages, error messages) goes through the
package's one sanitizer, as it does on the command line.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
import secrets
import socket
import threading
import traceback
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from dataclasses import replace
from datetime import timedelta
from typing import Annotated, Any, Final

import pygit2
from fastapi import Body, FastAPI, Request, Security
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datachonk_hooks import __version__
from datachonk_hooks.cloud.client import DbtCloudClient
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
from datachonk_hooks.cloud.records import Project, Run
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.commands.account import (
    JobRow,
    Workspace,
    check_status,
    client_for,
    connect_account,
    list_jobs,
    projects_json,
)
from datachonk_hooks.delivery.ledger import Ledger, LedgerError, TriggerRecord
from datachonk_hooks.delivery.trigger import (
    AwaitingPushError,
    BusyElsewhereError,
    TriggerPlan,
    UnpushedCommitError,
    plan_manual_trigger,
    trigger_through_ledger,
)
from datachonk_hooks.errors import ConfigError, DatachonkError, GitError
from datachonk_hooks.push.cause import clean
from datachonk_hooks.push.gitrepo import open_repo, work_tree
from datachonk_hooks.sanitize import sanitize, unsafe_characters
from datachonk_hooks.settings.config import MAX_ID, Settings, normalize_host
from datachonk_hooks.settings.credentials import ENV_TOKEN, check_token_text, redact

log = logging.getLogger(__name__)

ENV_API_KEY: Final = "DATACHONK_API_KEY"
MIN_API_KEY_LENGTH: Final = 16
PREFIX: Final = "/api/dbt-cloud"

# --------------------------------------------------------------------------- request bodies

_Id = Annotated[int, Field(ge=1, le=MAX_ID, description="A dbt Cloud id (64-bit).")]


class _Body(BaseModel):
    """Strict JSON: `"12"` is not an id and `"yes"` is not a boolean; unknown keys are typos."""

    model_config = ConfigDict(strict=True, extra="forbid")


class ConnectRequest(_Body):
    """Credentials to check against dbt Cloud and store, as `datachonk-hook connect` does."""

    account_id: _Id
    token: SecretStr = Field(
        min_length=1,
        max_length=4096,
        description="A dbt Cloud API token.",
        # check_token_text's rule (printable ASCII, no spaces), told to clients and generators
        json_schema_extra={"pattern": "^[!-~]+$"},
    )
    host: str | None = Field(
        default=None,
        max_length=2048,
        description="The account's access URL (dbt Cloud, Account settings), such as"
        " https://ab123.us1.dbt.com. Default: the host in datachonk.yaml (or DBT_CLOUD_HOST);"
        " without one there, 400 config_error (there is no default host).",
    )
    project_id: _Id | None = None
    job_id: _Id | None = None

    @field_validator("token")
    @classmethod
    def _token_is_one_word(cls, value: SecretStr) -> SecretStr:
        """`connect`'s own check; whitespace around it is refused too, not stripped: a program
        wrote this JSON, so that is a bug to report."""
        text = value.get_secret_value()
        try:
            if check_token_text(text) != text:
                raise ValueError("the API token must not start or end with whitespace")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return value

    @field_validator("host")
    @classmethod
    def _host_is_an_access_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        try:
            return normalize_host(value, where="host")
        except ConfigError as exc:
            raise ValueError(str(exc)) from None


class TriggerRunRequest(_Body):
    """What to trigger; every field is optional (HEAD of the served repository by default)."""

    job_id: _Id | None = Field(
        default=None, description="Default: the `jobs:` route for the branch, else `job_id`."
    )
    cause: str | None = Field(
        default=None,
        min_length=1,
        max_length=4096,
        description="Shown in dbt Cloud; cut to 255 characters. Default: from datachonk.yaml.",
    )
    git_sha: str | None = Field(
        default=None,
        pattern=r"^[0-9a-fA-F]{7,64}$",
        description="Commit to build (full or abbreviated). Default: HEAD of the repository.",
    )
    git_branch: str | None = Field(
        default=None,
        min_length=1,
        max_length=255,
        pattern=r"^[^\s~^:?*\[\\]+$",
        description="Branch dbt Cloud checks out. Default: the branch of HEAD (or git_sha's).",
    )
    steps_override: (
        list[Annotated[str, Field(min_length=5, max_length=4096, pattern=r"^\s*dbt\s+\S")]] | None
    ) = Field(
        default=None,
        min_length=1,
        max_length=20,
        description="dbt commands to run instead of the job's steps.",
    )
    force: bool = Field(default=False, description="Trigger even if this commit already ran.")
    allow_unpushed: bool = Field(
        default=False,
        description="Trigger a commit the configured git remote does not have yet (dbt Cloud"
        " clones from that remote, so its run would fail at the clone step).",
    )

    @field_validator("git_branch")
    @classmethod
    def _branch_is_plain(cls, value: str | None) -> str | None:
        """Refused, not cleaned: a program sent it, and a branch name changed here would name
        another branch (or none) in dbt Cloud."""
        return _refuse_hidden(value)

    @field_validator("cause")
    @classmethod
    def _cause_has_text(cls, value: str | None) -> str | None:
        """Line breaks and tabs are folded into spaces (an editor may send a commit message);
        any other control character, an ESC sequence, bidi or zero-width characters: 422."""
        _refuse_hidden(value, allow_whitespace=True)
        if value is not None and not clean(value):
            raise ValueError("the cause must contain visible text")
        return value


def _refuse_hidden(value: str | None, *, allow_whitespace: bool = False) -> str | None:
    """A 422 naming the characters (escaped: the answer must not carry them either)."""
    found = unsafe_characters(value, allow_whitespace=allow_whitespace) if value else []
    if found:
        raise ValueError(
            f"must not hold control, bidi or zero-width characters (found {', '.join(found[:5])})"
        )
    return value


# --------------------------------------------------------------------------- responses


class FieldProblem(BaseModel):
    field: str = Field(description="The field, dotted for nested ones (`steps_override.0`).")
    location: str = Field(description="body, path, query or header.")
    message: str
    type: str


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable: e.g. dbt_cloud_unauthorized.")
    message: str = Field(description="One line for a human.")
    fields: list[FieldProblem] | None = Field(
        default=None, description="For validation_error: each field that is wrong."
    )


class ErrorResponse(BaseModel):
    """Every error, from this API or from dbt Cloud, has this one shape."""

    error: ErrorDetail


class RunStepOut(BaseModel):
    index: int
    name: str
    status: str


class RunOut(BaseModel):
    """A run, as `datachonk-hook run --json` prints it."""

    id: int
    status: int = Field(
        description="1 Queued, 2 Starting, 3 Running, 10 Success, 20 Error, 30 Cancelled."
    )
    status_humanized: str
    status_hint: str | None = Field(
        description="What the status means for whoever pushed: Queued: waiting for an available"
        " runner; Running: monitor progress; Success: models are live; Error: one or more"
        " steps failed; Cancelled: re-trigger if needed. Null for Starting."
    )
    status_description: str = Field(
        description="status_humanized with its hint, e.g. `Queued (waiting for an available"
        " runner)`."
    )
    is_complete: bool
    status_message: str | None
    account_id: int | None
    project_id: int | None
    job_id: int | None
    job_name: str | None
    git_sha: str | None
    git_branch: str | None
    cause: str | None
    href: str | None
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    duration_seconds: float | None
    steps: list[RunStepOut]


class TriggerRunResponse(BaseModel):
    triggered: bool = Field(
        description="False when this commit had already started a run of the job (that run"
        " is returned)."
    )
    run: RunOut


class ProjectOut(BaseModel):
    id: int
    name: str


class StatusResponse(BaseModel):
    """As `datachonk-hook status --json`: problems are reported here, not as errors."""

    host: str | None = Field(description="The access URL in force; null when none is set.")
    account_id: int | None
    project_id: int | None
    job_id: int | None
    config_file: str | None = Field(description="The datachonk.yaml in force, if any.")
    token_source: str | None = Field(description="Where the token came from; never the token.")
    accepted: bool = Field(description="dbt Cloud accepted the token.")
    problem: str | None = Field(description="What is missing or wrong, in one line.")
    projects: list[ProjectOut] | None = Field(
        description="The account's projects; null when they could not be listed."
    )


class LastRunOut(BaseModel):
    id: int
    status: int
    status_humanized: str
    href: str | None
    created_at: str | None
    finished_at: str | None


class JobOut(BaseModel):
    """As `datachonk-hook jobs --json`."""

    id: int
    name: str
    project_id: int | None
    environment_id: int | None
    job_type: str | None
    active: bool
    triggers: list[str]
    last_run: LastRunOut | None = None


class JobsResponse(BaseModel):
    project_id: int
    jobs: list[JobOut]


class ConnectResponse(BaseModel):
    """What was verified with dbt Cloud and saved; project and job null: left as they were."""

    host: str
    account_id: int
    project: ProjectOut | None
    job: JobOut | None
    projects: list[ProjectOut] | None = Field(
        description="The account's projects; null when the token may not list them."
    )
    config_file: str = Field(description="The datachonk.yaml that was written.")
    token_stored_in: str = Field(description="The keyring or the credentials file.")


def _error_doc(description: str, **headers: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": ErrorResponse, "description": description}
    if headers:
        doc["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return doc


_COMMON_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
    400: _error_doc("config_error: datachonk.yaml or the environment is incomplete or wrong."),
    401: _error_doc(
        "unauthorized (missing or wrong API key) or dbt_cloud_unauthorized (dbt Cloud rejected"
        " the token).",
        **{"WWW-Authenticate": "Bearer, when the API key is missing or wrong."},
    ),
    403: _error_doc(
        "forbidden_origin (a cross-site browser request), forbidden_host, or"
        " dbt_cloud_forbidden (the token lacks the permission)."
    ),
    404: _error_doc("dbt_cloud_not_found: dbt Cloud has no such run, job or account."),
    422: _error_doc("validation_error: a field is missing or has the wrong type or value."),
    429: _error_doc(
        "dbt_cloud_rate_limited: dbt Cloud is rate limiting the account.",
        **{"Retry-After": "Seconds to wait, when dbt Cloud said."},
    ),
    502: _error_doc(
        "dbt_cloud_server_error, dbt_cloud_bad_response, dbt_cloud_bad_request or"
        " dbt_cloud_unknown_outcome: dbt Cloud failed or answered something unusable."
    ),
    503: _error_doc("ledger_error: the repository's trigger ledger cannot be used."),
    504: _error_doc("dbt_cloud_unreachable: dbt Cloud could not be reached in time."),
}
_TRIGGER_ERRORS: Final = {
    **_COMMON_ERRORS,
    409: _error_doc(
        "trigger_in_progress: this commit's trigger is being sent or awaits a push;"
        " commit_not_pushed: the configured git remote does not have the commit."
    ),
    422: _error_doc(
        "validation_error (a field is wrong) or git_error (git_sha or git_branch names no"
        " commit in the repository)."
    ),
}


# --------------------------------------------------------------------------- errors


def error_response(
    status: int,
    code: str,
    message: str,
    *,
    fields: list[FieldProblem] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = ErrorResponse(error=ErrorDetail(code=code, message=sanitize(message), fields=fields))
    return JSONResponse(
        body.model_dump(mode="json", exclude_none=True), status_code=status, headers=headers
    )


_KINDS: Final[tuple[tuple[type[DatachonkError], int, str], ...]] = (
    (AuthenticationError, 401, "dbt_cloud_unauthorized"),
    (PermissionDeniedError, 403, "dbt_cloud_forbidden"),
    (NotFoundError, 404, "dbt_cloud_not_found"),
    (RateLimitedError, 429, "dbt_cloud_rate_limited"),
    (UnreachableError, 504, "dbt_cloud_unreachable"),
    (UnknownOutcomeError, 502, "dbt_cloud_unknown_outcome"),
    (BadResponseError, 502, "dbt_cloud_bad_response"),
    (ServerError, 502, "dbt_cloud_server_error"),
    (BadRequestError, 502, "dbt_cloud_bad_request"),
    (RedirectError, 502, "dbt_cloud_redirect"),
    (ConfigError, 400, "config_error"),
    (GitError, 422, "git_error"),
    (LedgerError, 503, "ledger_error"),
    (BusyElsewhereError, 409, "trigger_in_progress"),
    (AwaitingPushError, 409, "trigger_in_progress"),
    (UnpushedCommitError, 409, "commit_not_pushed"),
)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """`exc` and what it was raised from or while handling (`connect` rewords errors)."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _status_of(exc: DatachonkError) -> tuple[int, str]:
    """The HTTP status and code for a domain error, by its kind or the kind it rewords
    (`connect`'s RefusedError is raised while handling the dbt Cloud error it explains)."""
    for cause in _causes(exc):
        for kind, status, code in _KINDS:
            if isinstance(cause, kind):
                return status, code
    return 500, "internal_error"  # a kind missing from _KINDS: a bug, as any other 500


def _retry_after(exc: BaseException) -> float | None:
    for cause in _causes(exc):
        if isinstance(cause, RateLimitedError) and cause.retry_after is not None:
            return cause.retry_after
    return None


def _field_problems(errors: list[Any]) -> list[FieldProblem]:
    """FastAPI's validation errors without `input` and `ctx`: they may echo a token."""
    problems = []
    for error in errors:
        loc = [str(part) for part in error.get("loc", ())]
        location, rest = (loc[0], loc[1:]) if loc else ("body", [])
        field = "body" if error.get("type") == "json_invalid" else ".".join(rest) or location
        problems.append(
            FieldProblem(
                field=field,
                location=location,
                message=str(error.get("msg", "invalid")),
                type=str(error.get("type", "value_error")),
            )
        )
    return problems


# --------------------------------------------------------------------------- the guard


def is_loopback_host(host: str) -> bool:
    """True for `localhost` and loopback addresses: only this machine can connect."""
    name = host.strip().strip("[]").rstrip(".").lower()
    if name == "localhost":
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _host_name(host_header: str) -> str:
    """`127.0.0.1` from `127.0.0.1:8765`, `::1` from `[::1]:8765`."""
    if host_header.startswith("["):
        return host_header[1:].partition("]")[0]
    return host_header.rpartition(":")[0] if host_header.count(":") == 1 else host_header


def _refusal(request: Request, api_key: bytes, loopback_only: bool) -> JSONResponse | None:
    """Why this request is refused, before anything runs; None when it may go on.

    A web page the user visits can make the browser send requests here. A foreign `Origin`,
    `Sec-Fetch-Site: cross-site/same-site` (another port is another origin) or, when bound to
    loopback, a `Host` that is not a loopback name (DNS rebinding) identifies such a request.
    """
    host = request.headers.get("host", "")
    if loopback_only and not is_loopback_host(_host_name(host)):
        return error_response(
            403, "forbidden_host", "this API answers only requests addressed to localhost"
        )
    origin = request.headers.get("origin")
    fetch_site = request.headers.get("sec-fetch-site", "").lower()
    if fetch_site in ("cross-site", "same-site") or (
        origin is not None and origin != f"http://{host}"
    ):
        return error_response(
            403, "forbidden_origin", "cross-site requests from web pages are not allowed"
        )
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    given_key = given.strip().encode("latin-1", errors="replace")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given_key, api_key):
        return error_response(
            401,
            "unauthorized",
            "missing or wrong API key: send `Authorization: Bearer <key>` with the key"
            f" `datachonk-hook serve` printed at start (or {ENV_API_KEY})",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return None


# --------------------------------------------------------------------------- the app

_BEARER = HTTPBearer(auto_error=False, description="The key `datachonk-hook serve` printed.")


def _documented_auth(
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> None:
    """Puts the bearer scheme into /openapi.json; the middleware does the checking."""


class _Secrets:
    """Every token this server has handled, so that no answer or log line can carry one."""

    def __init__(self) -> None:
        self._values: set[str] = set()
        self._lock = threading.Lock()

    def add(self, value: str) -> None:
        with self._lock:
            self._values.add(value)

    def redact(self, text: str) -> str:
        with self._lock:
            values = sorted(self._values, key=len, reverse=True)
        return redact(text, values)


#: the largest request body the API reads; its bodies are a few hundred bytes
MAX_BODY = 64 * 1024


class BodyLimit:
    """Refuses a request body over `limit` bytes with 413 before anything reads it whole:
    by its Content-Length, or, without one (chunked), as soon as the bytes received pass the
    limit. Outermost, so it holds for requests with a valid key too."""

    def __init__(self, app: ASGIApp, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.limit):
            await self._refuse(scope, receive, send)
            return
        received = 0
        too_large = started = False

        async def limited() -> Message:
            # past the limit the app is told the client left (and reads no more); what it
            # answers then is dropped for the 413
            nonlocal received, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    too_large = True
                    return {"type": "http.disconnect"}
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if too_large and not started:
                return
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except Exception:
            if not too_large:  # the app's complaint about a cut body is not news
                raise
        if too_large and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = error_response(
            413,
            "payload_too_large",
            f"request bodies are limited to {self.limit // 1024} KiB",
        )
        await response(scope, receive, send)


def create_app(workspace: Workspace, *, api_key: str, loopback_only: bool = True) -> FastAPI:
    """The API for the repository at `workspace.cwd`, answering only requests with `api_key`.

    Settings are read from `workspace` on every request, so that edits to datachonk.yaml
    (or a connect) take effect without a restart. `loopback_only` refuses requests whose Host
    is not a loopback name; turn it off only when serving other machines on purpose.
    """
    key = api_key.encode("utf-8")
    known = _Secrets()
    known.add(workspace.env.get(ENV_TOKEN, "").strip())
    app = FastAPI(
        title="DataChonk local API",
        version=__version__,
        description="The datachonk-hook CLI's dbt Cloud operations for local programs. Every"
        " request needs `Authorization: Bearer <key>` (printed by `datachonk-hook serve`).",
        docs_url=None,  # the interactive pages load scripts from a CDN and cannot send the key
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    app.add_middleware(BodyLimit)

    @contextmanager
    def client(settings: Settings) -> Iterator[DbtCloudClient]:
        """A client that gives up quickly, like the interactive commands: someone waits."""
        with client_for(settings, workspace.env) as dbt_cloud:
            known.add(dbt_cloud.token.value)
            yield dbt_cloud

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        refusal = _refusal(request, key, loopback_only)
        if refusal is not None:
            response: Response = refusal
        else:
            try:
                response = await call_next(request)
            except Exception:  # a bug: answer JSON, keep the details in the log only
                log.error(
                    "unexpected error on %s %s:\n%s",
                    request.method,
                    request.url.path,
                    sanitize(known.redact(traceback.format_exc()), multiline=True),
                )
                response = error_response(
                    500, "internal_error", "the local API hit an unexpected problem (a bug)"
                )
        response.headers["Cache-Control"] = "no-store"
        response.headers["X-Content-Type-Options"] = "nosniff"
        return response

    @app.exception_handler(DatachonkError)
    async def domain_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, DatachonkError)
        status, code = _status_of(exc)
        headers = {}
        retry_after = _retry_after(exc)
        if retry_after is not None:
            headers["Retry-After"] = str(max(1, round(retry_after)))
        message = sanitize(known.redact(str(exc)))
        log.info("%s %s -> %s %s: %s", request.method, request.url.path, status, code, message)
        return error_response(status, code, message, headers=headers)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        problems = _field_problems(list(exc.errors()))
        summary = "; ".join(f"{p.field}: {p.message}" for p in problems[:5])
        return error_response(
            422, "validation_error", known.redact(summary or "invalid request"), fields=problems
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        codes = {404: "not_found", 405: "method_not_allowed"}
        return error_response(
            exc.status_code,
            codes.get(exc.status_code, "http_error"),
            str(exc.detail),
            headers=exc.headers,
        )

    auth = [Security(_documented_auth)]

    @app.post(
        f"{PREFIX}/connect",
        response_model=ConnectResponse,
        dependencies=auth,
        responses=_COMMON_ERRORS,
    )
    def connect(body: ConnectRequest) -> ConnectResponse:
        """Check the credentials with dbt Cloud, then store the token and write datachonk.yaml.

        Like `datachonk-hook connect`: nothing is written unless dbt Cloud accepted the token
        and the project and job exist. A project_id or job_id left out keeps datachonk.yaml's.
        """
        token = body.token.get_secret_value()
        known.add(token)
        connection = connect_account(
            workspace.cwd,
            workspace.env,
            account_id=body.account_id,
            token=token,
            host=body.host,
            project_id=body.project_id,
            job_id=body.job_id,
            config_path=workspace.config_path,
            missing="keep",
            echo=log.info,
        )
        job = _shown(JobRow(connection.job, None).to_json()) if connection.job else None
        return ConnectResponse(
            host=connection.host,
            account_id=connection.account_id,
            project=_project_out(connection.project) if connection.project else None,
            job=JobOut.model_validate(job) if job else None,
            projects=_projects_out(connection.projects),
            config_file=str(connection.config_file),
            token_stored_in=connection.token_stored_in,
        )

    @app.get(
        f"{PREFIX}/status",
        response_model=StatusResponse,
        dependencies=auth,
        responses=_COMMON_ERRORS,
    )
    def status() -> StatusResponse:
        """Whether dbt Cloud accepts the token, and the account's projects (`status --json`)."""
        found = check_status(workspace)
        problem = known.redact(found.problem) if found.problem else None
        return StatusResponse.model_validate(_shown({**found.to_json(), "problem": problem}))

    @app.get(
        f"{PREFIX}/projects/{{project_id}}/jobs",
        response_model=JobsResponse,
        dependencies=auth,
        responses=_COMMON_ERRORS,
    )
    def jobs(project_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> JobsResponse:
        """The jobs of one project with their latest runs (`jobs --json`)."""
        rows = list_jobs(workspace, project_id)
        return JobsResponse(
            project_id=project_id,
            jobs=[JobOut.model_validate(_shown(row.to_json())) for row in rows],
        )

    @app.post(
        f"{PREFIX}/trigger-run",
        response_model=TriggerRunResponse,
        dependencies=auth,
        responses=_TRIGGER_ERRORS,
    )
    def trigger_run(
        body: Annotated[TriggerRunRequest | None, Body()] = None,
    ) -> TriggerRunResponse:
        """Trigger a run for a commit through the ledger, like `datachonk-hook run`.

        The same commit and job start one run (a push's trigger counts too) unless `force`.
        """
        wanted = body or TriggerRunRequest()
        settings = workspace.settings()
        repo = open_repo(workspace.cwd)
        plan = plan_api_trigger(settings, repo, wanted)
        with client(settings) as dbt_cloud:
            try:
                outcome = trigger_through_ledger(
                    repo,
                    plan,
                    dbt_cloud,
                    force=wanted.force,
                    echo=lambda line: log.info("%s", sanitize(line)),
                )
            except DbtCloudError as exc:
                # a repeat whose run dbt Cloud cannot tell about now: the ledger can
                known = None if wanted.force or not exc.transient else _known_run(repo, plan)
                if known is None:
                    raise
                log.info("%s; answering run %s from the ledger", sanitize(str(exc)), known.run_id)
                return TriggerRunResponse(
                    triggered=False, run=RunOut.model_validate(_shown(_ledger_run(known).to_json()))
                )
            run = outcome.run
            if not outcome.triggered:
                run = _whole(run, dbt_cloud, repo, plan)
        return TriggerRunResponse(
            triggered=outcome.triggered, run=RunOut.model_validate(_shown(run.to_json()))
        )

    @app.get(
        f"{PREFIX}/runs/{{run_id}}",
        response_model=RunOut,
        dependencies=auth,
        responses=_COMMON_ERRORS,
    )
    def get_run(run_id: Annotated[int, PathParam(ge=1, le=MAX_ID)]) -> RunOut:
        """A run's status and steps."""
        with client(workspace.settings()) as dbt_cloud:
            run = dbt_cloud.get_run(run_id)
        return RunOut.model_validate(_shown(run.to_json()))

    return app


def _shown(value: Any) -> Any:
    """dbt Cloud's JSON with every string sanitized, for an answer (names, messages, logs)."""
    if isinstance(value, str):
        return sanitize(value)
    if isinstance(value, Mapping):
        return {key: _shown(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_shown(item) for item in value]
    return value


def _project_out(project: Project) -> ProjectOut:
    return ProjectOut(id=project.id, name=sanitize(project.name))


def _projects_out(projects: Sequence[Project] | None) -> list[ProjectOut] | None:
    """As `projects --json` spells them, so the two cannot drift."""
    if projects is None:
        return None
    return [ProjectOut.model_validate(_shown(item)) for item in projects_json(projects)]


def _known_run(repo: pygit2.Repository, plan: TriggerPlan) -> TriggerRecord | None:
    """The run the ledger holds for the plan's commit and job: what a repeated trigger-run
    answers with."""
    sha = plan.request.git_sha
    if not sha:
        return None
    with Ledger.for_repo(repo) as ledger:
        record = ledger.find(plan.account_id, plan.job_id, sha)
    return record if record is not None and record.run_id is not None else None


def _whole(run: Run, dbt_cloud: DbtCloudClient, repo: pygit2.Repository, plan: TriggerPlan) -> Run:
    """A repeat answers the existing run as a first trigger-run would have: with its cause
    and job name, which the ledger's quick status lookup leaves out. Asked once more of dbt
    Cloud (with the job, the trigger and the steps); if that fails, the cause is the one the
    ledger recorded, which is the one sent."""
    if run.cause is not None and run.job_name is not None:
        return run
    try:
        return dbt_cloud.get_run(run.id)
    except DbtCloudError as exc:
        log.info("%s; the run's cause comes from the ledger", sanitize(str(exc)))
        known = _known_run(repo, plan)
        cause = known.request.cause if known is not None and known.run_id == run.id else None
        return replace(run, cause=run.cause or cause)


def _ledger_run(record: TriggerRecord) -> Run:
    """A run as the ledger last knew it (dbt Cloud could not be asked): the ids, commit,
    branch, cause and URL it recorded, the last status seen, and how it ended if it did.
    The job name and the steps are dbt Cloud's alone, so they are left out."""
    assert record.run_id is not None
    outcome = record.outcome
    # a run whose status was never seen was queued when dbt Cloud accepted it
    status = RunStatus(record.run_status) if record.run_status is not None else RunStatus.QUEUED
    duration = outcome.duration_s if outcome is not None else None
    return Run(
        id=record.run_id,
        status=status,
        account_id=record.account_id,
        job_id=record.job_id,
        git_sha=record.sha,
        git_branch=record.request.git_branch,
        cause=record.request.cause,
        href=record.run_url,
        finished_at=outcome.finished_at if outcome is not None else None,
        duration=timedelta(seconds=duration) if duration is not None else None,
    )


def plan_api_trigger(
    settings: Settings, repo: pygit2.Repository, wanted: TriggerRunRequest
) -> TriggerPlan:
    """The trigger for a trigger-run body: `plan_manual_trigger`, so it chooses the job and the
    schema override exactly as `datachonk-hook run` does.

    The commit is git_sha, else the tip of git_branch, else HEAD; the branch is git_branch,
    else the branch that ref names (none for a sha).
    """
    if wanted.git_sha is not None:
        ref, where = wanted.git_sha, "git_sha"
    elif wanted.git_branch is not None:
        ref, where = f"refs/heads/{wanted.git_branch}", "git_branch"
    else:
        ref, where = "HEAD", "HEAD"
    steps = wanted.steps_override
    try:
        return plan_manual_trigger(
            settings,
            repo,
            ref,
            job_id=wanted.job_id,
            cause=wanted.cause,
            branch=wanted.git_branch,
            steps_override=tuple(step.strip() for step in steps) if steps else None,
            allow_unpushed=wanted.allow_unpushed,
        )
    except UnpushedCommitError as exc:
        raise UnpushedCommitError(
            str(exc).replace("pass --allow-unpushed", 'send "allow_unpushed": true')
        ) from None
    except GitError:
        # the API's caller names the field, not a ref they never typed
        raise GitError(
            f"{where}: {ref.removeprefix('refs/heads/')!r} names no commit in the repository"
            + (" (commit or fetch it first)" if where != "HEAD" else "")
        ) from None


# --------------------------------------------------------------------------- serving


def api_key_from(env: Mapping[str, str]) -> tuple[str, bool]:
    """The key from DATACHONK_API_KEY, or a new random one; and whether it was generated."""
    given = env.get(ENV_API_KEY, "").strip()
    if not given:
        return secrets.token_urlsafe(32), True
    if len(given) < MIN_API_KEY_LENGTH or any(char.isspace() for char in given):
        raise ConfigError(
            f"{ENV_API_KEY}: use at least {MIN_API_KEY_LENGTH} characters without spaces, or"
            " unset it to get a random key"
        )
    return given, False


def serve(
    workspace: Workspace,
    *,
    host: str,
    port: int,
    allow_remote: bool,
    echo: Callable[[str], None],
) -> None:
    """Serve the API for the repository at `workspace.cwd` until Ctrl+C (`serve`)."""
    import uvicorn

    loopback = is_loopback_host(host)
    if not loopback and not allow_remote:
        raise ConfigError(
            f"--host {host}: not a loopback address, so other machines could reach the API;"
            " pass --allow-remote to serve them anyway"
        )
    top = work_tree(open_repo(workspace.cwd))
    api_key, generated = api_key_from(workspace.env)
    listener = _listen(host, port)
    app = create_app(workspace, api_key=api_key, loopback_only=loopback)
    address = listener.getsockname()
    shown_host = f"[{address[0]}]" if ":" in address[0] else address[0]
    if not loopback:
        echo(
            f"Warning: serving on {host}, reachable from other machines over plain http;"
            " anyone with the API key can trigger dbt Cloud runs with your token"
        )
    echo(f"DataChonk local API on http://{shown_host}:{address[1]} for {top}")
    if generated:
        echo(f"API key (shown once; send `Authorization: Bearer <key>`): {api_key}")
    else:
        echo(f"API key: the value of {ENV_API_KEY}")
    echo("Press Ctrl+C to stop.")
    config = uvicorn.Config(
        app, log_level="info", server_header=False, proxy_headers=False, lifespan="off"
    )
    with suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl+C after its graceful shutdown
        uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket: the real port (for --port 0) is known, and a client that connects
    right after the startup lines waits in the backlog until uvicorn accepts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port"
        ) from None
    return listener
