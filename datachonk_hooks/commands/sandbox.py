"""`sandbox`: serve the built-in dbt Cloud simulator until Ctrl-C.

With the demo, the only module that imports the simulator (tests/test_architecture.py
holds that): it is for trying the package out and for tests, never for the hook's work.
`--tls` needs trustme (the tls extra); without it this says how to install it instead of
failing with an ImportError, as `serve` does for its extra.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Iterator
from types import FrameType

import click

from datachonk_hooks.errors import DatachonkError, ExitCode

TLS_EXTRA_MISSING = "--tls needs the tls extra: pip install 'datachonk-hooks[tls]'"


def sandbox_command(port: int, bind: str, token: str, time_scale: float, tls: bool = False) -> int:
    """Serve the simulator on `bind`:`port`; a port in use is a one-line error (exit 2), and
    so is --tls without trustme."""
    from datachonk_hooks.sandbox import serve

    try:
        with _sigterm_as_ctrl_c():
            serve(
                bind=bind, port=port, token=token, time_scale=time_scale, echo=click.echo, tls=tls
            )
    except ImportError as exc:
        if exc.name not in ("trustme", "cryptography", "idna"):
            raise
        raise DatachonkError(TLS_EXTRA_MISSING) from None
    except OSError as exc:
        raise DatachonkError(
            f"cannot listen on {bind}:{port}: {exc.strerror or exc}; choose another --port"
        ) from None
    return ExitCode.OK


@contextlib.contextmanager
def _sigterm_as_ctrl_c() -> Iterator[None]:
    """A SIGTERM (a service manager, `kill`, a test ending it) stops the sandbox as Ctrl-C
    does, so it goes down cleanly and removes its CA bundle; the old handler comes back."""

    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
