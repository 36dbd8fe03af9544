"""Stage `evaluate`: score models/<size>/s<seed>/ (with all_seeds=true, each seed of the study)
on the test split; write reports/runs/<size>/s<seed>/ and log to the run that trained it."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab.config import Config
from scalelab.evaluation import evaluate_run


@stage
def main(config: Config) -> None:
    for seed in config.seeds():
        metrics = evaluate_run(config.for_seed(seed))
        print(f"evaluated {config.model.size}-s{seed}: test/acc={metrics['test/acc']:.4f}")


if __name__ == "__main__":
    main()
