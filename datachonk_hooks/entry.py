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


def _fast_pre_push(args: Sequence[str]) -> int | None:
    """Run `pre-push ARGS` directly, or None when click should parse them."""
    started = time.monotonic()  # the hook's time bound counts from here (see watchdog)
    options: dict[str, object] = {"dry_run": False, "as_json": False, "remote": None, "url": None}
    positional: list[str] = []
    items = iter(args)
    for arg in items:
        if arg in _FLAGS:
            options[_FLAGS[arg]] = True
        elif arg in _VALUES:
            value = next(items, None)
            if value is None:
                return None
            options[_VALUES[arg]] = value
        elif arg.startswith("-"):
            return None  # --help, or a mistake click should explain
        else:
            positional.append(arg)
    if len(positional) > 2:
        return None
    remote = options["remote"] or (positional[0] if positional else None)
    url = options["url"] or (positional[1] if len(positional) > 1 else None)

    read: list[list[str]] = []

    def stdin_lines() -> list[str]:
        """git's stdin, read once: the fast path and the normal one both see it."""
        if not read:
            read.append([] if sys.stdin.isatty() else sys.stdin.read().splitlines())
        return read[0]

    # Most pushes touch no model: answer those without importing pygit2 (see prefilter).
    # Like the hook itself, the fast path must never stop a push: on any surprise the
    # normal path decides.
    from datachonk_hooks.prepush import prefilter

    dry_run = bool(options["dry_run"] or options["as_json"])
    try:
        if prefilter.check(
            os.environ, stdin_lines, dry_run=dry_run, remote=str(remote) if remote else None
        ).skip:
            if not dry_run:  # how earlier runs ended, as the slow path would say it
                prefilter.tell_outcomes(lambda line: print(line, file=sys.stderr))
            prefilter.save_learned()  # the ledger's idle signature, when it changed
            return 0
    except Exception:
        pass

    from datachonk_hooks.prepush.hook import pre_push_main
    from datachonk_hooks.sanitize import sanitize  # paths and messages from the pushed commits

    def echo_json(data: object) -> None:
        import json

        print(json.dumps(data, indent=2))

    code = pre_push_main(
        remote=str(remote) if remote else None,
        url=str(url) if url else None,
        dry_run=bool(options["dry_run"]),
        as_json=bool(options["as_json"]),
        env=None,
        stdin_lines=stdin_lines,
        echo=lambda line: print(sanitize(line, multiline=True), file=sys.stderr),
        echo_json=echo_json,
        started=started,
    )
    try:  # noqa: SIM105 (contextlib would be one more import on every push)
        prefilter.save_learned()  # what the slow path read, for the next push's fast path
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
