"""The names of one model's definitions: bare for a single-model config (today's instance history
stays valid), prefixed with the model's name in a fleet."""

import dagster as dg

from retrain_assets import names
from retrain_assets.scope import SINGLE, Scope

FLEET = Scope("loans")


def test_a_single_model_keeps_the_bare_names() -> None:
    assert SINGLE.key(names.DRIFT_REPORT) == dg.AssetKey("drift_report")
    assert SINGLE.group(names.INGEST_GROUP) == "ingest"
    assert SINGLE.name(names.RETRAIN_JOB) == "retrain_job"
    assert SINGLE.resource("store") == "store"
    assert SINGLE.op(names.PROMOTED_MODEL) == "promoted_model"
    assert SINGLE.run_tags({names.REASON_TAG: "drift"}) == {names.REASON_TAG: "drift"}
    assert SINGLE.run_tags() == {}


def test_a_fleet_model_prefixes_every_name_with_its_own() -> None:
    assert FLEET.key(names.DRIFT_REPORT) == dg.AssetKey(["loans", "drift_report"])
    assert FLEET.keys(names.FEATURE_BATCH, names.LABEL_BATCH) == [
        dg.AssetKey(["loans", "feature_batch"]),
        dg.AssetKey(["loans", "label_batch"]),
    ]
    assert FLEET.group(names.INGEST_GROUP) == "loans_ingest"
    assert FLEET.name(names.RETRAIN_JOB) == "loans_retrain_job"
    assert FLEET.resource("registry") == "loans_registry"
    assert FLEET.op(names.PROMOTED_MODEL) == "loans__promoted_model"


def test_fleet_runs_carry_their_model_and_champion_changing_runs_their_cycle() -> None:
    assert FLEET.run_tags() == {names.MODEL_TAG: "loans"}
    assert FLEET.run_tags({names.REASON_TAG: "canary"}) == {
        names.REASON_TAG: "canary",
        names.MODEL_TAG: "loans",
        names.CYCLE_TAG: "loans",
    }
