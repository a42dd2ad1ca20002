"""What stands between the network and the API's routes: the key, the Host and Origin
checks, and the cap on request bodies.

The API can spend the developer's dbt Cloud token, so a request is refused before anything
runs unless it carries the bearer key, and a web page the user visits must not be able to
drive it through the browser (cross-site requests, DNS rebinding). A bug inside a route
answers a JSON 500 and keeps its traceback, with tokens redacted, in the log only.
"""

from __future__ import annotations

import hmac
import ipaddress
import traceback
from collections.abc import Awaitable, Callable
from typing import Final

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from datachonk_hooks.api.context import MAX_BODY, Secrets, log
from datachonk_hooks.api.errors import error_response
from datachonk_hooks.sanitize import sanitize

ENV_API_KEY: Final = "DATACHONK_API_KEY"


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


def protect(app: FastAPI, *, api_key: bytes, loopback_only: bool, known: Secrets) -> None:
    """Puts the body cap and the guard around `app`'s routes."""
    app.add_middleware(BodyLimit)

    @app.middleware("http")
    async def guard(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        refusal = _refusal(request, api_key, loopback_only)
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
