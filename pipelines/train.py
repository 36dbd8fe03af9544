"""Stage `train`: fit one rung and seed; checkpoint to models/<size>-s<seed>/, log to MLflow.

A training killed part-way (even by SIGKILL) resumes from its last epoch checkpoint, into the
same MLflow run, when the same command runs again.

With trainer=ddp, Lightning runs this same entry point once per extra process (as `srun` does
on a cluster): those train their share and leave the MLflow run, the files and the clean-up to
rank zero.
"""

from scalelab.process import collects_after_startup, hold_collection, run_then_exit_quickly

hold_collection()  # before the heavy imports below: see scalelab/process.py

import shutil

import hydra
from omegaconf import DictConfig
from pytorch_lightning.utilities import rank_zero_only

from scalelab import atomic, paths, tracking
from scalelab.config import load_config
from scalelab.data.datamodule import PreparedDataModule
from scalelab.errors import exit_on_user_error, one_line_composition_errors
from scalelab.sweep import survives_sweep
from scalelab.tracking import logged_models
from scalelab.training import resume
from scalelab.training.fit import fit


@one_line_composition_errors
@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@collects_after_startup
@survives_sweep
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    size, seed, trainer = config.model.size, config.seed, config.trainer
    key = paths.run_key(size, seed)
    data = PreparedDataModule(
        paths.prepared_dir(config.data.name), trainer.batch_size, seed, trainer.steps_per_call
    )
    checkpoints = resume.checkpoint_dir(key, resume.identity(config.model, trainer, data.manifest, seed))
    out_dir = paths.model_dir(size, seed)
    if rank_zero_only.rank != 0:
        fit(config.model, trainer, data, seed=seed, out_dir=out_dir, checkpoints=checkpoints)
        return
    previous = resume.previous(checkpoints)
    if previous:
        print(f"resuming {key} after epoch {previous.epochs_done} from {previous.path}")
    fingerprint = data.manifest["fingerprint"]
    with tracking.training_run(config, fingerprint, previous and previous.run_id) as run_id:
        result = fit(
            config.model,
            trainer,
            data,
            seed=seed,
            out_dir=out_dir,
            checkpoints=checkpoints,
            tracking_uri=tracking.resolve_uri(config.tracking),
            run_id=run_id,
        )
        if config.tracking.log_model:
            logged_models.log_model(result.net, data.splits["val"][0][:8])
    shutil.rmtree(checkpoints)  # the run is finished: nothing left to resume
    out = paths.run_reports(size, seed)
    atomic.write_json(out / "train_metrics.json", result.metrics)
    run = {"run_id": run_id, "size": size, "seed": seed, "first_step_at": result.first_step_at}
    atomic.write_json(out / "run.json", run)
    print(f"trained {key}: val/acc={result.metrics['val/acc']:.4f}, run {run_id}")


if __name__ == "__main__":
    run_then_exit_quickly(main)
