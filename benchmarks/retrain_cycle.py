"""One retraining cycle on ~100k labelled rows: `retrain_job` through Dagster vs plain Python.

Why: a retraining cycle is the platform's heaviest run. Dagster adds a process that loads the code
location, resources set up per run (or per step), an event log written for every step, and the
assets the job carries besides the model itself. The goal is Dagster <= 1.5x the same library
calls made by one plain Python process.

What is compared, each as a fresh process (a run worker is a fresh process too), on the same data,
config and kind of MLflow store (sqlite + local artifacts in a temp folder):

* dagster: `retrain_job.execute_in_process()` (the job ships with the in-process executor) in a
  process that loads the code location, against a sqlite Dagster instance (DAGSTER_HOME in the
  temp folder) that was brought to steady state the way the sensors do it: the reference ingested,
  a first champion bootstrapped, every landing day ingested and monitored.
* plain: the same library calls in one process without Dagster: the training set assembled the
  way `training_dataset` does (reference + every labelled stored batch, `training.assemble`,
  `strategies.training_rows`), written and `dvc add`-ed, logged to an MLflow run, the data gate;
  the fit (`training.fit_and_evaluate`), the champion's AUC on the same test rows, the model logged
  and registered (`lib.registry`), the latency gate (`gates.pyfunc_latency_ms`), gate tags, metrics
  and the `challenger` alias; then the promotion decision (`lib.promotion`).
* multiprocess (--multiprocess): the same job with Dagster's multiprocess executor (`execute_job`),
  one process per step.

In the steady state every cycle's candidate becomes the challenger and waits for its canary
(canary mode shadow), so the champion never moves and repeats are alike. Runs are interleaved
(the order alternates), repeated, and medians reported. The Dagster time is broken down per step
(STEP_START -> STEP_SUCCESS from the run's event log) and, inside the process, by timing the calls
that matter (wrapped, a few microseconds each); orchestration overhead = Dagster wall time - plain
wall time.

On a busy 2-core box HistGradientBoosting's OpenMP threads (fit, and each single-row predict of
the latency gate) swing by 10x with the neighbours' load, which swamps the seconds measured here:
--omp-threads 1 sets OMP_NUM_THREADS for every child alike.

    .venv/bin/python -m benchmarks.retrain_cycle                  # 3 repeats, ~100k rows
    .venv/bin/python -m benchmarks.retrain_cycle --omp-threads 1  # one OpenMP thread per process
    .venv/bin/python -m benchmarks.retrain_cycle --multiprocess   # also the multiprocess executor
    .venv/bin/python -m benchmarks.retrain_cycle --variant /tmp/copy   # + a changed repo copy
    .venv/bin/python -m benchmarks.retrain_cycle --rows 20000 --repeats 1   # a smoke run
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

GOAL = 1.5
ROOT = Path(__file__).resolve().parents[1]
QUIET = {
    "DAGSTER_DISABLE_TELEMETRY": "1",
    "DO_NOT_TRACK": "1",
    "DVC_NO_ANALYTICS": "1",
    "MLFLOW_DISABLE_TELEMETRY": "true",
}
MARK = "BENCH_JSON "
STEPS = ("training_dataset", "candidate_model", "promoted_model", "reference_profile")
STEPS += ("model_history",)
# Plain phases that do what each Dagster step does (the rest of a step is Dagster's own).
PLAIN_OF_STEP = {
    "training_dataset": ("data_load", "training_set", "dvc_add", "mlflow_run", "data_gate"),
    "candidate_model": (
        "champion_load",
        "fit",
        "champion_auc",
        "calibration_log",
        "log_register",
        "latency",
        "tags",
    ),
    "promoted_model": ("promotion",),
}

# ----------------------------------------------------------------------------- timing helpers

TIMES: dict[str, list[float]] = defaultdict(list)


def timed(owner: Any, name: str, label: str) -> None:
    """Replace owner.name by a wrapper that adds each call's wall time to TIMES[label] (nothing
    when the code no longer has it: the breakdown just loses that line)."""
    original = getattr(owner, name, None)
    if original is None:
        return

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            TIMES[label].append(time.perf_counter() - started)

    wrapper.__wrapped__ = original  # type: ignore[attr-defined]
    wrapper.__name__ = getattr(original, "__name__", name)
    wrapper.__doc__ = getattr(original, "__doc__", None)
    setattr(owner, name, wrapper)


def instrument_dagster_process() -> None:
    """Time the calls a retraining step spends its time in (inclusive times; some nest)."""
    import mlflow
    import pandas as pd

    from retrain_assets.lib.drift import profile as drift
    from retrain_assets.lib.release import model_gates as gates
    from retrain_assets.lib.release import model_store as registry
    from retrain_assets.lib.release import timeline as model_history
    from retrain_assets.lib.training import fitting as training
    from retrain_assets.release import model_history as history
    from retrain_assets.resources.dvc import DvcRepository
    from retrain_assets.resources.mlflow import MlflowTracking
    from retrain_assets.resources.model_registry import ModelRegistry
    from retrain_assets.training import dataset as train

    timed(pd, "read_parquet", "pandas.read_parquet")
    timed(train, "labelled_rows", "train.labelled_rows (read batches + join)")
    timed(training, "assemble", "training.assemble")
    timed(training, "fit_and_evaluate", "training.fit_and_evaluate")
    timed(DvcRepository, "add", "DvcRepository.add (dvc add)")
    timed(MlflowTracking, "setup_for_execution", "MlflowTracking setup (start/resume MLflow run)")
    if hasattr(MlflowTracking, "_start"):  # newer resource: the MLflow run starts on first use
        timed(MlflowTracking, "_start", "MlflowTracking._start (start/resume MLflow run)")
    timed(MlflowTracking, "teardown_after_execution", "MlflowTracking teardown")
    timed(MlflowTracking, "run_url", "MlflowTracking.run_url (experiment lookup)")
    timed(ModelRegistry, "setup_for_execution", "ModelRegistry setup")
    timed(ModelRegistry, "load", "ModelRegistry.load (champion model)")
    timed(ModelRegistry, "alias_version", "ModelRegistry.alias_version")
    timed(ModelRegistry, "version_tags", "ModelRegistry.version_tags")
    timed(ModelRegistry, "tag_version", "ModelRegistry.tag_version")
    timed(registry, "log_and_register", "registry.log_and_register")
    timed(gates, "pyfunc_latency_ms", "gates.pyfunc_latency_ms (load + 200 predictions)")
    timed(drift.ReferenceProfile, "fit", "ReferenceProfile.fit")
    timed(drift.ReferenceProfile, "save", "ReferenceProfile.save")
    timed(history, "daily_facts", "model_history: daily_facts (Dagster records)")
    timed(history, "mlflow_cycles", "model_history: mlflow_cycles (search_runs)")
    timed(model_history, "plot_png", "model_history: plot_png (matplotlib)")
    timed(mlflow, "get_experiment_by_name", "mlflow.get_experiment_by_name")


# ----------------------------------------------------------------------------- the children


def _emit(payload: dict) -> None:
    print(MARK + json.dumps(payload), flush=True)


def _step_times(instance: Any, run_id: str) -> tuple[dict[str, float], dict[str, Any]]:
    """Per step STEP_START -> STEP_SUCCESS/FAILURE seconds, and run-level facts from the log."""
    starts: dict[str, float] = {}
    steps: dict[str, float] = {}
    first = last = None
    count = 0
    kinds: dict[str, int] = defaultdict(int)
    for entry in instance.all_logs(run_id):
        count += 1
        first = entry.timestamp if first is None else first
        last = entry.timestamp
        event = entry.dagster_event
        if event is None:
            continue
        kinds[event.event_type_value] += 1
        if event.event_type_value == "STEP_START":
            starts[event.step_key] = entry.timestamp
        elif event.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE"):
            steps[event.step_key] = entry.timestamp - starts[event.step_key]
    return steps, {"events": count, "log_span": (last or 0) - (first or 0), "kinds": kinds}


def multiprocess_retrain_job() -> Any:
    """retrain_job with Dagster's multiprocess executor (reconstructed in every step process)."""
    import dagster as dg

    defs = _definitions()

    return defs.resolve_job_def("retrain_job").with_executor_def(dg.multiprocess_executor)


def _definitions() -> Any:
    """The code location's Definitions for $RETRAIN_CONFIG (the module's `defs` is lazy)."""
    from retrain_assets.config import load_config
    from retrain_assets.definitions import build_definitions

    return build_definitions(load_config())


def child_dagster(mode: str) -> None:
    started = time.perf_counter()
    import dagster as dg

    dagster_loaded = time.perf_counter()
    defs = _definitions()

    loaded = time.perf_counter()
    instance = dg.DagsterInstance.get()
    instrumented = loaded
    if mode == "dagster":
        instrument_dagster_process()
        timed(instance, "handle_new_event", "instance.handle_new_event (event log writes)")
        instrumented = time.perf_counter()
        job = defs.resolve_job_def("retrain_job")
        run_started = time.perf_counter()
        result = job.execute_in_process(instance=instance, raise_on_error=False)
    else:
        from benchmarks.retrain_cycle import multiprocess_retrain_job

        run_started = time.perf_counter()
        result = dg.execute_job(dg.reconstructable(multiprocess_retrain_job), instance=instance)
    ran = time.perf_counter()
    steps, facts = _step_times(instance, result.run_id)
    latest = instance.get_latest_materialization_event(dg.AssetKey("candidate_model"))
    meta = latest.asset_materialization.metadata if latest and latest.asset_materialization else {}
    facts["p95_latency_ms"] = meta["p95_latency_ms"].value if "p95_latency_ms" in meta else None
    queried = time.perf_counter()
    _emit(
        {
            "success": result.success,
            "phases": {
                "import dagster": dagster_loaded - started,
                "code location load": loaded - dagster_loaded,
                # mlflow, sklearn, scipy imported up front to wrap them (the steps import them
                # anyway, so this moves time out of "run", it adds none)
                "imports for the instrumentation": instrumented - loaded,
                "run": ran - run_started,
                "reading the run's events (benchmark)": queried - ran,
            },
            "steps": steps,
            "calls": {k: [sum(v), len(v)] for k, v in TIMES.items()},
            "facts": facts,
        }
    )


def child_plain() -> None:
    """The cycle's library calls in plain Python (no Dagster imported)."""
    phases: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(name: str) -> None:
        now = time.perf_counter()
        phases[name] = phases.get(name, 0.0) + now - clock[0]
        clock[0] = now

    import mlflow
    import pandas as pd
    from dvc.repo import Repo
    from mlflow.exceptions import MlflowException

    from retrain_assets.config import load_config
    from retrain_assets.lib.data.contract import landing_day
    from retrain_assets.lib.monitoring.estimation import reliability_png
    from retrain_assets.lib.release import model_gates as gates
    from retrain_assets.lib.release import model_store as registry
    from retrain_assets.lib.release import promotion
    from retrain_assets.lib.training import data_gate as datagate
    from retrain_assets.lib.training import fitting as training
    from retrain_assets.lib.training import strategies
    from retrain_assets.lib.training.calibration import CalibrationSettings

    lap("imports")
    cfg = load_config()
    data, g, workdir = cfg.data, cfg.gates, Path(cfg.workdir)
    batches = workdir / "batches"

    def days(kind: str) -> list[str]:
        folder = batches / kind
        return sorted(p.stem for p in folder.glob("*.parquet") if landing_day(p) is not None)

    # -- training_dataset
    labels = pd.concat(
        [pd.read_parquet(batches / "labels" / f"{d}.parquet") for d in days("labels")]
    )
    labels = labels.drop_duplicates(subset=[data.id_column], keep="last")
    frames = []
    for day in days("features"):
        frame = pd.read_parquet(batches / "features" / f"{day}.parquet")
        frame[training.DAY] = day
        frames.append(frame)
    labelled = training.join_labels(pd.concat(frames, ignore_index=True), labels, data.id_column)
    rows = training.assemble(
        pd.read_parquet(batches / "reference.parquet"),
        labelled,
        target_column=data.target_column,
        timestamp_column=data.timestamp_column,
        start_date=data.start_date,
        test_days=cfg.model.test_days,
        reference_test_share=cfg.model.reference_test_share,
    )
    lap("data_load")
    mlflow.set_tracking_uri(cfg.tracking_uri)
    mlflow.set_registry_uri(cfg.tracking_uri)
    client = mlflow.MlflowClient(tracking_uri=cfg.tracking_uri, registry_uri=cfg.tracking_uri)
    name = cfg.model.registered_name

    def alias(which: str) -> str | None:
        try:
            return str(client.get_model_version_by_alias(name, which).version)
        except MlflowException:
            return None

    champion = alias("champion")
    since = client.get_model_version(name, champion).tags.get("data_until") if champion else None
    strategy = cfg.training.strategy
    train = strategies.training_rows(
        rows,
        strategy,
        window_days=cfg.training.window_days,
        half_life_days=cfg.training.half_life_days,
        since_day=since if strategy == "incremental" else None,
    )
    test = rows[rows[training.SPLIT] == "test"].assign(**{strategies.WEIGHT: 1.0})
    chosen = pd.concat([train, test], ignore_index=True)
    path = workdir / "training" / "plain_training_set.parquet"
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    chosen.to_parquet(tmp, index=False)
    os.replace(tmp, path)
    lap("training_set")
    with Repo(str(workdir)) as repo:
        md5 = str(repo.add(str(path.resolve()))[0].outs[0].hash_info.value)
    lap("dvc_add")
    experiment = mlflow.get_experiment_by_name(cfg.mlflow.experiment_name)
    if experiment is None:
        raise SystemExit("the setup made no MLflow experiment")
    mlflow.start_run(experiment_id=experiment.experiment_id, tags={"plain_cycle": "true"})
    window = f"{train[training.DAY].min()}..{train[training.DAY].max()}"
    mlflow.log_params(
        {"data.dvc_md5": md5, "data.rows": len(chosen), "data.window": window, "strategy": strategy}
    )
    mlflow.set_tags({"dvc_md5": md5, "data_window": window})
    lap("mlflow_run")
    failed = datagate.summary(
        datagate.check_training_set(
            chosen,
            id_column=data.id_column,
            features=data.features,
            settings=datagate.GateSettings(
                min_rows=g.min_rows,
                min_class_share=g.min_class_share,
                max_null_rate=g.max_null_rate,
            ),
        )
    )
    if failed:
        raise SystemExit(f"data gate failed: {failed}")
    lap("data_gate")
    # -- candidate_model (the rows are still in memory: no re-read)
    champion_model = registry.load_model(name, champion) if champion else None
    lap("champion_load")
    fit = training.fit_and_evaluate(
        chosen,
        data.numerical_features,
        data.categorical_features,
        cfg.model.estimator,
        cfg.model.params,
        cfg.model.random_state,
        strategy=strategy,
        base=champion_model if strategy == "incremental" else None,
        extra_iter=cfg.training.incremental_extra_iter,
        calibration=CalibrationSettings(
            cfg.calibration.method, cfg.calibration.holdout_share, cfg.calibration.min_rows
        ),
    )
    lap("fit")
    test = chosen[chosen[training.SPLIT] == "test"]
    champion_auc = None
    if champion_model is not None:
        scores = training.score(champion_model, test[data.features])
        champion_auc, _ = training.evaluate(test[training.TARGET].to_numpy(), scores)
    lap("champion_auc")
    with tempfile.TemporaryDirectory() as calib_dir:  # the calibrator, as candidate_model logs it
        test_scores = training.score(fit.pipeline, test[data.features])
        calibrator = fit.calibration.calibrator
        (Path(calib_dir) / "calibrator.json").write_text(json.dumps(calibrator.to_dict()))
        reliability_png(
            test[training.TARGET].to_numpy(),
            test_scores,
            calibrator.apply(test_scores),
            Path(calib_dir) / "reliability.png",
            title="reliability",
        )
        mlflow.log_artifacts(calib_dir, artifact_path="calibration")
    lap("calibration_log")
    mlflow.log_params({"estimator": cfg.model.estimator, "test_days": cfg.model.test_days})
    mlflow.set_tags({"retrain.reason": "manual"})
    logged = registry.log_and_register(
        fit.pipeline,
        registered_name=name,
        input_example=test[data.features].head(5),
        tags={"dvc_md5": md5, "test_auc": f"{fit.test_auc:.6f}", "strategy": strategy},
    )
    lap("log_register")
    latencies = gates.pyfunc_latency_ms(
        f"models:/{logged.name}/{logged.version}", test[data.features], g.latency_samples
    )
    lap("latency")
    results = [
        gates.auc_gate(fit.test_auc, champion_auc, ratio=g.auc_ratio, floor=g.auc_floor),
        gates.latency_gate(latencies, max_p95_ms=g.max_p95_latency_ms),
    ]
    for result in results:
        for key, value in result.registry_tags().items():
            client.set_model_version_tag(name, logged.version, key, value)
    if champion_auc is not None:
        client.set_model_version_tag(name, logged.version, "champion_test_auc", f"{champion_auc}")
    mlflow.log_metrics(
        {"test_auc": fit.test_auc, "p95_latency_ms": results[1].value, "train_rows": fit.train_rows}
    )
    passed = all(r.passed for r in results)
    if passed:
        client.set_registered_model_alias(name, "challenger", logged.version)
    lap("tags")
    # -- promoted_model
    challenger = alias("challenger")
    tags = dict(client.get_model_version(name, challenger).tags) if challenger else {}
    decision = promotion.decide(alias("champion"), challenger, tags, cfg.canary.mode)
    if decision.action == "promote" and challenger is not None:
        client.set_registered_model_alias(name, "champion", challenger)
        client.delete_registered_model_alias(name, "challenger")
    mlflow.end_run()
    lap("promotion")
    facts = {
        "decision": decision.action,
        "p95_latency_ms": results[1].value,
        "rows": len(chosen),
        "train_rows": fit.train_rows,
        "test_rows": fit.test_rows,
    }
    _emit({"success": passed, "phases": phases, "facts": facts})


def child_setup() -> None:
    """Bring the instance to steady state the way the sensors do (as tests/conftest.py Loop)."""
    import dagster as dg

    defs = _definitions()

    instance = dg.DagsterInstance.get()
    cursors: dict[str, str | None] = {}
    runs: list[Any] = []
    for _ in range(6):
        batch = []
        for sensor in ("landing_sensor", "bootstrap_sensor"):
            context = dg.build_sensor_context(
                instance=instance, definitions=defs, cursor=cursors.get(sensor)
            )
            tick = defs.resolve_sensor_def(sensor).evaluate_tick(context)
            cursors[sensor] = tick.cursor or cursors.get(sensor)
            for request in tick.run_requests:
                job = defs.resolve_job_def(request.job_name)
                batch.append(
                    job.execute_in_process(
                        instance=instance,
                        partition_key=request.partition_key,
                        asset_selection=request.asset_selection,
                        tags=request.tags,
                        run_config=request.run_config or {},
                        raise_on_error=False,
                    )
                )
        runs += batch
        if not batch:
            break
    failed = [r.dagster_run.job_name for r in runs if not r.success]
    _emit({"runs": len(runs), "failed": failed})


# ----------------------------------------------------------------------------- the parent


def _child(
    mode: str, env: dict[str, str], log: Path, variant: Path | None = None
) -> tuple[float, dict]:
    """Run one child; "variant" is the dagster child run from the copy of the repo in `variant`
    (its retrain_assets and benchmarks first on sys.path: `-m` puts the cwd first)."""
    cwd, child = ROOT, mode
    if mode == "variant" and variant is not None:
        cwd, child, env = variant, "dagster", {**env, "PYTHONPATH": str(variant)}
    started = time.perf_counter()
    with log.open("a") as err:
        err.write(f"\n===== {mode} =====\n")
        err.flush()
        done = subprocess.run(
            [sys.executable, "-m", "benchmarks.retrain_cycle", "--child", child],
            env=env,
            cwd=cwd,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    seconds = time.perf_counter() - started
    payloads = [line[len(MARK) :] for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode or not payloads:
        tail = log.read_text()[-3000:]
        raise SystemExit(f"{mode} child failed ({done.returncode}); log {log}:\n{tail}")
    return seconds, json.loads(payloads[-1])


def _prepare(root: Path, rows: int) -> dict[str, str]:
    import yaml

    from retrain_assets.lib.data.simulate import SimulationSpec, simulate

    reference = int(rows * 0.4)
    days = 30
    spec = SimulationSpec(
        days=days, rows_per_day=(rows - reference) // days, reference_rows=reference, seed=11
    )
    feed = root / "feed"
    simulate(feed, spec)
    config_file = feed / "retrain.yaml"
    config = yaml.safe_load(config_file.read_text())
    # No Evidently HTML per batch (setup time only). The latency gate is wall-clock and this box
    # is shared: a generous bound keeps a busy moment from failing the gate (the 200 predictions
    # are made and timed all the same).
    config["drift"] = {"html_report": False}
    config["gates"] = {"max_p95_latency_ms": 5000}
    config_file.write_text(yaml.safe_dump(config))
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    # A deployment has bytecode; with PYTHONDONTWRITEBYTECODE every child would compile our
    # package from source again.
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return {
        **env,
        **QUIET,
        "RETRAIN_CONFIG": str(config_file),
        "DAGSTER_HOME": str(home),
        "PYTHONWARNINGS": "ignore",
    }


def _median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def _print_breakdown(
    wall: dict[str, list[float]], payloads: dict[str, list[dict]], modes: list[str]
) -> None:
    """Medians of every phase; Dagster steps next to the plain phases doing the same work."""

    def med(mode: str, part: str, key: str) -> float:
        return _median([p[part].get(key, float("nan")) for p in payloads[mode]])

    def rest(mode: str) -> float:
        """Process wall time not in any phase (interpreter start and exit), per run."""
        return _median([p["wall"] - sum(p["phases"].values()) for p in payloads[mode]])

    plain = {k: med("plain", "phases", k) for k in payloads["plain"][0]["phases"]}
    print(f"\nplain: process {_median(wall['plain']):.2f} s (median; phases are medians too)")
    print(f"  {'interpreter start, exit':44s}{rest('plain'):8.2f}")
    print(f"  {'imports (pandas, sklearn, mlflow, dvc, lib)':44s}{plain['imports']:8.2f}")
    for step, phases in PLAIN_OF_STEP.items():
        for phase in phases:
            print(f"  {step + ': ' + phase:44s}{plain[phase]:8.2f}")
    plain_work = {s: sum(plain[p] for p in ph) for s, ph in PLAIN_OF_STEP.items()}
    for mode in (m for m in modes if m != "plain"):
        runs = payloads[mode]
        process = _median(wall[mode])
        phases = {k: med(mode, "phases", k) for k in runs[0]["phases"]}
        print(f"\n{mode}: process {process:.2f} s (median)")
        print(f"  {'interpreter start, exit':44s}{rest(mode):8.2f}")
        for phase, seconds in phases.items():
            print(f"  {phase:44s}{seconds:8.2f}")
        # A step the job does not have (a variant of the job) is left out.
        steps = {s: med(mode, "steps", s) for s in STEPS if s in runs[0]["steps"]}
        print(f"    {'step (STEP_START -> STEP_SUCCESS)':42s}{'dagster':>8s}{'plain':>8s}")
        for step in steps:
            same = plain_work.get(step)
            text = f"{same:8.2f}" if same is not None else f"{'-':>8s}"
            print(f"    {step:42s}{steps[step]:8.2f}{text}")
        outside = _median([p["phases"]["run"] - sum(p["steps"].values()) for p in runs])
        where = "step processes" if mode == "multiprocess" else "resource init, events, hooks"
        print(f"    {'outside steps (' + where + ')':42s}{outside:8.2f}")
        events = _median([p["facts"]["events"] for p in runs])
        print(f"  event log entries per run: {events:.0f}")
        calls = runs[0]["calls"]
        if calls:
            print("  inside the process, inclusive seconds per run (calls), median; some nest:")
            for call in sorted(calls, key=lambda k: -calls[k][0]):
                seconds = _median([p["calls"].get(call, [0.0, 0])[0] for p in runs])
                print(f"    {call:62s}{seconds:7.2f} ({calls[call][1]})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="runs of each kind (>= 3)")
    parser.add_argument("--rows", type=int, default=100_000, help="labelled rows in the feed")
    parser.add_argument(
        "--multiprocess", action="store_true", help="also the multiprocess executor"
    )
    parser.add_argument("--keep", type=Path, help="work in this (empty) folder and keep it")
    parser.add_argument(
        "--omp-threads",
        type=int,
        help="set OMP_NUM_THREADS in every child (default: unset, as a deployment would run)",
    )
    parser.add_argument(
        "--variant",
        type=Path,
        help="also time retrain_job from a changed copy of the repo in DIR (retrain_assets/ and "
        "benchmarks/), interleaved with the others: an A/B of a proposed change",
    )
    parser.add_argument("--child", choices=["setup", "dagster", "multiprocess", "plain"])
    args = parser.parse_args()
    if args.child == "plain":
        return child_plain()
    if args.child == "setup":
        return child_setup()
    if args.child:
        return child_dagster(args.child)

    modes = ["dagster", "plain", *(["multiprocess"] if args.multiprocess else [])]
    variant = args.variant.resolve() if args.variant else None
    if variant is not None:
        if not (variant / "retrain_assets").is_dir() or not (variant / "benchmarks").is_dir():
            raise SystemExit(f"--variant {variant}: needs retrain_assets/ and benchmarks/ in it")
        modes.append("variant")
    with tempfile.TemporaryDirectory(prefix="bench-retrain-") as tmp:
        root = args.keep.resolve() if args.keep else Path(tmp)
        root.mkdir(parents=True, exist_ok=True)
        log = root / "children.log"
        started = time.perf_counter()
        env = _prepare(root, args.rows)
        if args.omp_threads:
            env["OMP_NUM_THREADS"] = str(args.omp_threads)
        seconds, setup = _child("setup", env, log)
        print(
            f"setup: feed simulated, {setup['runs']} runs through the sensors (reference, "
            f"bootstrap retrain, every landing day) in {time.perf_counter() - started:.0f} s"
        )
        if setup["failed"]:
            raise SystemExit(f"setup runs failed: {setup['failed']} (log {log})")
        _child("plain", env, log)  # warm the page cache and .pyc files: not measured
        wall: dict[str, list[float]] = {m: [] for m in modes}
        payloads: dict[str, list[dict]] = {m: [] for m in modes}
        for r in range(max(args.repeats, 1)):
            for mode in modes if r % 2 == 0 else reversed(modes):
                seconds, payload = _child(mode, env, log, variant)
                if not payload["success"]:
                    raise SystemExit(f"{mode} cycle did not pass its gates (log {log})")
                wall[mode].append(seconds)
                payloads[mode].append({**payload, "wall": seconds})
                print(f"  repeat {r + 1}: {mode:12s} {seconds:6.2f} s", flush=True)
        (root / "results.json").write_text(json.dumps({"wall": wall, "payloads": payloads}))
        facts = payloads["plain"][0]["facts"]
        print(
            f"data: training set {facts['rows']:,} rows ({facts['train_rows']:,} train, "
            f"{facts['test_rows']:,} test); OMP_NUM_THREADS={env.get('OMP_NUM_THREADS', 'unset')}"
        )
        for mode in modes:
            p95 = [p["facts"]["p95_latency_ms"] for p in payloads[mode]]
            print(
                f"  latency gate p95 per repeat, {mode}: " + ", ".join(f"{v:.0f} ms" for v in p95)
            )
        _print_breakdown(wall, payloads, modes)
        med = {m: _median(v) for m, v in wall.items()}
        ratio = med["dagster"] / med["plain"]
        pairs = [d / p for d, p in zip(wall["dagster"], wall["plain"], strict=True)]
        print(
            f"\norchestration overhead (dagster - plain): {med['dagster'] - med['plain']:.2f} s; "
            f"per-repeat ratios {min(pairs):.2f}..{max(pairs):.2f}"
        )
        extra = ""
        if "variant" in med:
            extra += f"; variant ({variant}) {med['variant']:.1f} s, ratio "
            extra += f"{med['variant'] / med['plain']:.2f}"
        if "multiprocess" in med:
            extra += f"; multiprocess {med['multiprocess']:.1f} s, ratio "
            extra += f"{med['multiprocess'] / med['plain']:.2f}"
    print(
        f"RESULT retrain_cycle: dagster (in-process executor) {med['dagster']:.1f} s vs plain "
        f"{med['plain']:.1f} s, ratio {ratio:.2f} (goal {GOAL}){extra}"
    )


if __name__ == "__main__":
    main()
