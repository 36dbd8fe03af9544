"""`hydra/launcher=slurm`: a sweep as one SLURM job array, through Hydra's submitit launcher.

The plugin's launcher waits for the jobs in order and raises at the first one that ended
without a result (cancelled, out of time, node lost), throwing away the others' results, so the
sweep's fit never runs. This one reports such a job as failed, like a job that raised, and
lets the sweep fit the sizes that finished; its MLflow run is then marked FAILED by the sweep
callback (scalelab.multirun). The class lives here because Hydra only instantiates launchers
defined in the `hydra_plugins` package.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hydra.core.singleton import Singleton
from hydra.core.utils import JobReturn, JobStatus, filter_overrides
from omegaconf import OmegaConf

try:
    from hydra_plugins.hydra_submitit_launcher import submitit_launcher
    from hydra_plugins.hydra_submitit_launcher.config import BaseQueueConf

    Base: type = submitit_launcher.SlurmLauncher
except ImportError:  # the slurm extra is not installed: choosing hydra/launcher=slurm says so
    Base = object  # not a Hydra plugin then, so Hydra's plugin scan passes over it quietly

log = logging.getLogger(__name__)
EXECUTOR_INIT = ("submitit_folder", "max_num_timeout")  # AutoExecutor's own arguments


class SlurmLauncher(Base):
    """Submits the jobs as one array; a job that ends without a result fails alone."""

    def launch(self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int) -> Sequence[JobReturn]:
        import submitit

        assert self.config is not None
        executor = submitit.AutoExecutor(
            cluster=self._EXECUTOR,
            folder=self.params["submitit_folder"],
            slurm_max_num_timeout=self.params["max_num_timeout"],
        )
        shared = set(OmegaConf.structured(BaseQueueConf).keys())
        params = {k: v for k, v in self.params.items() if k not in EXECUTOR_INIT}
        executor.update_parameters(**{k if k in shared else f"slurm_{k}": v for k, v in params.items()})
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        numbers = [initial_job_idx + i for i in range(len(job_overrides))]
        state = Singleton.get_state()
        jobs = executor.map_array(
            self,
            [list(overrides) for overrides in job_overrides],
            ["hydra.sweep.dir"] * len(numbers),
            numbers,
            [f"job_id_for_{n}" for n in numbers],
            [state] * len(numbers),
        )
        for number, job, overrides in zip(numbers, jobs, job_overrides, strict=True):  # sacct/scancel names
            print(f"#{number}: SLURM job {job.job_id}: {' '.join(filter_overrides(overrides))}", flush=True)
        return [_outcome(job, overrides) for job, overrides in zip(jobs, job_overrides, strict=True)]


def _outcome(job: Any, overrides: Sequence[str]) -> JobReturn:
    """The job's own JobReturn; for a job that produced none, a failed one naming its SLURM state."""
    from submitit.core.utils import UncompletedJobError

    from scalelab.multirun_job import JOB_FAILED

    try:
        return job.results()[0]
    except UncompletedJobError:
        log.error(
            "SLURM job %s (%s) ended without a result, state %s; its log: %s",
            job.job_id,
            " ".join(overrides),
            job.state,
            job.paths.stderr,
        )
    failed = JobReturn(overrides=list(overrides), status=JobStatus.COMPLETED)
    failed.return_value = JOB_FAILED  # COMPLETED: Hydra's sweeper re-raises a FAILED job's error
    return failed
