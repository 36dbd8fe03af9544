"""Stage `train`: fit one rung and seed (or, with all_seeds=true, each of the study's seeds in
turn, as `dvc repro` does); checkpoint to models/<size>/s<seed>/, log to MLflow.

A training killed part-way (even by SIGKILL) resumes from its last epoch checkpoint, into the
same MLflow run, when the same command runs again. With trainer.lr_search, each seed is a
search over learning rates, the lowest validation loss kept (scalelab/training/recorded.py).

With trainer=ddp, Lightning runs this same entry point once per extra process (as `srun` does
on a cluster): those train their share and leave the MLflow run, the files and the clean-up to
rank zero.
"""

from scalelab.process import collects_after_startup, hold_collection, run_then_exit_quickly

hold_collection()  # before the heavy imports below: see scalelab/process.py

import hydra
from omegaconf import DictConfig

from scalelab.config import load_config, one_line_composition_errors
from scalelab.errors import exit_on_user_error
from scalelab.sweep_job import survives_sweep
from scalelab.training.recorded import train_seed


@one_line_composition_errors
@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@collects_after_startup
@survives_sweep
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    for seed in config.seeds():
        train_seed(config.for_seed(seed))


if __name__ == "__main__":
    run_then_exit_quickly(main)
