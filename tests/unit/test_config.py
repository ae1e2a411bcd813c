"""Tests for the YAML data contract (``retrain_assets.config``).

Why: the config file is the only thing a user writes, and every asset trusts what ``load_config``
returns. A typo that is silently ignored, a relative path resolved against the wrong folder or an
error that does not say which key or file is wrong turns into a confusing failure far away from
its cause. These tests pin the defaults, the path resolution and that every error names the key
or the path.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pandas as pd
import pytest

from retrain_assets.config import ENV_VAR, ConfigError, RetrainConfig, load_config
from retrain_assets.lib.data.contract import check_frame

MINIMAL = """\
data:
  landing_dir: landing
  target_column: label
  numerical_features: [amount]
  start_date: 2024-01-01
model:
  registered_name: loan_default
"""


def write_config(folder: Path, text: str = MINIMAL, *, landing: bool = True) -> Path:
    """Write ``retrain.yaml`` into ``folder`` (and its landing folder) and return its path."""
    folder.mkdir(parents=True, exist_ok=True)
    if landing:
        (folder / "landing").mkdir(exist_ok=True)
    path = folder / "retrain.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def edit(old: str, new: str) -> str:
    """MINIMAL with one exact snippet replaced (fails loudly if the snippet is not there)."""
    assert old in MINIMAL, old
    return MINIMAL.replace(old, new, 1)


def config_error(path: Path, **kwargs) -> str:
    with pytest.raises(ConfigError) as info:
        load_config(path, **kwargs)
    return str(info.value)


# --- a valid file ------------------------------------------------------------------------------


def test_minimal_file_loads_with_defaults(tmp_path):
    path = write_config(tmp_path / "project")

    cfg = load_config(path)

    assert isinstance(cfg, RetrainConfig)
    assert cfg.source == path.resolve()
    assert cfg.data.id_column == "id"
    assert cfg.data.target_column == "label"
    assert cfg.data.positive_label == 1
    assert cfg.data.timestamp_column is None
    assert cfg.data.features == ["amount"]
    assert cfg.data.start_date == dt.date(2024, 1, 1)
    assert cfg.ingest.max_null_rate == 0.2
    assert cfg.ingest.sensor_interval_seconds == 30
    assert cfg.model.test_days == 7
    assert cfg.model.estimator == "hist_gradient_boosting"
    assert cfg.model.reference_test_share == 0.2
    assert cfg.model.params == {}
    assert cfg.mlflow.tracking_uri is None
    assert cfg.workdir == (tmp_path / "project" / ".retrain").resolve()
    assert cfg.workdir.is_absolute()
    assert cfg.tracking_uri == f"sqlite:///{cfg.workdir}/mlflow.db"


def test_explicit_values_override_defaults(tmp_path):
    text = MINIMAL + (
        "ingest:\n  max_null_rate: 0.5\nmlflow:\n  tracking_uri: http://mlflow.example:5000\n"
    )
    text = text.replace(
        "  registered_name: loan_default\n",
        "  registered_name: loan_default\n  test_days: 3\n  estimator: sgd_classifier\n",
    )
    cfg = load_config(write_config(tmp_path, text))

    assert cfg.ingest.max_null_rate == 0.5
    assert cfg.model.test_days == 3
    assert cfg.model.estimator == "sgd_classifier"
    assert cfg.tracking_uri == "http://mlflow.example:5000"


def test_relative_paths_resolve_against_the_config_folder_not_the_cwd(tmp_path, monkeypatch):
    project = tmp_path / "project"
    (project / "in" / "landing").mkdir(parents=True)
    text = edit("landing_dir: landing", "landing_dir: in/landing") + "workdir: state\n"
    path = write_config(project, text, landing=False)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)

    cfg = load_config(path)

    assert cfg.data.landing_dir == (project / "in" / "landing").resolve()
    assert cfg.workdir == (project / "state").resolve()
    assert cfg.tracking_uri == f"sqlite:///{(project / 'state').resolve()}/mlflow.db"


def test_absolute_paths_are_kept(tmp_path):
    landing = tmp_path / "abs_landing"
    landing.mkdir()
    workdir = tmp_path / "abs_work"
    text = edit("landing_dir: landing", f"landing_dir: {landing}") + f"workdir: {workdir}\n"
    cfg = load_config(write_config(tmp_path / "project", text, landing=False))

    assert cfg.data.landing_dir == landing.resolve()
    assert cfg.workdir == workdir.resolve()


def test_env_var_names_the_config_file(tmp_path, monkeypatch):
    path = write_config(tmp_path / "from_env")
    monkeypatch.setenv(ENV_VAR, str(path))
    monkeypatch.chdir(tmp_path)  # no demo/ here

    cfg = load_config()

    assert cfg.source == path.resolve()
    assert cfg.data.landing_dir == (tmp_path / "from_env" / "landing").resolve()


def test_without_env_var_or_demo_config_the_error_says_what_to_do(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    monkeypatch.chdir(tmp_path)

    with pytest.raises(ConfigError) as info:
        load_config()

    message = str(info.value)
    assert str(tmp_path / "demo") in message
    assert ENV_VAR in message


# --- errors name the key -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key"),
    [
        (MINIMAL + "colour: blue\n", "colour"),
        (
            edit("  target_column: label\n", "  target_column: label\n  numerical_feature: [x]\n"),
            "data.numerical_feature",
        ),
        (MINIMAL + "ingest:\n  max_nul_rate: 0.1\n", "ingest.max_nul_rate"),
    ],
    ids=["top-level", "data.numerical_feature", "ingest"],
)
def test_unknown_key_is_named_with_its_dotted_path(tmp_path, text, key):
    message = config_error(write_config(tmp_path, text))

    assert f"{key}: unknown key" in message
    assert str(tmp_path / "retrain.yaml") in message


@pytest.mark.parametrize(
    ("text", "key", "value"),
    [
        (
            edit(
                "  registered_name: loan_default\n",
                "  registered_name: loan_default\n  test_days: abc\n",
            ),
            "model.test_days",
            "abc",
        ),
        (edit("start_date: 2024-01-01", "start_date: notadate"), "data.start_date", "notadate"),
        (MINIMAL + "ingest:\n  max_null_rate: 1.5\n", "ingest.max_null_rate", "1.5"),
        (
            edit(
                "  registered_name: loan_default\n",
                "  registered_name: loan_default\n  estimator: xgboost\n",
            ),
            "model.estimator",
            "xgboost",
        ),
        (
            edit("numerical_features: [amount]", "numerical_features: amount"),
            "data.numerical_features",
            "amount",
        ),
    ],
    ids=["test_days", "start_date", "max_null_rate", "estimator", "features-not-a-list"],
)
def test_wrong_type_or_value_names_the_key_and_the_value(tmp_path, text, key, value):
    message = config_error(write_config(tmp_path, text))

    lines = [line for line in message.splitlines() if line.strip().startswith(f"{key}:")]
    assert len(lines) == 1, message
    assert value in lines[0]


@pytest.mark.parametrize(
    ("old", "key"),
    [
        ("  registered_name: loan_default\n", "model.registered_name"),
        ("  target_column: label\n", "data.target_column"),
        ("  start_date: 2024-01-01\n", "data.start_date"),
    ],
)
def test_missing_required_key_is_named(tmp_path, old, key):
    text = edit(old, "  estimator: logistic_regression\n" if key.startswith("model") else "")

    message = config_error(write_config(tmp_path, text))

    assert f"{key}: required key is missing" in message


def test_every_error_is_reported_at_once(tmp_path):
    text = edit("  registered_name: loan_default\n", "  test_days: abc\n") + "colour: blue\n"

    message = config_error(write_config(tmp_path, text))

    assert "model.registered_name" in message
    assert "model.test_days" in message
    assert "colour" in message


@pytest.mark.parametrize(
    ("features", "clash"),
    [
        ("numerical_features: [amount, amount]", "amount"),
        ("numerical_features: [amount]\n  categorical_features: [amount]", "amount"),
        ("numerical_features: [amount, id]", "id"),
        ("numerical_features: [amount, label]", "label"),
    ],
    ids=["twice-numerical", "numerical-and-categorical", "id-column", "target-column"],
)
def test_feature_listed_twice_or_clashing_with_id_or_target_is_an_error(tmp_path, features, clash):
    text = edit("numerical_features: [amount]", features)

    message = config_error(write_config(tmp_path, text))

    assert "listed twice or clashing" in message
    assert f"'{clash}'" in message


def test_feature_equal_to_the_timestamp_column_is_an_error(tmp_path):
    text = edit("  target_column: label\n", "  target_column: label\n  timestamp_column: amount\n")

    message = config_error(write_config(tmp_path, text))

    assert "'amount'" in message


def test_no_features_at_all_is_an_error(tmp_path):
    message = config_error(write_config(tmp_path, edit("[amount]", "[]")))

    assert "both empty" in message


# --- errors name the file or folder ------------------------------------------------------------


def test_missing_config_file_names_the_path(tmp_path):
    missing = tmp_path / "nowhere" / "retrain.yaml"

    message = config_error(missing)

    assert str(missing) in message


def test_missing_landing_dir_names_the_path(tmp_path):
    path = write_config(tmp_path, landing=False)

    message = config_error(path)

    assert str(tmp_path / "landing") in message
    assert "data.landing_dir does not exist" in message


def test_require_landing_false_skips_the_landing_check(tmp_path):
    path = write_config(tmp_path, landing=False)

    cfg = load_config(path, require_landing=False)

    assert cfg.data.landing_dir == (tmp_path / "landing").resolve()
    assert not cfg.data.landing_dir.exists()


@pytest.mark.parametrize(
    ("text", "got"),
    [("- a\n- b\n", "list"), ("just a string\n", "str"), ("", "NoneType")],
    ids=["list", "scalar", "empty-file"],
)
def test_yaml_that_is_not_a_mapping_is_an_error(tmp_path, text, got):
    path = write_config(tmp_path, text)

    message = config_error(path)

    assert f"must hold a mapping, got {got}" in message
    assert str(path) in message


def test_invalid_yaml_names_the_file(tmp_path):
    path = write_config(tmp_path, "data: [landing_dir: x\nmodel: {\n")

    message = config_error(path)

    assert "not valid YAML" in message
    assert str(path) in message


def test_loaded_config_is_immutable(tmp_path):
    cfg = load_config(write_config(tmp_path))

    with pytest.raises(ValueError, match="frozen"):
        cfg.model.test_days = 1  # type: ignore[misc]


def test_unquoted_yes_positive_label_matches_yes_no_labels(tmp_path):
    text = edit("  target_column: label\n", "  target_column: label\n  positive_label: yes\n")
    cfg = load_config(write_config(tmp_path, text))
    labels = pd.DataFrame({"id": [1, 2, 3], "label": ["yes", "no", "yes"]})

    report = check_frame(
        labels,
        kind="labels",
        id_column="id",
        numerical=[],
        categorical=[],
        target_column="label",
        positive_label=cfg.data.positive_label,
    )

    assert report.ok
    assert report.frame["label"].tolist() == [1, 0, 1]


def test_a_key_written_twice_is_an_error(tmp_path):
    text = MINIMAL + "model:\n  registered_name: other\n"
    message = config_error(write_config(tmp_path, text))
    assert "'model'" in message and "twice" in message


def test_unknown_estimator_params_are_named_at_load(tmp_path):
    text = edit(
        "  registered_name: loan_default\n", "  registered_name: x\n  params:\n    depth: 3\n"
    )
    message = config_error(write_config(tmp_path, text))
    assert "model" in message and "depth" in message and "max_depth" in message


def test_random_state_in_params_overrides_the_seed(tmp_path):
    text = edit(
        "  registered_name: loan_default\n",
        "  registered_name: x\n  params:\n    random_state: 3\n    max_iter: 50\n",
    )
    cfg = load_config(write_config(tmp_path, text))
    from retrain_assets.lib.training.fitting import build_pipeline

    model = build_pipeline(["amount"], [], cfg.model.estimator, cfg.model.params).named_steps[
        "model"
    ]
    assert model.random_state == 3 and model.max_iter == 50
