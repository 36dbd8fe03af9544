"""Stage `scaling`: fit the law to every rung's test metrics; report it; hang the runs under a parent."""

from scalelab.process import collects_after_startup, hold_collection, run_then_exit_quickly

hold_collection()  # before the heavy imports below: see scalelab/process.py

import hydra
from omegaconf import DictConfig

from scalelab import paths
from scalelab.config import load_config, one_line_composition_errors
from scalelab.errors import exit_on_user_error
from scalelab.scaling.report import markdown, write_study
from scalelab.scaling.study import analyse, collect
from scalelab.tracking import registry, sweeps


@one_line_composition_errors
@hydra.main(config_path="../conf", config_name="config", version_base="1.3")
@collects_after_startup
@exit_on_user_error
def main(cfg: DictConfig) -> None:
    config = load_config(cfg)
    study = analyse(collect(config.sweep.sizes, config.sweep.seeds), config.sweep.bootstrap)
    files = write_study(study, paths.REPORTS)
    runs = {r.run_id for r in study.records if r.run_id} | {t for r in study.records for t in r.trial_run_ids}
    parent = sweeps.study_parent(config, sorted(runs))
    sweeps.finish_parent(config, parent, study.summary(), markdown(study), files)
    print(markdown(study))
    print(registry.describe(registry.register_champion(config, study.records), config))


if __name__ == "__main__":
    run_then_exit_quickly(main)
