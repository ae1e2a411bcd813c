"""Benchmark of confidence-based performance estimation (lib/monitoring/estimation.py) on the
score shapes a batch has, in one run.

Why: the expected AUC, accuracy and log loss are computed for every scored batch, before its
labels exist (issue 14). Goal: ``calibrator.apply`` + ``estimate_performance`` on a 100k-row
batch in <= 0.2 s, whatever the score shape.

Shapes, n = 1k, 100k and 1M rows: true probabilities p ~ Beta(2, 5) and a miscalibrated model
reporting s = expit(2 logit(p) + 0.5); "continuous": s as is, with a Platt (sigmoid) calibrator;
"tied": s rounded to 2 decimals (~100 distinct scores), sigmoid calibrator; "isotonic": s as is,
an isotonic calibrator, so the calibrated p is a step function (many tied p, distinct s).
Calibrators are fitted once on 20k labelled rows, outside the timing. Timed: ``apply`` and
``estimate_performance`` together; first call, then the median of ``--repeat`` calls (the first
included). For scale, sklearn's ``roc_auc_score`` on one label draw of the same batch (median
of the same number of calls): x = ours / one roc_auc_score. The estimated AUC is printed next to
the mean realized AUC of 200 label draws (1k and 100k rows; 20 at 1M) as a sanity check: the
estimate is exact given p (tests/unit/test_estimation.py), so a gap is the calibrator's (on
"tied", Platt scaling is pulled by the ~3.5 % of scores rounded to exactly 0, logit -16.1).

    .venv/bin/python -m benchmarks.estimation     # ~1 min
    .venv/bin/python -m benchmarks.estimation --calibration-cost   # + a candidate's calibration,
        # fit_and_evaluate with and without it on 10k and 100k rows (median of 3), ~3 min
"""

from __future__ import annotations

import argparse
import functools
import os

import numpy as np
import pandas as pd
import scipy
import sklearn
from scipy.special import expit, logit
from scipy.stats import rankdata
from sklearn.metrics import roc_auc_score

from benchmarks.drift import timed
from retrain_assets.lib.monitoring.estimation import (
    Calibrator,
    estimate_performance,
    fit_calibrator,
)
from retrain_assets.lib.training import fitting
from retrain_assets.lib.training.calibration import CalibrationSettings

GOAL_SECONDS, GOAL_ROWS = 0.2, 100_000
SIZES = (1_000, 100_000, 1_000_000)
SHAPES = ("continuous", "tied", "isotonic")


def batch(shape: str, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(true probabilities, the model's scores) of ``shape``."""
    rng = np.random.default_rng(seed)
    p = rng.beta(2.0, 5.0, n)
    s = expit(2.0 * logit(p) + 0.5)
    return p, np.round(s, 2) if shape == "tied" else s


def calibrator(shape: str) -> Calibrator:
    """Fitted on 20k labelled rows of ``shape`` (another seed than the batches)."""
    p, s = batch(shape, 20_000, seed=99)
    y = (np.random.default_rng(98).random(p.size) < p).astype(np.float64)
    return fit_calibrator(s, y, "isotonic" if shape == "isotonic" else "sigmoid")


def mean_realized_auc(p: np.ndarray, s: np.ndarray, draws: int) -> float:
    """Mean Mann-Whitney AUC (ties 1/2) of s over label draws y ~ Bernoulli(p)."""
    rng = np.random.default_rng(7)
    ranks = rankdata(s)
    total = 0.0
    for _ in range(draws):
        y = rng.random(p.size) < p
        n1 = int(y.sum())
        total += (ranks[y].sum() - n1 * (n1 + 1) / 2) / (n1 * (p.size - n1))
    return total / draws


def rows_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


def row(shape: str, n: int, cal: Calibrator, repeat: int) -> float:
    """Prints one line; returns our median seconds."""
    p, s = batch(shape, n, seed=n)
    first, median = timed(lambda: estimate_performance(s, cal.apply(s)), repeat)
    y = np.random.default_rng(1).random(n) < p
    sk = timed(lambda: roc_auc_score(y, s), repeat)[1]
    est = estimate_performance(s, cal.apply(s))
    realized = mean_realized_auc(p, s, 20 if n >= 1_000_000 else 200)
    assert est.auc is not None and est.auc_low is not None and est.auc_high is not None
    print(
        f"{shape:11s} {rows_label(n):>5s} {np.unique(s).size:>9d} {first:8.4f} {median:8.4f} "
        f"{sk:9.4f} {median / sk:5.2f}   {est.auc:.4f} [{est.auc_low:.4f}, {est.auc_high:.4f}] "
        f"{realized:.4f}",
        flush=True,
    )
    return median


def training_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """An assembled training set: 20 continuous features, 10 data days, the newest 2 the test."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n, 20))
    logits = x[:, :5] @ np.array([1.0, -0.8, 0.6, 0.5, -0.4]) + 0.5 * x[:, 5] * x[:, 6] - 1.0
    frame = pd.DataFrame(x, columns=[f"x{i}" for i in range(20)])
    frame[fitting.TARGET] = (rng.random(n) < expit(logits)).astype(int)
    frame[fitting.DAY] = [f"2024-01-{1 + i * 10 // n:02d}" for i in range(n)]
    frame[fitting.SPLIT] = np.where(frame[fitting.DAY] >= "2024-01-09", "test", "train")
    frame[fitting.ORDER] = np.arange(n)
    return frame


FEATURES = [f"x{i}" for i in range(20)]


def fit_rows(rows: pd.DataFrame, calibration: CalibrationSettings | None) -> fitting.FitResult:
    return fitting.fit_and_evaluate(rows, FEATURES, [], n_threads=1, calibration=calibration)


def calibration_cost(sizes: tuple[int, ...], repeat: int) -> None:
    """A candidate's fit with and without its calibrator (HistGradientBoosting, one thread)."""
    print("\ncalibration cost per candidate: fit_and_evaluate, HistGradientBoosting, 1 thread")
    header = f"{'rows':>6s} {'no calibration':>15s} {'calibrated':>11s} {'ratio':>6s}"
    print(f"{header}  calibration_auc_se")
    settings = CalibrationSettings("sigmoid", 0.2, 200)
    for n in sizes:
        rows = training_rows(n)
        plain = timed(functools.partial(fit_rows, rows, None), repeat)[1]
        calibrated = timed(functools.partial(fit_rows, rows, settings), repeat)[1]
        se = fit_rows(rows, settings).calibration.calibrator.auc_se
        ratio = calibrated / plain
        print(f"{rows_label(n):>6s} {plain:15.2f} {calibrated:11.2f} {ratio:6.2f}  {se:.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7, help="calls per row")
    parser.add_argument(
        "--calibration-cost", action="store_true", help="also time a candidate's calibration"
    )
    args = parser.parse_args()
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, numpy "
        f"{np.__version__}, scipy {scipy.__version__}, sklearn {sklearn.__version__}; ours = "
        f"calibrator.apply + estimate_performance, median of {args.repeat} calls; seconds; "
        f"x = ours / one roc_auc_score"
    )
    print(
        f"{'shape':11s} {'rows':>5s} {'distinct':>9s} {'first':>8s} {'median':>8s} "
        f"{'sk auc':>9s} {'x':>5s}   expected AUC [90% interval]  realized mean"
    )
    medians: dict[tuple[str, int], float] = {}
    for shape in SHAPES:
        cal = calibrator(shape)
        for n in SIZES:
            medians[shape, n] = row(shape, n, cal, args.repeat)
    worst = max(SHAPES, key=lambda sh: medians[sh, GOAL_ROWS])
    speed = medians[worst, GOAL_ROWS]
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    print(
        f"RESULT speed: {rows_label(GOAL_ROWS)} rows, slowest shape ({worst}) median "
        f"{speed:.4f} s (goal {GOAL_SECONDS} s, ratio {speed / GOAL_SECONDS:.2f}); at 1M the "
        f"slowest median is {max(medians[sh, 1_000_000] for sh in SHAPES):.3f} s"
    )
    if args.calibration_cost:
        calibration_cost((10_000, 100_000), repeat=3)


if __name__ == "__main__":
    main()
