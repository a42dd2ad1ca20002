"""How the local API answers errors: one JSON shape, and one HTTP status per kind of error.

Domain errors (`DatachonkError` and its subclasses, from dbt Cloud, git, the config or the
ledger) map to statuses by `_KINDS`; validation errors list the fields that are wrong without
echoing their input (it may hold a token). The OpenAPI documentation of these answers lives
here too, next to the mapping it describes.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from datachonk_hooks.api.context import MAX_BODY, Secrets, log
from datachonk_hooks.api.models import ErrorDetail, ErrorResponse, FieldProblem
from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    BadRequestError,
    BadResponseError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    RedirectError,
    ServerError,
    UnknownOutcomeError,
    UnreachableError,
)
from datachonk_hooks.delivery.ledger import LedgerError
from datachonk_hooks.delivery.planning import UnpushedCommitError
from datachonk_hooks.delivery.trigger import AwaitingPushError, BusyElsewhereError
from datachonk_hooks.errors import ConfigError, DatachonkError, GitError
from datachonk_hooks.sanitize import sanitize

# --------------------------------------------------------------------------- documented


def _error_doc(description: str, **headers: str) -> dict[str, Any]:
    doc: dict[str, Any] = {"model": ErrorResponse, "description": description}
    if headers:
        doc["headers"] = {
            name: {"description": text, "schema": {"type": "string"}}
            for name, text in headers.items()
        }
    return doc


COMMON_ERRORS: Final[dict[int | str, dict[str, Any]]] = {
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
    413: _error_doc(f"payload_too_large: the request body is over {MAX_BODY // 1024} KiB."),
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
TRIGGER_ERRORS: Final = {
    **COMMON_ERRORS,
    409: _error_doc(
        "trigger_in_progress: this commit's trigger is being sent or awaits a push;"
        " commit_not_pushed: the configured git remote does not have the commit."
    ),
    422: _error_doc(
        "validation_error (a field is wrong) or git_error (git_sha or git_branch names no"
        " commit in the repository)."
    ),
}


# --------------------------------------------------------------------------- answered


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


def add_error_handlers(app: FastAPI, known: Secrets) -> None:
    """Every error `app` meets answers `ErrorResponse`, with no token in it."""

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
