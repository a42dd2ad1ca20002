"""What dbt Cloud's answers mean: an HTTP error to a typed `cloud.errors` error, a
`Retry-After` header to a sane number of seconds, a network failure to a short reason.

Pure functions over one answer, apart from the transport that gets it: the server's words
reach terminals, logs and the ledger only through here, redacted and cut to size.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from datachonk_hooks.cloud.errors import (
    AuthenticationError,
    BadRequestError,
    DbtCloudError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitedError,
    ServerError,
)
from datachonk_hooks.cloud.records import _clip
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.credentials import Token, redact

if TYPE_CHECKING:
    import requests

LEGACY_HOST = "cloud.getdbt.com"
#: dbt Cloud's rate-limit cooldown is five minutes: a longer Retry-After is taken as this
RETRY_AFTER_CAP = 300.0


def error_for(
    response: requests.Response,
    body: object,
    what: tuple[str, int | None],
    *,
    host: str,
    account_id: int,
    token: Token,
) -> DbtCloudError:
    """The typed error for an HTTP error answer; `what` names the object asked for (a 404's
    subject), `host` and `account_id` say where, `token` is redacted from the server's words."""
    status = response.status_code
    # the server's words reach terminals, logs and the ledger: through the one sanitizer
    # the token is redacted before the cut (no part of it survives the ellipsis), and
    # escape sequences go before it too (none is cut in half)
    said_raw = redact(server_message(body, response), [token.value])
    server_says = _clip(sanitize(said_raw))
    said = f" ({server_says})" if server_says else ""
    if status == 401:
        hint = (
            " Your account may use its own access URL: set `host` in datachonk.yaml (or"
            " DBT_CLOUD_HOST) to the URL shown under Account settings, such as"
            " https://ab123.us1.dbt.com; cell-based accounts answer 401 on the legacy host."
            if urlsplit(host).hostname == LEGACY_HOST
            else " Check DBT_CLOUD_API_TOKEN, and that `host` is your account's access URL"
            " (Account settings); cell-based accounts answer 401 on another host."
        )
        return AuthenticationError(
            f"dbt Cloud at {host} rejected the API token (HTTP 401{said}).{hint}",
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
            f"dbt Cloud found no {subject} in account {account_id} at {host}"
            f" (HTTP 404{said}); check the id, and that the token can see it",
            status=status,
        )
    if status == 429:
        wait = retry_after(response.headers.get("Retry-After"))
        when = f" retry after {wait:.0f}s" if wait is not None else ""
        return RateLimitedError(
            f"dbt Cloud is rate limiting this account (HTTP 429{said}); it enforces a"
            f" five-minute cooldown.{when}".rstrip("."),
            retry_after=wait,
        )
    if status >= 500:
        return ServerError(
            f"dbt Cloud had a server error (HTTP {status}{said}) on"
            f" {response.request.method} {urlsplit(response.url).path}",
            status=status,
        )
    return BadRequestError(f"dbt Cloud refused the request (HTTP {status}{said})", status=status)


_ERRNO = re.compile(r"\[Errno -?\d+\] ([^'\")\]]+)")


def network_reason(exc: BaseException) -> str:
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
    if match := re.search(r"certificate verify failed: ([^(')]+)", text):  # a private CA's?
        return (
            f"its TLS certificate is not trusted ({match.group(1).strip()}); for a private"
            " CA, set REQUESTS_CA_BUNDLE to the CA's PEM file"
        )
    if match := _ERRNO.search(text):
        return match.group(1).strip().lower()
    return _clip(text)


def json_or_none(response: requests.Response) -> object:
    try:
        return response.json()
    except ValueError:
        return None


def describe_body(response: requests.Response) -> str:
    content_type = response.headers.get("Content-Type", "")
    if "html" in content_type or response.text.lstrip().lower().startswith("<"):
        return "an HTML page"
    return "a body that is not valid JSON" if response.text else "an empty body"


def server_message(body: object, response: requests.Response) -> str:
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
        return describe_body(response)
    return ""


def retry_after(value: str | None) -> float | None:
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
