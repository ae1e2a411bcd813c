"""Tests for training sets and models (``lib.training``) and the trusted-types model format.

Why: the promotion gate compares test AUCs, so the test split must really be "the future" (no
test row older than a train row) and the AUC must be a real figure for every estimator the config
allows. A fitted pipeline is stored with skops and loaded only with an explicit trusted-types
list (``registry.TRUSTED_TYPES``); if an estimator needs a type that list lacks, the model is
logged fine but cannot be loaded for serving, so the round trip is checked for every estimator.
"""

from __future__ import annotations

import datetime as dt
import math

import numpy as np
import pandas as pd
import pytest
import skops.io as sio

from retrain_assets.lib.release.model_store import TRUSTED_TYPES
from retrain_assets.lib.training.estimators import ESTIMATORS
from retrain_assets.lib.training.fitting import (
    DAY,
    SPLIT,
    TARGET,
    assemble,
    build_pipeline,
    evaluate,
    fit_and_evaluate,
    join_labels,
)

START = dt.date(2024, 1, 1)
NUMERICAL = ["amount"]
CATEGORICAL = ["city"]
FEATURES = [*NUMERICAL, *CATEGORICAL]


def easy_rows(n: int, seed: int, first_id: int = 0) -> pd.DataFrame:
    """An easy problem: the label is mostly amount > 0, nudged by the city; some gaps."""
    rng = np.random.default_rng(seed)
    amount = rng.normal(size=n)
    city = rng.choice(np.array(["north", "south", "east"], dtype=object), size=n)
    noise = rng.normal(scale=0.4, size=n)
    label = (amount + 0.8 * (city == "north") + noise > 0.3).astype("int8")
    amount[rng.random(n) < 0.05] = np.nan
    city[rng.random(n) < 0.05] = None
    return pd.DataFrame(
        {"id": np.arange(first_id, first_id + n), "amount": amount, "city": city, "label": label}
    )


def labelled_days(n_days: int, rows_per_day: int = 30, seed: int = 1) -> pd.DataFrame:
    """Labelled production rows for n_days consecutive data days from START (``_day`` = ISO)."""
    if n_days == 0:
        return easy_rows(0, seed).assign(**{DAY: pd.Series(dtype=object)})
    parts = []
    for d in range(n_days):
        day = (START + dt.timedelta(days=d)).isoformat()
        batch = easy_rows(rows_per_day, seed + d, first_id=10_000 + d * rows_per_day)
        parts.append(batch.assign(**{DAY: day}))
    # newest first, so the test cannot pass just because the input was already ordered
    return pd.concat(parts[::-1], ignore_index=True)


def build(
    reference: pd.DataFrame,
    labelled: pd.DataFrame,
    *,
    test_days: int = 3,
    share: float = 0.25,
    timestamp_column: str | None = None,
) -> pd.DataFrame:
    return assemble(
        reference,
        labelled,
        target_column="label",
        timestamp_column=timestamp_column,
        start_date=START,
        test_days=test_days,
        reference_test_share=share,
    )


def assert_time_ordered(rows: pd.DataFrame) -> None:
    train, test = rows[rows[SPLIT] == "train"], rows[rows[SPLIT] == "test"]
    assert len(train) and len(test)
    assert test[DAY].min() >= train[DAY].max()


# --- assemble ----------------------------------------------------------------------------------


def test_with_enough_labelled_days_the_newest_test_days_are_the_test_set():
    reference = easy_rows(100, seed=0)
    labelled = labelled_days(10)

    rows = build(reference, labelled, test_days=3)

    assert len(rows) == 100 + 10 * 30
    assert set(rows[SPLIT]) == {"train", "test"}
    test_days = sorted(rows.loc[rows[SPLIT] == "test", DAY].unique())
    assert test_days == ["2024-01-08", "2024-01-09", "2024-01-10"]
    assert (rows[SPLIT] == "test").sum() == 3 * 30
    assert_time_ordered(rows)


@pytest.mark.parametrize("test_days", [1, 4, 9])
def test_test_set_has_exactly_test_days_days(test_days):
    rows = build(easy_rows(50, seed=0), labelled_days(10, rows_per_day=5), test_days=test_days)

    assert rows.loc[rows[SPLIT] == "test", DAY].nunique() == test_days
    assert_time_ordered(rows)


@pytest.mark.parametrize("n_days", [0, 2, 3], ids=["no-labels", "fewer-days", "exactly-test-days"])
def test_with_few_labelled_days_the_newest_share_of_rows_is_the_test_set(n_days):
    reference = easy_rows(100, seed=0)
    labelled = labelled_days(n_days, rows_per_day=20)

    rows = build(reference, labelled, test_days=3, share=0.25)

    n = 100 + n_days * 20
    assert len(rows) == n
    is_test = (rows[SPLIT] == "test").to_numpy()
    assert is_test.sum() == round(n * 0.25)
    assert is_test[-is_test.sum() :].all()  # the test rows are the last rows in time order
    assert_time_ordered(rows)
    assert list(rows[DAY]) == sorted(rows[DAY])


def test_without_timestamps_reference_rows_sit_on_the_day_before_start():
    rows = build(easy_rows(40, seed=0), labelled_days(0))

    assert set(rows[DAY]) == {"2023-12-31"}


def test_reference_timestamps_order_the_reference_and_give_its_days():
    reference = pd.DataFrame(
        {
            "id": [1, 2, 3, 4],
            "ts": pd.to_datetime(
                ["2023-12-03 09:00", "2023-12-01 10:00", "2023-12-04 08:00", "2023-12-02 23:59"]
            ),
            "amount": [3.0, 1.0, 4.0, 2.0],
            "city": ["c", "a", "d", "b"],
            "label": [0, 1, 0, 1],
        }
    )

    rows = build(reference, labelled_days(0), share=0.25, timestamp_column="ts")

    assert rows["id"].tolist() == [2, 4, 1, 3]
    assert rows[DAY].tolist() == ["2023-12-01", "2023-12-02", "2023-12-03", "2023-12-04"]
    assert rows[SPLIT].tolist() == ["train", "train", "train", "test"]


def test_target_is_renamed_and_features_are_kept():
    rows = build(easy_rows(20, seed=0), labelled_days(2, rows_per_day=5))

    assert TARGET in rows.columns
    assert "label" not in rows.columns
    assert set(FEATURES) <= set(rows.columns)
    assert rows[TARGET].isin([0, 1]).all()


def test_assemble_does_not_modify_its_inputs():
    reference, labelled = easy_rows(20, seed=0), labelled_days(5, rows_per_day=4)
    ref_before, lab_before = reference.copy(), labelled.copy()

    build(reference, labelled)

    pd.testing.assert_frame_equal(reference, ref_before)
    pd.testing.assert_frame_equal(labelled, lab_before)


def test_join_labels_keeps_only_labelled_rows():
    feats = pd.DataFrame({"id": [1, 2, 3], "amount": [1.0, 2.0, 3.0]})
    labs = pd.DataFrame({"id": [3, 1], "label": [1, 0]})

    joined = join_labels(feats, labs, "id").sort_values("id")

    assert joined["id"].tolist() == [1, 3]
    assert joined["label"].tolist() == [0, 1]


def test_join_labels_rejects_duplicate_ids():
    feats = pd.DataFrame({"id": [1, 1], "amount": [1.0, 2.0]})
    labs = pd.DataFrame({"id": [1], "label": [1]})

    with pytest.raises(pd.errors.MergeError):
        join_labels(feats, labs, "id")


# --- build_pipeline / fit_and_evaluate / evaluate ----------------------------------------------


@pytest.fixture(scope="module")
def easy_set() -> pd.DataFrame:
    return build(easy_rows(400, seed=0), labelled_days(8, rows_per_day=40), test_days=3)


@pytest.fixture(scope="module")
def fitted(easy_set):
    return {name: fit_and_evaluate(easy_set, NUMERICAL, CATEGORICAL, name) for name in ESTIMATORS}


def test_the_three_estimators_are_the_ones_the_config_allows():
    assert set(ESTIMATORS) == {"hist_gradient_boosting", "logistic_regression", "sgd_classifier"}


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_fit_and_evaluate_learns_an_easy_problem(fitted, easy_set, estimator):
    result = fitted[estimator]

    assert result.test_auc > 0.7
    assert 0 < result.test_log_loss < math.log(2)
    assert result.train_rows == (easy_set[SPLIT] == "train").sum()
    assert result.test_rows == 3 * 40
    assert result.window == ("2023-12-31", "2024-01-05")  # the days the model learnt from
    assert result.training_seconds >= 0


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_fitted_pipeline_takes_unseen_categories_and_missing_values(fitted, estimator):
    frame = pd.DataFrame({"amount": [np.nan, 1.0], "city": ["atlantis", None]})

    proba = fitted[estimator].pipeline.predict_proba(frame)

    assert proba.shape == (2, 2)
    assert np.isfinite(proba).all()


@pytest.mark.parametrize("estimator", sorted(ESTIMATORS))
def test_skops_round_trip_with_trusted_types(fitted, easy_set, estimator):
    pipeline = fitted[estimator].pipeline
    data = sio.dumps(pipeline)

    loaded = sio.loads(data, trusted=TRUSTED_TYPES)

    frame = easy_set[FEATURES]
    np.testing.assert_array_equal(loaded.predict_proba(frame), pipeline.predict_proba(frame))


def test_skops_refuses_to_load_without_the_trusted_types(fitted):
    data = sio.dumps(fitted["hist_gradient_boosting"].pipeline)

    with pytest.raises(sio.exceptions.UntrustedTypesFoundException):
        sio.loads(data, trusted=[])


def test_fit_and_evaluate_without_test_rows_is_an_error(easy_set):
    only_train = easy_set.assign(**{SPLIT: "train"})

    with pytest.raises(ValueError, match="need train and test rows"):
        fit_and_evaluate(only_train, NUMERICAL, CATEGORICAL, "logistic_regression")


def test_fit_and_evaluate_single_class_test_set_gives_nan_auc(easy_set):
    rows = easy_set.copy()
    rows.loc[rows[SPLIT] == "test", TARGET] = 1

    result = fit_and_evaluate(rows, NUMERICAL, CATEGORICAL, "logistic_regression")

    assert math.isnan(result.test_auc)
    assert math.isnan(result.test_log_loss)


def test_evaluate_auc_is_nan_with_one_class():
    auc, loss = evaluate(np.array([1, 1, 1]), np.array([0.2, 0.5, 0.9]))

    assert math.isnan(auc)
    assert math.isnan(loss)


def test_evaluate_scores_a_perfect_ranking_and_survives_hard_zeros_and_ones():
    auc, loss = evaluate(np.array([0, 0, 1, 1]), np.array([0.0, 0.1, 0.9, 1.0]))

    assert auc == 1.0
    assert math.isfinite(loss)
    assert loss < 0.1


def test_build_pipeline_rejects_unknown_estimator_by_name():
    with pytest.raises(ValueError, match="'xgboost'"):
        build_pipeline(NUMERICAL, CATEGORICAL, "xgboost")


def test_build_pipeline_passes_params_and_seed_to_the_estimator():
    pipeline = build_pipeline(
        NUMERICAL, CATEGORICAL, "logistic_regression", {"C": 0.5}, random_state=7
    )
    model = pipeline.named_steps["model"]

    assert model.C == 0.5
    assert model.random_state == 7
    assert model.max_iter == 1000


def test_sgd_classifier_defaults_to_a_probabilistic_loss():
    assert build_pipeline(NUMERICAL, [], "sgd_classifier").named_steps["model"].loss == "log_loss"


@pytest.mark.parametrize("n_threads", [1, None])
def test_fit_runs_under_the_configured_openmp_thread_cap(easy_set, monkeypatch, n_threads):
    """model.n_threads caps OpenMP inside the fit (a busy 2-core box stalls two threads), and
    None leaves the process's own setting alone; the model is the same either way."""
    from threadpoolctl import threadpool_info, threadpool_limits

    from retrain_assets.lib.training import strategies

    seen: list[set[int]] = []
    real = strategies.fit_rows

    def spy(*args, **kwargs):
        seen.append({p["num_threads"] for p in threadpool_info() if p["user_api"] == "openmp"})
        return real(*args, **kwargs)

    monkeypatch.setattr(strategies, "fit_rows", spy)
    with threadpool_limits(limits=2, user_api="openmp"):  # the process's own setting
        result = fit_and_evaluate(
            easy_set, NUMERICAL, CATEGORICAL, "hist_gradient_boosting", n_threads=n_threads
        )
    if not seen[0]:
        pytest.skip("no OpenMP runtime loaded")
    assert seen == [{1}] if n_threads == 1 else seen == [{2}]
    baseline = fit_and_evaluate(easy_set, NUMERICAL, CATEGORICAL, "hist_gradient_boosting")
    assert result.test_auc == pytest.approx(baseline.test_auc)
