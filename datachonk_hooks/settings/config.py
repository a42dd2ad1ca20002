"""Settings from datachonk.yaml, the environment and command-line flags.

Everything a user can get wrong here becomes a one-line `ConfigError` that says where
(`datachonk.yaml:4:17: ...`, `DBT_CLOUD_HOST: ...`, `--job-id: ...`), because the message is all
a user sees in their `git push` output. The git hook imports this module on every push, so only
the standard library is imported at module level; ruamel.yaml is imported when a file is parsed.

This module finds and reads the file and lays the environment and the flags over it; the parts
live beside it: `defaults`, `records`, `values`, `detect_rules`, `yaml_reader`, `document`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Final

from datachonk_hooks.settings.defaults import (
    CONFIG_NAME,
    ENV_ACCOUNT_ID,
    ENV_HOST,
    ENV_JOB_ID,
    ENV_PROJECT_ID,
)
from datachonk_hooks.settings.document import settings_from_text
from datachonk_hooks.settings.messages import config_error
from datachonk_hooks.settings.records import (
    Overrides,
    Settings,
)
from datachonk_hooks.settings.values import normalize_host, parse_id, parse_timeout

__all__ = [
    "find_config_file",
    "load_settings",
    "load_settings_file",
    "read_config_text",
]


_NO_OVERRIDES: Final = Overrides()


def load_settings(
    text: str | None,
    *,
    source: str,
    env: Mapping[str, str],
    overrides: Overrides = _NO_OVERRIDES,
) -> Settings:
    """Settings from datachonk.yaml text (None = no file), the environment and flags.

    `source` labels the file in messages: a path, or `datachonk.yaml@abc1234` for a committed file.
    """
    settings = Settings() if text is None else settings_from_text(text, source)
    host = settings.host
    if overrides.host is not None:
        host = normalize_host(overrides.host, where="--host")
    elif (env_host := _env(env, ENV_HOST)) is not None:
        host = normalize_host(env_host, where=ENV_HOST)
    timeout = settings.timeout
    if overrides.timeout is not None:
        timeout = parse_timeout(overrides.timeout, where="--timeout")
    return replace(
        settings,
        host=host,
        account_id=_pick_id(settings.account_id, env, ENV_ACCOUNT_ID, overrides.account_id),
        project_id=_pick_id(settings.project_id, env, ENV_PROJECT_ID, overrides.project_id),
        job_id=_pick_id(settings.job_id, env, ENV_JOB_ID, overrides.job_id),
        timeout=timeout,
    )


def load_settings_file(
    path: Path | None, *, env: Mapping[str, str], overrides: Overrides = _NO_OVERRIDES
) -> Settings:
    """`load_settings` for a file on disk; None or a missing file means there is no file."""
    if path is None:
        return load_settings(None, source=CONFIG_NAME, env=env, overrides=overrides)
    text = read_config_text(path)
    return load_settings(text, source=str(path), env=env, overrides=overrides)


def read_config_text(path: Path) -> str | None:
    """The file's text (None when it does not exist), or a ConfigError naming the path.

    Newlines and a BOM are kept as they are, so an edit can write every other byte back.
    A file over `limits.MAX_FILE_BYTES` is an error before it is read.
    """
    from datachonk_hooks.push.limits import MAX_FILE_BYTES, too_large

    try:
        size = path.stat().st_size
        if size > MAX_FILE_BYTES and path.is_file():
            raise config_error(too_large(str(path), size))
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise config_error(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise config_error(
            f"{path}:{line}:{column}: not UTF-8 text (byte 0x{data[exc.start]:02x});"
            " save the file as UTF-8"
        ) from None


def find_config_file(start: Path, stop: Path | None = None) -> Path | None:
    """datachonk.yaml in `start` or its parents, up to `stop` (the repo root) inclusive.

    Without `stop`, or when `stop` is not above `start`, the search goes up to the filesystem root.
    """
    current = start.resolve()
    if not current.is_dir():
        current = current.parent
    last = stop.resolve() if stop is not None else None
    while True:
        candidate = current / CONFIG_NAME
        try:
            if candidate.is_file():
                return candidate
        except OSError:  # e.g. a directory we may not look into: as if there were no file
            pass
        if current in (last, current.parent):
            return None
        current = current.parent


def _pick_id(
    from_file: int | None, env: Mapping[str, str], name: str, flag: int | None
) -> int | None:
    """flag > environment > file; an environment value a flag overrides is not even read."""
    if flag is not None:
        return parse_id(
            flag, where="--" + name.removeprefix("DBT_CLOUD_").lower().replace("_", "-")
        )
    raw = _env(env, name)
    return from_file if raw is None else parse_id(raw, where=name)


def _env(env: Mapping[str, str], name: str) -> str | None:
    """An environment value; empty or blank counts as unset."""
    value = env.get(name, "").strip()
    return value or None
