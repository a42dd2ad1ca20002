"""Which endpoint answers a request: the routes table (path pattern, method, permission,
endpoint) and the order dbt Cloud checks them in.

To add an endpoint, write one function in `endpoints` and add one row to `ROUTES`; a
pattern's `key` group becomes `call.key` and its `rest` group `call.rest`.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from datachonk_hooks.sandbox import endpoints
from datachonk_hooks.sandbox.state import Account
from datachonk_hooks.sandbox.wire import _DENIED, _GRANTS, _ApiError, _Call, _Incoming, _Response


@dataclass(frozen=True)
class Route:
    """`pattern` must match the whole path; `grant` is the permission the endpoint needs."""

    pattern: re.Pattern[str]
    method: str
    grant: str
    endpoint: Callable[[Account, _Call], _Response]


_V2 = r"/api/v2/accounts/(?P<account>\d+)"
_V3 = r"/api/v3/accounts/(?P<account>\d+)"
ROUTES = tuple(
    Route(re.compile(pattern), method, grant, endpoint)
    for pattern, method, grant, endpoint in (
        (rf"{_V2}/jobs/(?P<key>\d+)/run/", "POST", "run", endpoints.trigger),
        (rf"{_V2}/jobs/(?P<key>\d+)/rerun/", "POST", "run", endpoints.rerun),
        (rf"{_V2}/jobs/", "GET", "read", endpoints.list_jobs),
        (rf"{_V2}/jobs/(?P<key>\d+)/", "GET", "read", endpoints.get_job),
        (rf"{_V2}/runs/", "GET", "read", endpoints.list_runs),
        (rf"{_V2}/runs/(?P<key>\d+)/", "GET", "read", endpoints.get_run),
        (rf"{_V2}/runs/(?P<key>\d+)/cancel/", "POST", "cancel", endpoints.cancel),
        (rf"{_V2}/runs/(?P<key>\d+)/artifacts/", "GET", "read", endpoints.list_artifacts),
        (rf"{_V2}/runs/(?P<key>\d+)/artifacts/(?P<rest>.+)", "GET", "read", endpoints.get_artifact),
        (rf"{_V3}/projects/", "GET", "projects", endpoints.list_projects),
    )
)
_RUN_WITHOUT_SLASH = re.compile(rf"{_V2}/jobs/\d+/run")


def dispatch(
    account: Account, incoming: _Incoming, body: object | None, body_error: _ApiError | None
) -> _Response:
    """Django's order: resolve the URL, authenticate, check the method, then permissions.

    The caller holds `account.lock`.
    """
    for route in ROUTES:
        match = route.pattern.fullmatch(incoming.path)
        if match:
            break
    else:
        if _RUN_WITHOUT_SLASH.fullmatch(incoming.path):
            # the POST is redirected to .../run/ as a GET, which that view refuses
            raise _ApiError.detail(405, 'Method "GET" not allowed.')
        raise _ApiError.detail(404, "Not found.")
    permission = account.tokens.get(token_of(incoming.authorization) or "")
    if permission is None:
        raise _ApiError.envelope(401, "Invalid token.", developer=None)
    if incoming.method != route.method:
        raise _ApiError.detail(405, f'Method "{incoming.method}" not allowed.')
    if int(match["account"]) != account.account_id:
        raise _ApiError.envelope(404, "Account not found.")
    if route.grant not in _GRANTS[permission]:
        raise _ApiError.envelope(403, _DENIED[route.grant])
    key, rest = match.groupdict().get("key"), match.groupdict().get("rest")
    call = _Call(int(key or 0), rest or "", incoming.query, body, body_error)
    return route.endpoint(account, call)


def token_of(header: str | None) -> str | None:
    """`Token <t>` and `Bearer <t>` are equivalent in dbt Cloud."""
    scheme, _, value = (header or "").strip().partition(" ")
    if scheme.lower() not in ("token", "bearer") or not value.strip():
        return None
    return value.strip()
