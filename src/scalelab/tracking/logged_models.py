"""Trained networks as MLflow LoggedModels: logging one, and telling complete ones from broken."""

from __future__ import annotations

from importlib.metadata import version
from typing import Any

from scalelab.tracking.store import mlflow_client


def logged_models(uri: str, run_id: str) -> list[Any]:
    """The models run `run_id` logged, oldest first (MLflow 3 LoggedModels, with their status).

    Found by their source run, not the run's outputs: MLflow creates the model (PENDING, source
    run set) and only then links it to the run's outputs, so a process killed between the two
    leaves a model that the outputs never list."""
    client = mlflow_client(uri)
    experiment_id = client.get_run(run_id).info.experiment_id
    models: list[Any] = []
    page_token = None
    while True:
        page = client.search_logged_models(
            [experiment_id], filter_string=f"source_run_id = '{run_id}'", page_token=page_token
        )
        models.extend(page)
        if not (page_token := page.token):
            break
    return sorted(models, key=lambda model: model.creation_timestamp)


def fail_unfinished_models(uri: str, run_id: str) -> None:
    """Mark FAILED the models a killed process left half-uploaded (PENDING) in run `run_id`.

    MLflow records a model in the run before uploading it and marks it READY after, or FAILED
    on an exception; a SIGKILL in between leaves it PENDING, looking like an upload under way.
    """
    from mlflow.entities import LoggedModelStatus

    client = mlflow_client(uri)
    for model in logged_models(uri, run_id):
        if model.status == LoggedModelStatus.PENDING:
            client.set_logged_model_tags(model.model_id, {"failure.reason": "its process was killed"})
            client.finalize_logged_model(model.model_id, LoggedModelStatus.FAILED)


def log_model(net: Any, input_example: Any) -> None:
    """Log `net` to the active run with a signature and input example (torch.export format).

    Pinning `pip_requirements` skips MLflow's 6-9 s requirement inference.
    """
    import mlflow
    import numpy as np
    import torch
    from mlflow.models import infer_signature

    example = np.asarray(input_example)  # token ids stay integers; everything else is float32
    example = example.astype(np.int64 if np.issubdtype(example.dtype, np.integer) else np.float32)
    with torch.no_grad():
        output = net(torch.from_numpy(example)).numpy()
    mlflow.pytorch.log_model(
        net,
        name="model",
        input_example=example,
        signature=infer_signature(example, output),
        pip_requirements=[f"torch=={version('torch').split('+')[0]}", f"mlflow=={version('mlflow')}"],
    )


def complete_model(uri: str, run_id: str) -> str | None:
    """The id of the last model run `run_id` logged whole (READY); None if there is none.

    A resumed run also holds the FAILED model its killed process left half-uploaded.
    """
    from mlflow.entities import LoggedModelStatus

    ready = [m for m in logged_models(uri, run_id) if m.status == LoggedModelStatus.READY]
    return ready[-1].model_id if ready else None
