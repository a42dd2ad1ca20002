"""How a simulated run progresses with the clock, and the logs and artifacts it leaves."""

from __future__ import annotations

from datachonk_hooks.sandbox.wire import (
    _OUTCOMES,
    CANCELLED,
    QUEUED,
    RUNNING,
    STARTING,
    _humanize,
    _Progress,
    _Run,
)

# The jaffle_shop graph every simulated run builds: (model, materialization, key), in build order
_MODELS = (
    ("stg_customers", "view", "customer_id"),
    ("stg_orders", "view", "order_id"),
    ("stg_payments", "view", "payment_id"),
    ("customers", "table", "customer_id"),
    ("orders", "table", "order_id"),
)
_PARENTS = {
    "customers": ("stg_customers", "stg_orders", "stg_payments"),
    "orders": ("stg_orders", "stg_payments"),
}
_FAILING_MODEL = "orders"
_NODES = tuple(
    node
    for model, kind, key in _MODELS
    for node in (
        (kind, model),
        ("test", f"unique_{model}_{key}"),
        ("test", f"not_null_{model}_{key}"),
    )
)


def _progress(run: _Run, now_s: float) -> _Progress:
    """Queued, Starting, Running, then the job's outcome; a user's cancel cuts it short."""
    job = run.job
    dequeued = run.created_s + job.queued_s
    started = dequeued + job.starting_s
    finished = started + job.running_s
    cut = run.cancelled_s
    if cut is not None and cut < finished:
        was_dequeued, was_started = (dequeued if cut >= dequeued else None), cut >= started
        return _Progress(
            CANCELLED, was_dequeued, started if was_started else None, cut, "Cancelled by user."
        )
    if now_s >= finished:
        message = None
        if job.outcome == "error":
            message = f"Database Error in model {_FAILING_MODEL} (models/{_FAILING_MODEL}.sql)"
        elif job.outcome == "cancelled":
            message = (
                f"This run timed out after running for {_humanize(job.running_s)}, which"
                f" exceeded the configured timeout of {round(job.running_s)} seconds."
            )
        return _Progress(_OUTCOMES[job.outcome], dequeued, started, finished, message)
    if now_s >= started:
        return _Progress(RUNNING, dequeued, started, None, None)
    if now_s >= dequeued:
        return _Progress(STARTING, dequeued, None, None, None)
    return _Progress(QUEUED, None, None, None, None)


def _updated(run: _Run, p: _Progress) -> float:
    return max(s for s in (run.created_s, p.dequeued_s, p.started_s, p.finished_s) if s is not None)


def _dbt_logs(command: str, project: str, failing: bool) -> list[str]:
    """Console output of one dbt invocation; a failing one ends with a database error."""
    lines = [
        f"Running with dbt=1.9.1 ({command})",
        "Registered adapter: snowflake=1.9.0",
        "Found 5 models, 3 seeds, 10 data tests, 3 sources, 612 macros",
        "",
        "Concurrency: 4 threads (target='default')",
        "",
    ]
    total, failed, passed, skipped = len(_NODES), False, 0, 0
    for n, (kind, name) in enumerate(_NODES, 1):
        what = f"test {name}" if kind == "test" else f"sql {kind} model analytics.{name}"
        if failed:
            skipped += 1
            lines.append(f"{n} of {total} SKIP relation analytics.{name} .......... [SKIP]")
            continue
        lines.append(f"{n} of {total} START {what} .......... [RUN]")
        if failing and name == _FAILING_MODEL:
            failed = True
            lines.append(f"{n} of {total} ERROR creating {what} .......... [ERROR in 1.02s]")
            continue
        passed += 1
        done = "PASS" if kind == "test" else "CREATE VIEW" if kind == "view" else "SUCCESS 1"
        verb = f"PASS {name}" if kind == "test" else f"OK created {what}"
        lines.append(f"{n} of {total} {verb} .......... [{done} in 0.84s]")
    lines += ["", "Finished running 3 view models, 10 data tests, 2 table models in 9.84s.", ""]
    if failed:
        lines += [
            "Completed with 1 error, 0 partial successes, and 0 warnings:",
            "",
            f"  Database Error in model {_FAILING_MODEL} (models/{_FAILING_MODEL}.sql)",
            "  000904 (42000): SQL compilation error: error line 14 at position 8",
            "  invalid identifier 'PAYMENTS.AMOUNT_USD'",
            f"  compiled code at target/run/{project}/models/{_FAILING_MODEL}.sql",
            "",
        ]
    else:
        lines += ["Completed successfully", ""]
    return [*lines, f"Done. PASS={passed} WARN=0 ERROR={int(failed)} SKIP={skipped} TOTAL={total}"]


def _artifact(name: str, project: str, metadata: dict[str, object]) -> dict[str, object]:
    """A small but plausible manifest.json or run_results.json for the job's project."""
    uid = {
        node: f"{'test' if kind == 'test' else 'model'}.{project}.{node}" for kind, node in _NODES
    }
    if name == "run_results.json":
        results: list[dict[str, object]] = [
            {
                "status": "pass" if kind == "test" else "success",
                "unique_id": uid[node],
                "execution_time": 0.84,
                "thread_id": "Thread-1",
                "timing": [],
                "failures": 0,
                "message": "PASS" if kind == "test" else "SUCCESS 1",
            }
            for kind, node in _NODES
        ]
        return {"metadata": metadata, "results": results, "elapsed_time": 9.84, "args": {}}
    parents = {uid[m]: [uid[p] for p in _PARENTS.get(m, ())] for m, _, _ in _MODELS}
    nodes = {
        uid[m]: {
            "unique_id": uid[m],
            "name": m,
            "resource_type": "model",
            "package_name": project,
            "path": f"{m}.sql",
            "original_file_path": f"models/{m}.sql",
            "fqn": [project, m],
            "config": {"enabled": True, "materialized": kind},
            "depends_on": {"macros": [], "nodes": parents[uid[m]]},
            "database": "ANALYTICS",
            "schema": "DBT_CLOUD",
            "alias": m,
            "language": "sql",
        }
        for m, kind, _ in _MODELS
    }
    children = {node: [c for c, ps in parents.items() if node in ps] for node in parents}
    return {
        "metadata": {**metadata, "project_name": project, "adapter_type": "snowflake"},
        "nodes": nodes,
        "sources": {},
        "macros": {},
        "exposures": {},
        "metrics": {},
        "parent_map": parents,
        "child_map": children,
    }
