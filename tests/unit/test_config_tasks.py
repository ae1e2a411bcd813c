"""``model.task`` in the config (issue 15): today's configs stay binary; a key that does not fit
the task is an error naming the key and the task; the gate's ratio and bound in force per task."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from retrain_assets.config import ConfigError, load_config
from tests.unit.test_config import MINIMAL, write_config


def _load(tmp_path: Path, extra: str = "", data_extra: str = ""):
    text = MINIMAL.replace("  start_date: 2024-01-01\n", f"  start_date: 2024-01-01\n{data_extra}")
    return load_config(write_config(tmp_path, text + extra))


def test_a_config_without_task_is_binary_with_the_auc_gate_of_today(tmp_path: Path) -> None:
    cfg = _load(tmp_path)
    assert cfg.task == "binary"
    assert (cfg.gate_ratio, cfg.gate_floor) == (0.99, 0.6)


@pytest.mark.parametrize("task", ["multiclass", "regression"])
def test_positive_label_is_refused_outside_binary_naming_key_and_task(tmp_path: Path, task) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, f"  task: {task}\n", "  positive_label: 1\n")
    assert "data.positive_label" in str(err.value) and task in str(err.value)


def test_positive_label_stays_valid_for_binary(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "  task: binary\n", "  positive_label: yes\n")
    assert cfg.data.positive_label is True


def test_a_classifier_is_refused_for_regression_naming_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        _load(tmp_path, "  task: regression\n  estimator: logistic_regression\n")
    message = str(err.value)
    assert "logistic_regression" in message and "regression" in message
    assert "ridge" in message and "sgd_regressor" in message


def test_a_regressor_is_refused_for_multiclass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ridge does not fit task multiclass"):
        _load(tmp_path, "  task: multiclass\n  estimator: ridge\n")


def test_regressor_params_are_checked_against_the_regressor(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "  task: regression\n  estimator: ridge\n  params: {alpha: 2.0}\n")
    assert cfg.model.params == {"alpha": 2.0}
    with pytest.raises(ConfigError, match=r"\['max_iter_typo'\] are not parameters of ridge"):
        _load(tmp_path, "  task: regression\n  estimator: ridge\n  params: {max_iter_typo: 1}\n")


def test_regression_has_no_absolute_bound_unless_gates_floor_sets_one(tmp_path: Path) -> None:
    cfg = _load(tmp_path, "  task: regression\n")
    assert cfg.gate_floor == math.inf and cfg.gate_ratio == 0.99
    cfg = _load(tmp_path, "  task: regression\ngates:\n  floor: 2500\n  metric_ratio: 0.95\n")
    assert (cfg.gate_floor, cfg.gate_ratio) == (2500, 0.95)


def test_an_auc_floor_outside_zero_one_is_refused_for_multiclass(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"gates.floor 3.0 is an AUC for task multiclass"):
        _load(tmp_path, "  task: multiclass\ngates:\n  floor: 3.0\n")


def test_require_impact_is_binary_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"drift\.require_impact .* model\.task is regression"):
        _load(tmp_path, "  task: regression\ndrift:\n  require_impact: true\n")


def test_an_unknown_task_names_the_choices(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"model\.task") as err:
        _load(tmp_path, "  task: ranking\n")
    assert "multiclass" in str(err.value)
