"""How the client talks HTTP to dbt Cloud: one `requests.Session` per client, a deadline for
every whole exchange, bounded retries of what may be retried, and redirects refused.

* reads (GET, and the idempotent cancel) are retried on connection errors, 5xx and 429 with
  capped exponential backoff and jitter, honouring `Retry-After`, within a total time budget
  (`RetryPolicy`, counted by `Tries`);
* every exchange has a deadline for the whole answer, not per read (`Timeouts`,
  `cloud.exchange`); redirects are followed only for GETs within the host's own origin;
* a failure says whether the request may have reached dbt Cloud (`NotSent`, `NoAnswer`,
  `TimedOut`), so the client can decide what a non-idempotent POST may do next.

Endpoints and records are the client's (`cloud.client`); what an error answer means is
`cloud.answers`'.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urljoin, urlsplit

from datachonk_hooks import __version__
from datachonk_hooks.cloud.answers import (
    describe_body,
    error_for,
    json_or_none,
    network_reason,
)
from datachonk_hooks.cloud.errors import (
    BadResponseError,
    DbtCloudError,
    RateLimitedError,
    RedirectError,
    UnreachableError,
    UntrustedCertificateError,
)
from datachonk_hooks.cloud.exchange import Exchange, watched_adapter
from datachonk_hooks.cloud.records import JSONDict, _clip
from datachonk_hooks.sanitize import sanitize
from datachonk_hooks.settings.credentials import Token, redact

if TYPE_CHECKING:
    import requests

#: one logger for all the client says (`-v` output names it), wherever the code lives
log = logging.getLogger("datachonk_hooks.cloud.client")

#: redirects a GET may follow (within the host's origin); a POST follows none
MAX_REDIRECTS = 3


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


class Tries:
    """The attempts of one request: capped backoff between them, bounded by the budget.

    Each method decides for itself which failures may be tried again (a trigger is never
    re-sent after an unknown outcome); this only counts, sleeps and gives up.
    """

    def __init__(self, transport: Transport) -> None:
        self.transport = transport
        self.deadline = transport.clock() + transport.retry.budget
        if transport.deadline is not None:  # a lookup inside a trigger shares its budget
            self.deadline = min(self.deadline, transport.deadline)
        self.last: DbtCloudError | None = None

    def __iter__(self) -> Iterator[int]:
        for attempt in range(self.transport.retry.attempts):
            if attempt:
                self._backoff(attempt)
            yield attempt

    def _backoff(self, attempt: int) -> None:
        """Sleep before the next attempt, or give up when the budget would run out."""
        delay = self.transport.retry.delay(attempt - 1)
        if isinstance(self.last, RateLimitedError) and self.last.retry_after is not None:
            delay = self.last.retry_after
        if self.transport.clock() + delay > self.deadline:
            raise self.last_error()
        log.debug("retrying in %.1fs after: %s", delay, self.last)
        self.transport.sleep(delay)

    def last_error(self) -> DbtCloudError:
        assert self.last is not None, "a failed attempt records its error"
        return self.last


class NotSent(Exception):
    """The request never reached the server (connection refused, connect timeout)."""


class NoAnswer(Exception):
    """The request may have reached the server but no usable answer came back."""


class TimedOut(NoAnswer):
    """No answer within the read timeout: the server may still be working on the request."""


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
class Transport:
    """HTTP to one dbt Cloud account with one token: the client's only way out."""

    host: str
    account_id: int
    token: Token
    timeouts: Timeouts
    retry: RetryPolicy
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    _session: requests.Session | None = field(default=None, init=False, repr=False)
    #: while a trigger runs, its budget's end: the lookups inside it share that budget
    deadline: float | None = field(default=None, init=False, repr=False)

    def close(self) -> None:
        if self._session is not None:
            self._session.close()
            self._session = None

    def get(
        self,
        path: str,
        params: Mapping[str, str | int],
        *,
        what: tuple[str, int | None],
        envelope: bool = False,
    ) -> Any:
        return self.with_retries("GET", path, params, what, envelope=envelope)

    def with_retries(
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
        tries = Tries(self)
        for _ in tries:
            try:
                return self.send(
                    method,
                    path,
                    params=params,
                    json_body=json_body,
                    what=what,
                    envelope=envelope,
                    raw=raw,
                    seconds=seconds,
                )
            except NotSent as exc:
                tries.last = UnreachableError(self.unreachable(str(exc)))
            except NoAnswer as exc:
                tries.last = UnreachableError(f"dbt Cloud did not answer {method} {path}: {exc}")
            except DbtCloudError as exc:
                if not exc.transient:
                    raise
                tries.last = exc
        raise tries.last_error()

    def send(
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
        with Exchange(seconds or self.timeouts.read) as exchange:
            url: str | None = self.host + path
            hops = 0
            while url is not None:
                response = self._exchange(exchange, method, url, params, json_body)
                url = self._redirect(method, path, response, hops)
                params, hops = None, hops + 1  # a Location carries its own query
        if exchange.expired:  # cut: even an answer that looks whole may be cut short
            raise TimedOut(f"no complete answer within {exchange.seconds:g} s")
        log.debug(
            "%s %s -> %s in %.0f ms",
            method,
            path,
            response.status_code,
            (time.monotonic() - started) * 1000,
        )
        if raw and response.status_code < 400:
            return response.content
        body = json_or_none(response)
        if response.status_code >= 400:
            raise self.error(response, body, what)
        if not isinstance(body, Mapping):
            kind = describe_body(response)
            raise BadResponseError(
                f"dbt Cloud answered HTTP {response.status_code} on {method} {path} with {kind}"
                " instead of JSON",
                status=response.status_code,
            )
        return body if envelope else body.get("data")

    def _exchange(
        self,
        exchange: Exchange,
        method: str,
        url: str,
        params: Mapping[str, str | int] | None,
        json_body: JSONDict | None,
    ) -> requests.Response:
        """One request and its whole answer, read within the exchange's deadline."""
        import requests

        try:
            return self.get_session().request(
                method,
                url,
                params=params,
                json=json_body,
                timeout=(self.timeouts.connect, self.timeouts.read),
                allow_redirects=False,
            )
        except requests.RequestException as exc:
            if exchange.expired:  # the watchdog cut it: it may have reached the server
                raise TimedOut(f"no complete answer within {exchange.seconds:g} s") from None
            raise self._classify(exc) from None

    def _classify(self, exc: BaseException) -> Exception:
        """The internal error saying whether the request may have reached dbt Cloud."""
        import requests

        if isinstance(exc, requests.exceptions.SSLError) and "certificate verify failed" in str(
            exc
        ):
            return UntrustedCertificateError(self.unreachable(self.clean(exc)))
        if isinstance(exc, requests.ConnectTimeout | requests.exceptions.SSLError):
            return NotSent(self.clean(exc))
        if isinstance(exc, requests.ConnectionError):
            # urllib3 reports refused connections as NewConnectionError; anything else
            # (a reset or a dropped answer) may have reached the server.
            if "NewConnectionError" in repr(exc) or "NameResolutionError" in repr(exc):
                return NotSent(self.clean(exc))
            return NoAnswer(self.clean(exc))
        if isinstance(exc, requests.ReadTimeout):
            return TimedOut(self.clean(exc))
        if isinstance(exc, requests.exceptions.ChunkedEncodingError):
            # the status line came, the body was cut: the server did the work (for a trigger,
            # created the run), so it counts as unanswered, never as not done
            return TimedOut(f"the answer was cut short ({self.clean(exc)})")
        return NoAnswer(self.clean(exc))

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

    def get_session(self) -> requests.Session:
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
            adapter = watched_adapter()
            session.mount("http://", adapter)
            session.mount("https://", adapter)
            self._session = session
        return self._session

    def clean(self, exc: BaseException) -> str:
        return redact(network_reason(exc), [self.token.value])

    def unreachable(self, detail: str) -> str:
        return f"could not reach dbt Cloud at {self.host}: {detail}"

    def error(
        self, response: requests.Response, body: object, what: tuple[str, int | None]
    ) -> DbtCloudError:
        return error_for(
            response, body, what, host=self.host, account_id=self.account_id, token=self.token
        )
