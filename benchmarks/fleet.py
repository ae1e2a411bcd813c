"""A fleet's scale, measured in one run: the code location's load with 1 and 20 models, and every
sensor's tick with 20 models x 1 and x 365 materialised days.

Why: one code location serves every model of a fleet, so its load is paid by every process that
loads it (the code server, each run worker), and each model adds its own sensors, which the
daemon ticks every 30 s for as long as the platform runs: a tick must not grow with the history
of its model or with the number of models beside it.

Load: fresh processes of the same interpreter, interleaved (ABBA), medians; the code location
command imports the module, builds the lazy definitions and resolves the whole repository (every
asset, check, job, sensor and schedule), as the code server does when it loads:

    import dagster                                         (the floor)
    from retrain_assets.definitions import defs; defs().get_repository_def().load_all_definitions()

and, to tell Dagster's cost of the fleet's shape from ours, an "empty" code location of the same
shape with nothing of ours in it (EMPTY_LOCATION): per model 13 no-op assets under the model's
prefix and groups (6 daily-partitioned), 11 no-op asset checks, 5 asset jobs, 6 sensors, a
schedule and 4 one-field resources, loaded the same way.

Ticks: a real sqlite instance holding, for every model, a champion and `days` daily partitions of
feature batches, drift reports, estimated performance and performance reports (runless events);
each model's landing folder holds one feature file per day. Steady state: one new day lands for
every model, then each sensor and schedule of one model ticks from its cursor. Median of REPEATS
new days; the worst sensor of the fleet's first, middle and last model.

    .venv/bin/python -m benchmarks.fleet                 # both
    .venv/bin/python -m benchmarks.fleet --only ticks --models 20 --days 1,365
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")

import yaml

ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2020, 1, 1)
REPEATS = 5
LOAD_GOAL = 1.5
TICK_GOAL_S = 0.2
GROWTH_GOAL = 1.5
FLOOR = "import dagster"
LOCATION = (
    "from retrain_assets.definitions import defs; "
    "defs().get_repository_def().load_all_definitions()"
)
QUIET = {"DAGSTER_DISABLE_TELEMETRY": "1", "DO_NOT_TRACK": "1", "DVC_NO_ANALYTICS": "1"}
EMPTY = (
    "from empty_location import build; "
    "build({models}, {shared}).get_repository_def().load_all_definitions()"
)
# A fleet of `models` of retrain_assets' shape, with nothing of retrain_assets in it.
EMPTY_LOCATION = """
import dagster as dg


class Store(dg.ConfigurableResource):
    root: str


def noop_sensor(context):
    return dg.SkipReason("no-op")


def one_model(m: str, shared: bool) -> dg.Definitions:
    daily = dg.DailyPartitionsDefinition(start_date="2020-01-01", end_offset=1)
    resources = {f"{m}_{r}": Store(root=r) for r in ("store", "dvc", "mlflow", "registry")}
    assets, checks = [], []
    for a in range(13):
        deps = [assets[-1].key] if assets else []
        part = daily if a < 6 else None
        key = f"{m}_{('store', 'dvc', 'mlflow', 'registry')[a % 4]}"

        @dg.asset(key=[m, f"a{a}"], group_name=f"{m}_g{a % 4}", deps=deps, partitions_def=part,
                  required_resource_keys={key}, description="an asset", kinds={"python"})
        def asset(context):
            return None

        assets.append(asset)
        if a < 11:
            @dg.asset_check(asset=asset.key, name=f"c{a}", blocking=True)
            def check(context):
                return dg.AssetCheckResult(passed=True)

            checks.append(check)
    if shared:
        return dg.Definitions(assets=assets, asset_checks=checks, resources=resources)
    return dg.Definitions(
        assets=assets, asset_checks=checks, resources=resources, **jobs_and_sensors(f"{m}_", assets)
    )


def jobs_and_sensors(prefix: str, assets: list) -> dict:
    # job j: assets a(2j) and a(2j+1) of every model given
    pairs = [[a.key for a in assets if int(a.key.path[-1][1:]) // 2 == j] for j in range(5)]
    jobs = [dg.define_asset_job(f"{prefix}job{j}", selection=pairs[j]) for j in range(5)]
    sensors = [dg.SensorDefinition(name=f"{prefix}sensor{s}", evaluation_fn=noop_sensor,
                                   job=jobs[s % 5]) for s in range(6)]
    schedule = dg.ScheduleDefinition(name=f"{prefix}schedule", cron_schedule="0 6 * * 1",
                                     job=jobs[2])
    return {"jobs": jobs, "sensors": sensors, "schedules": [schedule]}


def build(models: int, shared: bool = False) -> dg.Definitions:
    # shared: 5 jobs, 6 sensors and a schedule for the whole fleet instead of per model
    fleet = [one_model(f"model_{i:02d}", shared) for i in range(models)]
    if shared:
        every = [a for d in fleet for a in d.assets]
        fleet.append(dg.Definitions(**jobs_and_sensors("", every)))
    return dg.Definitions.merge(*fleet)
"""


def _day(i: int) -> str:
    return (START + dt.timedelta(days=i)).isoformat()


def write_fleet(folder: Path, models: int, days: int) -> list[str]:
    """A fleet folder of `models` small models (two features, a reference set, `days` feature
    files each); their names."""
    import pandas as pd

    names = [f"model_{i:02d}" for i in range(models)]
    frame = pd.DataFrame({"id": [1, 2], "x": [0.1, 0.2], "y": [0, 1]})
    for name in names:
        landing = folder / name / "landing"
        (landing / "features").mkdir(parents=True)
        (landing / "labels").mkdir()
        frame.to_parquet(landing / "reference.parquet")
        for i in range(days):
            frame[["id", "x"]].to_parquet(landing / "features" / f"{_day(i)}.parquet")
        config = {
            "data": {
                "landing_dir": f"{name}/landing",
                "target_column": "y",
                "numerical_features": ["x"],
                "start_date": START.isoformat(),
            },
            "model": {},
        }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(config))
    return names


# --- load ----------------------------------------------------------------------------------------


def _run(code: str, env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds of a fresh process running code: to its end (the exit included) and to the
    end of code (the process prints the time then; the interpreter's exit is not included)."""
    started = time.time()
    done = subprocess.run(
        [sys.executable, "-c", f"{code}; import time; print(time.time())"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    ended = time.time()
    if done.returncode:
        raise RuntimeError(f"{code!r} failed:\n{done.stderr[-2000:]}")
    return ended - started, float(done.stdout.split()[-1]) - started


def measure_load(sizes: list[int], repeats: int) -> dict[str, tuple[float, float]]:
    """Median seconds of `import dagster` and of the code location with each fleet size: whole
    processes, and to the end of the code (without the interpreter's exit)."""
    base = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / "empty_location.py").write_text(EMPTY_LOCATION)
        runs = {"dagster": (FLOOR, {**base, **QUIET})}
        for size in sizes:
            folder = Path(tmp) / f"fleet_{size}"
            write_fleet(folder, size, 1)
            runs[f"{size} models"] = (LOCATION, {**base, **QUIET, "RETRAIN_CONFIG": str(folder)})
        empty = {**base, **QUIET, "PYTHONPATH": tmp}
        runs[f"{max(sizes)} empty"] = (EMPTY.format(models=max(sizes), shared=False), empty)
        runs[f"{max(sizes)} shared"] = (EMPTY.format(models=max(sizes), shared=True), empty)
        labels = list(runs)
        for label in labels:  # warm the page cache and .pyc files: not measured
            _run(*runs[label])
        times: dict[str, list[tuple[float, float]]] = {label: [] for label in labels}
        for r in range(repeats):
            for label in labels if r % 2 == 0 else reversed(labels):
                times[label].append(_run(*runs[label]))
    return {
        label: (statistics.median(t for t, _ in values), statistics.median(t for _, t in values))
        for label, values in times.items()
    }


# --- ticks ---------------------------------------------------------------------------------------


def _materialise(instance, key: list[str], day: str | None, **meta) -> None:
    import dagster as dg

    instance.report_runless_asset_event(
        dg.AssetMaterialization(dg.AssetKey(key), partition=day, metadata=meta)
    )


def _one_day(instance, model: str, day: str) -> None:
    _materialise(instance, [model, "feature_batch"], day)
    _materialise(instance, [model, "drift_report"], day, drifted=False, evidence="")
    _materialise(instance, [model, "estimated_performance"], day, degraded=False, fell=False)
    _materialise(instance, [model, "performance_report"], day, degraded=False, concept_drift=False)


def _history(instance, names: list[str], days: int) -> None:
    for model in names:
        for asset in ("reference_dataset", "promoted_model", "reference_profile"):
            _materialise(instance, [model, asset], None)
        for i in range(days):
            _one_day(instance, model, _day(i))


def _tick(defs, instance, name: str, cursor: str | None) -> tuple[float, str | None]:
    import dagster as dg

    context = dg.build_sensor_context(instance=instance, definitions=defs, cursor=cursor)
    started = time.perf_counter()
    result = defs.resolve_sensor_def(name).evaluate_tick(context)
    return time.perf_counter() - started, result.cursor or cursor


def measure_ticks(models: int, days: int) -> dict[str, float]:
    """Median steady-state tick per sensor kind (worst of the first, middle and last model)."""
    import dagster as dg

    from retrain_assets import names as n
    from retrain_assets.definitions import build_fleet_definitions
    from retrain_assets.fleet import load_fleet

    with tempfile.TemporaryDirectory() as tmp, dg.instance_for_test(temp_dir=tmp) as instance:
        folder = Path(tmp) / "fleet"
        models_ = write_fleet(folder, models, days)
        defs = build_fleet_definitions(load_fleet(folder))
        _history(instance, models_, days)
        watched = sorted({models_[0], models_[len(models_) // 2], models_[-1]})
        sensors = [f"{m}_{s}" for m in watched for s in n.SENSORS]
        cursors: dict[str, str | None] = {}
        for name in sensors:  # the first tick reads the whole history once: not measured
            _, cursors[name] = _tick(defs, instance, name, None)
        times: dict[str, list[float]] = {s: [] for s in (*n.SENSORS, n.WEEKLY_SCHEDULE)}
        for r in range(REPEATS):
            day = _day(days + r)
            for model in models_:
                _one_day(instance, model, day)
            worst = dict.fromkeys(times, 0.0)
            for model in watched:
                for kind in n.SENSORS:
                    name = f"{model}_{kind}"
                    seconds, cursors[name] = _tick(defs, instance, name, cursors[name])
                    worst[kind] = max(worst[kind], seconds)
                schedule = defs.resolve_schedule_def(f"{model}_{n.WEEKLY_SCHEDULE}")
                started = time.perf_counter()
                schedule.evaluate_tick(dg.build_schedule_context(instance=instance))
                seconds = time.perf_counter() - started
                worst[n.WEEKLY_SCHEDULE] = max(worst[n.WEEKLY_SCHEDULE], seconds)
            for kind, seconds in worst.items():
                times[kind].append(seconds)
        return {kind: statistics.median(values) for kind, values in times.items()}


# --- main ----------------------------------------------------------------------------------------


def report_load(sizes: list[int], repeats: int) -> None:
    both = measure_load(sizes, repeats)
    med = {label: whole for label, (whole, _) in both.items()}
    loaded = {label: until for label, (_, until) in both.items()}
    print(f"load: fresh processes, {repeats} repeats each, ABBA order; medians")
    print(f"  {'':12s} {'process':>10s} {'':21s} {'to loaded (no exit)':>22s}")
    for label, seconds in med.items():
        ratio, until = seconds / med["dagster"], loaded[label] / loaded["dagster"]
        print(
            f"  {label:12s} {seconds * 1000:7.0f} ms   x{ratio:.2f} of import dagster"
            f"   {loaded[label] * 1000:7.0f} ms   x{until:.2f}"
        )
    largest, empty = f"{max(sizes)} models", f"{max(sizes)} empty"
    worst = max(s for label, s in med.items() if "models" in label) / med["dagster"]
    print(
        f"RESULT fleet load: {largest} {med[largest]:.2f} s vs import "
        f"dagster {med['dagster']:.2f} s, ratio {worst:.2f} (goal {LOAD_GOAL})"
    )
    print(
        f"  to loaded, without the interpreter's exit: {largest} {loaded[largest]:.2f} s vs "
        f"{loaded['dagster']:.2f} s, ratio {loaded[largest] / loaded['dagster']:.2f}"
    )
    print(
        f"  Dagster's floor for this shape: {empty} (no-op definitions, nothing of ours) "
        f"{med[empty]:.2f} s, ratio {med[empty] / med['dagster']:.2f}; ours adds "
        f"{(med[largest] - med[empty]) * 1000:.0f} ms over it"
    )
    shared = f"{max(sizes)} shared"
    print(
        f"  the same with 5 jobs, 6 sensors and a schedule shared by the fleet instead of per "
        f"model: {med[shared]:.2f} s, ratio {med[shared] / med['dagster']:.2f}"
    )


def report_ticks(models: int, sizes: list[int]) -> None:
    results = {days: measure_ticks(models, days) for days in sizes}
    first, last = sizes[0], sizes[-1]
    print(f"ticks: {models} models, median of {REPEATS} new days, worst of 3 models per kind")
    print(f"{'sensor':28s}" + "".join(f"{d:>9d} d" for d in sizes) + f"   {last}/{first}")
    worst_tick, worst_growth = 0.0, 0.0
    for kind in results[first]:
        row = [results[d][kind] for d in sizes]
        growth = row[-1] / row[0]
        worst_tick, worst_growth = max(worst_tick, *row), max(worst_growth, growth)
        print(f"{kind:28s}" + "".join(f"{t * 1000:8.1f}ms" for t in row) + f"   {growth:5.2f}")
    print(
        f"RESULT fleet ticks: worst tick {worst_tick * 1000:.1f} ms with {models} models (goal "
        f"{TICK_GOAL_S * 1000:.0f} ms, ratio {worst_tick / TICK_GOAL_S:.2f}); worst {last}/{first}"
        f" growth {worst_growth:.2f} (goal {GROWTH_GOAL})"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=("load", "ticks"), default=None)
    parser.add_argument("--models", type=int, default=20)
    parser.add_argument("--days", default="1,365", help="history sizes for the ticks")
    parser.add_argument("--repeats", type=int, default=9, help="load: processes per command")
    args = parser.parse_args()
    print(f"machine: {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    if args.only in (None, "load"):
        report_load(sorted({1, args.models}), args.repeats)
    if args.only in (None, "ticks"):
        report_ticks(args.models, [int(d) for d in args.days.split(",")])
    print(f"load {os.getloadavg()[0]:.1f} at the end")


if __name__ == "__main__":
    main()
