"""Stage `scaling`: fit the law to every rung's test metrics; report it; hang the runs under a parent."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab.config import Config
from scalelab.scaling.flow import fit_dvc_study


@stage
def main(config: Config) -> None:
    fit_dvc_study(config)


if __name__ == "__main__":
    main()
