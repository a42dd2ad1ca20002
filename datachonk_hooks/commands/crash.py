"""What an unexpected exception (a bug) becomes: one line for the user, a log for us.

pre-commit's error_handler model: no traceback reaches the user's terminal. The details
(versions, argv, traceback) go to a file whose path the one line names, with the API token
redacted, so it can be attached to a bug report as it is.
"""

from __future__ import annotations

import os
import sys

import click

from datachonk_hooks import __version__
from datachonk_hooks.errors import ExitCode


def report_crash() -> int:
    """Save the exception being handled to a log file, say where, and return exit 70."""
    import tempfile
    import traceback

    from datachonk_hooks.settings.credentials import ENV_TOKEN, redact

    handle, path = tempfile.mkstemp(prefix="datachonk-hooks-crash-", suffix=".log")
    with os.fdopen(handle, "w") as log:
        log.write(f"datachonk-hooks {__version__}, Python {sys.version}\n")
        details = f"argv: {sys.argv}\n\n{traceback.format_exc()}"
        log.write(redact(details, [os.environ.get(ENV_TOKEN, "")]))
    click.echo(
        f"Error: datachonk-hooks hit an unexpected problem (a bug); details saved to {path}",
        err=True,
    )
    return ExitCode.INTERNAL
