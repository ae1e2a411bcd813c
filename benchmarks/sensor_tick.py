"""Sensor ticks against 1, 100 and 1,000 materialised partitions, measured in one run.

Why: every sensor is evaluated every 30 s for as long as the platform runs, so its cost must not
grow with history. Each sensor reads materialisations after its cursor (never the whole history);
this measures a steady-state tick (one new materialisation since the last tick) with histories of
1, 100 and 1,000 daily partitions in a real sqlite instance, and prints, last, the worst tick
against the 0.2 s goal and the 1,000 / 1 ratio against 1.5.

    .venv/bin/python -m benchmarks.sensor_tick
"""

from __future__ import annotations

import datetime as dt
import os
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import dagster as dg
import pandas as pd
import yaml

from retrain_assets.config import load_config
from retrain_assets.definitions import build_definitions

START = dt.date(2020, 1, 1)
SIZES = (1, 100, 1000)
SENSORS = ("landing_sensor", "bootstrap_sensor", "drift_sensor", "performance_sensor")
REPEATS = 5


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def _project(root: Path, days: int) -> dg.Definitions:
    landing = root / "landing"
    (landing / "features").mkdir(parents=True)
    (landing / "labels").mkdir()
    frame = pd.DataFrame({"id": [1, 2], "x": [0.1, 0.2], "y": [0, 1]})
    frame.to_parquet(landing / "reference.parquet")
    for i in range(days):
        frame[["id", "x"]].to_parquet(landing / "features" / f"{_day(i)}.parquet")
    config = {
        "data": {
            "landing_dir": "landing",
            "target_column": "y",
            "numerical_features": ["x"],
            "start_date": START.isoformat(),
        },
        "model": {"registered_name": "bench"},
    }
    (root / "retrain.yaml").write_text(yaml.safe_dump(config))
    return build_definitions(load_config(root / "retrain.yaml"))


def _materialise(instance: dg.DagsterInstance, asset: str, day: str | None, **meta) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(asset, partition=day, metadata=meta)
    )


def _history(instance: dg.DagsterInstance, days: int) -> None:
    for asset in ("reference_dataset", "promoted_model", "reference_profile"):
        _materialise(instance, asset, None)
    for i in range(days):
        _materialise(instance, "feature_batch", _day(i))
        _materialise(instance, "drift_report", _day(i), drifted=False, evidence="")
        _materialise(instance, "performance_report", _day(i), degraded=False, concept_drift=False)


def _tick(defs: dg.Definitions, instance, name: str, cursor: str | None):
    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    started = time.perf_counter()
    result = defs.resolve_sensor_def(name).evaluate_tick(context)
    return time.perf_counter() - started, result.cursor or cursor


def measure(days: int) -> dict[str, float]:
    """Median steady-state tick per sensor (+ the schedule) with `days` partitions of history."""
    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:
        defs = _project(Path(tmp) / "feed", days)
        _history(instance, days)
        cursors: dict[str, str | None] = {}
        for name in SENSORS:  # first tick reads the whole history once: not what is measured
            _, cursors[name] = _tick(defs, instance, name, None)
        times: dict[str, list[float]] = {name: [] for name in SENSORS}
        times["weekly_retrain_schedule"] = []
        schedule = defs.resolve_schedule_def("weekly_retrain_schedule")
        for r in range(REPEATS):
            day = _day(days + r)
            _materialise(instance, "drift_report", day, drifted=False, evidence="")
            _materialise(instance, "performance_report", day, degraded=False, concept_drift=False)
            for name in SENSORS:
                seconds, cursors[name] = _tick(defs, instance, name, cursors[name])
                times[name].append(seconds)
            started = time.perf_counter()
            schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
            times["weekly_retrain_schedule"].append(time.perf_counter() - started)
        return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    results = {days: measure(days) for days in SIZES}
    names = list(results[SIZES[0]])
    print(f"{'sensor':28s}" + "".join(f"{d:>10d} p" for d in SIZES) + "   1000/1")
    worst_ratio, worst_tick = 0.0, 0.0
    for name in names:
        row = [results[d][name] for d in SIZES]
        ratio = row[-1] / row[0]
        worst_ratio, worst_tick = max(worst_ratio, ratio), max(worst_tick, *row)
        print(f"{name:28s}" + "".join(f"{t * 1000:9.1f}ms" for t in row) + f"   {ratio:5.2f}")
    print(
        f"RESULT sensor_tick: worst tick {worst_tick * 1000:.1f} ms (goal 200 ms, ratio "
        f"{worst_tick / 0.2:.2f}); worst 1000/1 growth {worst_ratio:.2f} (goal 1.5)"
    )


if __name__ == "__main__":
    main()
