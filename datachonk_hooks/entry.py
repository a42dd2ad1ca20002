"""The console scripts' entry point: `datachonk-hook pre-push` without loading click.

The pre-push hook runs on every push of every user; parsing its few arguments by hand and
calling the hook directly skips importing click and defining every other command; and
`prefilter` answers a push that touches no model before pygit2 is even imported. Anything
else (help, an unknown option, every other command) goes to the click CLI.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Sequence

_FLAGS = {"--dry-run": "dry_run", "--json": "as_json"}
_VALUES = {"--remote": "remote", "--url": "url"}


class _HookArgs:
    """`pre-push`'s arguments as read here (a plain class: no import on the fast path)."""

    def __init__(self) -> None:
        self.remote: str | None = None
        self.url: str | None = None
        self.dry_run = False
        self.as_json = False


def _parse_hook_args(args: Sequence[str]) -> _HookArgs | None:
    """`[--dry-run] [--json] [--remote R] [--url U] [REMOTE [URL]]`, or None when click
    should parse them."""
    parsed = _HookArgs()
    positional: list[str] = []
    items = iter(args)
    for arg in items:
        if arg in _FLAGS:
            setattr(parsed, _FLAGS[arg], True)
        elif arg in _VALUES:
            value = next(items, None)
            if value is None:
                return None
            setattr(parsed, _VALUES[arg], value)
        elif arg.startswith("-"):
            return None  # --help, or a mistake click should explain
        else:
            positional.append(arg)
    if len(positional) > 2:
        return None
    parsed.remote = parsed.remote or (positional[0] if positional else None)
    parsed.url = parsed.url or (positional[1] if len(positional) > 1 else None)
    return parsed


def _fast_pre_push(args: Sequence[str]) -> int | None:
    """Run `pre-push ARGS` directly, or None when click should parse them."""
    started = time.monotonic()  # the hook's time bound counts from here (see watchdog)
    parsed = _parse_hook_args(args)
    if parsed is None:
        return None
    remote, url = parsed.remote, parsed.url

    read: list[list[str]] = []

    def stdin_lines() -> list[str]:
        """git's stdin, read once: the fast path and the normal one both see it."""
        if not read:
            read.append([] if sys.stdin.isatty() else sys.stdin.read().splitlines())
        return read[0]

    # Most pushes touch no model: answer those without importing pygit2 (see prefilter).
    # Like the hook itself, the fast path must never stop a push: on any surprise the
    # normal path decides.
    from datachonk_hooks.prepush import fast_cache, fast_ledger, prefilter

    dry_run = parsed.dry_run or parsed.as_json
    try:
        if prefilter.check(os.environ, stdin_lines, dry_run=dry_run, remote=remote or None).skip:
            if not dry_run:  # how earlier runs ended, as the slow path would say it
                fast_ledger.tell_outcomes(lambda line: print(line, file=sys.stderr))
            fast_cache.save_learned()  # the ledger's idle signature, when it changed
            return 0
    except Exception:
        pass

    from datachonk_hooks.prepush.hook import pre_push_main
    from datachonk_hooks.sanitize import sanitize  # paths and messages from the pushed commits

    def echo_json(data: object) -> None:
        import json

        print(json.dumps(data, indent=2))

    code = pre_push_main(
        remote=remote or None,
        url=url or None,
        dry_run=parsed.dry_run,
        as_json=parsed.as_json,
        env=None,
        stdin_lines=stdin_lines,
        echo=lambda line: print(sanitize(line, multiline=True), file=sys.stderr),
        echo_json=echo_json,
        started=started,
    )
    try:  # noqa: SIM105 (contextlib would be one more import on every push)
        fast_cache.save_learned()  # what the slow path read, for the next push's fast path
    except Exception:
        pass
    return code


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["pre-push"]:
        code = _fast_pre_push(args[1:])
        if code is not None:
            return code
    from datachonk_hooks.cli import main as cli_main

    return cli_main(args)
