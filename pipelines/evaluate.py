"""Stage `evaluate`: score models/<size>/[d<samples>/]s<seed>/ (with all_seeds=true, each seed and
training-set size of the study) on the test split; write reports/runs/<size>/[d<samples>/]s<seed>/
and log to the run that trained it."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab import paths
from scalelab.config import Config
from scalelab.evaluation import evaluate_run


@stage
def main(config: Config) -> None:
    for run in config.runs():
        metrics = evaluate_run(run)
        key = paths.run_key(run.model.size, run.seed, run.data.train_samples)
        print(f"evaluated {key}: test/acc={metrics['test/acc']:.4f}")


if __name__ == "__main__":
    main()
