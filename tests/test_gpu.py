"""The GPU paths (`trainer.accelerator=gpu`, `trainer=ddp_gpu`, bf16 on CUDA), run where a CUDA GPU
is present and skipped elsewhere (CI has none): training on the GPU is deterministic under the
default `trainer.deterministic=true`, a checkpoint trained there is evaluated on the CPU, the GPT
family trains in bf16 under a token budget, DDP runs over NCCL, and a multirun shares one GPU
among its jobs. The scratch projects have no git or DVC: the stages run without them."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from tests.conftest import make_project, run

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]

GPU = ["trainer.accelerator=gpu", "trainer.progress_bar=false"]
MLP = ["model.size=m", "trainer.max_epochs=3", *GPU]


@pytest.fixture
def digits_project(tmp_path: Path) -> Path:
    """A plain copy of the project with the digits smoke study's data prepared."""
    project = make_project(tmp_path / "project", vcs=False)
    run(["python", "-m", "pipelines.prepare"], project)
    return project


def client_of(project: Path) -> MlflowClient:
    return MlflowClient(f"sqlite:///{project}/mlflow.db")


def only_run(project: Path, experiment: str):
    client = client_of(project)
    [found] = client.search_runs([client.get_experiment_by_name(experiment).experiment_id])
    return found


def test_training_on_the_gpu_is_deterministic_and_evaluates_on_the_cpu(digits_project: Path) -> None:
    again = Path(shutil.copytree(digits_project, digits_project.parent / "again"))
    for project in (digits_project, again):
        run(["python", "-m", "pipelines.train", *MLP], project)  # trainer.deterministic=true: the default

    def history(project: Path) -> list[float]:
        client = client_of(project)
        found = only_run(project, "digits-mlp")
        return [m.value for m in client.get_metric_history(found.info.run_id, "val/loss")]

    assert len(history(digits_project)) == 3
    assert history(digits_project) == history(again), "two trainings on the GPU agree to the last bit"

    run(["python", "-m", "pipelines.evaluate", "model.size=m", "seed=0"], digits_project)  # on the CPU
    found = only_run(digits_project, "digits-mlp")
    assert found.data.params["trainer.accelerator"] == "gpu"
    assert found.info.status == "FINISHED"
    assert found.data.metrics["test/acc"] > 0.85


def test_a_language_model_trains_in_bf16_on_the_gpu(tmp_path: Path) -> None:
    project = make_project(tmp_path / "project", vcs=False)
    corpus = tmp_path / "corpus.txt"
    words = ["to", "be", "or", "not", "that", "is", "the", "question", "whether", "tis", "nobler"]
    lines = (" ".join(words[(i + j) % len(words)] for j in range(9)) for i in range(3000))
    corpus.write_text("\n".join(lines))
    settings = [
        "model=gpt",
        "data=text",
        f"data.root={corpus}",
        "data.context=32",
        "model.size=xs",
        "trainer.batch_size=32",
        "trainer.max_tokens=300000",
        "trainer.lr_schedule=warmup_cosine",
        "trainer.warmup_steps=20",
        "trainer.early_stopping.enabled=false",
        "trainer.precision=bf16-mixed",
        *GPU,
    ]
    run(["python", "-m", "pipelines.prepare", *settings], project)
    run(["python", "-m", "pipelines.train", *settings], project)
    run(["python", "-m", "pipelines.evaluate", *settings, "seed=0"], project)

    trained = json.loads((project / "reports/train/xs/s0/train_metrics.json").read_text())
    assert trained["train/tokens"] == pytest.approx(300_000, rel=0.01), "the budget in steps of full batches"
    assert trained["train/tokens_per_second"] > 0 and 0 < trained["train/mfu"] < 1
    tested = json.loads((project / "reports/runs/xs/s0/metrics.json").read_text())
    vocab = len(json.loads((project / "data/prepared/text/manifest.json").read_text())["vocab"])
    assert tested["test/bpc"] < 0.5 * math.log2(vocab), "a repetitive corpus is learned well past guessing"
    assert (project / "reports/runs/xs/s0/sample.txt").is_file()
    assert only_run(project, "text-gpt").data.params["trainer.precision"] == "bf16-mixed"


def test_ddp_over_nccl_trains_one_run_like_one_gpu(digits_project: Path) -> None:
    devices = torch.cuda.device_count()
    single = Path(shutil.copytree(digits_project, digits_project.parent / "single"))
    run(["python", "-m", "pipelines.train", *MLP], single)
    ddp_gpu = ["trainer=ddp_gpu", f"trainer.devices={devices}"]
    run(["python", "-m", "pipelines.train", *MLP, *ddp_gpu], digits_project)

    ddp = only_run(digits_project, "digits-mlp")
    one = only_run(single, "digits-mlp")
    assert ddp.info.status == "FINISHED"
    assert ddp.data.params["trainer.strategy"] == "ddp" and ddp.data.params["trainer.devices"] == str(devices)
    assert ddp.data.metrics["val/acc"] == pytest.approx(one.data.metrics["val/acc"], abs=0.02)
    assert ddp.data.metrics["val/loss"] == pytest.approx(one.data.metrics["val/loss"], rel=0.05)


def test_a_multirun_shares_one_gpu_among_its_jobs(digits_project: Path) -> None:
    sweep = ["model.size=xs,s,m", "sweep.bootstrap=20", "hydra/launcher=joblib", "hydra.launcher.n_jobs=3"]
    result = run(["python", "-m", "pipelines.train", "-m", *MLP[1:], *sweep], digits_project)
    assert "3 runs fitted" in result.stdout
