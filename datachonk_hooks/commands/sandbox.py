"""`sandbox`: serve the built-in dbt Cloud simulator until Ctrl-C.

With the demo, the only module that imports the simulator (tests/test_architecture.py
holds that): it is for trying the package out and for tests, never for the hook's work.
"""

from __future__ import annotations

import click

from datachonk_hooks.errors import DatachonkError, ExitCode


def sandbox_command(port: int, bind: str, token: str, time_scale: float) -> int:
    """Serve the simulator on `bind`:`port`; a port in use is a one-line error (exit 2)."""
    from datachonk_hooks.sandbox import serve

    try:
        serve(bind=bind, port=port, token=token, time_scale=time_scale, echo=click.echo)
    except OSError as exc:
        raise DatachonkError(
            f"cannot listen on {bind}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
    return ExitCode.OK
