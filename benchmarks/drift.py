"""Benchmark of the drift engine on the data shapes users have, against the baselines a user
would otherwise run, in one run.

Why: the drift check runs on every batch (issue 17). Goals: a 1M-row batch of 20 continuous
columns against a 1M-row reference in <= 0.15 s; >= 30x faster than a per-column
``scipy.stats.ks_2samp`` loop; >= 300x faster than Evidently's ``DataDriftPreset`` with its
defaults at 100k and at 1M rows; peak extra memory <= 1x the frame.

Shapes (20 numerical columns, the first 4 shifted in the current batch): normal, log-normal,
uniform, heavy-tailed (Student t, 2 df), discrete (Poisson), tied (gamma rounded to 0.1) and a
mix (those kinds plus 5 string categoricals); references of 100k and 1M rows, batches of 1M.
Ours: first call on a freshly fitted profile, then the median of ``--repeat`` calls, default
settings. Baselines, same frames: a ``ks_2samp`` loop and a numpy PSI loop (reference deciles
binned once, like our profile; each batch column searched into them), median of 3 (1M-row
loops: one run); Evidently 0.7 ``Report([DataDriftPreset()]).run(current, reference)`` as a
user types it, and with ``method="psi"``, on the normal shape at 100k and 1M rows: one run
each (the 1M ones take minutes). Prints a table, then one RESULT line per goal.

    .venv/bin/python -m benchmarks.drift            # full run (4-8 min, mostly Evidently)
    .venv/bin/python -m benchmarks.drift --quick    # 10x fewer rows (~1 min)
"""

from __future__ import annotations

import argparse
import gc
import os
import statistics
import time
import tracemalloc
from collections.abc import Callable

import numpy as np
import pandas as pd
from scipy.stats import ks_2samp

from retrain_assets.lib.drift import profile as drift
from retrain_assets.lib.drift.profile import DriftSettings, ReferenceProfile

GOAL_SECONDS, GOAL_KS, GOAL_EVIDENTLY, GOAL_MEMORY = 0.15, 30.0, 300.0, 1.0
NUM = [f"num_{i:02d}" for i in range(20)]
CAT = [f"cat_{i}" for i in range(5)]
Draw = Callable[[np.random.Generator, int, float], np.ndarray]
KINDS: dict[str, Draw] = {
    "normal": lambda rng, n, s: rng.normal(s, 1.0, n),
    "log-normal": lambda rng, n, s: rng.lognormal(s, 1.0, n),
    "uniform": lambda rng, n, s: rng.uniform(s, 1.0 + s, n),
    "heavy-tailed": lambda rng, n, s: rng.standard_t(2, n) + s,
    "discrete": lambda rng, n, s: rng.poisson(4.0 + 4.0 * s, n).astype(np.float64),
    "tied": lambda rng, n, s: np.round(rng.gamma(2.0, 4.0 * (1.0 + s), n), 1),
}
CONTINUOUS = ("normal", "log-normal", "uniform", "heavy-tailed")
SHAPES = (*KINDS, "mixed")


def make_frame(shape: str, rows: int, seed: int, shift: float) -> pd.DataFrame:
    """20 numerical columns of ``shape`` (the first 4 moved by ``shift``); "mixed" cycles through
    the kinds and adds 5 string categoricals (the first with a changed mix when shifted)."""
    rng = np.random.default_rng(seed)
    kinds = list(KINDS) if shape == "mixed" else [shape]
    data = {
        name: KINDS[kinds[i % len(kinds)]](rng, rows, shift if i < 4 else 0.0)
        for i, name in enumerate(NUM)
    }
    if shape == "mixed":
        for i, name in enumerate(CAT):
            k = 5 + 4 * i
            weights = np.linspace(1.0, 2.0 + (30.0 * shift if i == 0 else 0.0), k)
            labels = np.array([f"{name}_level_{j}" for j in range(k)], dtype=object)
            data[name] = labels[rng.choice(k, rows, p=weights / weights.sum())]
    return pd.DataFrame(data)


def timed(fn: Callable[[], object], repeat: int) -> tuple[float, float]:
    """(first call, median of ``repeat`` calls including the first), in seconds."""
    times = []
    for _ in range(repeat):
        gc.collect()
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times[0], statistics.median(times)


def peak_extra_bytes(fn: Callable[[], object]) -> int:
    """Peak bytes allocated while fn runs (numpy and pandas report to tracemalloc)."""
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    fn()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak - base


def ks_loop(reference: pd.DataFrame, current: pd.DataFrame) -> None:
    for c in NUM:
        ks_2samp(reference[c].to_numpy(), current[c].to_numpy())


def decile_bins(reference: pd.DataFrame) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per column: interior decile edges and the reference counts (right-closed bins)."""
    out = {}
    for c in NUM:
        ref = reference[c].to_numpy()
        edges = np.unique(np.quantile(ref, np.arange(1, 10) / 10))
        out[c] = edges, np.bincount(np.searchsorted(edges, ref), minlength=edges.size + 1)
    return out


def psi_loop(bins: dict[str, tuple[np.ndarray, np.ndarray]], current: pd.DataFrame) -> None:
    for c in NUM:
        edges, ref_counts = bins[c]
        cur_counts = np.bincount(
            np.searchsorted(edges, current[c].to_numpy()), minlength=edges.size + 1
        )
        r = np.maximum(ref_counts / ref_counts.sum(), 1e-4)
        x = np.maximum(cur_counts / cur_counts.sum(), 1e-4)
        float(np.sum((x - r) * np.log(x / r)))


def evidently_seconds(reference: pd.DataFrame, current: pd.DataFrame, method: str | None) -> float:
    """Seconds of ``Report([DataDriftPreset(...)]).run(current, reference)`` on the frames."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently import Report  # seconds to import: only here
    from evidently.presets import DataDriftPreset

    preset = DataDriftPreset() if method is None else DataDriftPreset(method=method)
    start = time.perf_counter()
    Report([preset]).run(current, reference)
    return time.perf_counter() - start


def rows_label(n: int) -> str:
    return f"{n // 1_000_000}M" if n % 1_000_000 == 0 else f"{n // 1000}k"


class Bench:
    """Runs and prints the table; keeps the figures the RESULT lines need."""

    def __init__(self, big: int, small: int, repeat: int) -> None:
        self.big, self.small, self.repeat = big, small, repeat
        self.ours: dict[tuple[str, int, int], float] = {}  # median seconds
        self.ks: dict[tuple[str, int, int], float] = {}
        print(
            f"{'shape':13s} {'ref':>4s} {'batch':>5s} {'mode':6s} {'first':>7s} {'median':>7s} "
            f"{'ks loop':>8s} {'x':>5s} {'psi loop':>8s} {'x':>5s}"
        )

    def row(
        self,
        shape: str,
        reference: pd.DataFrame,
        current: pd.DataFrame,
        loops: bool,
        settings: DriftSettings | None = None,
    ) -> float:
        """One line: ours (default settings unless given), then the loops on the same frames;
        returns our median."""
        start = time.perf_counter()
        categorical = CAT if shape == "mixed" else []
        profile = ReferenceProfile.fit(reference, NUM, categorical, settings or DriftSettings())
        fit = time.perf_counter() - start
        first, median = timed(lambda: profile.compare(current), self.repeat)
        result = profile.compare(current)
        key = (shape, len(reference), len(current))
        if settings is None:  # the RESULT lines use the defaults
            self.ours[key] = median
        mode = result.columns["mode"].iat[0]
        line = (
            f"{shape:13s} {rows_label(len(reference)):>4s} {rows_label(len(current)):>5s} "
            f"{mode:6s} {first:7.3f} {median:7.3f}"
        )
        if loops:
            runs = 1 if len(current) >= 1_000_000 else 3
            self.ks[key] = timed(lambda: ks_loop(reference, current), runs)[1]
            bins = decile_bins(reference)
            psi = timed(lambda: psi_loop(bins, current), runs)[1]
            line += (
                f" {self.ks[key]:8.2f} {self.ks[key] / median:5.0f} {psi:8.3f} {psi / median:5.1f}"
            )
        indexed = sum(c.index is not None for c in profile._num) if mode == "binned" else 0
        print(
            f"{line}   (fit {fit:.1f} s; {indexed}/20 counted without a sort; "
            f"{len(result.drifted_columns)} drifted)",
            flush=True,
        )
        return median


def threads_and_memory(bench: Bench, reference: pd.DataFrame, current: pd.DataFrame) -> float:
    """Prints what the two threads buy and the peak extra memory; returns it / the frame."""
    big = rows_label(len(current))
    strided = pd.DataFrame(current.to_numpy(), columns=NUM)  # columns strided through one block
    bench.row("normal 2-D", reference, strided, loops=False)
    del strided
    profile = ReferenceProfile.fit(reference, NUM, [])
    threshold = drift._PARALLEL_MIN_ROWS
    drift._PARALLEL_MIN_ROWS = 1 << 62
    one_thread = timed(lambda: profile.compare(current), bench.repeat)[1]
    drift._PARALLEL_MIN_ROWS = threshold
    two = bench.ours["normal", len(reference), len(current)]
    print(
        f"normal {big}/{big}, one thread: {one_thread:.3f} s (2 threads: "
        f"{one_thread / two:.2f}x faster)"
    )
    frame_bytes = int(current.memory_usage(deep=True).sum())
    peak = peak_extra_bytes(lambda: profile.compare(current))
    print(
        f"peak extra memory, normal {big}: {peak / 2**20:.0f} MiB = {peak / frame_bytes:.2f}x "
        f"the frame ({frame_bytes / 2**20:.0f} MiB)"
    )
    return peak / frame_bytes


def against_evidently(bench: Bench, reference: pd.DataFrame, current: pd.DataFrame) -> list[float]:
    """Evidently's preset with its defaults and with PSI at bench.small and bench.big rows;
    returns how many times faster ours is than the default preset at each size."""
    ratios = []
    for rows in (bench.small, bench.big):
        ref, cur = reference.iloc[:rows], current.iloc[:rows]
        label = f"{rows_label(rows)}/{rows_label(rows)} x 20 normal"
        if rows == bench.small:  # exact mode by default: binned shown as well
            bench.row("normal", ref, cur, loops=True)
            binned = bench.row("normal", ref, cur, False, settings=DriftSettings(mode="binned"))
        ours = bench.ours["normal", rows, rows]
        if rows == bench.big:
            binned = ours
        for method in (None, "psi"):
            seconds = evidently_seconds(ref, cur, method)
            print(
                f"evidently DataDriftPreset({'' if method is None else 'method=psi'}) {label}: "
                f"{seconds:.1f} s (one run); ours {seconds / ours:.0f}x faster (binned mode "
                f"{seconds / binned:.0f}x)",
                flush=True,
            )
            if method is None:
                ratios.append(seconds / ours)
    return ratios


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rows")
    parser.add_argument("--repeat", type=int, default=7, help="calls of ours per row")
    args = parser.parse_args()
    scale = 10 if args.quick else 1
    big, small = 1_000_000 // scale, 100_000 // scale
    print(
        f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, numpy "
        f"{np.__version__}, pandas {pd.__version__}; ours: median of {args.repeat} calls, "
        f"first call on a fresh profile; seconds; x = baseline / ours"
    )
    bench = Bench(big, small, args.repeat)
    for shape in SHAPES:
        current = make_frame(shape, big, 2, shift=0.1)
        for n_ref in (small, big):
            bench.row(shape, make_frame(shape, n_ref, 1, shift=0.0), current, loops=True)
        del current
        gc.collect()
    reference, current = make_frame("normal", big, 1, 0.0), make_frame("normal", big, 2, 0.1)
    memory = threads_and_memory(bench, reference, current)
    ev_small, ev_big = against_evidently(bench, reference, current)

    worst = max(CONTINUOUS, key=lambda s: bench.ours[s, big, big])
    speed = bench.ours[worst, big, big]
    ks_ratio = min(bench.ks[s, big, big] / bench.ours[s, big, big] for s in CONTINUOUS)
    b, sm = rows_label(big), rows_label(small)
    print(f"load {os.getloadavg()[0]:.1f} at the end")
    print(
        f"RESULT speed: {b} x 20 continuous vs a {b} reference, slowest shape ({worst}) "
        f"median {speed:.3f} s (goal {GOAL_SECONDS} s, ratio {speed / GOAL_SECONDS:.2f}); "
        f"normal {bench.ours['normal', big, big]:.3f} s"
    )
    ks_small = bench.ks["normal", small, small] / bench.ours["normal", small, small]
    print(
        f"RESULT ks_2samp loop: ours >= {ks_ratio:.0f}x faster on every continuous shape at "
        f"{b}/{b}, {ks_small:.0f}x on normal at {sm}/{sm} (goal {GOAL_KS:.0f}x, ratio "
        f"{min(ks_ratio, ks_small) / GOAL_KS:.2f})"
    )
    print(
        f"RESULT evidently default preset: {ev_small:.0f}x at {sm}, {ev_big:.0f}x at {b} (goal "
        f"{GOAL_EVIDENTLY:.0f}x, ratio {min(ev_small, ev_big) / GOAL_EVIDENTLY:.2f})"
    )
    print(
        f"RESULT memory: peak extra {memory:.2f}x the frame (goal {GOAL_MEMORY:.0f}x, "
        f"ratio {memory / GOAL_MEMORY:.2f})"
    )


if __name__ == "__main__":
    main()
