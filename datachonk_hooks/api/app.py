"""The local API's app factory: one FastAPI app per served repository.

`create_app` puts the pieces together: the guard (key, Host and Origin checks, body cap),
the error handlers, and the routers, each of which requires the bearer key. Everything an
app needs lives in its own `ApiContext`, so tests can build as many apps as they like.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import FastAPI, Security
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from datachonk_hooks import __version__
from datachonk_hooks.account.workspace import Workspace
from datachonk_hooks.api.context import ApiContext
from datachonk_hooks.api.errors import add_error_handlers
from datachonk_hooks.api.guard import protect
from datachonk_hooks.api.routes_account import account_router
from datachonk_hooks.api.routes_runs import runs_router

_BEARER = HTTPBearer(auto_error=False, description="The key `datachonk-hook serve` printed.")


def _documented_auth(
    _: Annotated[HTTPAuthorizationCredentials | None, Security(_BEARER)] = None,
) -> None:
    """Puts the bearer scheme into /openapi.json; the guard does the checking."""


def create_app(workspace: Workspace, *, api_key: str, loopback_only: bool = True) -> FastAPI:
    """The API for the repository at `workspace.cwd`, answering only requests with `api_key`.

    Settings are read from `workspace` on every request, so that edits to datachonk.yaml
    (or a connect) take effect without a restart. `loopback_only` refuses requests whose Host
    is not a loopback name; turn it off only when serving other machines on purpose.
    """
    context = ApiContext.for_workspace(workspace)
    app = FastAPI(
        title="DataChonk local API",
        version=__version__,
        description="The datachonk-hook CLI's dbt Cloud operations for local programs. Every"
        " request needs `Authorization: Bearer <key>` (printed by `datachonk-hook serve`).",
        docs_url=None,  # the interactive pages load scripts from a CDN and cannot send the key
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
    )
    protect(app, api_key=api_key.encode("utf-8"), loopback_only=loopback_only, known=context.known)
    add_error_handlers(app, context.known)
    auth = [Security(_documented_auth)]
    app.include_router(account_router(context), dependencies=auth)
    app.include_router(runs_router(context), dependencies=auth)
    return app
