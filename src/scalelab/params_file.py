"""Write `params.yaml` as DVC's Hydra integration does: the composition of `conf/`.

`dvc exp run` recomposes `params.yaml` itself; `dvc repro` only reads it (DVC 3.67), so
`make params` (run by `make run`) calls the very function DVC uses, and a test checks they agree.
It refuses to overwrite a `params.yaml` that holds something else than what it last wrote (an
experiment's settings restored by `dvc exp apply`, say) unless forced.
Usage: python -m scalelab.params_file [--force] [override ...]   e.g. data=fashion_mnist
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from scalelab import atomic
from scalelab.errors import ConfigError, exit_on_user_error

STAMP = ".dvc/tmp/params.yaml.composed"  # what was last written here; DVC's tmp, never committed


def compose(
    output: str | Path = "params.yaml", overrides: list[str] | None = None, root: str | Path = "."
) -> None:
    """Compose `<root>/conf/config.yaml` with `overrides` into `output`, exactly as DVC would."""
    from dvc.utils.hydra import compose_and_dump

    root = Path(root).resolve()
    compose_and_dump(output, str(root / "conf"), None, "config", str(root), overrides or [])


def write(overrides: list[str], force: bool = False, root: str | Path = ".") -> Path:
    """Compose `params.yaml` in `root` from `conf/` and `overrides`; refuse (`ConfigError`) to
    replace one that differs both from the composition and from what this last wrote there
    (or, before it ever wrote, from git's HEAD) unless `force`."""
    root = Path(root).resolve()
    target, stamp = root / "params.yaml", root / STAMP
    with tempfile.TemporaryDirectory() as tmp:
        compose(Path(tmp) / "params.yaml", overrides, root)
        new = (Path(tmp) / "params.yaml").read_text()
    if target.is_file() and not force:
        current = target.read_text()
        ours = stamp.read_text() if stamp.is_file() else _committed(root)
        if current not in (new, ours):
            raise ConfigError(
                "params.yaml differs from conf/ and from what make params last wrote (an experiment's "
                "settings from dvc exp apply or dvc exp run, or an edit): `dvc repro` reproduces it as it "
                "is; `make params FORCE=1` (python -m scalelab.params_file --force) recomposes it from conf/"
            )
    atomic.write_text(target, new)
    if stamp.parent.parent.is_dir():  # a DVC repo
        atomic.write_text(stamp, new)
    return target


def _committed(root: Path) -> str | None:
    """`params.yaml` as git's HEAD has it; None outside git or before its first commit."""
    shown = subprocess.run(
        ["git", "show", "HEAD:params.yaml"], cwd=root, capture_output=True, text=True, check=False
    )
    return shown.stdout if shown.returncode == 0 else None


@exit_on_user_error
def main(argv: list[str]) -> None:
    write([a for a in argv if a != "--force"], force="--force" in argv)


if __name__ == "__main__":
    main(sys.argv[1:])
