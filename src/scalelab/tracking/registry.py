"""The model registry: a sweep's best model, by validation loss, becomes `<study>@champion`."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol

from scalelab import paths
from scalelab.config import Config
from scalelab.tracking.logged_models import complete_model
from scalelab.tracking.names import experiment_name
from scalelab.tracking.store import mlflow_client, resolve_uri

ALIAS = "champion"


class Candidate(Protocol):
    """What the registry needs of a trained model: its run and its validation loss."""

    size: str
    seed: int
    run_id: str | None
    val_loss: float
    train_samples: int | None  # its training-set size on a study's data axis; None: the whole split
    variant: str  # the other settings a multirun swept ("": none)


def lowest_validation_loss(candidates: Sequence[Candidate]) -> Candidate | None:
    """The champion's rule: the lowest validation loss (ties: the smaller size name, then seed);
    None when no candidate has one."""
    scored = [c for c in candidates if not math.isnan(c.val_loss)]
    return min(scored, key=lambda c: (c.val_loss, c.size, c.seed)) if scored else None


def register_champion(config: Config, candidates: Sequence[Candidate]) -> tuple[Candidate, int] | None:
    """Register the candidate with the lowest validation loss under the study's name (the
    experiment's: `<data>-<model>`) and point the alias `champion` at it.

    Chosen by validation loss, never test loss: the test split stays a measurement. Returns
    the champion and its registry version; None if no candidate logged a model.
    """
    import mlflow

    uri = resolve_uri(config.tracking)
    client = mlflow_client(uri)
    mlflow.set_tracking_uri(uri)  # register_model works through the fluent API's store
    models = {c.run_id: complete_model(uri, c.run_id) for c in candidates if c.run_id}
    best = lowest_validation_loss([c for c in candidates if models.get(c.run_id)])
    if best is None:
        return None
    name = experiment_name(config)
    source = f"models:/{models[best.run_id]}"
    current = _champion(client, name)
    if current is not None and current.source == source:  # the fit reran, the champion did not change
        return best, int(current.version)
    tags = {"size": best.size, "seed": str(best.seed)}
    if best.train_samples is not None:
        tags["train_samples"] = str(best.train_samples)
    if best.variant:
        tags["variant"] = best.variant
    version = mlflow.register_model(source, name, tags=tags)
    client.set_registered_model_alias(name, ALIAS, version.version)
    client.update_registered_model(
        name, description=f"Best of the `{config.sweep.name}` sweep by validation loss. Serve it with "
        f"`mlflow models serve -m models:/{name}@{ALIAS} --env-manager local`."
    )  # fmt: skip
    return best, int(version.version)


def _champion(client, name: str):
    """The version the alias points at, or None before the study's first champion."""
    from mlflow.exceptions import MlflowException

    try:
        return client.get_model_version_by_alias(name, ALIAS)
    except MlflowException as err:  # no such model, or no such alias on it (MLflow 3 codes)
        if err.error_code in ("RESOURCE_DOES_NOT_EXIST", "INVALID_PARAMETER_VALUE"):
            return None
        raise


def describe(champion: tuple[Candidate, int] | None, config: Config) -> str:
    """One line for the user: what was registered, and how to serve it."""
    if champion is None:
        return "champion: none registered (no run logged a model; tracking.log_model=true logs them)"
    best, version = champion
    name = experiment_name(config)
    return (
        f"champion: {paths.run_key(best.size, best.seed, best.train_samples, best.variant)} "
        f"(val/loss {best.val_loss:.4f}) "
        f"is {name} version {version}; "
        f"serve it: mlflow models serve -m models:/{name}@{ALIAS} --env-manager local"
    )
