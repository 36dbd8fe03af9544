"""Stage `prepare`: raw dataset -> checked, split, normalised tensors in data/prepared/<name>/."""

from scalelab.stage import stage  # first: it holds garbage collection while the rest imports

# isort: split
from scalelab.config import Config
from scalelab.data.prepare import prepare


@stage
def main(config: Config) -> None:
    print(f"prepared {config.data.name} -> {prepare(config.data)}/")


if __name__ == "__main__":
    main()
