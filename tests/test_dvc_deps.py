"""dvc.yaml cannot drift from the code: every scalelab module a stage loads is among its deps, and
no stage depends on a setting that cannot change its outputs."""

from __future__ import annotations

import ast
import dataclasses
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from scalelab.config import TrainerConfig
from scalelab.training.resume import RUNTIME_ONLY
from tests.conftest import ROOT

STAGES = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]


def stage_body(name: str) -> dict:
    """A stage's definition (the body of a foreach stage)."""
    stage = STAGES[name]
    return stage.get("do", stage)


def loaded_in_a_fresh_interpreter(module: str) -> set[str]:
    """Source files of the scalelab modules that importing `module` loads."""
    code = (
        f"import importlib, json, sys; importlib.import_module({module!r}); "
        "print(json.dumps([m.__file__ for n, m in list(sys.modules.items()) "
        "if n.split('.')[0] == 'scalelab' and getattr(m, '__file__', None)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    return {str(Path(f).resolve().relative_to(ROOT)) for f in json.loads(out.stdout.splitlines()[-1])}


def imported_anywhere(path: Path, seen: set[str] | None = None) -> set[str]:
    """Source files of the scalelab modules `path` imports, at its top or inside a function (an
    import a stage only makes when it needs it), and theirs in turn."""
    seen = set() if seen is None else seen
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{alias.name}" for alias in node.names]
        for name in names:
            if name.split(".")[0] != "scalelab":
                continue
            base = ROOT / "src" / Path(*name.split("."))
            for candidate in (base.with_suffix(".py"), base / "__init__.py"):
                rel = str(candidate.relative_to(ROOT))
                if candidate.is_file() and rel not in seen:
                    seen.add(rel)
                    imported_anywhere(candidate, seen)
    # a package's __init__ runs before any of its modules
    for rel in list(seen):
        for parent in Path(rel).parents:
            init = str(parent / "__init__.py")
            if parent.parts[:2] == ("src", "scalelab") and (ROOT / init).is_file() and init not in seen:
                seen.add(init)
                imported_anywhere(ROOT / init, seen)
    return seen


def covered(file: str, deps: list[str]) -> bool:
    return any(file == dep or file.startswith(dep.rstrip("/") + "/") for dep in deps)


@pytest.mark.parametrize("stage", sorted(STAGES))
def test_every_scalelab_module_a_stage_loads_is_among_its_deps(stage: str) -> None:
    body = stage_body(stage)
    entry = f"pipelines.{stage}"
    files = loaded_in_a_fresh_interpreter(entry) | imported_anywhere(ROOT / "pipelines" / f"{stage}.py")
    deps = [d if isinstance(d, str) else next(iter(d)) for d in body["deps"]]
    missing = sorted(f for f in files if not covered(f, deps))
    assert not missing, f"stage {stage} loads these but does not depend on them: {missing}"
    assert f"pipelines/{stage}.py" in deps


def test_training_depends_on_every_trainer_setting_but_the_runtime_only_ones() -> None:
    params = stage_body("train")["params"]
    trainer = {p.removeprefix("trainer.") for p in params if isinstance(p, str) and p.startswith("trainer.")}
    expected = {f.name for f in dataclasses.fields(TrainerConfig)} - set(RUNTIME_ONLY)
    assert trainer == expected, "a trainer setting that decides the weights, and none that does not"
    assert "trainer" not in params, "the whole section would include the runtime-only settings"


@pytest.mark.parametrize("stage", ["train", "evaluate"])
def test_where_runs_are_tracked_does_not_invalidate_a_stage(stage: str) -> None:
    params = stage_body(stage)["params"]
    assert not [p for p in params if isinstance(p, str) and p.split(".")[0] == "tracking"]
