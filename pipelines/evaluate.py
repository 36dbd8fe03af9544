"""Stage `evaluate`: score models/<size>/s<seed>/ (each seed of the study with all_seeds=true) on
the test split; report it and log to MLflow."""

from scalelab.process import collects_after_startup, hold_collection, run_then_exit_quickly

hold_collection()  # before the heavy imports below: see scalelab/process.py

import hydra
from omegaconf import DictConfig

from scalelab.config import load_config, one_line_composition_errors
from scalelab.errors import exit_on_user_error
from scalelab.evaluation import evaluate_run


@one_line_composition_errors
@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@collects_after_startup
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    for seed in config.seeds():
        metrics = evaluate_run(config.for_seed(seed))
        print(f"evaluated {config.model.size}-s{seed}: test/acc={metrics['test/acc']:.4f}")


if __name__ == "__main__":
    run_then_exit_quickly(main)
