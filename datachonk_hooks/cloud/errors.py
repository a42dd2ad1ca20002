"""The errors of talking to dbt Cloud, each with its exit code and whether a retry may
help (`transient`)."""

from __future__ import annotations

from datachonk_hooks.errors import DatachonkError, ExitCode

# --------------------------------------------------------------------------- errors


class DbtCloudError(DatachonkError):
    """dbt Cloud could not be reached or refused the request (exit code 5)."""

    exit_code = ExitCode.API
    #: True when trying the same request later may succeed (outage, 5xx, 429).
    transient = False

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class UnreachableError(DbtCloudError):
    transient = True


class UntrustedCertificateError(UnreachableError):
    """The host's TLS certificate failed verification. Nothing was sent, and sending again
    meets the same certificate, so it is not retried; the request stays as unreachable ones
    do (a push's trigger stays pending)."""

    transient = False


class ServerError(DbtCloudError):
    transient = True


class RateLimitedError(DbtCloudError):
    transient = True

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message, status=429)
        self.retry_after = retry_after


class BadResponseError(DbtCloudError):
    transient = True


class UnknownOutcomeError(DbtCloudError):
    """A trigger was sent but no answer came back and the run could not be found yet."""

    transient = True


class RedirectError(DbtCloudError):
    """dbt Cloud (or something in front of it) sent the request elsewhere; not followed.

    Not transient: the same request gets the same redirect, and a trigger sent to another
    address could start a run twice or carry the token to the wrong host. Mostly a wrong
    `host` (a vanity URL, http instead of https, a proxy's login page).
    """


class AuthenticationError(DbtCloudError):
    pass


class PermissionDeniedError(DbtCloudError):
    pass


class NotFoundError(DbtCloudError):
    pass


class BadRequestError(DbtCloudError):
    pass
