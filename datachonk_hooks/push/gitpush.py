"""The `git push` command the hook runs under: its process, and what its command line asks.

A pre-push hook learns what git tells it, and under pre-commit (or prek) only the first ref
with something new. The `git push` process itself says more: whether it is a dry run (which
never lands) and whether it pushes several refs. Its pid also lets the landing waiter see
when the push is over. Standard library only, and `subprocess` only where there is no
/proc: the hook's fast path (`prefilter`) asks too.
"""

from __future__ import annotations

import os

#: `git push` options that take the next argument as their value
_VALUE_OPTIONS = frozenset({"-o", "--push-option", "--receive-pack", "--exec", "--repo"})
#: options that push more than the refs named: every branch, every ref
_MANY_REFS = frozenset({"--all", "--branches", "--mirror"})


def parent_and_args(pid: int) -> tuple[int, list[str]] | None:
    """(parent pid, argv) of a process, from /proc on Linux or `ps` elsewhere."""
    proc = f"/proc/{pid}"
    if os.path.isdir(proc):
        try:
            with open(f"{proc}/stat", encoding="utf-8", errors="replace") as stat_file:
                stat = stat_file.read()
            with open(f"{proc}/cmdline", "rb") as cmdline:
                argv = cmdline.read().split(b"\0")
        except OSError:
            return None
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        return parent, [a.decode(errors="replace") for a in argv if a]
    import subprocess

    try:
        done = subprocess.run(
            ["ps", "-o", "ppid=", "-o", "args=", "-p", str(pid)],
            capture_output=True,
            text=True,
            check=False,
            timeout=5,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    fields = done.stdout.split()
    if done.returncode != 0 or not fields or not fields[0].isdigit():
        return None
    return int(fields[0]), fields[1:]


class PushCommand:
    """A `git push` process and what its command line asks for.

    A plain class: `dataclasses` alone would cost the hook's fast path more than git does.
    """

    __slots__ = ("argv", "pid")

    def __init__(self, pid: int, argv: tuple[str, ...]) -> None:
        self.pid, self.argv = pid, argv

    def __repr__(self) -> str:
        return f"PushCommand({self.pid}, {self.argv!r})"

    def _parsed(self) -> tuple[list[str], list[str]]:
        """(the options in order, the positional arguments: repository, then refspecs)."""
        args = iter(self.argv[self.argv.index("push") + 1 :] if "push" in self.argv else ())
        flags: list[str] = []
        positional: list[str] = []
        for arg in args:
            if arg == "--":
                positional.extend(args)
            elif arg in _VALUE_OPTIONS:
                next(args, None)
            elif arg.startswith("--"):
                flags.append(arg.split("=", 1)[0])
            elif arg.startswith("-") and len(arg) > 1:
                for flag in arg[1:]:
                    if flag == "o":  # the rest is -o's value
                        break
                    flags.append(f"-{flag}")
            else:
                positional.append(arg)
        return flags, positional

    @property
    def dry_run(self) -> bool:
        """`-n`, `--dry-run` (also in a cluster such as `-fn`, or abbreviated as git allows:
        `--dry`), unless a later `--no-dry-run` undoes it: the push never lands."""
        flags, _ = self._parsed()
        dry = False
        for flag in flags:
            if flag == "-n" or (flag.startswith("--dr") and "--dry-run".startswith(flag)):
                dry = True
            elif flag.startswith("--no-dr") and "--no-dry-run".startswith(flag):
                dry = False
        return dry

    @property
    def several_refs(self) -> bool:
        """Whether the command pushes more than one ref (two refspecs, a glob, `--all`,
        `--mirror`)."""
        flags, positional = self._parsed()
        many = any(flag in _MANY_REFS for flag in flags)
        return many or len(positional) > 2 or any("*" in p for p in positional)

    @property
    def sources(self) -> tuple[str, ...]:
        """What the refspecs push (`main`, a sha, `HEAD`): their source sides, without
        deletes (`:dst`) and globs."""
        _, positional = self._parsed()
        sources = (spec.lstrip("+").split(":", 1)[0] for spec in positional[1:])
        return tuple(src for src in sources if src and "*" not in src)


_FOUND: dict[int, PushCommand | None] = {}


def git_push_command(start: int | None = None, max_depth: int = 8) -> PushCommand | None:
    """The `git push` process this hook runs under (through pre-commit, lefthook, a shell...),
    found by walking up the parents; None when there is none (a hook run by hand). Found
    once per process: the fast path and the hook both ask."""
    pid = start if start is not None else os.getppid()
    if pid not in _FOUND:
        _FOUND[pid] = _find(pid, max_depth)
    return _FOUND[pid]


def _find(pid: int, max_depth: int) -> PushCommand | None:
    for _ in range(max_depth):
        if pid <= 1:
            return None
        info = parent_and_args(pid)
        if info is None:
            return None
        parent, argv = info
        if argv and os.path.basename(argv[0]) in ("git", "git.exe") and "push" in argv[1:]:
            return PushCommand(pid, tuple(argv))
        pid = parent
    return None
