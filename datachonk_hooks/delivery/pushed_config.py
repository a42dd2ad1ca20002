"""datachonk.yaml as pushed: read from the pushed commit, else from the work tree.

pre-commit stashes unstaged edits during pre-push, and the pushed commit is what dbt Cloud
builds, so the settings that decide a push's trigger come from its commit. Parsing YAML is
put off until something was found: most pushes only need the default detection rules.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.errors import ConfigError, DatachonkError
from datachonk_hooks.push.detect import project_folders
from datachonk_hooks.push.gitrepo import read_blob, work_tree
from datachonk_hooks.settings.config import find_config_file
from datachonk_hooks.settings.defaults import CONFIG_NAME
from datachonk_hooks.settings.detect_rules import DetectRules
from datachonk_hooks.settings.records import Settings

if TYPE_CHECKING:
    from datachonk_hooks.delivery.ledger import TriggerRecord


def settings_text_at(repo: pygit2.Repository, commit: pygit2.Commit) -> tuple[str, str] | None:
    """(text, label) of datachonk.yaml in the commit: at the root, else by a dbt project."""

    # The root first: walking the tree for dbt projects costs tens of ms in a large repository.
    def folders() -> Iterator[str]:
        yield ""
        yield from (f for f in project_folders(commit.tree) if f)

    for folder in folders():
        path = f"{folder}/{CONFIG_NAME}" if folder else CONFIG_NAME
        data = _config_blob(repo, commit, path)
        if data is not None:
            label = f"{path}@{str(commit.id)[:7]}"
            try:
                return data.decode("utf-8"), label
            except UnicodeDecodeError:
                raise ConfigError(f"{label}: not UTF-8 text; save the file as UTF-8") from None
    return None


def _config_blob(repo: pygit2.Repository, commit: pygit2.Commit, path: str) -> bytes | None:
    """The file's bytes in the commit (None: no such file), or a ConfigError when it is over
    `limits.MAX_FILE_BYTES`: judged from the object header, before the blob is read."""
    from datachonk_hooks.push.limits import MAX_FILE_BYTES, blob_size, too_large

    try:
        entry = commit.tree[path]
    except KeyError:
        return None
    if not isinstance(entry, pygit2.Blob):
        return None
    size = blob_size(repo, entry.id)
    if size > MAX_FILE_BYTES:
        raise ConfigError(too_large(f"{path}@{str(commit.id)[:7]}", size))
    return read_blob(commit, path)


class PushedConfig:
    """datachonk.yaml as pushed, read once: the commit's file, else the work tree's."""

    def __init__(self, repo: pygit2.Repository, commit: pygit2.Commit) -> None:
        self.found = settings_text_at(repo, commit)
        top = work_tree(repo)
        self.path = None if self.found is not None else find_config_file(top, top)

    def default_rules(self) -> DetectRules | None:
        """The default detection rules when the file cannot hold custom ones, else None.

        The hook runs on every push; a datachonk.yaml that never mentions `detect` uses the
        default rules, so the YAML parser is only loaded once something was found.
        """
        if self.found is not None:
            text = self.found[0]
        else:
            from datachonk_hooks.push.limits import MAX_FILE_BYTES

            try:
                if self.path and self.path.stat().st_size > MAX_FILE_BYTES:
                    return None  # `load` says it is too large
                text = self.path.read_text(encoding="utf-8", errors="replace") if self.path else ""
            except OSError:
                text = ""
        if "detect" not in text:
            return DetectRules()
        from datachonk_hooks.prepush import fast_cache  # rules an earlier push parsed from text

        known = fast_cache.known_rules(text)
        return None if known is None else DetectRules(*known)

    def load(self, env: Mapping[str, str]) -> Settings:
        from datachonk_hooks.prepush import fast_cache
        from datachonk_hooks.settings.config import load_settings, load_settings_file

        if self.found is not None:
            text, label = self.found
            settings = load_settings(text, source=label, env=env)
            if "detect" in text:  # so the next push of this file need not parse it
                fast_cache.learn_rules(text, settings.detect.marker, settings.detect.trailer)
            return settings
        return load_settings_file(self.path, env=env)


def settings_at(repo: pygit2.Repository, commit: pygit2.Commit, env: Mapping[str, str]) -> Settings:
    """Settings as pushed: datachonk.yaml from the commit, else the work tree's file."""
    return PushedConfig(repo, commit).load(env)


def current_host(repo: pygit2.Repository, env: Mapping[str, str]) -> str | None:
    """The host configured now, for triggers pushed while none was (`ClientPool.host_for`):
    DBT_CLOUD_HOST, else datachonk.yaml as the next push reads it, from HEAD's commit (else
    the work tree's file). A broken file raises its ConfigError: the trigger stays pending
    with that reason."""
    from datachonk_hooks.settings.config import load_settings_file

    try:
        head = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit)
    except (pygit2.GitError, KeyError, ValueError):
        head = None
    if head is None:
        top = work_tree(repo)
        return load_settings_file(find_config_file(top, top), env=env).host
    return settings_at(repo, head, env).host


def pushed_settings(
    repo: pygit2.Repository, record: TriggerRecord, env: Mapping[str, str]
) -> Settings | None:
    """The settings of the commit a trigger is for, or None when they cannot be read."""

    try:
        return settings_at(repo, repo[record.sha].peel(pygit2.Commit), env)
    except (DatachonkError, KeyError, ValueError, pygit2.GitError):
        return None
