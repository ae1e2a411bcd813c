"""Replay(tick_on_change=True), as run_backtest drives it: a sensor is ticked again only after a
file landed or a run executed since its last tick, and the replay runs exactly what ticking every
sensor every round runs."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg

from retrain_assets.backtest.replay import Replay, _instance, _no_fsync


def _defs(folder: Path, ticks: list[str]) -> dg.Definitions:
    """`files`: one `ingest` run per new file (landing_sensor's shape); `followers`: one `follow`
    run after new batches (drift_sensor's); `quiet`: reads the reports, never requests."""

    @dg.asset(partitions_def=dg.StaticPartitionsDefinition(["a", "b", "c"]))
    def batch() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    @dg.asset
    def report() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    ingest = dg.define_asset_job("ingest", [batch], partitions_def=batch.partitions_def)
    follow = dg.define_asset_job("follow", [report])

    def after(context: dg.SensorEvaluationContext, asset: dg.AssetsDefinition) -> list:
        cursor = int(context.cursor) if context.cursor else None
        found = context.instance.fetch_materializations(
            dg.AssetRecordsFilter(asset_key=asset.key, after_storage_id=cursor), limit=100
        ).records
        if found:
            context.update_cursor(str(found[0].storage_id))  # newest first
        return found

    @dg.sensor(job=ingest)
    def files(context: dg.SensorEvaluationContext):
        ticks.append("files")
        seen = json.loads(context.cursor or "[]")
        new = sorted(p.name for p in folder.iterdir() if p.name not in seen)
        context.update_cursor(json.dumps(seen + new))
        return [
            dg.RunRequest(run_key=n, job_name="ingest", partition_key=n) for n in new
        ] or dg.SkipReason("none")

    @dg.sensor(job=follow)
    def followers(context: dg.SensorEvaluationContext):
        ticks.append("followers")
        found = after(context, batch)
        return (
            dg.RunRequest(run_key=f"follow@{found[0].storage_id}", job_name="follow")
            if found
            else None
        )

    @dg.sensor(job=follow)
    def quiet(context: dg.SensorEvaluationContext):
        ticks.append("quiet")
        after(context, report)
        return dg.SkipReason("never requests")

    return dg.Definitions(
        assets=[batch, report], jobs=[ingest, follow], sensors=[files, followers, quiet]
    )


def _replay(tmp_path: Path, tick_on_change: bool) -> tuple[list[str], list[list[str]]]:
    """(sensor ticks, jobs run each day) over three days: a file lands, nothing, two files."""
    source, landing = tmp_path / "source" / "files", tmp_path / f"landing-{tick_on_change}"
    source.mkdir(parents=True, exist_ok=True)
    (landing / "files").mkdir(parents=True)
    ticks: list[str] = []
    days: list[list[str]] = []
    with dg.DagsterInstance.ephemeral() as instance:
        defs = _defs(landing / "files", ticks)
        replay = Replay(defs, instance, keep_results=True, tick_on_change=tick_on_change)
        for names in (["a"], [], ["b", "c"]):
            for name in names:
                (source / name).write_text(name)
            replay.land([source / n for n in names], landing)
            results = replay.settle(("files", "followers", "quiet"))
            days.append([r.dagster_run.job_name for r in results])
        assert all(r.success for r in replay.results) and replay.runs == 5
    return ticks, days


def test_a_sensor_is_ticked_after_a_change_and_the_runs_are_the_same(tmp_path: Path) -> None:
    every, every_days = _replay(tmp_path, tick_on_change=False)
    changed, changed_days = _replay(tmp_path, tick_on_change=True)
    assert changed_days == every_days == [["ingest", "follow"], [], ["ingest", "ingest", "follow"]]
    assert len(every) == 6 + 3 + 6  # two rounds a day with files, one round on the quiet day
    # `quiet` ticked after the day's last run: nothing new for it in round 2; nothing on the
    # quiet day; `files` and `followers` ticked before a later run, so they tick again.
    day = ["files", "followers", "quiet", "files", "followers"]
    assert changed == day + day


def test_the_replay_databases_skip_fsync_and_only_under_its_folder(tmp_path: Path) -> None:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    def synchronous(path: Path) -> int:
        engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("PRAGMA synchronous").scalar() or 0)

    inside, beside = tmp_path / "replay", tmp_path / "replay-other"
    inside.mkdir()
    beside.mkdir()
    with _no_fsync(inside):
        assert synchronous(inside / "a.db") == 0  # OFF
        assert synchronous(beside / "b.db") == 2  # FULL, sqlite's default: not the replay's
    assert synchronous(inside / "c.db") == 2  # the listener is gone with the replay


def test_the_replay_instance_is_one_event_log_a_browser_can_open(tmp_path: Path) -> None:
    from dagster._core.instance.ref import InstanceRef

    @dg.asset
    def thing() -> dg.MaterializeResult:
        return dg.MaterializeResult()

    folder = tmp_path / "dagster"
    folder.mkdir()
    with _no_fsync(folder), _instance(folder) as instance:
        for _ in range(2):
            dg.materialize([thing], instance=instance)
    assert (folder / "history" / "event_log.db").is_file()
    assert not (folder / "history" / "runs").exists()  # no database per run
    # `DAGSTER_HOME=<folder> dagster dev` reads the same storage from folder/dagster.yaml
    with dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(folder))) as browsed:
        assert len(browsed.get_run_records()) == 2
        assert browsed.get_latest_materialization_event(thing.key) is not None
