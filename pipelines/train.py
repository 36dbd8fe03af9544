"""Stage `train`: fit one rung and seed; checkpoint to models/<size>-s<seed>/, log to MLflow."""

import hydra
from omegaconf import DictConfig

from scalelab import atomic, paths, tracking
from scalelab.config import load_config
from scalelab.data.datamodule import PreparedDataModule
from scalelab.errors import exit_on_user_error
from scalelab.sweep import survives_sweep
from scalelab.training.fit import fit


@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@survives_sweep
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    size, seed = config.model.size, config.seed
    trainer = config.trainer
    data = PreparedDataModule(
        paths.prepared_dir(config.data.name), trainer.batch_size, seed, trainer.steps_per_call
    )
    with tracking.training_run(config, data.manifest["fingerprint"]) as run_id:
        result = fit(
            config.model,
            config.trainer,
            data,
            seed=seed,
            out_dir=paths.model_dir(size, seed),
            tracking_uri=tracking.resolve_uri(config.tracking),
            run_id=run_id,
        )
        if config.tracking.log_model:
            tracking.log_model(result.net, data.splits["val"][0][:8])
    out = paths.run_reports(size, seed)
    atomic.write_json(out / "train_metrics.json", result.metrics)
    run = {"run_id": run_id, "size": size, "seed": seed, "first_step_at": result.first_step_at}
    atomic.write_json(out / "run.json", run)
    print(f"trained {paths.run_key(size, seed)}: val/acc={result.metrics['val/acc']:.4f}, run {run_id}")


if __name__ == "__main__":
    main()
