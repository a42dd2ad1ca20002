"""Settings from datachonk.yaml, the environment and command-line flags.

Everything a user can get wrong here becomes a one-line `ConfigError` that says where
(`datachonk.yaml:4:17: ...`, `DBT_CLOUD_HOST: ...`, `--job-id: ...`), because the message is all
a user sees in their `git push` output. The git hook imports this module on every push, so only
the standard library is imported at module level; ruamel.yaml is imported when a file is parsed.
"""

from __future__ import annotations

import datetime
import ipaddress
import re
import string
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from fnmatch import fnmatchcase
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.push.cause import MAX_CAUSE

#: what an access URL looks like, for messages (dbt Cloud gives every account its own)
EXAMPLE_HOST: Final = "https://ab123.us1.dbt.com"
DEFAULT_MARKER: Final = r"(?i)generated\s+(by|with)\s+datachonk"
DEFAULT_TRAILER: Final = "Generated-by: DataChonk"
DEFAULT_CAUSE: Final = "{subject}"
DEFAULT_TIMEOUT: Final = 3600
DEFAULT_REMOTE: Final = "origin"
CAUSE_FIELDS: Final = ("subject", "sha", "short_sha", "branch", "author", "commits", "models")
CONFIG_NAME: Final = "datachonk.yaml"

ENV_TOKEN: Final = "DBT_CLOUD_API_TOKEN"
ENV_ACCOUNT_ID: Final = "DBT_CLOUD_ACCOUNT_ID"
ENV_PROJECT_ID: Final = "DBT_CLOUD_PROJECT_ID"
ENV_JOB_ID: Final = "DBT_CLOUD_JOB_ID"
ENV_HOST: Final = "DBT_CLOUD_HOST"

MAX_ID: Final = 2**63 - 1  # dbt Cloud ids are 64-bit; cell-based accounts use 14 digits
MAX_TIMEOUT: Final = 7 * 24 * 3600

# CLOUD_KEYS, the keys allowed under deploy.dbt_cloud, is built from the value parsers at the end
DETECT_KEYS: Final = ("marker", "trailer")
JOB_KEYS: Final = (
    "branch",
    "job_id",
    "schema_override",
    "select_changed",
    "wait",
    "follow",
    "auto_trigger",
)
MAX_SCHEMA: Final = 63  # the shortest common limit (PostgreSQL identifiers)

_CLOUD = "deploy.dbt_cloud"
# A key under `deploy` named like a credential: token, api_key, service_token, password, ...
_SECRET_KEY = re.compile(r"(?:^|_)(?:token|api_?key|secret|password|passwd)$")
# Values never quoted back in a message: dbt Cloud token prefixes and long opaque strings.
_SECRET_VALUE = re.compile(r"(?i)\bdbt[cu]_|^[A-Za-z0-9_\-]{32,}$")
_LINE_BREAKS = re.compile(r"[\n\r\v\f\x1c-\x1e\x85\u2028\u2029]")
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_.\-]+")
_DIGITS = re.compile(r"[0-9]+")
_TRAILER = re.compile(r"[A-Za-z0-9][A-Za-z0-9\-]*:[ \t]*\S[^\r\n]*")
_HOST_LABEL = r"[a-z0-9_](?:[a-z0-9_\-]{0,61}[a-z0-9_])?"
_HOST_NAME = re.compile(rf"{_HOST_LABEL}(?:\.{_HOST_LABEL})*\.?")
_TOKEN_HELP = (
    "an API token must not be written in datachonk.yaml (it would be committed); remove it and"
    f" set {ENV_TOKEN}, or run `datachonk-hook connect` to store it safely"
)

_Pos = tuple[int, int]  # 1-based line and column


@dataclass(frozen=True)
class JobRoute:
    """A `jobs:` entry: pushes to branches matching the glob trigger this job.

    `job_id` None (`job_id: null` in the file) means "never trigger for these branches";
    the other fields, when set, beat the top-level values for these branches.
    """

    branch: str  # fnmatch glob, matched case-sensitively like git branch names
    job_id: int | None
    schema_override: str | None = None  # may use {branch}, made safe for a schema name
    select_changed: bool | None = None
    wait: bool | None = None
    follow: bool | None = None
    auto_trigger: bool | None = None


@dataclass(frozen=True)
class JobTarget:
    """What a branch resolves to: the job (None = do not trigger) and its run options."""

    job_id: int | None
    auto_trigger: bool
    select_changed: bool
    wait: bool
    #: the landing waiter follows the run to its end and records how it ended
    follow: bool
    schema_override: str | None
    #: where it came from, for `doctor` and dry runs: "jobs[0] (branch main)" or "job_id"
    source: str


def schema_name(branch: str) -> str:
    """A branch name made safe for a warehouse schema: [a-z0-9_], at most 63 characters."""
    safe = re.sub(r"[^a-z0-9_]+", "_", branch.lower()).strip("_")
    return (safe or "branch")[:MAX_SCHEMA]


@dataclass(frozen=True)
class DetectRules:
    """How a DataChonk-generated model or commit is recognised."""

    marker: str = DEFAULT_MARKER
    trailer: str = DEFAULT_TRAILER


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; None = not given. They beat the environment and the file."""

    host: str | None = None
    account_id: int | None = None
    project_id: int | None = None
    job_id: int | None = None
    timeout: int | None = None


_NO_OVERRIDES: Final = Overrides()

#: how a host is set, for the no-host message of everything that reads the settings
SET_HOST: Final = f"set {_CLOUD}.host in {CONFIG_NAME} (or {ENV_HOST})"


class NoHostError(ConfigError):
    """No dbt Cloud host is configured (exit 2).

    There is no default host: the legacy https://cloud.getdbt.com stopped serving API
    clients on 2026-11-01, and every account has its own access URL, which only its owner
    can look up. So the message says what is missing, how to set it (`how`, which differs
    for `connect` and the local API) and where to find the value, in one line.
    """

    def __init__(self, how: str = SET_HOST) -> None:
        super().__init__(
            f"no dbt Cloud host: {how} to your account's access URL, shown in dbt Cloud under"
            f" Account settings; it looks like {EXAMPLE_HOST}"
        )


@dataclass(frozen=True)
class Settings:
    """The validated configuration, after flags > environment > datachonk.yaml > defaults."""

    #: normalised: scheme://host[:port], no trailing slash, no path; None when not configured
    #: (there is no default: see NoHostError), so each use decides, `require_host` or not
    host: str | None = None
    account_id: int | None = None
    project_id: int | None = None
    job_id: int | None = None
    auto_trigger: bool = True
    jobs: tuple[JobRoute, ...] = ()
    cause: str = DEFAULT_CAUSE
    select_changed: bool = False
    wait: bool = False
    #: the landing waiter follows pushed runs to their end (the outcome lines)
    follow: bool = True
    #: a desktop notification when a followed run ends
    notify: bool = False
    timeout: int = DEFAULT_TIMEOUT
    detect: DetectRules = field(default_factory=DetectRules)
    cancel_superseded: bool = False
    #: the git remote dbt Cloud builds from; pushes to any other remote trigger nothing
    remote: str = DEFAULT_REMOTE
    source: str | None = None  # label of the file the values came from; None if there was none

    @property
    def configured(self) -> bool:
        """True when an account id is known, i.e. a dbt Cloud connection is set up."""
        return self.account_id is not None

    def require_host(self) -> str:
        """The host, or the NoHostError that says how to set it and where to find it."""
        if self.host is None:
            raise NoHostError()
        return self.host

    def require_account_id(self) -> int:
        """The account id, or a ConfigError that says the ways to set one."""
        if self.account_id is None:
            raise ConfigError(
                f"no dbt Cloud account id: set {ENV_ACCOUNT_ID} or {_CLOUD}.account_id in"
                f" {CONFIG_NAME}, or run `datachonk-hook connect`"
            )
        return self.account_id

    def target_for_branch(self, branch: str | None) -> JobTarget:
        """The first `jobs:` entry whose glob matches the branch, else the top-level values."""
        name = branch.removeprefix("refs/heads/") if branch is not None else None
        for index, route in enumerate(self.jobs):
            if name is not None and fnmatchcase(name, route.branch):
                schema = route.schema_override
                return JobTarget(
                    job_id=route.job_id,
                    auto_trigger=_first(route.auto_trigger, self.auto_trigger),
                    select_changed=_first(route.select_changed, self.select_changed),
                    wait=_first(route.wait, self.wait),
                    follow=_first(route.follow, self.follow),
                    schema_override=(
                        schema.replace("{branch}", schema_name(name)) if schema else None
                    ),
                    source=f"jobs[{index}] (branch {route.branch})",
                )
        return JobTarget(
            job_id=self.job_id,
            auto_trigger=self.auto_trigger,
            select_changed=self.select_changed,
            wait=self.wait,
            follow=self.follow,
            schema_override=None,
            source="job_id",
        )

    def require_job_id(self, branch: str | None = None, explicit: int | None = None) -> int:
        """The job to trigger: `explicit` (a --job-id flag) > branch route > job_id."""
        if explicit is not None:
            return _parse_id(explicit, where="--job-id")
        job_id = self.target_for_branch(branch).job_id
        if job_id is not None:
            return job_id
        for_branch = f" for branch {_show(branch)}" if branch else ""
        raise _error(
            f"no dbt Cloud job id{for_branch}: pass --job-id, set {ENV_JOB_ID}, or set"
            f" {_CLOUD}.job_id (or a jobs: entry for the branch) in {CONFIG_NAME}"
        )

    def manual_job(self, branch: str | None, explicit: int | None = None) -> tuple[int, str]:
        """(job, the setting that chose it) for a run asked for by hand: `explicit`, else the
        branch's route, else the top-level job_id, also when the route says never to
        trigger on push (asking by hand is explicit)."""
        if explicit is not None:
            return self.require_job_id(branch, explicit=explicit), "--job-id"
        target = self.target_for_branch(branch)
        if target.job_id is not None:
            return target.job_id, target.source
        return self.require_job_id(None), "job_id"


def _first(value: bool | None, fallback: bool) -> bool:
    return fallback if value is None else value


def normalize_host(value: str, *, where: str) -> str:
    """`scheme://host[:port]` from a URL or a bare host name; https unless the host is loopback.

    The token travels in a header to this host, so anything but TLS to a remote host is refused.
    """
    raw = value.strip()
    if "@" in raw:  # never quoted back: it may hold a password
        raise _error(f"{where}: a host URL must not contain a user name or password")
    shown = _show(raw)
    expected = f"expected the account's access URL such as {EXAMPLE_HOST}"
    if not raw or any(char.isspace() for char in raw):
        raise _error(f"{where}: {expected}, got {shown}")
    url = raw if "://" in raw else f"https://{raw}"
    url = url.removesuffix("/")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise _error(f"{where}: {expected}, got {shown} ({exc})") from None
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http"):
        raise _error(f"{where}: {expected}, got {shown} (only https:// URLs are supported)")
    hostname = parts.hostname or ""
    if not _valid_hostname(hostname) or port == 0:
        raise _error(f"{where}: {expected}, got {shown} (not a valid host name)")
    if parts.path or parts.query or parts.fragment or url.endswith(("?", "#")):
        raise _error(f"{where}: {expected} without a path, got {shown}")
    if scheme == "http" and not _is_loopback(hostname):
        raise _error(
            f"{where}: {shown} uses http://, so the API token would travel unencrypted;"
            " https is required (http is allowed only for localhost and loopback addresses)"
        )
    netloc = f"[{hostname}]" if ":" in hostname else hostname
    return f"{scheme}://{netloc}" + (f":{port}" if port is not None else "")


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
    settings = Settings() if text is None else _settings_from_text(text, source)
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
            raise _error(too_large(str(path), size))
        data = path.read_bytes()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise _error(f"{path}: cannot read the file ({exc.strerror or exc})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        raise _error(
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


# --- the file ---------------------------------------------------------------------------------


def _settings_from_text(text: str, source: str) -> Settings:
    """Settings from the file alone (file > defaults), validated with positions."""
    from datachonk_hooks.push.limits import MAX_PARSE_BYTES

    if len(text) > MAX_PARSE_BYTES:
        document, root = _parse_deploy_section(text, source)
    else:
        document, root = _parse_yaml(text, source)
    if document is None:
        return Settings(source=source)
    if not isinstance(document, Mapping):
        raise _error(
            f"{_at(source, root)}: expected a mapping at the top level, got {_show(document)}"
        )
    if "deploy" not in document:
        return Settings(source=source)
    deploy = document["deploy"]
    deploy_pos = _value_pos(document, "deploy", _key_pos(document, "deploy", root))
    if deploy is None:
        return Settings(source=source)
    if not isinstance(deploy, Mapping):
        raise _error(f"{_at(source, deploy_pos)}: deploy: expected a mapping, got {_show(deploy)}")
    _refuse_secrets(deploy, source, deploy_pos)
    cloud = deploy.get("dbt_cloud")
    if cloud is None:
        return Settings(source=source)
    cloud_pos = _value_pos(deploy, "dbt_cloud", deploy_pos)
    if not isinstance(cloud, Mapping):
        raise _error(f"{_at(source, cloud_pos)}: {_CLOUD}: expected a mapping, got {_show(cloud)}")
    return _cloud_settings(cloud, source, cloud_pos)


def _cloud_settings(cloud: Mapping[Any, Any], source: str, pos: _Pos) -> Settings:
    """The `deploy.dbt_cloud` mapping as Settings; null values mean "not set"."""
    settings = Settings(source=source)
    for key, value in cloud.items():
        key_pos = _key_pos(cloud, key, pos)
        _check_known(key, CLOUD_KEYS, _CLOUD, _at(source, key_pos))
        if value is None:
            continue
        value_pos = _value_pos(cloud, key, key_pos)
        where = f"{_at(source, value_pos)}: {_CLOUD}.{key}"
        if key == "jobs":
            settings = replace(settings, jobs=_parse_jobs(value, source, value_pos))
        elif key == "detect":
            settings = replace(settings, detect=_parse_detect(value, source, value_pos))
        else:
            parse = _VALUE_PARSERS[key]
            settings = replace(settings, **{key: parse(value, where=where)})
    return settings


def _parse_jobs(value: object, source: str, pos: _Pos) -> tuple[JobRoute, ...]:
    """The `jobs:` list of branch routes, in file order (the first match wins)."""
    path = f"{_CLOUD}.jobs"
    if not isinstance(value, list):
        raise _error(
            f"{_at(source, pos)}: {path}: expected a list of entries with branch and job_id,"
            f" got {_show(value)}"
        )
    routes: list[JobRoute] = []
    for index, entry in enumerate(value):
        entry_path = f"{path}[{index}]"
        entry_pos = _item_pos(value, index, pos)
        if not isinstance(entry, Mapping):
            raise _error(
                f"{_at(source, entry_pos)}: {entry_path}: expected a mapping with branch and"
                f" job_id, got {_show(entry)}"
            )
        branch: str | None = None
        options: dict[str, Any] = {}
        for key, item in entry.items():
            key_pos = _key_pos(entry, key, entry_pos)
            _check_known(key, JOB_KEYS, entry_path, _at(source, key_pos))
            item_pos = key_pos if item is None else _value_pos(entry, key, key_pos)
            where = f"{_at(source, item_pos)}: {entry_path}.{key}"
            if key == "branch":
                branch = _parse_branch(item, where=where)
            elif item is None:
                options[key] = None  # job_id: null = never trigger; others: not set
            elif key == "job_id":
                options[key] = _parse_id(item, where=where)
            elif key == "schema_override":
                options[key] = _parse_schema(item, where=where)
            else:
                options[key] = _parse_bool(item, where=where)
        if branch is None:
            raise _error(f"{_at(source, entry_pos)}: {entry_path}: missing branch")
        if "job_id" not in options:
            raise _error(
                f"{_at(source, entry_pos)}: {entry_path}: missing job_id (use job_id: null to"
                " never trigger for these branches)"
            )
        routes.append(JobRoute(branch=branch, **options))
    return tuple(routes)


def _parse_schema(value: object, *, where: str) -> str:
    """A schema_override: a schema name, optionally with a {branch} placeholder."""
    if not isinstance(value, str) or not value.strip():
        raise _error(f"{where}: expected a schema name such as dbt_{{branch}}, got {_show(value)}")
    rest = value.replace("{branch}", "x")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", rest):
        raise _error(
            f"{where}: {_show(value)} is not a schema name: use letters, digits and _, and"
            " {branch} for the branch name"
        )
    return value


def _parse_detect(value: object, source: str, pos: _Pos) -> DetectRules:
    """The `detect:` mapping; null values keep the defaults."""
    path = f"{_CLOUD}.detect"
    if not isinstance(value, Mapping):
        raise _error(f"{_at(source, pos)}: {path}: expected a mapping, got {_show(value)}")
    rules = DetectRules()
    for key, item in value.items():
        key_pos = _key_pos(value, key, pos)
        _check_known(key, DETECT_KEYS, path, _at(source, key_pos))
        if item is None:
            continue
        where = f"{_at(source, _value_pos(value, key, key_pos))}: {path}.{key}"
        if key == "marker":
            rules = replace(rules, marker=_parse_marker(item, where=where))
        else:
            rules = replace(rules, trailer=_parse_trailer(item, where=where))
    return rules


def _check_known(key: object, known: tuple[str, ...], path: str, at: str) -> None:
    """A ConfigError for a key not in `known`, with a "did you mean" hint for typos."""
    if isinstance(key, str) and key in known:
        return
    hint = ""
    if isinstance(key, str):
        import difflib

        close = difflib.get_close_matches(key, known, n=1)
        hint = f" (did you mean {close[0]}?)" if close else ""
    raise _error(f"{at}: unknown key {path}.{_show_key(key)}{hint}")


def _refuse_secrets(deploy: Mapping[Any, Any], source: str, pos: _Pos) -> None:
    """A ConfigError for any key under `deploy` named like a credential; its value is never shown.

    Walks iteratively with a seen-set, since YAML aliases can make the tree share or loop nodes.
    """
    stack: list[tuple[object, str, _Pos]] = [(deploy, "deploy", pos)]
    seen: set[int] = set()
    while stack:
        node, path, node_pos = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        children: list[tuple[object, str, _Pos]] = []
        if isinstance(node, Mapping):
            for key, value in node.items():
                key_pos = _key_pos(node, key, node_pos)
                if isinstance(key, str) and _SECRET_KEY.search(_normal_key(key)):
                    raise _error(f"{_at(source, key_pos)}: {path}.{_show_key(key)}: {_TOKEN_HELP}")
                if isinstance(value, (Mapping, list)):
                    child_pos = _value_pos(node, key, key_pos)
                    children.append((value, f"{path}.{_show_key(key)}", child_pos))
        elif isinstance(node, list):
            for index, item in enumerate(node):
                if isinstance(item, (Mapping, list)):
                    children.append((item, f"{path}[{index}]", _item_pos(node, index, node_pos)))
        stack.extend(reversed(children))


def _normal_key(key: str) -> str:
    return re.sub(r"[\s\-]+", "_", key.strip().lower())


# --- YAML -------------------------------------------------------------------------------------


def _parse_deploy_section(text: str, source: str) -> tuple[object, _Pos]:
    """The top-level `deploy:` entry of a large file, parsed alone, as `_parse_yaml` gives it.

    ruamel parses 8 to 30 microseconds a byte here, so a datachonk.yaml over MAX_PARSE_BYTES
    (DataChonk's other sections, or a hostile push) is not parsed whole: the `deploy:` lines
    are cut out and parsed with the file's own line numbers. That needs a block mapping at
    the top level, as DataChonk writes it.
    """
    from datachonk_hooks.push.limits import (
        MAX_PARSE_BYTES,
        first_top_level,
        show_size,
        top_level_sections,
    )

    first = first_top_level(text)
    if first[:1] in ("{", "[", "-", "?", "&", "*", "!", "|", ">"):
        raise _error(
            f"{source}: over {show_size(MAX_PARSE_BYTES)}, so only its top-level `deploy:`"
            " entry is read, and that needs a block mapping at the top level (`deploy:` at"
            " the start of a line)"
        )
    sections = top_level_sections(text, "deploy")
    if not sections:
        return None, (1, 1)
    if len(sections) > 1:
        raise _error(f"{_at(source, (sections[1][0] + 1, 1))}: invalid YAML: duplicate key deploy")
    line, section = sections[0]
    if len(section) > MAX_PARSE_BYTES:
        raise _error(
            f"{_at(source, (line + 1, 1))}: deploy: too large ({len(section)} characters,"
            f" limit {show_size(MAX_PARSE_BYTES)})"
        )
    return _parse_yaml(section, source, first_line=line)


def _parse_yaml(text: str, source: str, *, first_line: int = 0) -> tuple[object, _Pos]:
    """The document as ruamel round-trip objects (they carry positions) and where it starts.

    ruamel is imported here, not at module level: the hook imports this module on every push.
    Every failure of the parser, including the odd non-YAML exception from a tag such as
    `!!int x`, becomes one `invalid YAML` ConfigError with a position. Nesting is capped
    (`limits.guard_yaml`; aliases are shared, not copied, by this loader, so they are
    harmless); `first_line` (0-based) is where `text` starts in its file.
    """
    import warnings

    from ruamel.yaml import YAML
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.constructor import ConstructorError, RoundTripConstructor
    from ruamel.yaml.error import MarkedYAMLError, YAMLError
    from ruamel.yaml.reader import ReaderError

    from datachonk_hooks.push.limits import guard_yaml

    class Constructor(RoundTripConstructor):
        """Round-trip constructor that reports duplicate keys and odd failures with a position."""

        def construct_object(self, node: Any, deep: bool = False) -> Any:
            try:
                return super().construct_object(node, deep=deep)
            except YAMLError:
                raise
            except Exception:
                problem = f"cannot read this {_tag_name(node)} value"
                raise ConstructorError(None, None, problem, node.start_mark) from None

        def construct_document(self, node: Any) -> Any:
            # Deferred parts of collections (e.g. a `!!omap` with a repeated key) fail here.
            try:
                return super().construct_document(node)
            except YAMLError:
                raise
            except Exception:
                problem = "cannot read this document"
                raise ConstructorError(None, None, problem, node.start_mark) from None

        def check_mapping_key(
            self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
        ) -> bool:
            self._refuse_duplicate(key_node, mapping, key)
            return True

        def check_set_key(self, node: Any, key_node: Any, setting: Any, key: Any) -> None:
            self._refuse_duplicate(key_node, setting, key)

        def _refuse_duplicate(self, key_node: Any, container: Any, key: Any) -> None:
            try:
                duplicate = key in container
            except TypeError:
                raise ConstructorError(None, None, "unhashable key", key_node.start_mark) from None
            if duplicate:
                problem = f"duplicate key {_show_key(key)}"
                raise ConstructorError(None, None, problem, key_node.start_mark)

        def construct_plain_bool(self, node: Any) -> bool:
            # ruamel makes an anchored boolean an int subclass; ids must not accept it.
            return bool(self.construct_yaml_bool(node))

    Constructor.add_constructor("tag:yaml.org,2002:bool", Constructor.construct_plain_bool)

    yaml = YAML(typ="rt")
    yaml.Constructor = Constructor
    guard_yaml(yaml, first_line=first_line, aliases=True)
    try:
        with warnings.catch_warnings():  # e.g. a reused anchor: noise in `git push` output
            warnings.simplefilter("ignore")
            document = yaml.load(text)
            root = _node_pos(document, (1, 1))
            if document is not None and getattr(document, "lc", None) is None:
                node = yaml.compose(text)  # a bare scalar has no positions; its node does
                root = (node.start_mark.line + 1, node.start_mark.column + 1)
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise _error(f"{_at(source, pos)}: invalid YAML: nested too deeply") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        pos = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        problem = exc.problem or exc.context or "malformed document"
        raise _error(
            f"{_at(source, pos)}: invalid YAML: {' '.join(str(problem).split())}"
        ) from None
    except ReaderError as exc:
        pos = _offset_pos(text, exc.position if isinstance(exc.position, int) else 0)
        code = (
            f"character #x{exc.character:04x}" if isinstance(exc.character, int) else "a character"
        )
        raise _error(f"{_at(source, pos)}: invalid YAML: {code} is not allowed") from None
    except (YAMLError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise _error(f"{_at(source, (1, 1))}: invalid YAML: {reason}") from None
    result: object = document
    return result, root


def _tag_name(node: Any) -> str:
    tag = str(getattr(node, "tag", "") or "")
    return "!!" + tag.rsplit(":", 1)[-1] if tag.startswith("tag:yaml.org,2002:") else "tagged"


def _offset_pos(text: str, offset: int) -> _Pos:
    offset = max(0, min(offset, len(text)))
    return text.count("\n", 0, offset) + 1, offset - (text.rfind("\n", 0, offset) + 1) + 1


def _lc_entry(container: object, key: object) -> list[int] | None:
    """ruamel's 0-based [line, col, ...] for a key or index; None when it has none (merges)."""
    data = getattr(getattr(container, "lc", None), "data", None)
    if not isinstance(data, dict):
        return None
    try:
        entry = data.get(key)
    except TypeError:
        return None
    if isinstance(entry, list) and all(isinstance(number, int) for number in entry):
        return entry
    return None


def _key_pos(mapping: object, key: object, fallback: _Pos) -> _Pos:
    entry = _lc_entry(mapping, key)
    return (entry[0] + 1, entry[1] + 1) if entry is not None and len(entry) >= 2 else fallback


def _value_pos(mapping: object, key: object, fallback: _Pos) -> _Pos:
    entry = _lc_entry(mapping, key)
    return (entry[2] + 1, entry[3] + 1) if entry is not None and len(entry) >= 4 else fallback


def _item_pos(sequence: object, index: int, fallback: _Pos) -> _Pos:
    return _key_pos(sequence, index, fallback)


def _node_pos(node: object, fallback: _Pos) -> _Pos:
    lc = getattr(node, "lc", None)
    line, column = getattr(lc, "line", None), getattr(lc, "col", None)
    if isinstance(line, int) and isinstance(column, int):
        return line + 1, column + 1
    return fallback


# --- values -----------------------------------------------------------------------------------


def _parse_id(value: object, *, where: str) -> int:
    """A dbt Cloud id: a positive 64-bit integer, also given as a string of digits."""
    number = _as_int(value)
    if number is None or number < 1:
        raise _error(f"{where}: expected a positive integer id, got {_show(value)}")
    if number > MAX_ID:
        raise _error(
            f"{where}: expected a positive integer id, got {_show(value)}"
            f" (ids are at most {MAX_ID})"
        )
    return number


def parse_timeout(value: object, *, where: str) -> int:
    """Seconds to watch a run: a positive integer, at most MAX_TIMEOUT (7 days)."""
    number = _as_int(value)
    if number is None or not 1 <= number <= MAX_TIMEOUT:
        raise _error(
            f"{where}: expected a positive number of seconds, at most {MAX_TIMEOUT} (7 days),"
            f" got {_show(value)}"
        )
    return number


def _as_int(value: object) -> int | None:
    """An int from a YAML/flag int or a string of ASCII digits; None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return int(value)
    if isinstance(value, str) and _DIGITS.fullmatch(digits := value.strip()):
        return int(digits) if len(digits) <= 100 else MAX_ID + 1
    return None


def _parse_bool(value: object, *, where: str) -> bool:
    if not isinstance(value, bool):
        raise _error(f"{where}: expected true or false, got {_show(value)}")
    return value


def _parse_host(value: object, *, where: str) -> str:
    if not isinstance(value, str):
        raise _error(f"{where}: expected the account's access URL, got {_show(value)}")
    return normalize_host(str(value), where=where)


def _parse_cause(value: object, *, where: str) -> str:
    """A str.format template over CAUSE_FIELDS, checked now so a push never fails on it."""
    allowed = ", ".join("{" + name + "}" for name in CAUSE_FIELDS)
    if not isinstance(value, str) or not value.strip():
        raise _error(f"{where}: expected a non-empty text with placeholders {allowed}")
    template = str(value)
    try:
        fields = list(string.Formatter().parse(template))
    except ValueError as exc:
        raise _error(
            f"{where}: invalid template ({exc}); placeholders allowed: {allowed}"
        ) from None
    for _text, name, spec, conversion in fields:
        if name is None:
            continue
        placeholder = (
            "{"
            + name
            + (f"!{conversion}" if conversion else "")
            + (f":{spec}" if spec else "")
            + "}"
        )
        if name not in CAUSE_FIELDS or "{" in (spec or ""):
            raise _error(
                f"{where}: unknown placeholder {_show(placeholder)};"
                f" placeholders allowed: {allowed}"
            )
        # A cause is cut to MAX_CAUSE characters: a larger width only costs memory and
        # time on every push ("{subject:>1000000000}" builds a gigabyte), so refuse it.
        if any(int(number) > MAX_CAUSE for number in re.findall(r"\d+", spec or "")):
            raise _error(
                f"{where}: {_show(placeholder)} asks for more than {MAX_CAUSE} characters,"
                f" the longest cause dbt Cloud gets; use a width of at most {MAX_CAUSE}"
            )
    try:
        template.format(**dict.fromkeys(CAUSE_FIELDS, "text"))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise _error(
            f"{where}: invalid template ({exc}); placeholders allowed: {allowed}"
        ) from None
    return template


def _parse_marker(value: object, *, where: str) -> str:
    """A regular expression that compiles and cannot take exponential time (`safe_regex`):
    the pattern comes from a pushed file and runs in every push's hook."""
    from datachonk_hooks.settings.safe_regex import UnsafePatternError, check_pattern

    if not isinstance(value, str) or not value.strip():
        raise _error(f"{where}: expected a non-empty regular expression, got {_show(value)}")
    try:
        check_pattern(value)
        re.compile(value)
    except UnsafePatternError as exc:
        raise _error(f"{where}: refused regular expression {_show(value)}: {exc}") from None
    except (re.error, OverflowError, RecursionError, ValueError) as exc:
        raise _error(f"{where}: invalid regular expression: {exc}") from None
    return str(value)


def _parse_trailer(value: object, *, where: str) -> str:
    if not isinstance(value, str) or not _TRAILER.fullmatch(value):
        raise _error(
            f"{where}: expected a commit trailer like {_show(DEFAULT_TRAILER)} (Key: value),"
            f" got {_show(value)}"
        )
    return str(value)


def _parse_branch(value: object, *, where: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _error(
            f"{where}: expected a branch name or glob such as 'main' or 'feature/*'"
            f" (quote it if it looks like a number), got {_show(value)}"
        )
    return str(value)


def _parse_remote(value: object, *, where: str) -> str:
    """A git remote name: what `git remote` lists, so no spaces, slashes at the ends or `:`."""
    if (
        not isinstance(value, str)
        or not value
        or any(c.isspace() or c in ":\\?*[~^" for c in value)
        or value.startswith(("-", "/"))
        or value.endswith("/")
    ):
        raise _error(
            f"{where}: expected the name of a git remote such as {_show(DEFAULT_REMOTE)}"
            f" (see `git remote`), got {_show(value)}"
        )
    return str(value)


def _pick_id(
    from_file: int | None, env: Mapping[str, str], name: str, flag: int | None
) -> int | None:
    """flag > environment > file; an environment value a flag overrides is not even read."""
    if flag is not None:
        return _parse_id(
            flag, where="--" + name.removeprefix("DBT_CLOUD_").lower().replace("_", "-")
        )
    raw = _env(env, name)
    return from_file if raw is None else _parse_id(raw, where=name)


def _env(env: Mapping[str, str], name: str) -> str | None:
    """An environment value; empty or blank counts as unset."""
    value = env.get(name, "").strip()
    return value or None


# --- messages ---------------------------------------------------------------------------------


def _error(message: str) -> ConfigError:
    """A ConfigError whose message is guaranteed to be one line."""
    return ConfigError(_LINE_BREAKS.sub(lambda m: repr(m.group())[1:-1], message))


def _at(source: str, pos: _Pos) -> str:
    return f"{source}:{pos[0]}:{pos[1]}"


def _show_key(key: object) -> str:
    if isinstance(key, str) and _PLAIN_KEY.fullmatch(key):
        return str(key)
    return _show(key)


def _show(value: object) -> str:
    """A short, one-line rendering of a bad value; anything that looks like a token is hidden."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(int(value)) if value.bit_length() <= 256 else "a very large integer"
    if isinstance(value, float):
        return repr(float(value))
    if isinstance(value, str):
        if _SECRET_VALUE.search(value.strip()):
            return "a value that looks like an API token (not shown)"
        return repr(str(value) if len(value) <= 60 else value[:57] + "...")
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, (list, tuple)):
        return "a list"
    if isinstance(value, (set, frozenset)):
        return "a set"
    return "a tagged value" if hasattr(value, "tag") else f"a {type(value).__name__}"


def _valid_hostname(hostname: str) -> bool:
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        return len(hostname) <= 253 and _HOST_NAME.fullmatch(hostname) is not None
    return True


def _is_loopback(hostname: str) -> bool:
    if hostname.rstrip(".") == "localhost":
        return True
    try:
        return ipaddress.ip_address(hostname).is_loopback
    except ValueError:
        return False


#: how each plain `deploy.dbt_cloud` value is read (jobs and detect are mappings of their own)
_VALUE_PARSERS: Final[dict[str, Callable[..., Any]]] = {
    "host": _parse_host,
    "account_id": _parse_id,
    "project_id": _parse_id,
    "job_id": _parse_id,
    "auto_trigger": _parse_bool,
    "cause": _parse_cause,
    "select_changed": _parse_bool,
    "wait": _parse_bool,
    "follow": _parse_bool,
    "notify": _parse_bool,
    "timeout": parse_timeout,
    "cancel_superseded": _parse_bool,
    "remote": _parse_remote,
}
#: every key allowed under `deploy.dbt_cloud`: the plain values, then the two mappings
CLOUD_KEYS: Final = (*_VALUE_PARSERS, "jobs", "detect")
