"""The doctor's checks of this clone: the pre-push hook is installed, and no trigger is stuck.

pre-commit's hook and the standalone datachonk hook are both fine; a foreign pre-push hook or
none at all is a failure with the command that fixes it.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from datachonk_hooks.commands.doctor.findings import Findings
from datachonk_hooks.commands.doctor.report import Check
from datachonk_hooks.commands.install import PRE_COMMIT_MARKER
from datachonk_hooks.errors import DatachonkError

HOOK_ID = "datachonk-dbt-cloud"
PRE_COMMIT_CONFIG = ".pre-commit-config.yaml"
# `- id: datachonk-dbt-cloud` on a line that is not commented out
_HOOK_ID_LINE = re.compile(
    rf"^[ \t]*(?:-[ \t]+)?id:[ \t]*[\"']?{re.escape(HOOK_ID)}[\"']?[ \t]*(?:#.*)?$", re.MULTILINE
)


def check_hooks(found: Findings) -> Iterator[Check]:
    from datachonk_hooks.commands.install import hooks_dir, is_ours
    from datachonk_hooks.push.gitrepo import work_tree

    if found.repo is None:
        problem = str(found.repo_error or "not in a git repository")
        yield Check("pre-push hook", False, problem, "run this in the dbt repository")
        return
    top = work_tree(found.repo)
    hook = hooks_dir(found.repo) / "pre-push"
    configured = _pre_commit_runs_hook(top / PRE_COMMIT_CONFIG)
    installed = _hook_kind(hook, is_ours(hook))
    shown = _relative(hook, top)
    if configured:
        yield Check("pre-commit", True, f"{PRE_COMMIT_CONFIG} runs hook {HOOK_ID}")
    elif installed != "standalone":  # the standalone hook needs no pre-commit
        yield Check(
            "pre-commit",
            False,
            f"no {PRE_COMMIT_CONFIG} runs hook {HOOK_ID}",
            f"add hook id {HOOK_ID} to {PRE_COMMIT_CONFIG}, or use `datachonk-hook install`"
            " instead",
        )
    if installed == "standalone":
        yield Check("pre-push hook", True, f"the standalone datachonk hook is at {shown}")
    elif installed == "pre-commit":
        yield Check("pre-push hook", True, f"pre-commit's hook is installed at {shown}")
    elif installed == "other":
        yield Check(
            "pre-push hook",
            False,
            f"{shown} is neither pre-commit's nor datachonk's",
            "run `datachonk-hook install` (it keeps that hook and runs it first)",
        )
    else:
        yield Check(
            "pre-push hook",
            False,
            f"not installed in this clone ({shown} is missing)",
            "run `pre-commit install -t pre-push`"
            if configured
            else "run `datachonk-hook install`",
        )


def check_ledger(found: Findings) -> Check:
    name = "pending triggers"
    from datachonk_hooks.delivery.ledger import Ledger, ledger_file

    repo = found.repo
    if repo is None:
        return Check(name, None, "needs a git repository")
    try:
        if not ledger_file(repo).exists():
            return Check(name, True, "none (nothing triggered yet)")
        with Ledger.for_repo(repo) as ledger:
            pending = ledger.deliverable()
    except DatachonkError as exc:  # the message says what to do
        return Check(name, False, str(exc))
    if not pending:
        return Check(name, True, "none")
    oldest = pending[0]
    return Check(
        name,
        False,
        f"{len(pending)} not delivered; the oldest, job {oldest.job_id} for"
        f" {oldest.sha[:7]}: {oldest.reason or 'not sent yet'}",
        "run `datachonk-hook retry` (`datachonk-hook history` shows them)",
    )


def _pre_commit_runs_hook(path: Path) -> bool:
    try:
        return _HOOK_ID_LINE.search(path.read_text(encoding="utf-8", errors="replace")) is not None
    except OSError:
        return False


def _hook_kind(hook: Path, ours: bool) -> str | None:
    """ "standalone", "pre-commit", "other", or None when there is no pre-push hook."""
    if ours:
        return "standalone"
    try:
        text = hook.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return "pre-commit" if PRE_COMMIT_MARKER in text else "other"


def _relative(path: Path, top: Path) -> str:
    try:
        return path.resolve().relative_to(top).as_posix()
    except ValueError:
        return str(path)
