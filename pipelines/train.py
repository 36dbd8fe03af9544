"""Stage `train`: fit one rung and seed (with all_seeds=true, each of the study's seeds and
training-set sizes in turn, as `dvc repro` does) to models/<size>/[d<samples>/]s<seed>/, logged
to MLflow; a killed training resumes.
With trainer=ddp, Lightning runs this entry point once per extra process (as srun does)."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab.config import Config
from scalelab.training.recorded import train_seed


@stage(sweepable=True)
def main(config: Config) -> None:
    for run in config.runs():
        train_seed(run)


if __name__ == "__main__":
    main()
