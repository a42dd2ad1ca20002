"""`pre-push` and `land`: the hook's two halves when they come through click.

`pre-push` notes what a push should trigger and gets out of the way; `land` is the detached
waiter it starts, which triggers dbt Cloud once the push has landed. The usual `pre-push`
never gets here: entry.py runs it without loading click (this is the path for `--help`, an
option entry.py leaves to click, or a direct call of `cli.main`).
"""

from __future__ import annotations

import sys

from datachonk_hooks.commands.context import AppContext, echo_json, say_err


def pre_push_command(
    remote: str | None, url: str | None, dry_run: bool, as_json: bool, hook_args: tuple[str, ...]
) -> int:
    """Run the hook for `pre-push [REMOTE [URL]]`, reading git's stdin once."""
    from datachonk_hooks.prepush.hook import pre_push_main

    if hook_args:  # `pre-push REMOTE URL`, the way git calls hooks
        remote = remote or hook_args[0]
        url = url or (hook_args[1] if len(hook_args) > 1 else None)
    return pre_push_main(
        remote=remote,
        url=url,
        dry_run=dry_run,
        as_json=as_json,
        env=None,
        stdin_lines=lambda: [] if sys.stdin.isatty() else sys.stdin.read().splitlines(),
        echo=say_err,
        echo_json=echo_json,
    )


def land_command(app: AppContext, push_id: int) -> int:
    """Wait for push `push_id` to land, then deliver its triggers."""
    from datachonk_hooks.delivery.landing import run_waiter
    from datachonk_hooks.push.gitrepo import open_repo

    return run_waiter(open_repo(app.cwd), push_id, app.env)
