"""`run` (alias `dbt-run`), `rerun` and `cancel`: a dbt Cloud run by hand, then its outcome.

`run` triggers a commit through the ledger, like a push does, so the same commit is not
triggered twice for a job; in CI mode it judges the CI's push the way the hook would.
`rerun` and `cancel` act on a job's or run's current state in dbt Cloud.
"""

from __future__ import annotations

from dataclasses import dataclass

from datachonk_hooks.commands.context import AppContext, echo_json, say, status
from datachonk_hooks.commands.output import follow, print_dry_run
from datachonk_hooks.errors import ExitCode


@dataclass(frozen=True)
class RunFlags:
    """The flags of `run` as typed (None: not given)."""

    job_id: int | None
    cause: str | None
    ref: str
    wait: bool
    timeout: int | None
    dry_run: bool
    as_json: bool
    force: bool
    allow_unpushed: bool
    ci: bool | None


def run_command(app: AppContext, flags: RunFlags) -> int:
    """Trigger the commit at `flags.ref` (or the CI's push) and show the run."""
    from datachonk_hooks.delivery.clients import make_client
    from datachonk_hooks.delivery.planning import plan_manual_trigger
    from datachonk_hooks.delivery.trigger import trigger_through_ledger
    from datachonk_hooks.push.ci import in_ci
    from datachonk_hooks.push.gitrepo import open_repo

    ci_mode = in_ci(app.env) if flags.ci is None else flags.ci
    if ci_mode:
        return run_ci(app, flags)
    settings = app.settings(timeout=flags.timeout)
    repo = open_repo(app.cwd)
    plan = plan_manual_trigger(
        settings,
        repo,
        flags.ref,
        job_id=flags.job_id,
        cause=flags.cause,
        allow_unpushed=flags.allow_unpushed,
    )
    if flags.dry_run:
        return print_dry_run(plan, app.env, flags.as_json)
    with make_client(settings, app.env) as client:
        echo = status(flags.as_json)
        run = trigger_through_ledger(repo, plan, client, force=flags.force, echo=echo).run
        code, _ = follow(
            client, run, wait=flags.wait, timeout=settings.timeout, as_json=flags.as_json
        )
    return code


def run_ci(app: AppContext, flags: RunFlags) -> int:
    """`run --ci`: the CI's push, judged like the hook would, triggered in the foreground.

    Everything, the client and the timeout too, comes from datachonk.yaml as pushed (what
    the hook reads), so the work tree's file is not loaded and `--config` does not apply.
    """
    from dataclasses import replace

    from datachonk_hooks.delivery.clients import make_client
    from datachonk_hooks.delivery.planning import literal_cause
    from datachonk_hooks.delivery.trigger import trigger_through_ledger
    from datachonk_hooks.push.ci import plan_ci_push, summary_lines, write_summary
    from datachonk_hooks.push.gitrepo import open_repo
    from datachonk_hooks.settings.values import parse_timeout

    say_line = status(flags.as_json)
    if app.config_path is not None:
        say_line(
            "note: --config is not used in CI mode; datachonk.yaml is read from the pushed commit"
        )
    # Flags are checked before anything is sent. An empty --cause would otherwise mean
    # "none" to the plan, which then builds one.
    cause = literal_cause(flags.cause) if flags.cause is not None else None
    timeout = flags.timeout
    if timeout is not None:
        timeout = parse_timeout(timeout, where="--timeout")
    repo = open_repo(app.cwd)
    context, update_plan = plan_ci_push(repo, app.env, cause=cause)
    plan, settings = update_plan.trigger, update_plan.settings
    where = f"{context.sha[:7]} on {context.branch}"
    if plan is None or settings is None:
        say_line(f"nothing to trigger for {where} ({context.provider}): {update_plan.skipped}")
        return ExitCode.OK
    for model in update_plan.models:
        say_line(f"generated model {model.change}: {model.path}")
    if flags.job_id is not None:
        plan = replace(plan, job_id=flags.job_id, route="--job-id")
    settings.require_host()  # the hook records a push without one; here nothing would be sent
    if context.provider == "ci" and not flags.allow_unpushed:
        from datachonk_hooks.delivery.planning import require_pushed
        from datachonk_hooks.push.updates import tracking_refs

        # `CI=true` alone (no CI's own variables) takes HEAD: in a real CI that is the pushed
        # commit, but a shell that merely exports CI=true may hold one never pushed. A CI
        # clone without tracking refs (a bare sha fetched) cannot tell, and is believed.
        if tracking_refs(repo, settings.remote):
            require_pushed(repo, settings.remote, context.sha)
    if flags.dry_run:
        return print_dry_run(plan, app.env, flags.as_json)
    with make_client(settings, app.env) as client:
        run = trigger_through_ledger(
            repo, plan, client, force=flags.force, echo=say_line, source="ci"
        ).run
        code, run = follow(
            client,
            run,
            wait=flags.wait,
            timeout=settings.timeout if timeout is None else timeout,
            as_json=flags.as_json,
            plain=True,
        )
    write_summary(context, summary_lines(context, run, plan.job_id))
    return code


def rerun_command(
    app: AppContext, job_id: int | None, wait: bool, timeout: int | None, as_json: bool
) -> int:
    """Rerun `job_id` (default: the current branch's job) from its point of failure."""
    from datachonk_hooks.delivery.clients import make_client
    from datachonk_hooks.push.gitrepo import branch_of, open_repo

    settings = app.settings(timeout=timeout)
    if job_id is None:
        job_id, _ = settings.manual_job(branch_of(open_repo(app.cwd), "HEAD"))
    with make_client(settings, app.env) as client:
        run = client.rerun_job(job_id)
        status(as_json)(f"Rerunning job {job_id}: run {run.id}")
        code, _ = follow(client, run, wait=wait, timeout=settings.timeout, as_json=as_json)
    return code


def cancel_command(app: AppContext, run_id: int, as_json: bool) -> int:
    """Cancel run `run_id` and say its status."""
    from datachonk_hooks.delivery.clients import make_client

    with make_client(app.settings(), app.env) as client:
        run = client.cancel_run(run_id)
    if as_json:
        echo_json(run.to_json())
    else:
        say(f"run {run.id}: {run.status.label}" + (f" {run.href}" if run.href else ""))
    return ExitCode.OK
