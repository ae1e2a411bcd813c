"""A fleet on the production profile (benchmarks/fleet_replay.py at test size): Postgres
instance storage, retrain_job's steps on a celery worker, an MLflow server on Postgres. Two
scenarios (an abrupt drift, no drift), two models each with identical feeds; every model's
timeline must equal its scenario's single-model replay, no run key may run twice, every run must
succeed and every retraining must have run its steps in the worker."""

from __future__ import annotations

from pathlib import Path

import pytest

from benchmarks import fleet_replay as bench
from tests.prod.conftest import pg_query

DAYS = 8


@pytest.mark.fleet
@pytest.mark.filterwarnings("ignore:Task name 'execute_plan' is already registered")
def test_a_fleet_replays_on_the_production_profile_as_its_models_alone(
    tmp_path: Path, services
) -> None:
    specs = bench.scenarios(DAYS)
    specs = {"loans": specs["loans"], "losses": specs["losses"]}
    assert specs["loans"].drift == "abrupt" and specs["losses"].drift == "none"
    feeds = tmp_path / "feeds"
    bench.write_feeds(feeds, specs, {**bench.OVERRIDES, "drift": {"cooldown_days": 1}})
    singles = bench.single_replays(feeds, tmp_path / "single")
    folder = tmp_path / "fleet"
    folder.mkdir()
    with bench.production_profile(tmp_path, folder, services) as profile:
        models = bench.write_fleet(folder, feeds, 2, profile["mlflow_url"])
        assert sorted(models) == ["loans_0", "loans_1", "losses_0", "losses_1"]
        sources = {m: feeds / s / "landing" for m, s in models.items()}
        result = bench.replay_fleet(folder, profile["instance"], sources)
        db = profile["db"]

        for model, rows in result["timelines"].items():
            assert bench.differences(singles[models[model]], rows) == [], model
        retrains = {m: bench.retrains(rows) for m, rows in result["timelines"].items()}
        assert retrains["loans_0"] == retrains["loans_1"] == {"bootstrap": 1, "drift": 1}
        assert retrains["losses_0"] == retrains["losses_1"] == {"bootstrap": 1}

        assert bench.duplicate_runs(db) == []
        outcomes = bench.run_outcomes(db)
        assert all(set(by_status) == {"SUCCESS"} for by_status in outcomes.values()), outcomes
        assert outcomes["retrain_job"] == {"SUCCESS": 6}, outcomes
        # every retraining's steps were executed by the celery worker
        [(delegated,)] = pg_query(
            db,
            "select count(distinct run_id) from event_logs where dagster_event_type ="
            " 'ENGINE_EVENT' and event like '%in celery worker%'",
        )
        assert delegated == 6


def test_differences_name_the_day_and_field_that_differ() -> None:
    row = {field: None for field in bench.COMPARED} | {"day": "2026-01-02", "reason": "drift"}
    assert bench.differences([row], [dict(row)]) == []
    assert bench.differences([row], [row | {"reason": None}]) == [
        "2026-01-02 reason: fleet None, single 'drift'"
    ]
    assert bench.differences([row], [row | {"live_metric": 0.8}]) == [
        "2026-01-02 live_metric: fleet 0.8, single None"
    ]
    assert (
        bench.differences([row | {"live_metric": 0.8}], [row | {"live_metric": 0.8 + 1e-15}]) == []
    )
    assert bench.differences([row], []) == [
        "0 rows, single replay 1; days in one only: ['2026-01-02']"
    ]
