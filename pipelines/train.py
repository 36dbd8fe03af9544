"""Stage `train`: fit one rung and seed (with all_seeds=true, each of the study's seeds and
training-set sizes in turn, as `dvc repro` does) to models/<size>/[d<samples>/]s<seed>/, logged
to MLflow; a killed training resumes.
With trainer=ddp, Lightning runs this entry point once per extra process (as srun does)."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab.compute_budget import samples_by_size
from scalelab.config import Config
from scalelab.training.recorded import train_seed


@stage(sweepable=True)
def main(config: Config) -> float | None:
    """Train; return the best validation loss (of the last run): a hyperparameter search's
    objective (conf/hparams_search/)."""
    val_loss = None
    if config.all_seeds and config.sweep.compute_budgets:  # refuse budgets that share a cell first
        samples_by_size(config, [config.model.size], config.sweep.compute_budgets)
    for run in config.runs():
        val_loss = train_seed(run)
    return val_loss


if __name__ == "__main__":
    main()
