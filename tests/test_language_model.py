"""The Transformer language-model family on text, through the same paths as every family:
`dvc repro` of a tiny ladder (prepare, train, evaluate, fit, the champion served), a Hydra
multirun and a queued DVC experiment — on a slice of Tiny Shakespeare, tiny rungs and one
epoch (CI time matters)."""

from __future__ import annotations

import csv
import json
import math
import os
import signal
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import torch
from mlflow import MlflowClient

from scalelab.data import text
from scalelab.text_evaluation import PROMPT_CHARS, SAMPLE_CHARS
from scalelab.training.saved import load_network
from tests.conftest import copy_project, run, run_queue, start, wait_until
from tests.test_serving import serve

pytestmark = pytest.mark.slow

CORPUS_CHARS = 60_000  # 54,000 train, 3,000 validation, 3,000 test characters
TINY = [
    "model=gpt",
    "data=text",
    "data.context=32",
    "model.ladder.xs.width=16",  # 16, 32, 48 wide: three rungs in seconds
    "model.ladder.s.width=32",
    "model.ladder.m.width=48",
    "model.ladder.m.depth=1",
    "trainer.max_epochs=1",
    "trainer.batch_size=32",
    "trainer.progress_bar=false",
    "sweep.sizes=[xs,s,m]",
    "sweep.seeds=[0]",
    "sweep.bootstrap=20",
]


@pytest.fixture
def corpus(shakespeare: Path, tmp_path: Path) -> Path:
    """The first 60,000 characters of Tiny Shakespeare as a user's own text file."""
    path = tmp_path / "corpus.txt"
    path.write_text(shakespeare.read_text()[:CORPUS_CHARS])
    return path


def test_a_gpt_ladder_on_text_through_dvc_repro(project: Path, corpus: Path) -> None:
    run(["python", "-m", "scalelab.params_file", *TINY, f"data.root={corpus}"], project)
    run(["dvc", "repro"], project)

    manifest = json.loads((project / "data/prepared/text/manifest.json").read_text())
    assert manifest["input_shape"] == [32] and manifest["splits"]["train"]["count"] == (54_000 - 1) // 32
    trained = json.loads((project / "reports/train/xs/s0/train_metrics.json").read_text())
    vocab, w = manifest["num_classes"], 16
    assert trained["model/params"] == 12 * w * w + 13 * w + 2 * w, "N is the non-embedding count"
    assert trained["model/total_params"] == trained["model/params"] + vocab * w + 32 * w
    assert trained["model/flops_per_sample"] == 32 * (6 * trained["model/params"] + 6 * 1 * 32 * w)
    assert trained["val/bpc"] == pytest.approx(trained["val/loss"] / math.log(2))
    tested = json.loads((project / "reports/runs/xs/s0/metrics.json").read_text())
    assert set(tested) == {"test/loss", "test/bpc", "test/acc"}
    assert tested["test/bpc"] < math.log2(vocab), "one epoch beats guessing characters uniformly"

    sample = (project / "reports/runs/xs/s0/sample.txt").read_text()
    test_start = manifest["split"]["spans"]["test"][0]
    assert sample[:PROMPT_CHARS] == corpus.read_text()[test_start : test_start + PROMPT_CHARS]
    assert len(sample) == PROMPT_CHARS + SAMPLE_CHARS and set(sample) <= set(manifest["vocab"])
    with (project / "reports/best_predictions.csv").open() as table:
        rows = list(csv.DictReader(table))
    assert len(rows) == manifest["tokens"]["test"] and set(rows[0]) == {"actual", "predicted"}

    study = json.loads((project / "reports/scaling.json").read_text())
    assert study["sizes"] == ["xs", "s", "m"] and study["runs"] == 3
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    experiment = client.get_experiment_by_name("text-gpt")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    xs = runs["gpt-xs-s0"]
    assert xs.data.metrics["test/bpc"] == pytest.approx(tested["test/bpc"])
    shown = {a.path for a in client.list_artifacts(xs.info.run_id, "evaluation")}
    assert {"evaluation/sample.txt", "evaluation/metrics.json"} <= shown
    assert xs.outputs.model_outputs, "the trained model is logged"

    # The champion (lowest validation loss) is registered and served: a prompt in, its
    # continuation out, the one the checkpoint's own network samples with the same seed.
    version = client.get_model_version_by_alias("text-gpt", "champion")
    champion = next(size for size in ("xs", "s", "m") if runs[f"gpt-{size}-s0"].info.run_id == version.run_id)
    net, _ = load_network(project / f"models/{champion}/s0/model.ckpt")
    vocab = text.vocab_of(manifest)
    prompt = "ROMEO:\nWhat say"
    ids = torch.from_numpy(vocab.encode(prompt).astype("int64"))[None]
    expected = vocab.decode(
        net.generate(ids, 40, torch.Generator().manual_seed(3))[0, len(prompt) :].tolist()
    )
    server, url = serve(project, "models:/text-gpt@champion")
    try:
        answer = invoke(
            url, {"dataframe_records": [{"prompt": prompt}], "params": {"max_chars": 40, "seed": 3}}
        )
        refused = invoke(url, {"dataframe_records": [{"prompt": "ROMEO€"}]})
    finally:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    assert answer == {"predictions": [expected]}
    assert "the prompt holds 1 character(s) the vocabulary does not ('€'" in json.dumps(
        refused, ensure_ascii=False
    )


def invoke(url: str, body: dict) -> dict:
    """POST `body` to a served model's /invocations; its JSON answer (an error's too)."""
    request = urllib.request.Request(
        f"{url}/invocations", data=json.dumps(body).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=120) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as err:
        return json.loads(err.read())


def test_a_gpt_ladder_on_text_through_a_hydra_multirun(project: Path, corpus: Path) -> None:
    overrides = [o for o in TINY if not o.startswith("sweep.")] + [f"data.root={corpus}"]
    run(["python", "-m", "pipelines.prepare", *overrides], project)
    sweep = ["model.size=xs,s,m", "sweep.bootstrap=20", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = run(["python", "-m", "pipelines.train", "-m", *overrides, *sweep], project)
    assert "3 runs fitted" in result.stdout
    for size in ("xs", "s", "m"):
        assert (project / f"reports/runs/{size}/s0/sample.txt").is_file()


def test_a_gpt_ladder_on_text_through_a_queued_dvc_experiment(project: Path, corpus: Path) -> None:
    run(["python", "-m", "scalelab.params_file"], project)
    run(["git", "add", "-A"], project)
    run(["git", "commit", "-qm", "init"], project)
    settings = [a for o in [*TINY, f"data.root={corpus}"] for a in ("-S", o)]
    run(["dvc", "exp", "run", "--queue", "-n", "gpt", *settings], project)
    status = run_queue(project, workers=1)
    assert status.count("Success") == 1, status
    shown = {
        exp["revs"][0]["name"]: exp["revs"][0]["data"]
        for baseline in json.loads(run(["dvc", "exp", "show", "--json"], project).stdout)
        for exp in baseline.get("experiments") or []
    }
    data = shown["gpt"]
    assert data["params"]["params.yaml"]["data"]["model"]["name"] == "gpt"
    assert data["metrics"]["reports/scaling.json"]["data"]["runs"] == 3


def test_a_language_model_killed_mid_budget_resumes_bit_identical(project: Path, corpus: Path) -> None:
    """kill -9 during a token-budget training with a per-step schedule; the same command again
    continues the same MLflow run and ends where an uninterrupted training ends, bit for bit."""
    settings = [o for o in TINY if not o.startswith("sweep.")] + [f"data.root={corpus}"]
    settings += [
        "model.size=s",
        "trainer.max_tokens=400000",  # ~7.4 epochs of 54,000 characters: a few seconds
        "trainer.lr_schedule=warmup_cosine",
        "trainer.warmup_steps=20",
        "trainer.early_stopping.enabled=false",
        "trainer.num_threads=1",
    ]
    run(["python", "-m", "pipelines.prepare", *settings], project)
    reference = copy_project(project, project.parent / "reference")
    train = ["python", "-m", "pipelines.train", *settings]
    run(train, reference)

    client = MlflowClient(f"sqlite:///{project}/mlflow.db")

    def running() -> list:
        experiment = client.get_experiment_by_name("text-gpt") if (project / "mlflow.db").exists() else None
        found = (
            client.search_runs([experiment.experiment_id], "attributes.status = 'RUNNING'")
            if experiment
            else []
        )
        return [r for r in found if len(client.get_metric_history(r.info.run_id, "val/bpc")) >= 2]

    child = start(train, project, start_new_session=True)
    try:  # two epochs logged: the kill lands in the third or later, mid-budget
        [killed] = wait_until(running, "two epochs logged", every=0.05)
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
    finally:
        child.kill()
    assert not (project / "reports/train/s/s0/train_metrics.json").exists(), "killed before it finished"
    killed_run = killed.info.run_id

    output = run(train, project).stdout
    assert "resuming s-s0 after epoch" in output
    timing = ("train/seconds", "train/samples_per_second", "train/tokens_per_second", "train/mfu")
    timing += ("machine/matmul_flops_per_second",)

    def outcome(repo: Path) -> tuple[str, dict, dict]:
        metrics = json.loads((repo / "reports/train/s/s0/train_metrics.json").read_text())
        run_id = json.loads((repo / "reports/train/s/s0/run.json").read_text())["run_id"]
        weights = torch.load(repo / "models/s/s0/model.ckpt", weights_only=True)["state_dict"]
        return run_id, {k: v for k, v in metrics.items() if k not in timing}, weights

    run_id, metrics, weights = outcome(project)
    _, expected, expected_weights = outcome(reference)
    assert run_id == killed_run, "the resumed training continues the killed MLflow run"
    assert metrics == expected and metrics["train/tokens"] > 0
    assert all(torch.equal(weights[k], expected_weights[k]) for k in expected_weights), "bit for bit"
    steps = [m.step for m in client.get_metric_history(run_id, "val/bpc")]
    assert steps == list(range(int(metrics["train/stopped_epoch"]) + 1)), "one point per epoch, no duplicate"


def test_an_isoflop_study_of_a_language_model_counts_tokens(project: Path, corpus: Path) -> None:
    """Three sizes at three compute budgets, one pass over what each budget buys: the smallest size's
    largest budget buys more windows than the corpus holds (it repeats), and the IsoFLOP report
    counts D in tokens and gives tokens per parameter."""
    settings = [o for o in TINY if not o.startswith(("sweep.", "trainer.max_epochs"))]
    settings += [f"data.root={corpus}", "trainer.max_epochs=1"]
    run(["python", "-m", "pipelines.prepare", *settings], project)
    sweep = ["model.size=xs,s,m", "data.compute_budget=5e8,1e9,2e9", "seed=0", "sweep.bootstrap=20"]
    sweep += ["hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]
    result = run(["python", "-m", "pipelines.train", "-m", *settings, *sweep], project)
    assert "9 runs fitted" in result.stdout

    manifest = json.loads((project / "data/prepared/text/manifest.json").read_text())
    cells = (project / "reports/train/xs").glob("d*/s0/train_metrics.json")
    runs = [json.loads(p.read_text()) for p in cells]
    largest = max(runs, key=lambda m: m["data/train_samples"])
    assert largest["data/train_samples"] > manifest["splits"]["train"]["count"], "2e9 FLOPs buy more than it"
    assert largest["data/train_tokens"] == largest["data/train_samples"] * 32
    assert 0.9 * 2e9 < largest["train/flops"] <= 2e9, "the budget spent, less the rounding of D"
    isoflop = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())["isoflop"]
    study = json.loads((project / "reports/sweeps/ladder/scaling.json").read_text())
    assert study["joint"]["data_column"] == "tokens", "the joint law's D is the same tokens"
    assert isoflop["unit"] == "tokens" and [b["compute"] for b in isoflop["budgets"]] == [5e8, 1e9, 2e9]
    assert 6 < isoflop["flops_per_param_sample"] < 8, "6N plus attention per token"
    assert all("tokens_per_param" in b for b in isoflop["budgets"])
    client = MlflowClient(f"sqlite:///{project}/mlflow.db")
    runs = client.search_runs([client.get_experiment_by_name("text-gpt").experiment_id])
    [parent] = [r for r in runs if r.info.run_name == "ladder"]
    assert "tokens per parameter" in parent.data.tags["mlflow.note.content"], "the parent's description"
