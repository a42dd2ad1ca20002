"""`serve`: the local integration API for editor extensions, UIs and scripts.

The server and its stack (fastapi, uvicorn) are an optional extra; without them this says
how to install it instead of failing with an ImportError. Nothing else imports the stack,
so the hook and every other command start without it.
"""

from __future__ import annotations

from pathlib import Path

import click

from datachonk_hooks.commands.context import AppContext
from datachonk_hooks.errors import ExitCode


def serve_command(
    app: AppContext, host: str, port: int, repo: Path | None, allow_remote: bool
) -> int:
    """Serve the API for the repository at `repo` (default: the current folder's) until stopped."""
    try:
        from datachonk_hooks.api.server import serve
    except ImportError as exc:
        if exc.name not in ("fastapi", "uvicorn", "starlette", "pydantic"):
            raise
        raise click.ClickException(
            "the local API needs the server extra: pip install 'datachonk-hooks[server]'"
        ) from None
    from datachonk_hooks.account.workspace import Workspace

    serve(
        Workspace(app.env, (repo or app.cwd).resolve(), app.config_path),
        host=host,
        port=port,
        allow_remote=allow_remote,
        echo=lambda line: click.echo(line, err=True),
    )
    return ExitCode.OK
