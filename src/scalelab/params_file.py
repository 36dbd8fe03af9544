"""Write `params.yaml` as DVC's Hydra integration does: the composition of `conf/`.

`dvc exp run` recomposes `params.yaml` itself; `dvc repro` does not (STACK-NOTES.md), so
`make params` (run by `make run`) calls the very function DVC uses, and a test checks they agree.
Usage: python -m scalelab.params_file [override ...]   e.g. data=fashion_mnist
"""

from __future__ import annotations

import sys
from pathlib import Path


def compose(
    output: str | Path = "params.yaml", overrides: list[str] | None = None, root: str | Path = "."
) -> None:
    """Compose `<root>/conf/config.yaml` with `overrides` into `output`, exactly as DVC would."""
    from dvc.utils.hydra import compose_and_dump

    root = Path(root).resolve()
    compose_and_dump(output, str(root / "conf"), None, "config", str(root), overrides or [])


if __name__ == "__main__":
    compose("params.yaml", sys.argv[1:])
