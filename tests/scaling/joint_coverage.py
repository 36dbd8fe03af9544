"""How often the joint law's 95% intervals cover a planted law: synthetic studies with seed noise.

    python -m tests.scaling.joint_coverage [--studies 50] [--resamples 200] [--sizes 6] [--seeds 3]

Each study trains nothing: it draws every run of a sizes x data-sizes grid (model sizes 1e6..1e9,
data sizes 1e8..1e11, `seeds` runs per cell) from Chinchilla's fitted law (Hoffmann et al. 2022,
eq. 10) with 1% log-normal seed noise, fits L(N, D) with bootstrap intervals, and counts the
studies whose intervals of α and β hold the planted values. Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from scalelab.scaling.joint import JointLaw, fit_joint

CHINCHILLA = JointLaw(E=1.69, A=406.4, B=410.7, alpha=0.34, beta=0.28)  # Hoffmann et al. 2022, eq. 10
PLANTED = {"alpha": CHINCHILLA.alpha, "beta": CHINCHILLA.beta}


def coverage(studies: int, resamples: int, sizes: int, seeds: int, noise: float = 0.01) -> dict:
    """Fit `studies` synthetic studies; how many intervals covered each planted exponent."""
    n, d = np.meshgrid(np.geomspace(1e6, 1e9, sizes), np.geomspace(1e8, 1e11, sizes), indexing="ij")
    n, d = np.repeat(n.ravel(), seeds), np.repeat(d.ravel(), seeds)
    rng = np.random.default_rng(0)
    covered = dict.fromkeys(PLANTED, 0)
    estimates: dict[str, list[float]] = {name: [] for name in PLANTED}
    start = time.monotonic()
    for study in range(studies):
        loss = CHINCHILLA(n, d) * np.exp(rng.normal(0, noise, len(n)))
        fit = fit_joint(n, d, loss, resamples=resamples, seed=study)
        for name, planted in PLANTED.items():
            low, high = fit.interval(name)
            covered[name] += low <= planted <= high
            estimates[name].append(fit.estimate(name))
    return {
        "studies": studies,
        "runs_per_study": len(n),
        "resamples": resamples,
        "covered": covered,
        "mean_estimate": {name: float(np.mean(v)) for name, v in estimates.items()},
        "planted": PLANTED,
        "seconds": round(time.monotonic() - start, 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--studies", type=int, default=50)
    parser.add_argument("--resamples", type=int, default=200)
    parser.add_argument("--sizes", type=int, default=6, help="model sizes, and as many data sizes")
    parser.add_argument("--seeds", type=int, default=3, help="runs per (size, data size) cell")
    args = parser.parse_args(argv)
    print(json.dumps(coverage(args.studies, args.resamples, args.sizes, args.seeds)))


if __name__ == "__main__":
    main()
