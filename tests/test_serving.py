"""After a sweep the best model by validation loss is `<study>@champion` in the registry, and
`mlflow models serve` answers with the predictions the evaluate stage made."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import urllib.request
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from scalelab.data.split_files import load_split
from tests.conftest import free_port, run, run_env, speech_subset, wait_for_http

pytestmark = pytest.mark.slow

TINY = [
    "sweep.sizes=[xs,s,m]",
    "sweep.seeds=[0]",
    "trainer.max_epochs=3",
    "sweep.bootstrap=20",
    "trainer.progress_bar=false",
]


def serve(project: Path, model_uri: str) -> tuple[subprocess.Popen, str]:
    """Start `mlflow models serve` on a free loopback port; return it once it answers /ping."""
    port = free_port()
    cmd = [
        "mlflow",
        "models",
        "serve",
        "-m",
        model_uri,
        "--env-manager",
        "local",
        "-h",
        "127.0.0.1",
        "-p",
        str(port),
    ]
    env = run_env(MLFLOW_TRACKING_URI=f"sqlite:///{project}/mlflow.db")
    log = (project / "serve.log").open("w")
    server = subprocess.Popen(
        cmd, cwd=project, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_for_http(server, f"{url}/ping", "mlflow models serve", log=project / "serve.log")
    except BaseException:
        os.killpg(server.pid, signal.SIGKILL)
        raise
    return server, url


@pytest.mark.parametrize("task", ["image", "speech"])
def test_the_champion_is_registered_and_served_with_the_evaluated_predictions(
    project: Path, fsdd: Path, task: str
) -> None:
    data = []
    if task == "speech":
        wavs = speech_subset(fsdd, project.parent / "wavs")
        data = ["experiment=spoken_digits_cnn", f"data.root={wavs}", "data.val_fraction=0.25"]
    run(["python", "-m", "scalelab.params_file", *data, *TINY], project)
    output = run(["dvc", "repro"], project).stdout
    study = "spoken_digits-cnn" if task == "speech" else "digits-mlp"

    # The champion is the rung with the lowest validation loss, under the study's name.
    val_loss = {}
    for size in ("xs", "s", "m"):
        val_loss[size] = json.loads((project / f"reports/train/{size}/s0/train_metrics.json").read_text())[
            "val/loss"
        ]
    best = min(val_loss, key=val_loss.get)
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    version = client.get_model_version_by_alias(study, "champion")
    run_id = json.loads((project / f"reports/train/{best}/s0/run.json").read_text())["run_id"]
    assert version.run_id == run_id and version.tags["size"] == best
    assert f"champion: {best}-s0" in output and f"models:/{study}@champion" in output
    model_id = version.model_id or version.source.removeprefix("models:/")
    assert client.get_logged_model(model_id).source_run_id == run_id, "the champion's own model"

    # Served over HTTP, it predicts what the evaluate stage predicted for the same test inputs.
    prepared = project / "data/prepared" / ("spoken_digits" if task == "speech" else "digits")
    x = load_split(prepared, "test")[0][:24]  # normalised as the model was trained
    with (project / f"reports/runs/{best}/s0/predictions.csv").open() as table:
        evaluated = [row["predicted"] for row in csv.DictReader(table)][:24]
    server, url = serve(project, f"models:/{study}@champion")
    try:
        request = urllib.request.Request(
            f"{url}/invocations",
            data=json.dumps({"inputs": x.tolist()}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=60) as response:
            logits = torch.tensor(json.loads(response.read())["predictions"])
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert logits.shape == (24, 10)
    assert [str(c) for c in logits.argmax(-1).tolist()] == evaluated
