"""Stage `prepare`: raw dataset -> checked, split, normalised tensors in data/prepared/<name>/."""

from scalelab.process import collects_after_startup, hold_collection, run_then_exit_quickly

hold_collection()  # before the heavy imports below: see scalelab/process.py

import hydra
from omegaconf import DictConfig

from scalelab.config import load_config, one_line_composition_errors
from scalelab.data.prepare import prepare
from scalelab.errors import exit_on_user_error


@one_line_composition_errors
@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@collects_after_startup
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    out = prepare(config.data)
    print(f"prepared {config.data.name} -> {out}/")


if __name__ == "__main__":
    run_then_exit_quickly(main)
