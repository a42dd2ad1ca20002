"""CI mode: the pushed commit, branch and range from the CI's own variables.

In CI there is no pre-push hook; the push has already landed. GitHub Actions and GitLab CI
both say which commit was pushed, to which branch, and what the branch held before, so the
same detection runs on the same range a local hook would have seen.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pygit2

from datachonk_hooks.errors import ConfigError
from datachonk_hooks.push.gitrepo import ZERO_SHA, branch_of, resolve_commit
from datachonk_hooks.push.updates import PushUpdate, tracking_refs

if TYPE_CHECKING:
    from datachonk_hooks.cloud.records import Run
    from datachonk_hooks.delivery.planning import UpdatePlan


@dataclass(frozen=True)
class CiContext:
    """One push as a CI job sees it."""

    provider: str  # "github", "gitlab" or "ci" (another CI: HEAD and its branch)
    sha: str
    branch: str | None
    before: str | None  # what the branch held before the push (zeros when new); None if unknown
    summary_path: Path | None = None  # GitHub Actions' job summary file


def in_ci(env: Mapping[str, str]) -> bool:
    return env.get("CI", "").strip().lower() in ("true", "1", "yes")


def ci_context(env: Mapping[str, str], repo: pygit2.Repository) -> CiContext:
    """The push from GitHub Actions' or GitLab CI's variables, else from HEAD."""
    if env.get("GITHUB_ACTIONS") == "true":
        sha = env.get("GITHUB_SHA") or ""
        branch = (
            env.get("GITHUB_REF_NAME") if env.get("GITHUB_REF_TYPE", "branch") == "branch" else None
        )
        before = None
        event_path = env.get("GITHUB_EVENT_PATH")
        if event_path:
            try:
                event = json.loads(Path(event_path).read_text())
            except (OSError, ValueError):
                event = {}
            if isinstance(event, dict) and isinstance(event.get("before"), str):
                before = event["before"] or None
        summary = env.get("GITHUB_STEP_SUMMARY")
        if not sha:
            raise ConfigError("GITHUB_SHA is not set: run this in a job triggered by a push")
        return CiContext("github", sha, branch, before, Path(summary) if summary else None)
    if env.get("GITLAB_CI") == "true":
        sha = env.get("CI_COMMIT_SHA") or ""
        if not sha:
            raise ConfigError("CI_COMMIT_SHA is not set: run this in a pipeline for a push")
        return CiContext(
            "gitlab",
            sha,
            env.get("CI_COMMIT_BRANCH") or None,
            env.get("CI_COMMIT_BEFORE_SHA") or None,
        )
    head = resolve_commit(repo, "HEAD")
    return CiContext("ci", str(head.id), branch_of(repo, "HEAD"), None)


def ci_update(repo: pygit2.Repository, context: CiContext) -> tuple[PushUpdate, list[str]]:
    """The push as a `PushUpdate`, and what the remote held besides this branch.

    CI checkouts move `refs/remotes/origin/<branch>` to the pushed commit already, so the
    other remote branches stand in for what the remote held. `pushed_range` uses them when
    `before` is zeros (a new branch), unknown, or missing from a shallow clone; fetch the
    full history (`fetch-depth: 0`, `GIT_DEPTH: 0`) for exact ranges.
    """
    if context.branch is None:
        raise ConfigError("CI mode needs a branch push (this looks like a tag or a detached HEAD)")
    ref = f"refs/heads/{context.branch}"
    others = [
        sha
        for name, sha in tracking_refs(repo, "origin").items()
        if name != f"refs/remotes/origin/{context.branch}"
    ]
    return PushUpdate(ref, context.sha, ref, context.before or ZERO_SHA), others


def write_summary(context: CiContext, lines: list[str]) -> None:
    """Append Markdown to GitHub Actions' job summary, when there is one."""
    if context.summary_path is None:
        return
    with context.summary_path.open("a", encoding="utf-8") as summary:
        summary.write("\n".join(lines) + "\n")


def plan_ci_push(
    repo: pygit2.Repository, env: Mapping[str, str], *, cause: str | None = None
) -> tuple[CiContext, UpdatePlan]:
    """The CI's push, judged by the same detection as the local hook; `cause` is --cause."""
    from datachonk_hooks.delivery.planning import plan_push_update

    context = ci_context(env, repo)
    update, others = ci_update(repo, context)
    return context, plan_push_update(repo, update, "origin", env, cause=cause, remote_tips=others)


def summary_lines(context: CiContext, run: Run, job_id: int) -> list[str]:
    """A short Markdown report of the run for the CI job's summary page; the branch and the
    run's URL come from outside, so they are sanitized like any terminal line."""
    from datachonk_hooks.sanitize import sanitize

    link = f"[{run.id}]({sanitize(run.href)})" if run.href else str(run.id)
    return [
        "### dbt Cloud",
        "",
        "| job | run | commit | branch | status |",
        "| --- | --- | --- | --- | --- |",
        f"| {job_id} | {link} | `{context.sha[:7]}` | {sanitize(context.branch or '-')}"
        f" | {run.status.described} |",
    ]
