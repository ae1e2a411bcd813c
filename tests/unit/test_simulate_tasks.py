"""Tests for the simulator's three tasks: binary ``defaulted``, multiclass ``repayment`` and
regression ``loss_amount``.

Why: regression and multiclass models go through the same loop as the binary one, and the loop's
acceptance runs on this feed. So each task's target must be deterministic, typed as the ingest
expects, driven by the drift the answer key claims (a covariate shift moves class shares and
losses; a concept change breaks a model fitted before it), and written with a contract the config
loader accepts. The binary feed must not change by a single value: existing backtests, policy
targets and the README's numbers were all measured on it.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from sklearn.ensemble import HistGradientBoostingClassifier, HistGradientBoostingRegressor
from sklearn.metrics import mean_squared_error, roc_auc_score

from retrain_assets import cli
from retrain_assets.config import load_config
from retrain_assets.lib.data.simulate import (
    CATEGORICAL,
    NUMERICAL,
    REPAYMENT_CLASSES,
    TARGET,
    TARGETS,
    TASKS,
    SimulationSpec,
    generate_day,
    generate_reference,
    simulate,
)

START = dt.date(2024, 1, 1)
# Taken from the simulator before it had tasks (commit 86005bc: generate_reference and day 5).
BINARY_FINGERPRINT = "f2c800717b2e9f4457b5e933a7f2a2cb558d1f5f6662931c9f55b34003337cb0"


def _fingerprint(frames: list[pd.DataFrame]) -> str:
    h = hashlib.sha256()
    for frame in frames:
        h.update(",".join(frame.columns).encode())
        h.update(pd.util.hash_pandas_object(frame).to_numpy().tobytes())
    return h.hexdigest()


def _labelled(spec: SimulationSpec, days: range) -> pd.DataFrame:
    frames = []
    for d in days:
        features, labels = generate_day(spec, d)
        frames.append(features.merge(labels, on="id", validate="one_to_one").assign(day=d))
    return pd.concat(frames, ignore_index=True)


def _x(frame: pd.DataFrame) -> pd.DataFrame:
    x = frame[NUMERICAL + CATEGORICAL].copy()
    for col in CATEGORICAL:
        x[col] = x[col].astype("category")
    return x


def test_an_unknown_task_names_the_choices() -> None:
    with pytest.raises(ValueError, match=r"'ranking'.*binary.*multiclass.*regression"):
        SimulationSpec(task="ranking")


def test_binary_feed_is_unchanged_by_the_task_option() -> None:
    default = SimulationSpec(
        days=8, rows_per_day=200, drift="abrupt", drift_day=5, reference_rows=300, seed=7,
        start_date=START,
    )  # fmt: skip
    explicit = dataclasses.replace(default, task="binary")
    prints = [
        _fingerprint([generate_reference(feed), *generate_day(feed, 5)])
        for feed in (default, explicit)
    ]
    assert prints == [BINARY_FINGERPRINT, BINARY_FINGERPRINT]


@pytest.mark.parametrize("task", TASKS)
def test_each_task_is_deterministic_per_seed(task: str) -> None:
    spec = SimulationSpec(days=3, rows_per_day=300, reference_rows=200, seed=4, task=task)
    first, again = generate_day(spec, 2), generate_day(spec, 2)
    pd.testing.assert_frame_equal(first[0], again[0])
    pd.testing.assert_frame_equal(first[1], again[1])
    pd.testing.assert_frame_equal(generate_reference(spec), generate_reference(spec))
    other = generate_day(SimulationSpec(days=3, rows_per_day=300, seed=5, task=task), 2)[1]
    assert not other[TARGETS[task]].equals(first[1][TARGETS[task]])


def test_targets_are_typed_per_task_on_the_same_applicants() -> None:
    specs = {task: SimulationSpec(days=2, rows_per_day=3000, seed=1, task=task) for task in TASKS}
    days = {task: generate_day(spec, 1) for task, spec in specs.items()}
    for task in TASKS:  # one population: only the target differs
        pd.testing.assert_frame_equal(days[task][0], days["binary"][0])
        assert list(days[task][1].columns) == ["id", TARGETS[task]]
    defaulted = days["binary"][1][TARGET]
    repayment = days["multiclass"][1]["repayment"]
    loss = days["regression"][1]["loss_amount"]
    assert defaulted.dtype == np.int64 and set(defaulted) == {0, 1}
    assert repayment.dtype == object and all(isinstance(v, str) for v in repayment)
    assert set(repayment) == set(REPAYMENT_CLASSES)
    assert loss.dtype == np.float64 and not loss.isna().any() and (loss >= 0).all()
    # The same latent risk: a "default" repayment is a binary default, and defaulters lose more.
    assert defaulted[repayment == "default"].all()
    assert loss[defaulted == 1].mean() > 2 * loss[defaulted == 0].mean()


def test_undrifted_class_shares_are_60_25_15() -> None:
    ref = generate_reference(SimulationSpec(reference_rows=20_000, task="multiclass"))
    shares = ref["repayment"].value_counts(normalize=True)
    assert shares.to_dict() == pytest.approx(
        {"on_time": 0.60, "late": 0.25, "default": 0.15}, abs=0.02
    )


def test_abrupt_shift_moves_class_shares_and_losses() -> None:
    def before_after(task: str) -> tuple[pd.Series, pd.Series]:
        spec = SimulationSpec(days=4, rows_per_day=3000, drift="abrupt", drift_day=2, task=task)
        rows = _labelled(spec, range(4))
        return rows.loc[rows.day < 2, TARGETS[task]], rows.loc[rows.day >= 2, TARGETS[task]]

    pre, post = before_after("multiclass")
    pre_share, post_share = pre.value_counts(normalize=True), post.value_counts(normalize=True)
    assert post_share["on_time"] < pre_share["on_time"] - 0.1
    assert post_share["late"] > pre_share["late"] + 0.05
    assert post_share["default"] > pre_share["default"] + 0.05
    pre_loss, post_loss = before_after("regression")
    assert post_loss.mean() > 1.5 * pre_loss.mean()


def _fit_and_score(task: str, train: pd.DataFrame, test: pd.DataFrame) -> float:
    """The task's primary metric on test, oriented so that higher is better."""
    y = TARGETS[task]
    if task == "regression":
        reg = HistGradientBoostingRegressor(max_iter=60, categorical_features="from_dtype")
        reg.fit(_x(train), train[y])
        return -float(np.sqrt(mean_squared_error(test[y], reg.predict(_x(test)))))
    clf = HistGradientBoostingClassifier(max_iter=60, categorical_features="from_dtype")
    proba = clf.fit(_x(train), train[y]).predict_proba(_x(test))
    if task == "binary":
        return float(roc_auc_score(test[y], proba[:, 1]))
    return float(roc_auc_score(test[y], proba, multi_class="ovr", labels=list(clf.classes_)))


@pytest.mark.parametrize("task", TASKS)
def test_concept_change_breaks_a_model_fitted_before_it(task: str) -> None:
    spec = SimulationSpec(days=6, rows_per_day=1500, drift="concept", drift_day=2, task=task)
    rows = _labelled(spec, range(6))
    before, after, test = rows[rows.day < 2], rows[rows.day.between(2, 4)], rows[rows.day == 5]
    stale = _fit_and_score(task, before, test)
    refit = _fit_and_score(task, after, test)
    gap = refit - stale
    assert gap > (0.05 if task != "regression" else 0.15 * abs(stale)), (stale, refit)


@pytest.mark.parametrize("task", TASKS)
def test_written_contract_and_answer_key_per_task(task: str, tmp_path: Path) -> None:
    spec = SimulationSpec(days=2, rows_per_day=40, reference_rows=100, start_date=START, task=task)
    truth = simulate(tmp_path, spec)
    assert json.loads((tmp_path / "ground_truth.json").read_text()) == truth
    assert (truth["task"], truth["target_column"]) == (task, TARGETS[task])
    contract = yaml.safe_load((tmp_path / "retrain.yaml").read_text())
    data, model = contract["data"], contract["model"]
    assert data["target_column"] == TARGETS[task]
    names = {
        "binary": "car_loan",
        "multiclass": "car_loan_repayment",
        "regression": "car_loan_loss",
    }
    if task == "binary":  # exactly today's contract
        assert data["positive_label"] == 1 and model == {"registered_name": "car_loan"}
    else:
        assert "positive_label" not in data
        assert model == {"registered_name": names[task], "task": task}
    cfg = load_config(tmp_path / "retrain.yaml")
    assert cfg.task == task and cfg.data.target_column == TARGETS[task]
    labels = pd.read_parquet(next((tmp_path / "landing" / "labels").glob("*.parquet")))
    assert list(labels.columns) == ["id", TARGETS[task]]


def test_simulate_command_takes_a_task(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "feed"
    args = ["simulate", "--out", str(out), "--days", "2", "--rows-per-day", "30"]
    code = cli.main([*args, "--reference-rows", "60", "--task", "regression"])
    assert code == 0 and json.loads(capsys.readouterr().out)["task"] == "regression"
    assert load_config(out / "retrain.yaml").task == "regression"
    with pytest.raises(SystemExit):
        cli.main([*args, "--task", "ranking"])
