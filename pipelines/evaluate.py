"""Stage `evaluate`: score models/<size>/ on the test split; write reports/<size>/, log to MLflow."""

import hydra
from omegaconf import DictConfig

from scalelab import atomic, evaluation, paths, tracking
from scalelab.config import load_config
from scalelab.data.prepared import load_split, read_manifest
from scalelab.errors import exit_on_user_error
from scalelab.training.saved import CHECKPOINT_FILE, load_network


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    size, out = config.model.size, paths.report_dir(config.model.size)
    net, meta = load_network(paths.model_dir(size) / CHECKPOINT_FILE)
    data_dir = paths.prepared_dir(config.data.name)
    classes = read_manifest(data_dir)["class_names"]
    x, y = load_split(data_dir, "test")
    logits = evaluation.predict(net, x)
    metrics, confusion = evaluation.score(logits, y, meta["loss"])
    atomic.write_json(out / "metrics.json", metrics)
    evaluation.write_predictions(out / "predictions.csv", y, logits, classes)
    evaluation.plot_confusion(
        out / "confusion.png",
        confusion,
        classes,
        f"{config.data.name} {config.model.name}-{size}: test confusion",
    )
    if meta["run_id"]:
        tracking.log_evaluation(
            config.tracking, meta["run_id"], metrics, [out / "metrics.json", out / "confusion.png"]
        )
    print(f"evaluated {size}: test/acc={metrics['test/acc']:.4f} test/loss={metrics['test/loss']:.4f}")


if __name__ == "__main__":
    main()
