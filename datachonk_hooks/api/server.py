"""`datachonk-hook serve`: the local API on a socket, with its key, until Ctrl+C.

Editor extensions, local UIs and scripts get the CLI's operations over HTTP on the developer's
own machine. The server binds to loopback unless told otherwise (`--allow-remote`), and the
bearer key is DATACHONK_API_KEY or a random one printed once. FastAPI and uvicorn are
imported only in this package, and this package only by the `serve` command: the git hook
never pays for them.
"""

from __future__ import annotations

import secrets
import socket
from collections.abc import Callable, Mapping
from contextlib import suppress
from typing import Final

from datachonk_hooks.account.workspace import Workspace
from datachonk_hooks.api.app import create_app
from datachonk_hooks.api.guard import ENV_API_KEY, is_loopback_host
from datachonk_hooks.errors import ConfigError
from datachonk_hooks.push.gitrepo import open_repo, work_tree

MIN_API_KEY_LENGTH: Final = 16


def api_key_from(env: Mapping[str, str]) -> tuple[str, bool]:
    """The key from DATACHONK_API_KEY, or a new random one; and whether it was generated."""
    given = env.get(ENV_API_KEY, "").strip()
    if not given:
        return secrets.token_urlsafe(32), True
    if len(given) < MIN_API_KEY_LENGTH or any(char.isspace() for char in given):
        raise ConfigError(
            f"{ENV_API_KEY}: use at least {MIN_API_KEY_LENGTH} characters without spaces, or"
            " unset it to get a random key"
        )
    return given, False


def serve(
    workspace: Workspace,
    *,
    host: str,
    port: int,
    allow_remote: bool,
    echo: Callable[[str], None],
) -> None:
    """Serve the API for the repository at `workspace.cwd` until Ctrl+C (`serve`)."""
    import uvicorn

    loopback = is_loopback_host(host)
    if not loopback and not allow_remote:
        raise ConfigError(
            f"--host {host}: not a loopback address, so other machines could reach the API;"
            " pass --allow-remote to serve them anyway"
        )
    top = work_tree(open_repo(workspace.cwd))
    api_key, generated = api_key_from(workspace.env)
    listener = _listen(host, port)
    app = create_app(workspace, api_key=api_key, loopback_only=loopback)
    address = listener.getsockname()
    shown_host = f"[{address[0]}]" if ":" in address[0] else address[0]
    if not loopback:
        echo(
            f"Warning: serving on {host}, reachable from other machines over plain http;"
            " anyone with the API key can trigger dbt Cloud runs with your token"
        )
    echo(f"DataChonk local API on http://{shown_host}:{address[1]} for {top}")
    if generated:
        echo(f"API key (shown once; send `Authorization: Bearer <key>`): {api_key}")
    else:
        echo(f"API key: the value of {ENV_API_KEY}")
    echo("Press Ctrl+C to stop.")
    config = uvicorn.Config(
        app, log_level="info", server_header=False, proxy_headers=False, lifespan="off"
    )
    with suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl+C after its graceful shutdown
        uvicorn.Server(config).run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """A listening socket: the real port (for --port 0) is known, and a client that connects
    right after the startup lines waits in the backlog until uvicorn accepts."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} ({exc.strerror or exc}); pick another --port"
        ) from None
    return listener
