"""The answers of a failing dbt Cloud, for faults a test asks for with `Sandbox.fail`: error
pages instead of work, redirects a proxy would send, and answers whose ids are odd. (Faults
that happen on the connection itself, such as drops, resets and drips, are the server's.)"""

from __future__ import annotations

import json
from dataclasses import replace
from urllib.parse import urlencode

from datachonk_hooks.sandbox.wire import _BAD_GATEWAY, _ApiError, _Fault, _Incoming, _Response


def fault_response(fault: _Fault) -> _Response:
    """The answer a failing service gives instead of doing anything (500, 502, 503, 404,
    429)."""
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


def redirect_response(fault: _Fault, incoming: _Incoming, own_url: str) -> _Response:
    """A redirect to the same path and query, on another port when the fault names one."""
    port = int(fault.option("port", 0))
    origin = f"http://127.0.0.1:{port}" if port else own_url
    query = f"?{urlencode(incoming.query, doseq=True)}" if incoming.query else ""
    status = int(fault.option("status", 302))
    body = b'{"detail": "Moved."}'
    if fault.option("bare", 0):
        return _Response(status, body)
    return _Response(status, body, headers=(("Location", f"{origin}{incoming.path}{query}"),))


def with_odd_ids(response: _Response, odd: object) -> _Response:
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
