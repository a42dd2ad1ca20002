"""What the doctor's checks found so far and share: the repository, the settings, the token,
and dbt Cloud's answers.

The checks run in order and later ones build on earlier findings (no token, no dbt Cloud
check), so they share one `Findings`; it also opens the repository and asks dbt Cloud for a
job only once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from datachonk_hooks.account.workspace import Workspace, client_for
from datachonk_hooks.cloud.client import DbtCloudClient
from datachonk_hooks.cloud.errors import DbtCloudError
from datachonk_hooks.cloud.records import Job, Project
from datachonk_hooks.errors import DatachonkError
from datachonk_hooks.settings.config import find_config_file
from datachonk_hooks.settings.credentials import Token
from datachonk_hooks.settings.records import Settings

if TYPE_CHECKING:
    import pygit2


@dataclass
class Findings:
    """The doctor's state, filled in as the checks run."""

    ws: Workspace
    #: the repository of the current folder, opened once; `repo_error` says why there is none
    repo: pygit2.Repository | None = None
    repo_error: DatachonkError | None = None
    #: datachonk.yaml in use (`--config`, else the nearest one), looked for once
    config_path: Path | None = None
    settings: Settings | None = None
    token: Token | None = None
    #: the account answered: projects listed (None when the token may not list them)
    connected: bool = False
    projects: list[Project] | None = None
    #: dbt Cloud answered 401 (on the legacy host: likely a cell-based account)
    rejected: bool = False
    jobs: dict[int, Job | DbtCloudError] = field(default_factory=dict)

    def locate(self) -> None:
        """Open the repository and find datachonk.yaml once for every check, as Workspace does."""
        from datachonk_hooks.push.gitrepo import open_repo, work_tree

        top = None
        try:
            self.repo = open_repo(self.ws.cwd)
            top = work_tree(self.repo)
        except DatachonkError as exc:
            self.repo_error = exc
        self.config_path = self.ws.config_path or find_config_file(self.ws.cwd, top)

    def job(self, job_id: int) -> Job | DbtCloudError:
        if job_id not in self.jobs:
            try:
                with self.client() as client:
                    self.jobs[job_id] = client.get_job(job_id)
            except DbtCloudError as exc:
                self.jobs[job_id] = exc
        return self.jobs[job_id]

    def client(self) -> DbtCloudClient:
        assert self.settings is not None
        return client_for(self.settings, self.ws.env, token=self.token)
