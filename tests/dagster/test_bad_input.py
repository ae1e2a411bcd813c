"""The bad-input matrix: one test per kind of bad input, through real Dagster.

Each row lands one file the way a user would, lets landing_sensor request its run and runs it
in-process, then asserts what the user sees: either a failed run whose step failure (and failed
blocking ``*_schema`` check) names the file and the column, or a documented acceptance with a note
in the metadata. Every row also asserts that the landing file is byte-identical afterwards, and
that nothing else moved: the champion, every other partition's materialisations, every stored
batch. README.md ("What a bad landing file does") is the same table for humans.

One simulated project and champion are shared by the whole module (bootstrapping is the slow
part); each row owns its own day, so rows do not depend on one another's order.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd
import pytest
import yaml
from mlflow import MlflowClient

from retrain_assets.config import ConfigError, load_config
from retrain_assets.resources.landing import LandingStore
from retrain_assets.training.dataset import labelled_rows
from tests.conftest import SMALL, Loop, Project, failure_message, make_project, run_requests, tick

SPEC = dataclasses.replace(SMALL, days=16, rows_per_day=150)
# Logistic regression: the bootstrap's fit and its 200 timed single-row predictions take a fraction
# of HistGradientBoosting's time, and no row here depends on the estimator.
MODEL = {"model": {"estimator": "logistic_regression"}}
ASSETS = ["feature_batch", "drift_report", "predictions", "label_batch", "performance_report"]
GOOD = {"features": ["2024-01-02", "2024-01-05"], "labels": ["2024-01-03"]}


@dataclass
class World:
    project: Project
    instance: dg.DagsterInstance
    cursor: str | None = None

    @property
    def landing(self) -> Path:
        return self.project.landing

    def staged(self, kind: str, day: str) -> pd.DataFrame:
        """The simulated (good) file of that day, held back from the landing folder."""
        return pd.read_parquet(self.project.root / "staged" / kind / f"{day}.parquet")

    def land(self, kind: str, day: str) -> None:
        staged = self.project.root / "staged" / kind / f"{day}.parquet"
        staged.rename(self.landing / kind / staged.name)

    def ingest(self, rel: str):
        """Tick landing_sensor; exactly the run for `rel` must be requested; run it."""
        result = tick(self.project, self.instance, "landing_sensor", self.cursor)
        self.cursor = result.cursor or self.cursor
        assert [r.tags["landing/file"] for r in result.run_requests] == [rel]
        [run] = run_requests(self.project, self.instance, result.run_requests)
        return run

    def champion(self) -> tuple[str, int]:
        client = MlflowClient(self.project.cfg.tracking_uri, self.project.cfg.tracking_uri)
        version = client.get_model_version_by_alias("car_loan", "champion").version
        return str(version), len(client.search_model_versions("name='car_loan'"))

    def state(self) -> dict:
        """Everything a bad file must not move: champion, materialisations, stored batches."""
        counts = {}
        for asset in ASSETS:
            records = self.instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=dg.AssetKey(asset)), limit=1000
            ).records
            counts[asset] = Counter(
                r.event_log_entry.asset_materialization.partition for r in records
            )
        batches = self.project.cfg.workdir / "batches"
        stored = {p.relative_to(batches).as_posix(): _sha(p) for p in batches.rglob("*.parquet")}
        return {"champion": self.champion(), "materialisations": counts, "stored": stored}


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory):
    with dg.instance_for_test() as instance:
        project = make_project(tmp_path_factory.mktemp("bad_input") / "feed", SPEC, MODEL)
        project.hold_back()
        w = World(project, instance)
        loop = Loop(project, instance)
        loop.settle(("landing_sensor", "bootstrap_sensor"))  # reference set, champion v1
        for kind, days in GOOD.items():
            for day in days:
                w.land(kind, day)
        loop.settle(("landing_sensor",))
        assert all(r.success for r in loop.results), [failure_message(r) for r in loop.results]
        assert w.champion() == ("1", 1)
        w.cursor = loop.cursors["landing_sensor"]
        yield w


def _moved(before: dict, after: dict) -> dict:
    """What changed between two states: {asset: {partition: new materialisations}}, stores."""
    changes: dict = {}
    for asset, counts in after["materialisations"].items():
        diff = counts - before["materialisations"][asset]
        if diff:
            changes[asset] = dict(diff)
    if after["champion"] != before["champion"]:
        changes["champion"] = (before["champion"], after["champion"])
    for rel in sorted(set(before["stored"]) | set(after["stored"])):
        if before["stored"].get(rel) != after["stored"].get(rel):
            changes.setdefault("stored", []).append(rel)
    return changes


def _check(run, name: str):
    [evaluation] = [
        e.event_specific_data
        for e in run.all_events
        if e.event_type_value == "ASSET_CHECK_EVALUATION"
        and e.event_specific_data.check_name == name
    ]
    return evaluation


def _metadata(run, asset: str) -> dict:
    [event] = [
        e
        for e in run.all_events
        if e.event_type_value == "ASSET_MATERIALIZATION"
        and e.event_specific_data.materialization.asset_key == dg.AssetKey(asset)
    ]
    return {k: v.value for k, v in event.event_specific_data.materialization.metadata.items()}


# --- rejected feature files -----------------------------------------------------------------------


def _missing_column(frame: pd.DataFrame, path: Path) -> None:
    frame.drop(columns=["credit_score"]).to_parquet(path, index=False)


def _string_in_numeric(frame: pd.DataFrame, path: Path) -> None:
    frame = frame.astype({"car_value": str})
    frame.loc[5, "car_value"] = "twelve thousand"
    frame.to_parquet(path, index=False)


def _all_nan_column(frame: pd.DataFrame, path: Path) -> None:
    frame.assign(annual_income=np.nan).to_parquet(path, index=False)


def _zero_bytes(frame: pd.DataFrame, path: Path) -> None:
    path.write_bytes(b"")


def _no_rows(frame: pd.DataFrame, path: Path) -> None:
    frame.iloc[:0].to_parquet(path, index=False)


def _duplicate_ids(frame: pd.DataFrame, path: Path) -> None:
    frame.loc[1, "id"] = frame.loc[0, "id"]
    frame.to_parquet(path, index=False)


def _corrupt_parquet(frame: pd.DataFrame, path: Path) -> None:
    frame.to_parquet(path, index=False)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])  # a truncated upload


def _latin1_csv(frame: pd.DataFrame, path: Path) -> None:
    frame.loc[3, "region"] = "süd"  # the 4th row: line 5 of the file
    path.write_bytes(frame.to_csv(index=False).encode("latin-1"))


# row -> (day, extension, writer, what the failure message must say)
REJECTED = {
    "missing_column": (
        "2024-01-06",
        "parquet",
        _missing_column,
        "column 'credit_score': missing_column: required by the contract; file has ['id',",
    ),
    "string_in_numerical_column": (
        "2024-01-08",
        "parquet",
        _string_in_numeric,
        "column 'car_value': wrong_dtype: 1 non-numeric value(s), e.g. 'twelve thousand' at row 5",
    ),
    "all_nan_column": (
        "2024-01-09",
        "parquet",
        _all_nan_column,
        "column 'annual_income': null_rate: 100.0% missing > allowed 20.0%",
    ),
    "empty_file_zero_bytes": (
        "2024-01-10",
        "parquet",
        _zero_bytes,
        "file: empty: the file is empty (no header, no rows)",
    ),
    "empty_file_header_only": (
        "2024-01-11",
        "parquet",
        _no_rows,
        "file: empty: the file has no rows",
    ),
    "duplicate_ids": (
        "2024-01-12",
        "parquet",
        _duplicate_ids,
        "column 'id': duplicate_ids: 1 id(s) occur more than once, e.g. [",
    ),
    "corrupt_parquet": (
        "2024-01-14",
        "parquet",
        _corrupt_parquet,
        "file: unreadable: cannot read as parquet: ",
    ),
    "csv_in_latin1": (
        "2024-01-16",
        "csv",
        _latin1_csv,
        "column 'region': encoding: not UTF-8 text: line 5: b's\\xfcd' (invalid start byte at "
        "byte ",
    ),
}


@pytest.mark.parametrize("row", REJECTED)
def test_rejected_feature_file(world: World, row: str) -> None:
    day, ext, write, expected = REJECTED[row]
    path = world.landing / "features" / f"{day}.{ext}"
    write(world.staged("features", day), path)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"features/{day}.{ext}")

    assert not run.success
    message = failure_message(run)
    assert f"features batch rejected:\n{path}: {expected}" in message
    check = _check(run, "feature_batch_schema")
    assert not check.passed and check.partition == day
    assert f"{path}: {expected}" in check.description
    assert check.metadata["failed_rules"].value == expected.split(": ")[1]
    assert _sha(path) == sha, "the landing file must stay byte-identical"
    assert _moved(before, world.state()) == {}, "nothing else may move"


# --- accepted feature files -----------------------------------------------------------------------


def test_extra_columns_are_dropped_with_a_note(world: World) -> None:
    day = "2024-01-07"
    path = world.landing / "features" / f"{day}.parquet"
    frame = world.staged("features", day).assign(customer_note="vip", score_v0=0.3)
    frame.to_parquet(path, index=False)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"features/{day}.parquet")

    assert run.success, failure_message(run)
    meta = _metadata(run, "feature_batch")
    assert meta["ignored_columns"] == "customer_note, score_v0"
    note = "dropped 2 column(s) the contract does not use: ['customer_note', 'score_v0']"
    assert note in meta["notes"]
    assert _check(run, "feature_batch_schema").description == f"holds to the contract; {note}"
    stored = pd.read_parquet(world.project.cfg.workdir / "batches" / "features" / f"{day}.parquet")
    assert "customer_note" not in stored and "score_v0" not in stored
    assert _sha(path) == sha
    assert _moved(before, world.state()) == {
        "feature_batch": {day: 1},
        "drift_report": {day: 1},
        "predictions": {day: 1},
        "stored": [f"features/{day}.parquet"],
    }


def test_unseen_category_is_scored_and_shows_in_drift(world: World) -> None:
    day = "2024-01-13"
    path = world.landing / "features" / f"{day}.parquet"
    frame = world.staged("features", day)
    frame.loc[: len(frame) // 2 - 1, "region"] = "atlantis"
    frame.to_parquet(path, index=False)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"features/{day}.parquet")

    assert run.success, failure_message(run)
    half = len(frame) // 2
    meta = _metadata(run, "feature_batch")
    assert meta["unseen_categories"] == f"region: {half} row(s), e.g. ['atlantis']"
    note = (
        f"column 'region': {half} row(s) with a category the champion never saw, "
        "e.g. ['atlantis']: scored (the model treats it as unknown) and counted by the drift "
        "report"
    )
    assert note in meta["notes"]
    assert note in _check(run, "feature_batch_schema").description
    scores = pd.read_parquet(
        world.project.cfg.workdir / "monitoring" / "predictions" / f"{day}.parquet"
    )
    assert len(scores) == len(frame) and np.isfinite(scores["champion_score"]).all()
    drift = _metadata(run, "drift_report")
    assert "region" in drift["drifted_columns"].split(", ")
    assert "psi(region)=" in drift["evidence"]
    assert _sha(path) == sha
    assert set(_moved(before, world.state())) == {
        "feature_batch",
        "drift_report",
        "predictions",
        "stored",
    }


def test_csv_with_semicolons_and_decimal_commas_is_read(world: World) -> None:
    day = "2024-01-15"
    path = world.landing / "features" / f"{day}.csv"
    frame = world.staged("features", day)
    frame.to_csv(path, sep=";", decimal=",", index=False)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"features/{day}.csv")

    assert run.success, failure_message(run)
    assert _check(run, "feature_batch_schema").passed
    stored = pd.read_parquet(world.project.cfg.workdir / "batches" / "features" / f"{day}.parquet")
    numbers = world.project.cfg.data.numerical_features
    np.testing.assert_allclose(stored[numbers].to_numpy(), frame[numbers].to_numpy())
    assert stored["region"].tolist() == frame["region"].tolist()
    assert _sha(path) == sha
    assert set(_moved(before, world.state())) == {
        "feature_batch",
        "drift_report",
        "predictions",
        "stored",
    }


# --- labels ---------------------------------------------------------------------------------------


def test_labels_for_unknown_ids_are_stored_with_a_note(world: World) -> None:
    day = "2024-01-06"  # labels for the rows of 2024-01-05, which are stored
    path = world.landing / "labels" / f"{day}.parquet"
    labels = world.staged("labels", day)
    strangers = pd.DataFrame({"id": range(10**7, 10**7 + 5), "defaulted": 0})
    pd.concat([labels, strangers], ignore_index=True).to_parquet(path, index=False)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"labels/{day}.parquet")

    assert run.success, failure_message(run)
    meta = _metadata(run, "label_batch")
    assert meta["unknown_ids"] == 5 and meta["relabelled_ids"] == 0
    note = (
        "column 'id': 5 label(s) for ids in no feature batch from 2023-12-07 to 2024-01-06, "
        "e.g. [10000000, 10000001, 10000002, 10000003, 10000004]: stored, but no performance "
        "report can use them"
    )
    assert note in meta["notes"]
    assert note in _check(run, "label_batch_schema").description
    assert _metadata(run, "performance_report")["unmatched_labels"] == 5
    assert _sha(path) == sha
    assert _moved(before, world.state()) == {
        "label_batch": {day: 1},
        "performance_report": {day: 1},
        "stored": [f"labels/{day}.parquet"],
    }


def test_conflicting_labels_in_one_file_are_rejected(world: World) -> None:
    day = "2024-01-07"
    path = world.landing / "labels" / f"{day}.parquet"
    labels = world.staged("labels", day)
    flipped = labels.iloc[[0]].assign(defaulted=1 - labels.iloc[0]["defaulted"])
    pd.concat([labels, flipped], ignore_index=True).to_parquet(path, index=False)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"labels/{day}.parquet")

    assert not run.success
    expected = (
        f"{path}: column 'id': conflicting_labels: 1 id(s) have different 'defaulted' values in "
        f"this file, e.g. [{labels.iloc[0]['id']}]: keep one row per id (to correct an earlier "
        "day's label, put the new label in a later labels file)"
    )
    assert expected in failure_message(run)
    check = _check(run, "label_batch_schema")
    assert not check.passed and expected in check.description
    assert check.metadata["failed_rules"].value == "conflicting_labels, duplicate_ids"
    assert _sha(path) == sha
    assert _moved(before, world.state()) == {}


def test_a_later_labels_file_corrects_an_earlier_one(world: World) -> None:
    day, earlier_day = "2024-01-08", GOOD["labels"][0]
    earlier = pd.read_parquet(world.landing / "labels" / f"{earlier_day}.parquet")
    corrections = earlier.head(3).assign(defaulted=lambda f: 1 - f["defaulted"])
    path = world.landing / "labels" / f"{day}.parquet"
    corrections.to_parquet(path, index=False)
    sha, before = _sha(path), world.state()

    run = world.ingest(f"labels/{day}.parquet")

    assert run.success, failure_message(run)
    meta = _metadata(run, "label_batch")
    assert meta["relabelled_ids"] == 3 and meta["unknown_ids"] == 0
    first = corrections.iloc[0]
    was = 1 - first["defaulted"]
    shown = f"{first['id']} ({earlier_day}: {was} -> {first['defaulted']})"
    assert (
        f"column 'defaulted': 3 id(s) relabelled (an earlier labels file says otherwise), "
        f"e.g. {shown}" in meta["notes"]
    )
    assert "this file's label supersedes the earlier one" in meta["notes"]
    cfg = world.project.cfg
    store = LandingStore(landing_dir=str(cfg.data.landing_dir), workdir=str(cfg.workdir))
    rows = labelled_rows(cfg, store).set_index("id")["defaulted"]
    assert rows.loc[corrections["id"]].tolist() == corrections["defaulted"].tolist()
    assert _sha(path) == sha
    assert _moved(before, world.state()) == {
        "label_batch": {day: 1},
        "performance_report": {day: 1},
        "stored": [f"labels/{day}.parquet"],
    }


# --- files outside the calendar -------------------------------------------------------------------


def _outside(world: World, name: str) -> tuple[str, str]:
    """Land a copy of a good batch as `name`, tick once, remove it again; skip message, sha."""
    path = world.landing / "features" / name
    shutil.copy(world.landing / "features" / f"{GOOD['features'][0]}.parquet", path)
    sha, before = _sha(path), world.state()
    try:
        result = tick(world.project, world.instance, "landing_sensor", world.cursor)
        assert result.run_requests == []
        world.cursor = result.cursor or world.cursor
        assert _sha(path) == sha
        assert _moved(before, world.state()) == {}
        return result.skip_message, sha
    finally:
        path.unlink()  # the test's own file: the next rows start from a clean landing folder


def test_file_dated_before_start_date_is_named_in_the_skip_reason(world: World) -> None:
    message, _ = _outside(world, "2023-12-31.parquet")

    assert message == (
        "no new or changed landing file; not ingested: dated before data.start_date 2024-01-01 "
        "(never ingested): features/2023-12-31.parquet"
    )


def test_file_dated_before_start_date_is_logged_when_other_files_go(
    world: World, capfd: pytest.CaptureFixture
) -> None:
    # With a run to request the tick returns no SkipReason: the tick's log names the file.
    features = world.landing / "features"
    early, good = features / "2023-12-31.parquet", features / "2024-01-04.parquet"
    shutil.copy(features / f"{GOOD['features'][0]}.parquet", early)
    world.staged("features", "2024-01-04").to_parquet(good, index=False)
    try:
        result = tick(world.project, world.instance, "landing_sensor", world.cursor)  # not kept
    finally:
        early.unlink()
        good.unlink()
    assert [r.tags["landing/file"] for r in result.run_requests] == ["features/2024-01-04.parquet"]
    assert (
        "not ingested: dated before data.start_date 2024-01-01 (never ingested): "
        "features/2023-12-31.parquet" in capfd.readouterr().err
    )


def test_file_dated_in_the_future_is_named_and_left_for_later(world: World) -> None:
    future = (dt.date.today() + dt.timedelta(days=3)).isoformat()
    message, _ = _outside(world, f"{future}.parquet")

    assert f"features/{future}.parquet" not in json.loads(world.cursor or "{}")  # seen later

    assert message.startswith(
        "no new or changed landing file; not ingested: dated after the last daily partition "
    )
    assert message.endswith(f"(picked up when its day comes): features/{future}.parquet")


# --- config ---------------------------------------------------------------------------------------


def _bad_config(world: World, section: str, key: str, value) -> str:
    raw = yaml.safe_load((world.project.root / "retrain.yaml").read_text())
    raw.setdefault(section, {})[key] = value
    path = world.project.root / f"bad_{section}_{key}.yaml"
    path.write_text(yaml.safe_dump(raw))
    landing = {p: _sha(p) for p in world.landing.rglob("*") if p.is_file()}
    before = world.state()
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert {p: _sha(p) for p in world.landing.rglob("*") if p.is_file()} == landing
    assert _moved(before, world.state()) == {}
    return str(info.value)


def test_config_with_a_wrong_key(world: World) -> None:
    message = _bad_config(world, "ingest", "max_null_rte", 0.5)

    path = world.project.root / "bad_ingest_max_null_rte.yaml"
    assert message == f"invalid config {path}:\n  ingest.max_null_rte: unknown key"


def test_config_with_a_wrong_type(world: World) -> None:
    message = _bad_config(world, "ingest", "max_null_rate", "20%")

    path = world.project.root / "bad_ingest_max_null_rate.yaml"
    assert message == (
        f"invalid config {path}:\n  ingest.max_null_rate: Input should be a valid number, "
        "unable to parse string as a number (got '20%')"
    )
