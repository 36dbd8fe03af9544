"""Stage `evaluate`: score models/<size>/[d<samples>/]s<seed>/ (with all_seeds=true, each seed and
training-set size of the study) on the test split; write reports/runs/<size>/[d<samples>/]s<seed>/
and reports/metrics/<size>.json, and log to the run that trained it."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab.config import Config
from scalelab.evaluation import evaluate_rung


@stage
def main(config: Config) -> None:
    evaluate_rung(config)


if __name__ == "__main__":
    main()
