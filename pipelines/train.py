"""Stage `train`: fit model.size on the prepared data; checkpoint to models/<size>/, log to MLflow."""

import hydra
from omegaconf import DictConfig

from scalelab import atomic, paths, tracking
from scalelab.config import load_config
from scalelab.data.datamodule import PreparedDataModule
from scalelab.errors import exit_on_user_error
from scalelab.training.fit import fit


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    size = config.model.size
    data = PreparedDataModule(
        paths.prepared_dir(config.data.name), config.trainer.batch_size, seed=config.seed
    )
    with tracking.training_run(config, data.manifest["fingerprint"]) as run_id:
        result = fit(
            config.model,
            config.trainer,
            data,
            seed=config.seed,
            out_dir=paths.model_dir(size),
            tracking_uri=tracking.resolve_uri(config.tracking),
            run_id=run_id,
        )
        if config.tracking.log_model:
            tracking.log_model(result.net, data.splits["val"][0][:8])
    atomic.write_json(paths.report_dir(size) / "train_metrics.json", result.metrics)
    print(f"trained {size}: val/acc={result.metrics['val/acc']:.4f}, run {run_id}")


if __name__ == "__main__":
    main()
