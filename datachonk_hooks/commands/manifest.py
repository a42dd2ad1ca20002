"""`datachonk-hook manifest`: the production manifest for state-based dbt builds.

dbt's `--select state:modified+ --defer --state DIR` compares a project with the manifest of
its production run; this fetches `manifest.json` of the job's most recent successful run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import click

from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import BadResponseError, NotFoundError
from datachonk_hooks.cloud.records import Run
from datachonk_hooks.cloud.status import RunStatus
from datachonk_hooks.commands.context import AppContext
from datachonk_hooks.errors import ConfigError, ExitCode
from datachonk_hooks.fileio import atomic_write

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class DownloadedManifest:
    run: Run
    path: Path
    size: int


def download_manifest(client: DbtCloudClient, job_id: int, out_dir: Path) -> DownloadedManifest:
    """Save the manifest of job `job_id`'s latest successful run as OUT_DIR/manifest.json."""
    runs = client.list_runs(job_id, limit=1, status=RunStatus.SUCCESS)
    if not runs:
        raise NotFoundError(f"job {job_id} has no successful run yet, so there is no manifest")
    run = runs[0]
    data = client.get_artifact(run.id, MANIFEST)
    try:
        json.loads(data)
    except ValueError:
        raise BadResponseError(
            f"the {MANIFEST} of run {run.id} is not valid JSON; nothing was written"
        ) from None
    target = out_dir / MANIFEST
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        atomic_write(target, data)
    except OSError as exc:  # like datachonk.yaml: a local problem the user fixes (exit 2)
        raise ConfigError(f"{target}: cannot write the file ({exc.strerror or exc})") from None
    return DownloadedManifest(run, target, len(data))


def manifest_command(app: AppContext, job_id: int | None, out_dir: Path) -> int:
    """Save the manifest of `job_id` (default: the default branch's job) and say how to use it."""
    from datachonk_hooks.delivery.clients import make_client
    from datachonk_hooks.push.gitrepo import branch_of, open_repo

    settings = app.settings()
    if job_id is None:
        repo = open_repo(app.cwd)
        default_branch = branch_of(repo, "origin/HEAD") or branch_of(repo, "HEAD")
        job_id, _ = settings.manual_job(default_branch)
    target = out_dir if out_dir.is_absolute() else app.cwd / out_dir
    with make_client(settings, app.env) as client:
        saved = download_manifest(client, job_id, target)
    click.echo(
        f"saved {saved.path} ({saved.size:,} bytes) from run {saved.run.id} of job {job_id}"
        + (
            f", finished {saved.run.finished_at:%Y-%m-%d %H:%M} UTC"
            if saved.run.finished_at
            else ""
        )
    )
    click.echo(f"use it with: dbt build --select state:modified+ --defer --state {out_dir}")
    return ExitCode.OK
