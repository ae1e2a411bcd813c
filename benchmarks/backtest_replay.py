"""Backtest throughput and long-run behaviour, measured in one run.

Why: a team replays months or years of history before trusting the policy, so the replay must be
fast, and its cost per day must not grow with history (every sensor reads after its cursor, run
keys are looked up by tag, the landing cursor only re-hashes changed files).

Two profiles (``--profile``):

- ``throughput`` (issue 6): 90 simulated days x 5,000 rows with abrupt drift at day 30. Prints the
  wall time and the share spent in Dagster (sensor evaluation, run set-up, event log) against ML
  and data work inside steps (as Dagster's step durations measure it).
- ``load`` (issue 7): 1,000 daily partitions of small batches (50 rows), no drift. Prints the
  number of runs and run keys (no run key may run twice), peak RSS, and the median seconds per
  day of the first and the last 100 days (their ratio should stay near 1).
- ``year``: 365 days x 1,000 rows, default policy, abrupt drift at day 120 (goal: under 5 minutes
  on 2 cores). Prints wall and CPU seconds, the split (sensor ticks, Dagster run set-up and event
  writes, steps, the rest of the process) and the median wall and CPU seconds per day of the first
  and the last 30 days.

Every profile prints the process's CPU seconds next to the wall time: on a shared box the wall
time also measures the neighbours.

    .venv/bin/python -m benchmarks.backtest_replay --profile throughput
    .venv/bin/python -m benchmarks.backtest_replay --profile load
    .venv/bin/python -m benchmarks.backtest_replay --profile year
"""

from __future__ import annotations

import argparse
import collections
import itertools
import os
import resource
import statistics
import tempfile
import time
from pathlib import Path

for key, value in {
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}.items():
    os.environ.setdefault(key, value)

import dagster as dg  # noqa: E402
import yaml  # noqa: E402

from retrain_assets.backtest.replay import load_truth, run_backtest  # noqa: E402
from retrain_assets.backtest.report import DayRecord  # noqa: E402
from retrain_assets.config import load_config  # noqa: E402
from retrain_assets.lib.data import simulate as sim  # noqa: E402

PROFILES = {
    "throughput": {"days": 90, "rows_per_day": 5000, "drift": "abrupt", "drift_day": 30},
    "load": {"days": 1000, "rows_per_day": 50, "drift": "none", "drift_day": 0},
    "year": {"days": 365, "rows_per_day": 1000, "drift": "abrupt", "drift_day": 120},
}


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def _feed(root: Path, profile: dict, seed: int) -> Path:
    spec = sim.SimulationSpec(
        days=profile["days"],
        rows_per_day=profile["rows_per_day"],
        drift=profile["drift"],
        drift_day=profile["drift_day"],
        label_delay=1,
        seed=seed,
        reference_rows=5000,
    )
    sim.simulate(root, spec)
    path = root / "retrain.yaml"
    config = yaml.safe_load(path.read_text())
    # Drift HTML reports are off by default in a backtest. The latency gate is wall-clock: on a
    # shared 2-core box it can fail a sound model, which would measure nothing here.
    config["gates"] = {"max_p95_latency_ms": 5000}
    config["canary"] = {"min_rows": min(2000, 20 * profile["rows_per_day"])}
    path.write_text(yaml.safe_dump(config))
    return path


def _run_keys(instance_dir: Path) -> tuple[int, int]:
    """(runs, distinct run keys) in the replay's instance: equal when no key ran twice."""
    from dagster._core.instance.ref import InstanceRef

    os.environ["DAGSTER_HOME"] = str(instance_dir)
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(instance_dir))) as instance:
        records = instance.get_run_records()
        keys = [r.dagster_run.tags.get("dagster/run_key") for r in records]
    keyed = [k for k in keys if k]
    dupes = [k for k, n in collections.Counter(keyed).items() if n > 1]
    if dupes:
        print(f"DUPLICATE run keys: {dupes[:5]}")
    return len(keyed), len(set(keyed))


def _split(timing: dict, total: float, cpu_total: float) -> None:
    """Where the wall time went: sensor ticks, Dagster around the steps, steps, the rest."""
    sensors, runs, steps = (timing[k] for k in ("sensor_seconds", "run_seconds", "step_seconds"))
    rest = total - sensors - runs
    print(f"split (wall s): sensor ticks {sensors:.1f} ({timing.get('sensor_ticks', '?')} ticks), "
          f"run set-up and event writes {runs - steps:.1f} ({timing.get('runs', '?')} runs), "
          f"steps {steps:.1f}, rest of the process {rest:.1f} (observer, copies, final AUCs); "
          f"CPU {cpu_total:.1f} s = {cpu_total / total:.0%} of wall")  # fmt: skip


def _first_last(per_day: list[float], cpu_day: list[float], n: int) -> None:
    if len(per_day) < 2 * n:
        return
    wall = [statistics.median(per_day[:n]), statistics.median(per_day[-n:])]
    cpu = [statistics.median(cpu_day[:n]), statistics.median(cpu_day[-n:])]
    print(f"median s/day: first {n} days {wall[0]:.3f} wall, {cpu[0]:.3f} CPU; last {n} days "
          f"{wall[1]:.3f} wall, {cpu[1]:.3f} CPU (CPU ratio {cpu[1] / cpu[0]:.2f})")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--profile", choices=PROFILES, default="throughput")
    parser.add_argument("--days", type=int, default=None, help="override the profile's days")
    parser.add_argument("--seed", type=int, default=3)
    args = parser.parse_args()
    profile = dict(PROFILES[args.profile])
    if args.days:
        profile["days"] = args.days
    with tempfile.TemporaryDirectory(prefix="bench-backtest-") as tmp:
        config = _feed(Path(tmp) / "feed", profile, args.seed)
        cfg = load_config(config)
        truth = load_truth(None, cfg)
        stamps: list[float] = []
        cpu: list[float] = []
        rss: list[float] = []

        def progress(record: DayRecord, done: int, total: int) -> None:
            stamps.append(time.perf_counter())
            cpu.append(time.process_time())
            rss.append(_rss_mb())
            if len(stamps) % 50 == 0:
                print(f"  day {len(stamps)}: {record.day}, rss {rss[-1]:.0f} MB", flush=True)

        began, cpu_began = time.perf_counter(), time.process_time()
        parts: list[dict[str, float]] = []
        report = run_backtest(
            cfg, Path(tmp) / "replay", truth=truth, progress=progress, day_seconds=parts
        )
        total, cpu_total = time.perf_counter() - began, time.process_time() - cpu_began
        runs, keys = _run_keys(Path(tmp) / "replay" / "dagster")
    timing, summary = report["timing"], report["summary"]
    per_day = [b - a for a, b in itertools.pairwise(stamps)]
    # CPU seconds of this process per day: on a shared box wall time also measures the neighbours.
    cpu_day = [b - a for a, b in itertools.pairwise(cpu)]
    dagster_s = timing["sensor_seconds"] + timing["run_seconds"] - timing["step_seconds"]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"profile {args.profile}: {profile['days']} days x {profile['rows_per_day']} rows")
    print(f"summary: {summary['retrains']}, delay {summary['detection_delay_batches']}, "
          f"false alarms {summary['false_alarms']}, live AUC {summary['final_live_auc']} vs "
          f"{summary['baseline_live_auc']} never retrained")  # fmt: skip
    print(f"wall {total:.1f} s, {total / len(stamps):.2f} s per day; CPU {cpu_total:.1f} s")
    _split(timing, total, cpu_total)
    print(f"inside steps (ML and data work) {timing['step_seconds']:.1f} s "
          f"({timing['step_seconds'] / total:.0%}); Dagster around them (sensor ticks, run "
          f"set-up, event log) {dagster_s:.1f} s ({dagster_s / total:.0%}); sensors alone "
          f"{timing['sensor_seconds']:.1f} s")  # fmt: skip
    print(f"runs with a run key {runs}, distinct keys {keys}")
    print(f"peak RSS {peak:.0f} MB; RSS after day 1 {rss[0]:.0f} MB, at the end {rss[-1]:.0f} MB")
    if args.profile == "load" and len(per_day) >= 200:
        first = statistics.median(per_day[:100])
        last = statistics.median(per_day[-100:])
        print(f"median s/day: first 100 {first:.3f}, last 100 {last:.3f}")
        cpu_first = statistics.median(cpu_day[:100])
        cpu_last = statistics.median(cpu_day[-100:])
        print(f"median CPU s/day: first 100 {cpu_first:.3f}, last 100 {cpu_last:.3f} "
              f"(ratio {cpu_last / cpu_first:.2f})")  # fmt: skip
        # Which part grows: per day, sensor ticks, Dagster around the steps, and the steps.
        split = {
            key: [b[key] - a[key] for a, b in itertools.pairwise(parts)]
            for key in ("sensors", "runs", "steps")
        }
        split["runs"] = [r - s for r, s in zip(split["runs"], split["steps"], strict=True)]
        for start in range(0, len(per_day), 100):
            chunk = slice(start, start + 100)
            mean = {k: statistics.fmean(v[chunk]) for k, v in split.items()}
            print(
                f"  days {start + 1}-{start + len(per_day[chunk])}: median "
                f"{statistics.median(per_day[chunk]):.3f} s/day, CPU "
                f"{statistics.median(cpu_day[chunk]):.3f} s/day; mean s/day: sensors "
                f"{mean['sensors']:.3f}, run set-up and events {mean['runs']:.3f}, steps "
                f"{mean['steps']:.3f}"
            )
        print(f"RESULT backtest_load: {len(stamps)} days, duplicate runs {runs - keys}, "
              f"peak RSS {peak:.0f} MB, last/first 100 days time ratio {last / first:.2f} "
              f"(goal ~1)")  # fmt: skip
    elif args.profile == "year":
        _first_last(per_day, cpu_day, 30)
        print(f"RESULT backtest_year: {len(stamps)} days x {profile['rows_per_day']} rows in "
              f"{total:.0f} s wall ({total / 60:.1f} min, goal 5), CPU {cpu_total:.0f} s; "
              f"retrains {summary['retrains']}")  # fmt: skip
    else:
        print(f"RESULT backtest_throughput: {profile['days']} days x {profile['rows_per_day']} "
              f"rows in {total:.0f} s ({total / len(stamps):.2f} s/day); Dagster share "
              f"{dagster_s / total:.0%}, steps {timing['step_seconds'] / total:.0%}")  # fmt: skip


if __name__ == "__main__":
    main()
