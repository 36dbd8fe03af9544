"""`make ui`: the MLflow UI on the project's store, with links straight to the latest sweep.

Prints the URL of the latest sweep's runs table (its parent with the children beneath) and of
the compare view of its children, then runs `mlflow server` on loopback until Ctrl-C.
"""

from __future__ import annotations

import json
import os
import sys
import urllib.parse

from scalelab.config import TrackingConfig
from scalelab.tracking.store import mlflow_client, resolve_uri
from scalelab.tracking.sweeps import PARENT_TAG


def latest_sweep(uri: str) -> tuple[str, str, list[str]] | None:
    """(experiment id, parent run id, child run ids) of the most recently started sweep."""
    client = mlflow_client(uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return None
    parents = client.search_runs(
        experiments,
        filter_string="tags.sweep_id != ''",
        order_by=["attributes.start_time DESC"],
        max_results=200,
    )
    parents = [r for r in parents if r.data.tags.get("sweep_id") == r.info.run_id]
    if not parents:
        return None
    parent = parents[0]
    children = client.search_runs(
        [parent.info.experiment_id], filter_string=f"tags.`{PARENT_TAG}` = '{parent.info.run_id}'"
    )
    return parent.info.experiment_id, parent.info.run_id, [c.info.run_id for c in children]


def runs_url(base: str, experiment_id: str) -> str:
    """The experiment's runs table (the classic ML view, not the GenAI one MLflow 3 opens)."""
    return f"{base}/#/experiments/{experiment_id}/runs?workflowType=machine_learning"


def compare_url(base: str, experiment_id: str, run_ids: list[str]) -> str:
    """MLflow's compare-runs view of `run_ids`."""
    runs = urllib.parse.quote(json.dumps(run_ids, separators=(",", ":")))
    experiments = urllib.parse.quote(json.dumps([experiment_id]))
    return f"{base}/#/compare-runs?runs={runs}&experiments={experiments}&workflowType=machine_learning"


def main(argv: list[str] | None = None) -> None:
    """`python -m scalelab.tracking.ui [port]`: print the links, then serve the UI."""
    args = argv if argv is not None else sys.argv[1:]
    port = args[0] if args else "5000"
    uri = resolve_uri(TrackingConfig())  # $MLFLOW_TRACKING_URI, else the project's mlflow.db
    base = f"http://127.0.0.1:{port}"
    found = latest_sweep(uri) if not uri.startswith("sqlite:///") or os.path.exists(uri[10:]) else None
    if found:
        experiment_id, parent, children = found
        print(f"latest sweep (parent run {parent}):\n  runs:    {runs_url(base, experiment_id)}")
        print(f"  compare: {compare_url(base, experiment_id, children)}")
    else:
        print(f"no sweep in {uri} yet: run `make run` first. UI: {base}")
    sys.stdout.flush()
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}  # no background job workers
    cmd = [
        "mlflow",
        "server",
        "--backend-store-uri",
        uri,
        "--host",
        "127.0.0.1",
        "--port",
        port,
        "--workers",
        "1",
    ]
    os.execvpe(cmd[0], cmd, env)


if __name__ == "__main__":
    main()
