"""`make params` writes params.yaml from conf/, and will not overwrite an experiment's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from scalelab.errors import ConfigError
from scalelab.params_file import write
from tests.conftest import run


def test_params_yaml_follows_conf_but_an_experiments_settings_are_kept_unless_forced(project: Path) -> None:
    params = project / "params.yaml"
    write([], root=project)  # a fresh project: nothing written or committed before
    write(["trainer.max_epochs=7"], root=project)  # what it wrote itself is recomposed freely
    assert "max_epochs: 7" in params.read_text()

    params.write_text(params.read_text().replace("max_epochs: 7", "max_epochs: 9"))  # as dvc exp apply does
    with pytest.raises(ConfigError, match=r"params.yaml differs from conf/ .* `make params FORCE=1`"):
        write([], root=project)
    assert "max_epochs: 9" in params.read_text(), "left as it was"
    result = run(["python", "-m", "scalelab.params_file"], project, check=False)
    assert result.returncode == 2 and len(result.stderr.strip().splitlines()) == 1
    assert "max_epochs: 9" in params.read_text()

    write([], force=True, root=project)
    assert "max_epochs: 9" not in params.read_text()
