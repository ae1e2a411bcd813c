"""A fleet of 20 models x 90 days on the production profile, measured in one run.

The profile is deploy/README.md's: the Dagster instance on PostgreSQL (deploy/dagster.yaml as
shipped), every retraining's steps on Dagster's celery executor (a `dagster-celery worker` on a
Redis database of its own, RETRAIN_EXECUTOR=celery), every model's runs, registered model and
artifacts on an `mlflow server` backed by PostgreSQL. The fleet's sensors and schedules are
driven the way the daemon drives them (backtest.replay: each with its cursor, a run key run once
per job), day by day over each model's own calendar; a retrain_job run is handed to
``dg.execute_job`` on the code location reconstructed from RETRAIN_CONFIG (this process
orchestrates, the celery worker executes the steps), the other jobs run in-process as their run
workers would.

The fleet: SCENARIOS (binary with an abrupt drift, multiclass with a gradual one, regression
without drift, binary with a concept drift), each simulated once and served by `copies` models
with identical feeds. So every model's timeline (retraining reasons, gates, canary decisions,
champion versions, drift and live metrics per day) must equal its scenario's single-model
replay (`retrain-assets backtest`: in-process, sqlite), and the copies must equal each other:
a drift in one model never retrains another, and nothing a model's runs write reaches another's.

It prints: wall time per day (first and last 10 days), runs by kind, every run's outcome,
duplicate runs (job and run key, from the Postgres tables), resident memory of this process,
the celery worker and the MLflow server per day, and the comparison with the single-model
replays.

    .venv/bin/python -m benchmarks.fleet_replay                         # 4 x 5 models, 90 days
    .venv/bin/python -m benchmarks.fleet_replay --copies 1 --days 12    # a quick look

Needs PostgreSQL on 127.0.0.1:5432 (trust auth for postgres) and Redis on 127.0.0.1:6379, as
tests/prod does. The monthly cron (instead of the weekly default) keeps the retrainings few:
20 models x 13 weekly cycles would be ~260 retrainings. Even so, 20 models took ~4.5 s a
model-day on a shared 2-core box (RESULTS.md): 90 days is ~3 hours there, 30 days one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")  # the same fits here, in the worker and alone
os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")

import yaml

ROOT = Path(__file__).resolve().parents[1]
START = dt.date.today() - dt.timedelta(days=96)
OVERRIDES: dict[str, Any] = {
    "drift": {"html_report": False},
    "schedule": {"cron": "0 3 1 * *"},
    "gates": {"max_p95_latency_ms": 5000},  # the gate's wall clock on a shared 2-core box
}
COMPARED = (
    "day",
    "drift_share",
    "drifted",
    "live_metric",
    "estimated_auc",
    "reason",
    "gates",
    "canary",
    "champion_version",
    "runs",
)
"""Timeline fields that must equal the single-model replay's (not the seconds)."""


def scenarios(days: int) -> dict[str, Any]:
    from retrain_assets.lib.data import simulate as sim

    base = {"days": days, "rows_per_day": 300, "reference_rows": 2000, "start_date": START}
    return {
        "loans": sim.SimulationSpec(
            **base, drift="abrupt", drift_day=days // 3, label_delay=2, seed=3
        ),
        "repayments": sim.SimulationSpec(
            **base,
            drift="gradual",
            drift_day=days // 3,
            gradual_days=14,
            label_delay=3,
            seed=4,
            task="multiclass",
        ),
        "losses": sim.SimulationSpec(
            **base, drift="none", label_delay=5, seed=5, task="regression"
        ),
        "churn": sim.SimulationSpec(
            **base, drift="concept", drift_day=days // 2, label_delay=1, seed=6
        ),
    }


def _merge(base: dict, extra: dict) -> dict:
    out = dict(base)
    for key, value in extra.items():
        out[key] = _merge(out.get(key, {}), value) if isinstance(value, dict) else value
    return out


def write_feeds(feeds: Path, specs: dict[str, Any], overrides: dict = OVERRIDES) -> None:
    """Simulate every scenario into feeds/<scenario>/ (its landing folder and retrain.yaml, with
    `overrides`: the single-model replay's config)."""
    from retrain_assets.lib.data import simulate as sim

    for name, spec in specs.items():
        sim.simulate(feeds / name, spec)
        path = feeds / name / "retrain.yaml"
        path.write_text(yaml.safe_dump(_merge(yaml.safe_load(path.read_text()), overrides)))


def write_fleet(folder: Path, feeds: Path, copies: int, tracking_uri: str) -> dict[str, str]:
    """The fleet folder: `copies` model files per scenario, each with its own (empty) landing
    folder holding only the reference set, on the MLflow server. {model: scenario}."""
    from retrain_assets.fleet import fleet_model_contract

    models = {}
    for scenario in sorted(p.name for p in feeds.iterdir()):
        contract = yaml.safe_load((feeds / scenario / "retrain.yaml").read_text())
        for i in range(copies):
            model = f"{scenario}_{i}"
            config = fleet_model_contract(contract, model)
            config["mlflow"] = {"tracking_uri": tracking_uri}
            (folder / f"{model}.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
            landing = folder / model / "landing"
            for kind in ("features", "labels"):
                (landing / kind).mkdir(parents=True)
            for path in (feeds / scenario / "landing").glob("reference.*"):
                shutil.copy2(path, landing / path.name)
            models[model] = scenario
    return models


def single_replays(feeds: Path, out: Path) -> dict[str, list[dict]]:
    """Each scenario replayed alone (`retrain-assets backtest`: in-process, sqlite): its
    timeline rows."""
    from retrain_assets.backtest.replay import run_backtest
    from retrain_assets.config import load_config

    timelines = {}
    for scenario in sorted(p.name for p in feeds.iterdir()):
        began = time.perf_counter()
        cfg = load_config(feeds / scenario / "retrain.yaml")
        report = run_backtest(cfg, out / scenario)
        timelines[scenario] = report["timeline"]
        seconds = time.perf_counter() - began
        print(f"  single replay {scenario}: {report['summary']['retrains']} in {seconds:.0f} s")
    return timelines


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float):
        return math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12)
    return bool(a == b)


def differences(single: list[dict], fleet: list[dict]) -> list[str]:
    """Where a model's timeline differs from its scenario's single replay (COMPARED fields)."""
    if len(single) != len(fleet):
        days = sorted({r["day"] for r in single} ^ {r["day"] for r in fleet})
        return [f"{len(fleet)} rows, single replay {len(single)}; days in one only: {days}"]
    return [
        f"{s['day']} {field}: fleet {f[field]!r}, single {s[field]!r}"
        for s, f in zip(single, fleet, strict=True)
        for field in COMPARED
        if not _same(s[field], f[field])
    ]


class _Memory:
    """Resident memory (MB) of this process and of the servers' process groups, per day."""

    def __init__(self, groups: dict[str, int]) -> None:
        import psutil

        self.psutil, self.groups = psutil, groups
        self.samples: list[dict[str, float]] = []

    def _group_rss(self, pgid: int) -> float:
        total = 0
        for proc in self.psutil.process_iter(["pid"]):
            with contextlib.suppress(self.psutil.Error, ProcessLookupError):
                if os.getpgid(proc.pid) == pgid:
                    total += proc.memory_info().rss
        return total / 2**20

    def sample(self) -> None:
        row = {"driver": self.psutil.Process().memory_info().rss / 2**20}
        row.update({name: self._group_rss(pgid) for name, pgid in self.groups.items()})
        self.samples.append(row)


@dataclasses.dataclass
class _Model:
    name: str
    cfg: Any
    scope: Any
    observer: Any
    days: list[str]
    by_day: dict[str, list[Path]]
    rows: list[dict] = dataclasses.field(default_factory=list)


def _celery_replay(defs: Any, instance: Any) -> Any:
    """A Replay that hands every retrain_job run to ``dg.execute_job`` on the code location as
    a run worker loads it (RETRAIN_CONFIG, RETRAIN_EXECUTOR=celery): steps go to the worker."""
    import dagster as dg
    from dagster._core.definitions.reconstruct import ReconstructableRepository

    from retrain_assets import names
    from retrain_assets.backtest.replay import Replay

    repo = ReconstructableRepository.for_module(
        "retrain_assets.definitions", "defs", working_directory=str(ROOT)
    )

    class CeleryReplay(Replay):
        def run(self, job: Any, request: Any, tags: dict[str, str]) -> Any:
            if not job.name.endswith(names.RETRAIN_JOB):
                return super().run(job, request, tags)
            assert request.partition_key is None, request
            return dg.execute_job(
                repo.get_reconstructable_job(job.name),
                instance=self.instance,
                run_config=self._run_config(request.run_config),
                tags=tags,
                asset_selection=request.asset_selection,
            )

    return CeleryReplay(defs, instance, log_level="WARNING", tick_on_change=True)


def replay_fleet(
    folder: Path,
    instance: Any,
    sources: dict[str, Path],
    memory: _Memory | None = None,
    celery: bool = True,
) -> dict[str, Any]:
    """Replay every model of the fleet folder over its own calendar, all on one instance: the
    day before each model's first day bootstraps it; then each calendar day, each model whose
    calendar holds it lands its files (from its feed's landing folder, `sources[model]`), its
    sensors settle and its schedule ticks. Returns each model's timeline rows, the wall seconds
    of each day and the runs."""
    from retrain_assets.backtest.replay import (
        Observer,
        Replay,
        calendar,
        first_day,
        replay_day,
        replay_days,
    )
    from retrain_assets.definitions import build_fleet_definitions
    from retrain_assets.fleet import load_fleet
    from retrain_assets.scope import Scope

    fleet = load_fleet(folder)
    assert not fleet.broken, fleet.broken
    defs = build_fleet_definitions(fleet)
    if celery:
        replay = _celery_replay(defs, instance)
    else:
        replay = Replay(defs, instance, log_level="WARNING", tick_on_change=True)
    models = []
    for name, cfg in sorted(fleet.models.items()):
        scope = Scope.of(cfg)
        data = cfg.data.model_copy(update={"landing_dir": sources[name]})
        days, by_day = replay_days(cfg.model_copy(update={"data": data}), None, None)
        models.append(_Model(name, cfg, scope, Observer(instance, cfg, scope), days, by_day))
    for model in models:  # each model's reference lands and bootstraps its first champion
        model.rows.append(first_day(replay, model.observer, model.cfg).to_row())
    every_day = calendar(min(m.days[0] for m in models), max(m.days[-1] for m in models))
    day_seconds = []
    for n, day in enumerate(every_day, start=1):
        began = time.perf_counter()
        for model in models:
            if not model.days[0] <= day <= model.days[-1]:
                continue
            files = model.by_day.get(day, [])
            results = replay_day(replay, model.cfg, day, files, model.scope)
            if files or results:
                model.rows.append(model.observer.record(day, results).to_row())
        day_seconds.append(time.perf_counter() - began)
        if memory is not None:
            memory.sample()
        print(f"  day {n}/{len(every_day)} {day}: {day_seconds[-1]:.1f} s", flush=True)
    return {
        "timelines": {m.name: m.rows for m in models},
        "day_seconds": day_seconds,
        "runs": replay.runs,
        "seconds": dict(replay.seconds),
    }


def duplicate_runs(db: str) -> list[tuple]:
    """(job, run key, count) for every run key run more than once by one job."""
    from tests.prod.conftest import pg_query

    return pg_query(
        db,
        "select r.pipeline_name, t.value, count(*) from runs r join run_tags t"
        " on t.run_id = r.run_id and t.key = 'dagster/run_key'"
        " group by r.pipeline_name, t.value having count(*) > 1",
    )


def run_outcomes(db: str) -> dict[str, dict[str, int]]:
    """Runs by job kind (the job name without its model prefix) and status."""
    from tests.prod.conftest import pg_query

    kinds: dict[str, dict[str, int]] = {}
    rows = pg_query(
        db,
        "select r.pipeline_name, r.status, count(*) from runs r group by r.pipeline_name, r.status",
    )
    for job, status, count in rows:
        kind = job.split("_", 2)[-1] if job.count("_") >= 2 else job
        by_status = kinds.setdefault(kind, {})
        by_status[status] = by_status.get(status, 0) + count
    return kinds


@contextlib.contextmanager
def production_profile(out: Path, folder: Path, start: Callable[..., Any]) -> Iterator[dict]:
    """Fresh Postgres databases for Dagster and MLflow, the MLflow server, a Redis database of
    its own and a celery worker on RETRAIN_CONFIG=folder; the environment a run worker and the
    worker share is set in this process. Yields the pieces; drops the databases afterwards."""
    import dagster as dg

    from tests.prod.conftest import (
        REPO,
        claimed_redis_db,
        fresh_database,
        pg_env,
        start_celery_worker,
        start_mlflow_server,
    )

    with (
        fresh_database("fleet_dagster") as dagster_db,
        fresh_database("fleet_mlflow") as mlflow_db,
        claimed_redis_db() as redis_url,
    ):
        url, _ = start_mlflow_server(start, out, mlflow_db, workers=2)
        home = out / "dagster_home"
        home.mkdir()
        shutil.copy(REPO / "deploy" / "dagster.yaml", home / "dagster.yaml")
        env = {
            "RETRAIN_CONFIG": str(folder),
            "RETRAIN_EXECUTOR": "celery",
            "RETRAIN_CELERY_BROKER": redis_url,
            "RETRAIN_CELERY_BACKEND": redis_url,
            "DAGSTER_HOME": str(home),
            **pg_env(dagster_db),
        }
        os.environ.update(env)
        worker = start_celery_worker(
            start, env, out / "celery_worker.log", f"fleet-{uuid.uuid4().hex[:8]}"
        )
        worker.wait_for(lambda: " ready." in worker.text(), "celery worker", timeout=180)
        with dg.DagsterInstance.from_config(str(home)) as instance:
            yield {"instance": instance, "db": dagster_db, "mlflow_url": url, "worker": worker}


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _report(result: dict, db: str, memory: _Memory, mismatches: dict[str, list[str]]) -> bool:
    seconds = result["day_seconds"]
    print(
        f"wall {sum(seconds):.0f} s over {len(seconds)} days; median s/day first 10"
        f" {_median(seconds[:10]):.1f}, last 10 {_median(seconds[-10:]):.1f}"
    )
    print(f"runs {result['runs']}; seconds {json.dumps(result['seconds'])}")
    outcomes = run_outcomes(db)
    print("runs by kind and status:", json.dumps(outcomes, sort_keys=True))
    failed = {k: v for k, v in outcomes.items() if set(v) - {"SUCCESS"}}
    duplicates = duplicate_runs(db)
    print(f"duplicate runs (job, run key): {len(duplicates)} {duplicates[:5]}")
    samples = memory.samples
    for who in samples[0]:
        series = [s[who] for s in samples]
        print(
            f"RSS {who:8s} MB: after day 1 {series[0]:.0f}, day {len(series) // 2}"
            f" {series[len(series) // 2]:.0f}, end {series[-1]:.0f}, peak {max(series):.0f}"
        )
    for model, lines in sorted(mismatches.items()):
        print(f"MISMATCH {model}: {len(lines)} fields differ, e.g. {lines[:3]}")
    ok = not failed and not duplicates and not mismatches
    print(
        f"RESULT fleet_replay: {len(result['timelines'])} models x {len(seconds)} days on"
        f" Postgres + celery + MLflow server in {sum(seconds) / 60:.1f} min; runs"
        f" {result['runs']}, failed {sum(sum(v.values()) for v in failed.values())}, duplicates"
        f" {len(duplicates)}, timelines equal to the single replays:"
        f" {len(result['timelines']) - len(mismatches)}/{len(result['timelines'])}"
    )
    return ok


def retrains(rows: list[dict]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in rows:
        for reason in (row["reason"] or "").split(", "):
            if reason:
                counts[reason] = counts.get(reason, 0) + 1
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--copies", type=int, default=5, help="models per scenario (5: 20)")
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--keep", type=Path, help="keep the folders here (default: a temp dir)")
    args = parser.parse_args(argv)
    from tests.prod.conftest import Service

    out = args.keep or Path(tempfile.mkdtemp(prefix="fleet_replay_"))
    out.mkdir(parents=True, exist_ok=True)
    specs = scenarios(args.days)
    write_feeds(out / "feeds", specs)
    print(f"{len(specs)} scenarios x {args.copies} copies, {args.days} days, under {out}")
    print("single-model replays (in-process, sqlite):")
    singles = single_replays(out / "feeds", out / "single")
    started: list[Service] = []

    def start(cmd: list[str], env: dict, log: Path, cwd: Path = ROOT) -> Service:
        started.append(Service(cmd, env, log, cwd))
        return started[-1]

    folder = out / "fleet"
    folder.mkdir()
    try:
        with production_profile(out, folder, start) as profile:
            models = write_fleet(folder, out / "feeds", args.copies, profile["mlflow_url"])
            memory = _Memory({"worker": profile["worker"].pgid, "mlflow": started[0].pgid})
            print(f"fleet replay: {len(models)} models")
            sources = {m: out / "feeds" / s / "landing" for m, s in models.items()}
            result = replay_fleet(folder, profile["instance"], sources, memory)
            mismatches = {}
            for model, rows in result["timelines"].items():
                lines = differences(singles[models[model]], rows)
                if lines:
                    mismatches[model] = lines
                print(f"  {model}: retrains {retrains(rows)}")
            ok = _report(result, profile["db"], memory, mismatches)
    finally:
        for service in reversed(started):
            service.stop()
    if args.keep is None:
        shutil.rmtree(out, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
