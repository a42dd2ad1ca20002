"""The doctor's checks of datachonk.yaml: that it is valid, names an account, and is committed.

The hook reads datachonk.yaml from the pushed commit, so a local edit that is not committed
does not count yet, and the report says so.
"""

from __future__ import annotations

from collections.abc import Iterator

from datachonk_hooks.commands.doctor.findings import Findings
from datachonk_hooks.commands.doctor.report import CONNECT, Check
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.settings.config import load_settings_file
from datachonk_hooks.settings.defaults import ENV_ACCOUNT_ID


def check_config(found: Findings) -> Check:
    name = "datachonk.yaml"
    path = found.config_path
    try:
        found.settings = load_settings_file(path, env=found.ws.env)
    except DatachonkError as exc:
        return Check(name, False, str(exc), "correct the file at the place named")
    if path is None or not path.is_file():
        if found.settings.configured:
            return Check(name, True, "none; the account comes from the environment")
        return Check(name, False, "not found", CONNECT)
    if not found.settings.configured:
        return Check(
            name,
            False,
            f"{path} names no dbt Cloud account",
            f"{CONNECT} (or set {ENV_ACCOUNT_ID})",
        )
    return Check(name, True, f"{path} is valid")


def check_committed(found: Findings) -> Iterator[Check]:
    """The hook reads datachonk.yaml from the pushed commit: local edits do not count."""
    path = found.config_path
    if path is None or not path.is_file():
        return
    try:
        import pygit2

        from datachonk_hooks.push.gitrepo import open_repo, read_blob, work_tree

        repo = found.repo
        if repo is None or found.ws.config_path is not None:  # --config: maybe another clone
            repo = open_repo(path.parent)
        relative = path.resolve().relative_to(work_tree(repo)).as_posix()
        head = None if repo.head_is_unborn else repo.head.peel(pygit2.Commit)
        committed = read_blob(head, relative) if head is not None else None
        on_disk = path.read_bytes()
    except (DatachonkError, ValueError, OSError):
        return
    name = "datachonk.yaml in git"
    if committed is None:
        yield Check(name, True, "not committed yet (pushes use the work tree's copy until it is)")
    elif committed != on_disk:
        yield Check(
            name,
            False,
            "it has changes that are not committed; pushes use the committed version",
            f"commit {relative}",
        )
    else:
        yield Check(name, True, "the committed version is the one on disk")
