"""Replay a landing folder day by day through the real definitions: what would the policy have done?

Nothing is reimplemented. Each data day, that day's files are copied into a private landing folder;
the code location's own sensors are evaluated (``build_sensor_context`` with the instance and the
definitions, each with its cursor, as the daemon keeps them); the runs they request are executed
in-process with their tags and run keys (a run key already run is skipped, as the daemon does);
the weekly schedule is ticked when its cron falls on that data day. The Dagster instance, the MLflow
store and the DVC repo live under the backtest's own folder, never in the user's live ones; the
user's landing folder is only read.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd

from retrain_assets import names
from retrain_assets.backtest.report import DayRecord, pooled_metric, summarize
from retrain_assets.config import RetrainConfig, with_fleet_model
from retrain_assets.definitions import build_definitions
from retrain_assets.lib.data.landing_files import READERS, landing_day
from retrain_assets.lib.dates import shift_day
from retrain_assets.lib.training.tasks import task_metrics
from retrain_assets.monitoring.paths import PREDICTIONS_DIR
from retrain_assets.records import new_materializations
from retrain_assets.resources.landing import LandingStore
from retrain_assets.resources.model_registry import ModelRegistry
from retrain_assets.scope import SINGLE, Scope

RunResult = dg.ExecuteInProcessResult | dg.JobExecutionResult
"""An executed run: in-process, or through ``dg.execute_job`` with the job's own executor."""


class Replay:
    """Drives sensors and the schedule over a real instance the way the daemon does.

    Each sensor keeps its cursor between ticks (a skipped tick keeps the old one); a request whose
    run key already ran (in this replay or earlier in the same instance) is not run again; runs are
    executed in-process, one at a time, with the request's tags, partition, selection and config.

    With ``tick_on_change``, ``settle`` ticks a sensor only when a file landed (``land``) or a run
    executed (``execute``) since that sensor's last tick. A sensor reads nothing else (its cursor,
    the instance, the landing folder and what runs wrote), so its tick on an unchanged world is the
    one it already had: it requested nothing, or its runs would have changed the world. Whatever a
    daemon tick could find, the replay's tick finds. Only valid when every change goes through
    ``land`` and ``execute``, as in ``run_backtest``; tests that change the world behind the
    replay's back (landing files, runs, registry aliases) keep the default, every sensor every
    round.
    """

    def __init__(
        self,
        defs: dg.Definitions,
        instance: dg.DagsterInstance,
        keep_results: bool = False,
        log_level: str | None = None,
        tick_on_change: bool = False,
    ) -> None:
        self.defs, self.instance = defs, instance
        self.tick_on_change = tick_on_change
        # The console logger of every in-process run; the event log keeps everything regardless.
        self.loggers = {"console": {"config": {"log_level": log_level}}} if log_level else None
        self.cursors: dict[str, str | None] = {}
        self.run_keys: set[tuple[str, str]] = set()  # (job, run key): as the daemon, per target
        self.keep_results = keep_results
        self.results: list[RunResult] = []
        self.seconds = {"sensors": 0.0, "runs": 0.0, "steps": 0.0}
        self.changes = 0  # files landed and runs executed so far
        self.runs = 0
        self.ticked_at: dict[str, int] = {}  # sensor -> `changes` at its last tick
        self.ticks = 0

    def _already_ran(self, job: str, key: str | None) -> bool:
        """Whether `job` already ran with run key `key` (the models of a fleet may request the
        same key, e.g. two landing files of the same content, each for its own job)."""
        if key is None:
            return False
        if (job, key) in self.run_keys:
            return True
        found = self.instance.get_run_records(
            filters=dg.RunsFilter(job_name=job, tags={names.RUN_KEY_TAG: key}), limit=1
        )
        if found:
            self.run_keys.add((job, key))
        return bool(found)

    def execute(
        self, requests: Iterable[dg.RunRequest], default_job: str | None = None, **tags: str
    ) -> list[RunResult]:
        """Run the requests not run before (by run key), in order."""
        done = []
        for request in requests:
            job = self.defs.resolve_job_def(request.job_name or default_job or "")
            if self._already_ran(job.name, request.run_key):
                continue
            if request.run_key is not None:
                self.run_keys.add((job.name, request.run_key))
            run_tags = dict(request.tags)
            if request.run_key is not None:
                run_tags[names.RUN_KEY_TAG] = request.run_key
            run_tags.update(tags)
            start = time.perf_counter()
            result = self.run(job, request, run_tags)
            self.changes += 1
            self.runs += 1
            self.seconds["runs"] += time.perf_counter() - start
            self.seconds["steps"] += _step_seconds(result)
            done.append(result)
        if self.keep_results:
            self.results += done
        return done

    def run(self, job: dg.JobDefinition, request: dg.RunRequest, tags: dict[str, str]) -> RunResult:
        """Execute one requested run (in-process here; a subclass may hand a job to another
        executor, as the production profile's replay does with retrain_job on celery)."""
        return job.execute_in_process(
            instance=self.instance,
            partition_key=request.partition_key,
            asset_selection=request.asset_selection,
            tags=tags,
            run_config=self._run_config(request.run_config),
            raise_on_error=False,
        )

    def _run_config(self, config: Any) -> dict:
        config = dict(config or {})
        if self.loggers and "loggers" not in config:
            config["loggers"] = self.loggers
        return config

    def tick(self, sensor: str) -> list[RunResult]:
        """Evaluate one sensor with its cursor and run what it requested."""
        start = time.perf_counter()
        self.ticks += 1
        self.ticked_at[sensor] = self.changes
        context = dg.build_sensor_context(
            instance=self.instance, definitions=self.defs, cursor=self.cursors.get(sensor)
        )
        result = self.defs.resolve_sensor_def(sensor).evaluate_tick(context)
        self.cursors[sensor] = result.cursor or self.cursors.get(sensor)
        self.seconds["sensors"] += time.perf_counter() - start
        return self.execute(result.run_requests or [], **{names.SENSOR_NAME_TAG: sensor})

    def tick_schedule(self, name: str, when: dt.datetime) -> list[RunResult]:
        """Evaluate a schedule as of its tick time and run what it requested."""
        schedule = self.defs.resolve_schedule_def(name)
        start = time.perf_counter()
        context = dg.build_schedule_context(instance=self.instance, scheduled_execution_time=when)
        data = schedule.evaluate_tick(context)
        self.seconds["sensors"] += time.perf_counter() - start
        return self.execute(
            data.run_requests or [],
            default_job=schedule.job_name,
            **{names.SCHEDULE_NAME_TAG: name},
        )

    def land(self, files: Iterable[Path], landing: Path) -> None:
        """Copy the user's day files into the replay's landing folder (kind/name), as they land."""
        for path in files:
            shutil.copy2(path, landing / path.parent.name / path.name)
            self.changes += 1

    def _due(self, sensor: str) -> bool:
        return not self.tick_on_change or self.ticked_at.get(sensor) != self.changes

    def settle(self, sensors: Sequence[str] = names.SENSORS, rounds: int = 8) -> list:
        """Tick the sensors until none requests anything; the runs executed on the way (with
        ``tick_on_change``, a sensor is ticked only if something changed since its last tick)."""
        executed: list = []
        for _ in range(rounds):
            batch = [r for s in sensors if self._due(s) for r in self.tick(s)]
            executed += batch
            if not batch:
                return executed
        raise RuntimeError(f"sensors still requesting runs after {rounds} rounds")


def _step_seconds(result: RunResult) -> float:
    """Time spent inside the run's successful steps, as Dagster measured it."""
    durations = (
        getattr(event.event_specific_data, "duration_ms", None)
        for event in result.get_step_success_events()
    )
    return sum(ms / 1000.0 for ms in durations if ms is not None)


def schedule_fire_time(cron: str, day: str, timezone: str = "UTC") -> dt.datetime | None:
    """When the cron ticks during the data day, or None when it does not tick that day."""
    from dagster._utils.schedules import cron_string_iterator  # no public cron iterator in 1.13

    midnight = dt.datetime.fromisoformat(day).replace(tzinfo=dt.UTC)
    tick = next(cron_string_iterator(midnight.timestamp(), cron, timezone))
    return tick if tick < midnight + dt.timedelta(days=1) else None


def _day_files(landing: Path) -> dict[str, list[Path]]:
    """The user's day files by data day (features and labels)."""
    days: dict[str, list[Path]] = {}
    for kind in ("features", "labels"):
        folder = landing / kind
        for path in sorted(folder.iterdir()) if folder.is_dir() else []:
            parsed = landing_day(path)
            if parsed is not None and path.is_file():
                days.setdefault(parsed.isoformat(), []).append(path)
    return days


def backtest_config(cfg: RetrainConfig, out: Path, html: bool) -> RetrainConfig:
    """The user's policy, with every piece of state moved under `out`. A fleet's model replays
    alone, under the single-model names (the replay has its own instance)."""
    moved = cfg.model_copy(
        update={
            "data": cfg.data.model_copy(update={"landing_dir": out / "landing"}),
            "workdir": out / "work",
            "mlflow": cfg.mlflow.model_copy(update={"tracking_uri": None}),
            "drift": cfg.drift.model_copy(update={"html_report": html}),
        }
    )
    return with_fleet_model(moved, None)


class Observer:
    """Reads each day's monitoring verdicts and classifies the runs a day executed: one model's,
    named by its scope (a fleet's replay keeps one observer per model)."""

    def __init__(
        self, instance: dg.DagsterInstance, cfg: RetrainConfig, scope: Scope = SINGLE
    ) -> None:
        self.instance, self.scope = instance, scope
        self.jobs = {job: scope.name(job) for job in (names.RETRAIN_JOB, names.CANARY_JOB)}
        self.jobs[names.ROLLBACK_JOB] = scope.name(names.ROLLBACK_JOB)
        watched = (names.DRIFT_REPORT, names.PERFORMANCE_REPORT, names.ESTIMATED_PERFORMANCE)
        self.after: dict[str, int | None] = dict.fromkeys(watched)
        self.meta: dict[str, dict[str, dict]] = {asset: {} for asset in watched}
        self.registry = ModelRegistry(
            tracking_uri=cfg.tracking_uri, registered_name=cfg.model.registered_name
        )

    def _read(self, asset: str) -> None:
        asset_key = self.scope.key(asset)
        for storage_id, day, meta in new_materializations(
            self.instance, asset_key, self.after[asset]
        ):
            self.after[asset] = storage_id
            if day is not None:
                self.meta[asset][day] = meta
        # keep only the recent days: a long replay must not grow without bound
        for key in sorted(self.meta[asset])[:-60]:
            del self.meta[asset][key]

    def record(self, day: str, results: list[RunResult]) -> DayRecord:
        for asset in self.meta:
            self._read(asset)
        drift = self.meta[names.DRIFT_REPORT].get(day, {})
        perf = self.meta[names.PERFORMANCE_REPORT].get(day, {})
        rec = DayRecord(
            day=day,
            drift_share=drift.get("share_drifted"),
            drifted=drift.get("drifted"),
            live_auc=perf.get("auc"),
            live_metric=perf.get("metric_value"),
            estimated=_estimated(self.meta[names.ESTIMATED_PERFORMANCE].get(day, {})),
            estimate_check=_estimate_check(perf),
            runs=len(results),
        )
        for result in results:
            job = result.dagster_run.job_name
            if job == self.jobs[names.RETRAIN_JOB]:
                rec.reasons.append(result.dagster_run.tags.get(names.REASON_TAG, "manual"))
                rec.gates.append(_gates(result))
                rec.train_seconds += _step_seconds(result)
            elif job == self.jobs[names.CANARY_JOB]:
                rec.canary.append(_decision(result, self.scope.key(names.PROMOTED_MODEL)))
            elif job == self.jobs[names.ROLLBACK_JOB]:
                rec.reasons.append("rollback")
        rec.champion_version = self.registry.alias_version(names.CHAMPION)
        return rec


def _estimated(meta: dict) -> dict:
    """The batch's estimate (auc, low, high), empty when none was made."""
    if meta.get("estimated_auc") is None:
        return {}
    return {
        "auc": meta["estimated_auc"],
        "low": meta.get("estimated_auc_low"),
        "high": meta.get("estimated_auc_high"),
    }


def _estimate_check(perf: dict) -> dict:
    """The estimate for the labelled rows against their realized AUC, from a performance
    report's metadata (empty when it has none)."""
    if perf.get("estimation_error") is None:
        return {}
    return {"error": perf["estimation_error"], "covered": perf.get("estimate_covers")}


def _gates(result: RunResult) -> str:
    """pass, fail (the failed checks), or error when the run failed before its checks."""
    evaluations = result.get_asset_check_evaluations()
    failed = sorted(
        e.check_name
        for e in evaluations
        if not e.passed and e.severity == dg.AssetCheckSeverity.ERROR
    )
    if failed:
        return "fail (" + ", ".join(failed) + ")"
    return "pass" if result.success else "error"


def _decision(result: RunResult, promoted: dg.AssetKey) -> str:
    """The canary's outcome: promote, or reject (its non-inferiority check failed), or error."""
    for event in result.get_asset_materialization_events():
        mat = event.materialization
        if mat.asset_key == promoted and "decision" in mat.metadata:
            return str(mat.metadata["decision"].value)
    if any(not e.passed for e in result.get_asset_check_evaluations()):
        return "reject"
    return "error"


def served_rows(cfg: RetrainConfig, store: LandingStore, label_days: list[str]) -> pd.DataFrame:
    """Labelled rows of these label days with the score the serving champion gave them, and
    their features. Labels are read from the ingested batches, where the target is already 0/1
    with ``data.positive_label`` as 1 (whatever the landing files held: "malignant", "yes", 2)."""
    from retrain_assets.lib.monitoring.performance import join_predictions

    data = cfg.data
    folder = Path(cfg.workdir).joinpath(*PREDICTIONS_DIR)
    first = shift_day(label_days[0], -cfg.performance.max_label_delay_days)
    files = sorted(p for p in folder.glob("*.parquet") if first <= p.stem <= label_days[-1])
    if not files:
        return pd.DataFrame()
    labels = pd.concat([store.read_batch("labels", d) for d in label_days], ignore_index=True)
    preds = pd.concat([pd.read_parquet(p) for p in files], ignore_index=True)
    served = [c for c in ("champion_score", "champion_proba", "champion_classes") if c in preds]
    preds = preds[[data.id_column, *served, "day"]].rename(
        columns={
            "champion_score": "score",
            "champion_proba": "proba",
            "champion_classes": "classes",
        }
    )
    joined, _ = join_predictions(labels, preds, data.id_column, data.target_column, task=cfg.task)
    if joined.empty:
        return joined
    features = pd.concat(
        [store.read_batch("features", d) for d in sorted(set(joined["day"]))], ignore_index=True
    ).drop_duplicates(data.id_column, keep="last")
    kept = [c for c in (data.id_column, "y", "score", "proba", "classes") if c in joined]
    return joined[kept].merge(features, on=data.id_column, how="inner")


def _final_aucs(cfg: RetrainConfig, last_days: int) -> tuple[float | None, float | None, list, int]:
    """Live primary metric (AUC for binary) of what served (the stored champion predictions)
    and of the first, never retrained model, on the same labelled rows of the last `last_days`
    label days."""
    import mlflow

    from retrain_assets.lib.training import tasks

    store = LandingStore(landing_dir=str(cfg.data.landing_dir), workdir=str(cfg.workdir))
    label_days = store.batch_days("labels")[-last_days:]
    rows = served_rows(cfg, store, label_days) if label_days else pd.DataFrame()
    if rows.empty:
        return None, None, label_days, 0
    mlflow.set_tracking_uri(cfg.tracking_uri)  # models:/ URIs resolve against the process's URI
    mlflow.set_registry_uri(cfg.tracking_uri)
    registry = ModelRegistry(
        tracking_uri=cfg.tracking_uri, registered_name=cfg.model.registered_name
    )
    first_model = registry.load("1")  # the bootstrap champion, never retrained
    task = cfg.task
    baseline = tasks.predict(task, first_model, rows[cfg.data.features])
    served, classes = tasks.prediction_of(rows, task)
    if classes != tasks.model_classes(task, first_model):
        raise ValueError("the serving and the first model know different classes")
    y = rows["y"].to_numpy()
    final = pooled_metric(task, y, served, classes)
    return final, pooled_metric(task, y, baseline, classes), label_days, len(rows)


def replay_days(
    cfg: RetrainConfig,
    date_from: str | None,
    date_to: str | None,
) -> tuple[list[str], dict[str, list[Path]]]:
    """The data days to replay (from start_date, within the bounds, not in the future)."""
    source, start = cfg.data.landing_dir, cfg.data.start_date.isoformat()
    by_day = _day_files(source)
    days = [
        d
        for d in sorted(by_day)
        if d >= start
        and (date_from is None or d >= date_from)
        and (date_to is None or d <= date_to)
        and d <= dt.date.today().isoformat()
    ]
    if not days:
        raise ValueError(f"{source}: no day files between {date_from or start} and {date_to}")
    return days, by_day


INSTANCE_YAML = """\
# The backtest's own Dagster instance (DAGSTER_HOME=this folder to browse it with `dagster dev`).
# One consolidated sqlite event log instead of one database per run: a replay makes thousands of
# runs, and creating each run's database cost more than most of its steps.
telemetry:
  enabled: false
event_log_storage:
  module: dagster._core.storage.event_log
  class: ConsolidatedSqliteEventLogStorage
  config:
    base_dir: {base_dir}
"""


def _instance(folder: Path) -> dg.DagsterInstance:
    """The replay's own instance under `folder`, its storage described in folder/dagster.yaml."""
    history = json.dumps(str(folder / "history"))  # a YAML string, quoted like JSON
    (folder / "dagster.yaml").write_text(INSTANCE_YAML.format(base_dir=history), encoding="utf-8")
    return dg.DagsterInstance.local_temp(tempdir=str(folder))


@contextlib.contextmanager
def _no_fsync(folder: Path) -> Iterator[None]:
    """SQLite databases under `folder` (the replay's instance and MLflow store, both thrown away or
    kept only to be browsed) are written without fsync: ``PRAGMA synchronous=OFF`` on every
    connection SQLAlchemy opens to them while the replay runs. An fsync per commit was the largest
    single cost of a replay (tens of thousands of commits); a crash of the machine mid-replay can
    corrupt only the replay's own folder."""
    from sqlalchemy import event
    from sqlalchemy.pool import Pool

    prefix = os.path.join(folder.resolve(), "")  # the folder and what is under it

    def on_connect(connection: Any, _record: Any) -> None:
        if isinstance(connection, sqlite3.Connection):
            files = [row[2] for row in connection.execute("PRAGMA database_list")]
            if any(f and str(f).startswith(prefix) for f in files):
                connection.execute("PRAGMA synchronous=OFF")

    event.listen(Pool, "connect", on_connect)
    try:
        yield
    finally:
        event.remove(Pool, "connect", on_connect)


def _prepare(cfg: RetrainConfig, out: Path, html: bool) -> RetrainConfig:
    """The backtest's config, with its private landing folder holding the reference set."""
    if out.exists() and any(out.iterdir()):
        raise FileExistsError(f"backtest folder {out} is not empty; give a new or empty folder")
    source = cfg.data.landing_dir
    reference = [p for p in sorted(source.glob("reference.*")) if p.suffix in READERS]
    if not reference:
        raise FileNotFoundError(f"{source}: no reference.parquet or reference.csv to start from")
    bt = backtest_config(cfg, out, html)
    for kind in ("features", "labels"):
        (bt.data.landing_dir / kind).mkdir(parents=True, exist_ok=True)
    for path in reference:
        shutil.copy2(path, bt.data.landing_dir / path.name)
    (out / "dagster").mkdir()
    return bt


def _first_champion(replay: Replay, observer: Observer, bt: RetrainConfig, out: Path) -> DayRecord:
    """The reference set and the first champion, decided the day before the first partition."""
    first = first_day(replay, observer, bt)
    if first.champion_version is None:
        raise RuntimeError(
            f"the first champion was not trained (retraining gates: {first.gates or 'no run'});"
            f" see the runs in {out / 'dagster'} (keep it with --out) and fix the data or"
            " the gates before replaying"
        )
    return first


def first_day(replay: Replay, observer: Observer, cfg: RetrainConfig) -> DayRecord:
    """The row of the day before the first partition: the reference set landed (it is in the
    landing folder before the replay starts) and the sensors settled, bootstrapping the first
    champion."""
    sensors = tuple(observer.scope.name(s) for s in names.SENSORS)
    day = shift_day(cfg.data.start_date.isoformat(), -1)
    return observer.record(day, replay.settle(sensors))


def calendar(first: str, last: str) -> list[str]:
    """Every calendar day from `first` to `last`, both included."""
    start, end = dt.date.fromisoformat(first), dt.date.fromisoformat(last)
    return [(start + dt.timedelta(days=n)).isoformat() for n in range((end - start).days + 1)]


def replay_day(
    replay: Replay, bt: RetrainConfig, day: str, files: list[Path], scope: Scope = SINGLE
) -> list[RunResult]:
    """Land the day's files of one model (named by `scope`) and let its sensors settle; tick its
    schedule if the cron falls on the day, whether or not anything landed (the daemon ticks it on
    every calendar day)."""
    sensors = tuple(scope.name(s) for s in names.SENSORS)
    results: list[RunResult] = []
    if files:
        replay.land(files, bt.data.landing_dir)
        results += replay.settle(sensors)
    when = schedule_fire_time(bt.schedule.cron, day) if bt.schedule.enabled else None
    if when is not None:
        ticked = replay.tick_schedule(scope.name(names.WEEKLY_SCHEDULE), when)
        results += ticked + (replay.settle(sensors) if ticked else [])
    return results


def run_backtest(
    cfg: RetrainConfig,
    out: Path,
    *,
    date_from: str | None = None,
    date_to: str | None = None,
    truth: dict[str, Any] | None = None,
    last_days: int = 7,
    html: bool = False,
    log_level: str | None = "WARNING",
    progress: Callable[[DayRecord, int, int], None] | None = None,
    day_seconds: list[dict[str, float]] | None = None,
) -> dict[str, Any]:
    """Replay `cfg`'s landing folder under `out` (which must be empty or absent), every calendar
    day from the first data day to the last, as the daemon would live; the report:
    ``{"summary": {...}, "timeline": [...], "timing": {...}}``. ``day_seconds``, if given, gets
    the replay's running totals (sensors, runs, steps) appended after each day, so a caller can
    see which part of a day's cost grows with history. ``progress``, if given, is called after
    each timeline row with the row, the calendar days replayed so far and their total."""
    out = Path(out).resolve()
    days, by_day = replay_days(cfg, date_from, date_to)
    data_days = set(days)
    bt = _prepare(cfg, out, html)
    defs = build_definitions(bt)
    began = time.perf_counter()
    with _no_fsync(out), _instance(out / "dagster") as instance:
        replay = Replay(defs, instance, log_level=log_level, tick_on_change=True)
        observer = Observer(instance, bt)
        records = [_first_champion(replay, observer, bt, out)]
        every_day = calendar(days[0], days[-1])
        for done, day in enumerate(every_day, start=1):
            files = by_day.get(day, []) if day in data_days else []
            results = replay_day(replay, bt, day, files)
            if not files and not results:
                continue  # nothing landed and nothing ran: no row in the timeline
            record = observer.record(day, results)
            records.append(record)
            if day_seconds is not None:
                day_seconds.append(dict(replay.seconds))
            if progress is not None:
                progress(record, done, len(every_day))
        final, baseline, auc_days, auc_rows = _final_aucs(bt, last_days)
    total = time.perf_counter() - began
    summary = summarize(
        records,
        truth,
        final_live_auc=final,
        baseline_live_auc=baseline,
        auc_days=auc_days,
        auc_rows=auc_rows,
        metric=task_metrics(bt.task)[0].name,
    )
    timing = _timing(replay, total, len(days))
    return {"summary": summary, "timeline": [r.to_row() for r in records], "timing": timing}


def _timing(replay: Replay, total: float, data_days: int) -> dict[str, float]:
    """Where the replay's time went: sensor ticks, runs, and the steps inside the runs."""
    seconds = replay.seconds
    return {
        "total_seconds": round(total, 2),
        "sensor_seconds": round(seconds["sensors"], 2),
        "run_seconds": round(seconds["runs"], 2),
        "step_seconds": round(seconds["steps"], 2),
        "seconds_per_day": round(total / data_days, 3),
        "sensor_ticks": replay.ticks,
        "runs": replay.runs,
    }


def load_truth(path: Path | None, cfg: RetrainConfig) -> dict[str, Any] | None:
    """The answer key: the given file, else ground_truth.json next to the config, else None."""
    if path is None and cfg.source is not None:
        beside = cfg.source.parent / "ground_truth.json"
        path = beside if beside.is_file() else None
    if path is None:
        return None
    return dict(json.loads(Path(path).read_text(encoding="utf-8")))
