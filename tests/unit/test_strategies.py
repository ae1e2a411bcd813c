"""Tests for the retraining strategies (``lib.strategies``).

Why: a strategy decides what the retrained model learns from. If a window is off by a day, a weight
points the wrong way, or the test split moves with the strategy, candidates are compared on
different rows and the promotion gate compares AUCs that mean different things. Incremental
fitting continues the champion, so it must truly continue (coefficients / trees carry over), keep
the champion's fitted preprocessing, and never touch the champion object the registry handed us.
"""

from __future__ import annotations

import datetime as dt
import pickle
from collections.abc import Callable

import numpy as np
import pandas as pd
import pytest
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

from retrain_assets.lib.training.fitting import DAY, SPLIT, TARGET, assemble, build_pipeline
from retrain_assets.lib.training.strategies import STRATEGIES, WEIGHT, fit_rows, training_rows

START = dt.date(2024, 1, 1)
NUMERICAL = ["x", "z"]
CATEGORICAL = ["city"]
FEATURES = [*NUMERICAL, *CATEGORICAL]


def day(offset: int) -> str:
    return (START + dt.timedelta(days=offset)).isoformat()


def hand_set(train_days: int = 10, test_days: int = 2, per_day: int = 2) -> pd.DataFrame:
    """An assembled set by hand: ``per_day`` rows on each of ``train_days`` train days from
    START, then ``test_days`` test days."""
    records = []
    for d in range(train_days + test_days):
        for i in range(per_day):
            records.append(
                {
                    "id": d * per_day + i,
                    "x": float(d + i),
                    DAY: day(d),
                    TARGET: i % 2,
                    SPLIT: "train" if d < train_days else "test",
                }
            )
    return pd.DataFrame(records)


def drifting_rows(days: range, flip_before: int, per_day: int, seed: int) -> pd.DataFrame:
    """Train rows whose label is ``x > 0`` from day ``flip_before`` on and ``x < 0`` before it
    (the old relationship is the opposite of the new one); z is noise, city weakly informative."""
    rng = np.random.default_rng(seed)
    parts = []
    for d in days:
        x = rng.normal(size=per_day)
        z = rng.normal(size=per_day)
        city = rng.choice(np.array(["north", "south"], dtype=object), size=per_day)
        sign = 1.0 if d >= flip_before else -1.0
        noise = rng.normal(scale=0.5, size=per_day)
        label = (sign * x + 0.2 * (city == "north") + noise > 0).astype(int)
        parts.append(
            pd.DataFrame({"x": x, "z": z, "city": city, TARGET: label, DAY: day(d), SPLIT: "train"})
        )
    return pd.concat(parts, ignore_index=True)


def factory(estimator: str, params: dict[str, object] | None = None) -> Callable[[], Pipeline]:
    return lambda: build_pipeline(NUMERICAL, CATEGORICAL, estimator, params)


def auc_on_new_relationship(pipeline: Pipeline) -> float:
    new = drifting_rows(range(100, 110), flip_before=0, per_day=60, seed=99)
    return float(roc_auc_score(new[TARGET], pipeline.predict_proba(new[FEATURES])[:, 1]))


# --- training_rows -------------------------------------------------------------------------------


def test_full_takes_every_train_row_with_weight_one_and_no_test_row() -> None:
    rows = hand_set()
    before = rows.copy()
    out = training_rows(rows, "full")
    assert sorted(set(out[DAY])) == [day(d) for d in range(10)]
    assert len(out) == 20
    assert (out[SPLIT] == "train").all()
    assert out[WEIGHT].tolist() == [1.0] * 20
    assert list(out.index) == list(rows.index[rows[SPLIT] == "train"])  # index kept
    pd.testing.assert_frame_equal(rows, before)  # the assembled set (and its test split) untouched


@pytest.mark.parametrize(
    ("window_days", "first_day"),
    [(1, 9), (3, 7), (10, 0), (400, 0)],
)
def test_rolling_window_keeps_the_last_window_days_of_train_days(
    window_days: int, first_day: int
) -> None:
    out = training_rows(hand_set(), "rolling_window", window_days=window_days)
    assert sorted(set(out[DAY])) == [day(d) for d in range(first_day, 10)]
    assert (out[WEIGHT] == 1.0).all()
    assert day(10) not in set(out[DAY])  # the window ends at the newest TRAIN day, not test


def test_rolling_window_counts_calendar_days_not_data_days() -> None:
    rows = hand_set()
    rows = rows[~rows[DAY].isin([day(7), day(8)])]  # no data on days 7 and 8
    out = training_rows(rows, "rolling_window", window_days=3)
    assert sorted(set(out[DAY])) == [day(9)]


def test_rolling_window_that_leaves_no_rows_names_the_window() -> None:
    with pytest.raises(ValueError, match=r"rolling window of 0 days ending 2024-01-10"):
        training_rows(hand_set(), "rolling_window", window_days=0)


def test_weighted_halves_the_weight_every_half_life_and_averages_one() -> None:
    out = training_rows(hand_set(per_day=1), "weighted", half_life_days=2.0)
    ages = np.arange(9, -1, -1, dtype=float)  # day 0 is 9 days older than day 9
    raw = 0.5 ** (ages / 2.0)
    np.testing.assert_allclose(out[WEIGHT].to_numpy(), raw / raw.mean())
    assert out[WEIGHT].mean() == pytest.approx(1.0)
    assert out[WEIGHT].iloc[-1] / out[WEIGHT].iloc[-3] == pytest.approx(2.0)  # 2 days = 1 half-life
    assert (out[SPLIT] == "train").all()
    assert len(out) == 10


def test_weighted_rejects_a_non_positive_half_life() -> None:
    with pytest.raises(ValueError, match="half_life_days"):
        training_rows(hand_set(), "weighted", half_life_days=0)


def test_incremental_takes_rows_after_the_champion_cutoff() -> None:
    out = training_rows(hand_set(), "incremental", since_day=day(6))
    assert sorted(set(out[DAY])) == [day(7), day(8), day(9)]
    assert (out[WEIGHT] == 1.0).all()
    everything = training_rows(hand_set(), "incremental", since_day=None)
    assert len(everything) == 20


@pytest.mark.parametrize("since", [day(9), day(11)])
def test_incremental_without_new_train_rows_says_so(since: str) -> None:
    with pytest.raises(ValueError, match=f"no new labelled rows since {since}"):
        training_rows(hand_set(), "incremental", since_day=since)


def test_unknown_strategy_is_named_with_the_choices() -> None:
    with pytest.raises(ValueError, match=r"unknown strategy 'newest'.*full.*incremental"):
        training_rows(hand_set(), "newest")
    with pytest.raises(ValueError, match=r"unknown strategy 'newest'"):
        fit_rows(factory("logistic_regression"), hand_set(), ["x"], "newest")


def test_a_set_without_train_rows_is_an_error() -> None:
    rows = hand_set().assign(**{SPLIT: "test"})
    with pytest.raises(ValueError, match="no train rows"):
        training_rows(rows, "full")


def test_strategies_on_an_assembled_set_never_move_the_test_split() -> None:
    reference = pd.DataFrame({"id": range(40), "x": np.linspace(-1, 1, 40), "y": [0, 1] * 20})
    labelled = pd.DataFrame(
        {
            "id": range(100, 160),
            "x": np.linspace(-1, 1, 60),
            "y": [1, 0] * 30,
            DAY: [day(d) for d in range(6) for _ in range(10)],
        }
    )
    rows = assemble(
        reference,
        labelled,
        target_column="y",
        timestamp_column=None,
        start_date=START,
        test_days=2,
        reference_test_share=0.2,
    )
    test_ids = set(rows.loc[rows[SPLIT] == "test", "id"])
    assert sorted(set(rows.loc[rows[SPLIT] == "test", DAY])) == [day(4), day(5)]
    expected_days = {
        "full": [day(-1), *[day(d) for d in range(4)]],
        "rolling_window": [day(2), day(3)],
        "weighted": [day(-1), *[day(d) for d in range(4)]],
        "incremental": [day(1), day(2), day(3)],
    }
    for strategy in STRATEGIES:
        out = training_rows(rows, strategy, window_days=2, since_day=day(0))
        assert sorted(set(out[DAY])) == expected_days[strategy], strategy
        assert not test_ids & set(out["id"]), strategy
    assert set(rows.loc[rows[SPLIT] == "test", "id"]) == test_ids


# --- fit_rows: fresh fits ------------------------------------------------------------------------


def test_weighted_fit_with_a_short_half_life_learns_the_new_relationship() -> None:
    rows = drifting_rows(range(60), flip_before=45, per_day=20, seed=0)
    make = factory("logistic_regression")
    full = fit_rows(make, training_rows(rows, "full"), FEATURES, "full")
    weighted_rows = training_rows(rows, "weighted", half_life_days=3.0)
    weighted = fit_rows(make, weighted_rows, FEATURES, "weighted")
    # 45 old days against 15 new: unweighted, the old (opposite) relationship wins.
    assert auc_on_new_relationship(full) < 0.3
    assert auc_on_new_relationship(weighted) > 0.85


def test_weighted_fit_needs_the_weight_column() -> None:
    rows = drifting_rows(range(5), flip_before=0, per_day=20, seed=0)
    with pytest.raises(ValueError, match="_weight"):
        fit_rows(factory("logistic_regression"), rows, FEATURES, "weighted")


def test_rolling_window_fit_is_a_fresh_fit_on_the_window() -> None:
    rows = drifting_rows(range(60), flip_before=45, per_day=20, seed=0)
    window = training_rows(rows, "rolling_window", window_days=15)
    model = fit_rows(factory("logistic_regression"), window, FEATURES, "rolling_window")
    assert auc_on_new_relationship(model) > 0.85


def test_fit_rows_refuses_test_rows() -> None:
    rows = drifting_rows(range(5), flip_before=0, per_day=20, seed=0)
    rows.loc[rows.index[-5:], SPLIT] = "test"
    with pytest.raises(ValueError, match="train rows only"):
        fit_rows(factory("logistic_regression"), rows, FEATURES, "full")


# --- fit_rows: incremental -----------------------------------------------------------------------


def champion(estimator: str, params: dict[str, object] | None = None) -> Pipeline:
    """A champion fitted on the old relationship (days 0-29)."""
    old = drifting_rows(range(30), flip_before=30, per_day=20, seed=1)
    return factory(estimator, params)().fit(old[FEATURES], old[TARGET].to_numpy())


def new_rows() -> pd.DataFrame:
    """Rows labelled since the champion's cut-off, new relationship, shifted x and z."""
    rows = drifting_rows(range(30, 40), flip_before=0, per_day=30, seed=2)
    rows[["x", "z"]] += 1.5
    return training_rows(rows, "incremental", since_day=day(29))


def continue_from(base: Pipeline, extra_iter: int = 50) -> Pipeline:
    make = factory("logistic_regression")  # must not be used by the incremental strategy
    return fit_rows(make, new_rows(), FEATURES, "incremental", base=base, extra_iter=extra_iter)


def test_incremental_sgd_partial_fit_moves_the_coefficients_and_keeps_the_classes() -> None:
    base = champion("sgd_classifier")
    coef = base[-1].coef_.copy()
    model = continue_from(base)
    assert not np.allclose(model[-1].coef_, coef)
    np.testing.assert_array_equal(model[-1].classes_, [0, 1])
    np.testing.assert_array_equal(base[-1].coef_, coef)


def test_incremental_keeps_the_champion_preprocessing() -> None:
    base = champion("sgd_classifier")
    model = continue_from(base)  # new rows have x and z shifted by 1.5
    scaler = model.named_steps["preprocess"].named_transformers_["num"][-1]
    base_scaler = base.named_steps["preprocess"].named_transformers_["num"][-1]
    np.testing.assert_array_equal(scaler.mean_, base_scaler.mean_)
    assert model.named_steps["preprocess"] is not base.named_steps["preprocess"]


def test_incremental_hist_gradient_boosting_adds_exactly_extra_iter_trees() -> None:
    base = champion("hist_gradient_boosting", {"max_iter": 20})
    assert base[-1].n_iter_ == 20
    model = continue_from(base, extra_iter=7)
    assert model[-1].n_iter_ == 27
    assert base[-1].n_iter_ == 20
    assert base[-1].get_params()["warm_start"] is False
    assert base[-1].get_params()["max_iter"] == 20


def test_incremental_logistic_regression_warm_starts_from_the_champion() -> None:
    old = drifting_rows(range(30), flip_before=30, per_day=20, seed=1)
    base = factory("logistic_regression")().fit(old[FEATURES], old[TARGET].to_numpy())
    assert base[-1].n_iter_[0] > 1
    # Continuing on the champion's own rows: the solver starts at its optimum and stops at once.
    again = training_rows(old, "incremental")
    same = fit_rows(factory("logistic_regression"), again, FEATURES, "incremental", base=base)
    assert same[-1].n_iter_[0] <= 1
    np.testing.assert_allclose(same[-1].coef_, base[-1].coef_, atol=1e-6)
    # On new rows it moves towards the new relationship.
    moved = continue_from(base)
    assert not np.allclose(moved[-1].coef_, base[-1].coef_)
    assert auc_on_new_relationship(moved) > auc_on_new_relationship(base)
    assert base[-1].get_params()["warm_start"] is False


@pytest.mark.parametrize(
    ("estimator", "params"),
    [
        ("sgd_classifier", None),
        ("hist_gradient_boosting", {"max_iter": 10}),
        ("logistic_regression", None),
    ],
)
def test_incremental_never_mutates_the_base_pipeline(
    estimator: str, params: dict[str, object] | None
) -> None:
    base = champion(estimator, params)
    snapshot = pickle.dumps(base)
    probe = new_rows()[FEATURES]
    before = base.predict_proba(probe)
    model = continue_from(base, extra_iter=5)
    assert model is not base
    assert pickle.dumps(base) == snapshot
    np.testing.assert_array_equal(base.predict_proba(probe), before)


def test_incremental_rejects_an_estimator_that_cannot_continue() -> None:
    old = drifting_rows(range(5), flip_before=0, per_day=20, seed=1)
    forest = Pipeline(
        [
            ("preprocess", StandardScaler()),
            ("model", RandomForestClassifier(n_estimators=5, random_state=0)),
        ]
    ).fit(old[["x", "z"]], old[TARGET])
    rows = training_rows(old, "incremental")
    with pytest.raises(
        ValueError, match="estimator RandomForestClassifier supports neither partial_fit"
    ):
        fit_rows(factory("logistic_regression"), rows, ["x", "z"], "incremental", base=forest)


def test_incremental_liblinear_logistic_regression_cannot_warm_start() -> None:
    base = champion("logistic_regression", {"solver": "liblinear"})
    with pytest.raises(ValueError, match="liblinear"):
        continue_from(base)


def test_incremental_needs_a_base() -> None:
    with pytest.raises(ValueError, match=r"champion's fitted pipeline \(base\)"):
        fit_rows(factory("sgd_classifier"), new_rows(), FEATURES, "incremental", base=None)
