"""Domain errors and the exit codes they map to.

Every module raises one of these; only the CLI edge turns them into a one-line message and
an exit code, so no traceback ever reaches a user's terminal or their `git push` output.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """The documented exit codes of every command and of the hook."""

    OK = 0
    RUN_ERROR = 1
    USAGE = 2
    RUN_CANCELLED = 3
    TIMEOUT = 4
    API = 5
    INTERNAL = 70


class DatachonkError(Exception):
    """Base of every error a user can meet; `str(err)` is the one-line message."""

    exit_code: ExitCode = ExitCode.USAGE


class ConfigError(DatachonkError):
    """datachonk.yaml, the environment or a flag is wrong; the message says where."""

    exit_code = ExitCode.USAGE


class GitError(DatachonkError):
    """The repository or a ref could not be read."""

    exit_code = ExitCode.USAGE
