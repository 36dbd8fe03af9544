"""The one door every pipeline stage goes through: start-up, config, one-line errors, exit.

A stage module imports this first, so that Python's garbage collection is held off while torch,
Lightning and MLflow load (`scalelab/gc_tuning.py`), and wraps a function of the typed config:

    from scalelab.stage import stage  # first: see above

    @stage
    def main(config: Config) -> None: ...

    if __name__ == "__main__":
        main()

`main()` is then the Hydra app `python -m pipelines.<stage> key=value ...` (config from the
checkout's `conf/`, or `--config-dir . --config-name params` as DVC runs it): a config Hydra
cannot compose, a value the schema refuses and any `ScalelabError` end in one line and exit
status 2; Ctrl-C or SIGTERM in one line and status 130. `@stage(sweepable=True)` also lets a
multirun's other jobs go on when one fails (`scalelab/multirun_job.py`).
"""

from scalelab.gc_tuning import hold_collection

hold_collection()

import functools  # noqa: E402 (after hold_collection, on purpose)
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import hydra  # noqa: E402
from omegaconf import DictConfig  # noqa: E402

from scalelab.config import Config, load_config, one_line_composition_errors  # noqa: E402
from scalelab.errors import exit_on_user_error  # noqa: E402
from scalelab.gc_tuning import collects_after_startup, run_then_exit_quickly  # noqa: E402
from scalelab.multirun_job import survives_sweep  # noqa: E402

Task = Callable[[Config], Any]


def stage(task: Task | None = None, *, sweepable: bool = False) -> Callable[..., Callable[[], None]]:
    """Make `task(config)` a stage's `main()`; see the module's docstring."""
    if task is None:
        return functools.partial(stage, sweepable=sweepable)  # type: ignore[return-value]

    @functools.wraps(task)
    def typed(cfg: DictConfig) -> Any:
        return task(load_config(cfg))

    job = exit_on_user_error(typed)
    if sweepable:
        job = survives_sweep(job)  # type: ignore[assignment]
    conf = Path(task.__code__.co_filename).resolve().parent.parent / "conf"  # the checkout's conf/
    app = hydra.main(config_path=str(conf), config_name="config", version_base="1.3")
    main = one_line_composition_errors(app(collects_after_startup(job)))

    @functools.wraps(main)
    def run() -> None:
        run_then_exit_quickly(main)

    return run  # type: ignore[return-value]
