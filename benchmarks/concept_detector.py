"""False alarms and detection delay of the concept-drift detector on simulated feeds.

Why: the Page-Hinkley test on the champion's per-row log loss (``lib.concept``) turns into a
"concept drift" retraining when it fires, so it must stay quiet on healthy feeds whatever the
champion's loss distribution is (a champion trained on a small reference has a noisier loss than
a well-fed one), yet still catch a real change of P(y|x). This script measures both on the
simulator (``lib.simulate``) with champions like the project's bootstrap model
(``lib.training.build_pipeline``, HistGradientBoosting, fitted on the reference rows):

* false alarms: ``none`` and ``seasonal`` feeds, 60 days at 300, 1000 and 5000 rows per day,
  champions trained on 2000 and 5000 reference rows; each seed one stream per cell, the losses
  fed to the detector one day at a time as ``assets.performance.evaluate_day`` does;
* detection: the ``concept`` kind with ``drift_day = 10 + seed % 21`` (10..30), same rates and
  references; delay in rows from the first changed row to the alarm row, in label days as
  ``ceil(rows / rows_per_day)``, and the share of streams with no alarm within 20 days.

Both the current detector (``PageHinkley()`` defaults) and the previous one (raw loss units,
``delta=0.04, threshold=75``, alarm from row 500) run on the very same streams. The day data do
not depend on the reference size (only the ids do) and the concept kind leaves features and
pre-change labels identical to ``none``, so each seed generates its days once per rate and scores
them with both champions; every stream is still exactly what ``SimulationSpec`` produces.

    .venv/bin/python -m benchmarks.concept_detector                 # 200 seeds (~60 min, 1 core)
    .venv/bin/python -m benchmarks.concept_detector --seeds 10      # a smoke run
    .venv/bin/python -m benchmarks.concept_detector --cache /tmp/cd # keep the loss streams (3 GB)
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # HGB predict: threads only fight on a shared box

import argparse
import datetime as dt
import math
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from retrain_assets.lib.data import simulate as sim
from retrain_assets.lib.monitoring.concept import PageHinkley, PageHinkleyState, row_log_loss
from retrain_assets.lib.training.fitting import build_pipeline

DAYS = 60
RATES = (300, 1000, 5000)
REFS = (2000, 5000)
NULL_KINDS = ("none", "seasonal")
AFTER_DAYS = 20  # a concept change counts as missed when no alarm within this many days
GOAL_FALSE_ALARMS = 1.0  # percent, in every cell
FEATURES = sim.NUMERICAL + sim.CATEGORICAL
START = dt.date(2024, 1, 1)
LEGACY = {"delta": 0.04, "threshold": 75.0, "min_rows": 500}  # the detector before, loss units
RAISED = 160.0  # the old detector with its threshold raised instead (quiet on 40 tuning seeds)
NAMES = ("new", "old", "raised")


def drift_day(seed: int) -> int:
    return 10 + seed % 21


def _spec(seed: int, ref: int, rate: int, kind: str, day: int = 30) -> sim.SimulationSpec:
    return sim.SimulationSpec(
        days=DAYS,
        rows_per_day=rate,
        drift=kind,
        drift_day=day,
        seed=seed,
        reference_rows=ref,
        start_date=START + dt.timedelta(days=seed % 7),  # vary the weekday phase of the season
        label_delay=1,
    )


def _fit(seed: int, ref: int, kind: str) -> Any:
    frame = sim.generate_reference(_spec(seed, ref, RATES[0], kind))
    pipe = build_pipeline(sim.NUMERICAL, sim.CATEGORICAL)
    return pipe.fit(frame[FEATURES], frame[sim.TARGET])


def _days(spec: sim.SimulationSpec, days: range) -> tuple[pd.DataFrame, np.ndarray]:
    parts = [sim.generate_day(spec, d) for d in days]
    features = pd.concat([f for f, _ in parts], ignore_index=True)
    labels = np.concatenate([lab[sim.TARGET].to_numpy() for _, lab in parts])
    return features, labels


def streams(seed: int) -> dict[str, np.ndarray]:
    """Per-row log losses of every stream of one seed, keyed ``kind_ref_rate``, + ``drift_day``.

    ``none`` and ``seasonal``: 60 days. ``concept``: the ``none`` stream's first ``drift_day``
    days, then the 20 days after the change.
    """
    out: dict[str, np.ndarray] = {}
    day0 = drift_day(seed)
    models = {(kind, ref): _fit(seed, ref, kind) for kind in NULL_KINDS for ref in REFS}
    for rate in RATES:
        feats, y = _days(_spec(seed, REFS[0], rate, "none"), range(DAYS))
        after = range(day0, day0 + AFTER_DAYS)
        _, y_after = _days(_spec(seed, REFS[0], rate, "concept", day0), after)
        y_concept = np.concatenate([y[: day0 * rate], y_after])
        s_feats, s_y = _days(_spec(seed, REFS[0], rate, "seasonal"), range(DAYS))
        for ref in REFS:
            p = models["none", ref].predict_proba(feats[FEATURES])[:, 1]
            out[f"none_{ref}_{rate}"] = row_log_loss(y, p)
            out[f"concept_{ref}_{rate}"] = row_log_loss(y_concept, p[: y_concept.size])
            p = models["seasonal", ref].predict_proba(s_feats[FEATURES])[:, 1]
            out[f"seasonal_{ref}_{rate}"] = row_log_loss(s_y, p)
    out["drift_day"] = np.array(day0)
    return out


def cached_streams(seed: int, folder: Path | None) -> dict[str, np.ndarray]:
    if folder is None:
        return streams(seed)
    path = folder / f"{seed}.npz"
    if path.is_file():
        with np.load(path) as z:
            return {k: z[k] for k in z.files}
    data = streams(seed)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez(tmp, **data)  # type: ignore[arg-type]  # numpy's stub types the first kwarg
    os.replace(tmp, path)
    return data


def legacy_path(x: np.ndarray) -> np.ndarray:
    """The previous detector's statistic per row (raw loss units; 0 before its burn-in row)."""
    t = np.arange(1, x.size + 1)
    cum = np.cumsum(x - np.cumsum(x) / t - LEGACY["delta"])
    stat = cum - np.minimum(np.minimum.accumulate(cum), 0.0)
    return np.where(t >= LEGACY["min_rows"], stat, 0.0)


def current_path(x: np.ndarray, ph: PageHinkley) -> np.ndarray:
    """``ph``'s statistic per row, whole stream at once (the formula of ``PageHinkley.update``),
    for the largest-statistic figures; alarms themselves come from ``update`` fed daily."""
    t = np.arange(1, x.size + 1)
    means = np.cumsum(x) / t
    sd = np.sqrt(np.maximum(np.cumsum((x - x[0]) ** 2) - t * (means - x[0]) ** 2, 0.0) / t)
    z = np.divide(x - means, sd, out=np.zeros_like(x), where=sd > 1e-12 * (1 + np.abs(means)))
    cum = np.cumsum(np.where(t > ph.min_rows, z - ph.delta, 0.0))
    return cum - np.minimum(np.minimum.accumulate(cum), 0.0)


def daily_alarm(x: np.ndarray, rate: int, ph: PageHinkley) -> int | None:
    """The alarm row (1-based) when the stream is fed to ``ph`` one day at a time, or None."""
    state = PageHinkleyState()
    for day in range(0, x.size, rate):
        state = ph.update(state, x[day : day + rate])
        if state.alarm:
            return state.alarm_at
    return None


def first_row(path: np.ndarray, threshold: float) -> int | None:
    hits = np.flatnonzero(path > threshold)
    return int(hits[0]) + 1 if hits.size else None


@dataclass
class Tally:
    """Outcomes of one detector over the streams of one cell."""

    alarms: list[int | None] = field(default_factory=list)  # null: alarm row or None
    peaks: list[float] = field(default_factory=list)  # null: largest statistic
    delays: list[int] = field(default_factory=list)  # concept: rows from change to alarm
    missed: int = 0  # concept: no alarm within AFTER_DAYS days of the change
    early: int = 0  # concept: alarm before the change (a false alarm on its healthy part)

    @property
    def n_alarms(self) -> int:
        return sum(a is not None for a in self.alarms)


def run(seeds: range, cache: Path | None, ph: PageHinkley) -> dict[tuple[str, ...], Tally]:
    tallies: dict[tuple[str, ...], Tally] = {}
    started = time.perf_counter()
    for i, seed in enumerate(seeds):
        data = cached_streams(seed, cache)
        day0 = int(data["drift_day"])
        for key, x in data.items():
            if key == "drift_day":
                continue
            kind, ref, rate = key.split("_")
            r, x = int(rate), np.asarray(x, dtype=float)
            paths = {"new": current_path(x, ph), "old": legacy_path(x)}
            paths["raised"] = paths["old"]
            alarms = {
                "new": daily_alarm(x, r, ph),
                "old": first_row(paths["old"], LEGACY["threshold"]),
                "raised": first_row(paths["old"], RAISED),
            }
            if alarms["new"] != first_row(paths["new"], ph.threshold):  # same test, two codes
                raise AssertionError(f"seed {seed} {key}: daily update and whole path disagree")
            for name, at in alarms.items():
                tally = tallies.setdefault((name, kind, ref, rate), Tally())
                if kind != "concept":
                    tally.alarms.append(at)
                    tally.peaks.append(float(paths[name].max()))
                elif at is not None and at <= day0 * r:
                    tally.early += 1
                elif at is None:
                    tally.missed += 1
                else:
                    tally.delays.append(at - day0 * r)
        if (i + 1) % 10 == 0 or i + 1 == len(seeds):
            elapsed = time.perf_counter() - started
            print(f"  {i + 1}/{len(seeds)} seeds, {elapsed:.0f} s", file=sys.stderr, flush=True)
    return tallies


def _pct(k: int, n: int) -> str:
    return f"{100 * k / n:.1f} %" if n else "-"


def report(tallies: dict[tuple[str, ...], Tally], ph: PageHinkley, n_seeds: int) -> list[str]:
    lines = [
        f"{n_seeds} seeds per cell; new = PageHinkley(delta={ph.delta:g}, "
        f"threshold={ph.threshold:g}, min_rows={ph.min_rows}) in sd units; old = delta 0.04, "
        f"threshold 75, alarm from row 500, raw loss units; raised = old with threshold {RAISED:g}",
        "",
        "false alarms, 60 days (alarms / streams; largest statistic; first alarm day)",
        f"{'kind':9s}{'ref':>6s}{'rows/d':>8s}  {'new':>18s}{'peak':>7s}  "
        f"{'old':>18s}{'peak':>7s}  {'raised':>18s}  old's alarm day (median)",
    ]
    worst = dict.fromkeys(NAMES, 0.0)
    pooled = {name: [0, 0] for name in NAMES}
    for kind in NULL_KINDS:
        for ref in REFS:
            for rate in RATES:
                row = f"{kind:9s}{ref:6d}{rate:8d}"
                old_days: list[int] = []
                for name in NAMES:
                    t = tallies[name, kind, str(ref), str(rate)]
                    n = len(t.alarms)
                    worst[name] = max(worst[name], 100 * t.n_alarms / n)
                    pooled[name][0] += t.n_alarms
                    pooled[name][1] += n
                    row += f"  {t.n_alarms:4d}/{n:<4d}{_pct(t.n_alarms, n):>9s}"
                    row += f"{max(t.peaks):7.1f}" if name != "raised" else ""
                    if name == "old":
                        old_days = [math.ceil(a / rate) for a in t.alarms if a is not None]
                row += f"  {np.median(old_days):.0f}" if old_days else "  -"
                lines.append(row)
    for name in NAMES:
        k, n = pooled[name]
        lines.append(f"{name}: pooled {k}/{n} = {_pct(k, n)}, worst cell {worst[name]:.1f} %")
    lines += [
        "",
        f"concept drift (drift_day 10..30): delay from the change, missed = no alarm within "
        f"{AFTER_DAYS} days, early = alarm before the change",
        f"{'ref':>6s}{'rows/d':>8s}  {'':3s}{'median rows':>12s}{'p95 rows':>10s}{'max':>7s}"
        f"{'median d':>10s}{'p95 d':>7s}{'missed':>8s}{'early':>7s}",
    ]
    all_delays: dict[str, list[int]] = {name: [] for name in NAMES}
    all_days: dict[str, list[int]] = {name: [] for name in NAMES}
    missed = {name: [0, 0] for name in NAMES}
    for ref in REFS:
        for rate in RATES:
            for name in NAMES:
                t = tallies[name, "concept", str(ref), str(rate)]
                n = len(t.delays) + t.missed + t.early
                d = np.array(t.delays)
                days = np.ceil(d / rate)
                all_delays[name] += t.delays
                all_days[name] += days.astype(int).tolist()
                missed[name][0] += t.missed
                missed[name][1] += n
                lines.append(
                    f"{ref:6d}{rate:8d}  {name:6s}{np.median(d):9.0f}{np.quantile(d, 0.95):10.0f}"
                    f"{d.max():7d}{np.median(days):10.0f}{np.quantile(days, 0.95):7.0f}"
                    f"{_pct(t.missed, n):>8s}{t.early:7d}"
                )
    for name in NAMES:
        d, days = np.array(all_delays[name]), np.array(all_days[name])
        lines.append(
            f"{name}: all concept streams: median {np.median(d):.0f} rows "
            f"(p95 {np.quantile(d, 0.95):.0f}), median {np.median(days):.0f} day(s) "
            f"(p95 {np.quantile(days, 0.95):.0f}), missed {_pct(*missed[name])}"
        )
    lines.append(
        f"RESULT concept_detector: false alarms {worst['new']:.1f} % (goal "
        f"{GOAL_FALSE_ALARMS:g} %), detection median {np.median(all_delays['new']):.0f} rows"
    )
    return lines


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=200, help="streams per cell (default 200)")
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--cache", type=Path, help="keep/reuse the loss streams in this folder")
    args = parser.parse_args(argv)
    ph = PageHinkley()
    seeds = range(args.first_seed, args.first_seed + args.seeds)
    tallies = run(seeds, args.cache, ph)
    print("\n".join(report(tallies, ph, len(seeds))))


if __name__ == "__main__":
    main()
