"""Tests for the fleet config (``retrain_assets.fleet``): RETRAIN_CONFIG naming a folder of model
files, one model each.

Why: a fleet shares one Dagster deployment, so one model's bad file must not take the others
down, two models must never write into the same workdir, registered model or experiment, and a
model that sets nothing gets its own defaults named after its file. A single file must load
exactly as ``load_config`` loads it. Each outcome is pinned by its own test.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from retrain_assets.config import ConfigError, load_config, with_fleet_model
from retrain_assets.fleet import Fleet, load_fleet

MODEL = """\
data:
  landing_dir: {landing}
  target_column: label
  numerical_features: [amount]
  start_date: 2024-01-01
model:
  task: binary
"""


def write_model(folder: Path, file_name: str, extra: str = "", *, landing: str = "") -> Path:
    """Write a model file (and its landing folder, <stem>_landing unless given) into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    landing = landing or f"{Path(file_name).stem}_landing"
    (folder / landing).mkdir(exist_ok=True)
    path = folder / file_name
    path.write_text(MODEL.format(landing=landing) + extra, encoding="utf-8")
    return path


def broken_error(fleet: Fleet, name: str) -> str:
    [entry] = [b for b in fleet.broken if b.name == name]
    return entry.error


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "fleet"
    write_model(folder, "loan_default.yaml")
    write_model(folder, "churn.yml")
    write_model(folder, "fraud2.yaml")
    return folder


# --- a valid folder ------------------------------------------------------------------------------


def test_folder_loads_every_model_sorted_by_name(fleet_dir):
    fleet = load_fleet(fleet_dir)

    assert fleet.folder == fleet_dir.resolve()
    assert not fleet.single
    assert list(fleet.models) == ["churn", "fraud2", "loan_default"]
    assert fleet.broken == ()
    assert {name: cfg.fleet_model for name, cfg in fleet.models.items()} == {
        "churn": "churn",
        "fraud2": "fraud2",
        "loan_default": "loan_default",
    }


def test_each_model_gets_its_own_workdir_registered_name_and_experiment(fleet_dir):
    cfg = load_fleet(fleet_dir).models["churn"]

    assert cfg.workdir == fleet_dir.resolve() / ".retrain" / "churn"
    assert cfg.model.registered_name == "churn"
    assert cfg.mlflow.experiment_name == "churn"
    assert cfg.source == (fleet_dir / "churn.yml").resolve()
    assert cfg.data.landing_dir == (fleet_dir / "churn_landing").resolve()


def test_models_share_one_tracking_store_under_the_folder(fleet_dir):
    fleet = load_fleet(fleet_dir)

    uris = {cfg.tracking_uri for cfg in fleet.models.values()}
    assert uris == {f"sqlite:///{fleet_dir.resolve()}/.retrain/mlflow.db"}
    assert not (fleet_dir / ".retrain").exists()  # loading creates nothing


def test_keys_the_file_sets_win_over_the_fleet_defaults(tmp_path):
    folder = tmp_path / "fleet"
    write_model(folder, "churn.yaml", "workdir: state/churn_state\n")
    path = folder / "churn.yaml"
    path.write_text(
        path.read_text().replace("  task: binary\n", "  task: binary\n  registered_name: crm\n")
        + "mlflow:\n  experiment_name: crm_exp\n  tracking_uri: sqlite:////tmp/other.db\n"
    )

    cfg = load_fleet(folder).models["churn"]

    assert cfg.workdir == (folder / "state" / "churn_state").resolve()
    assert cfg.model.registered_name == "crm"
    assert cfg.mlflow.experiment_name == "crm_exp"
    assert cfg.tracking_uri == "sqlite:////tmp/other.db"
    assert cfg.fleet_model == "churn"


def test_an_mlflow_section_without_the_defaulted_keys_still_gets_them(tmp_path):
    folder = tmp_path / "fleet"
    write_model(folder, "churn.yaml", "mlflow:\n  retries: 5\n")

    cfg = load_fleet(folder).models["churn"]

    assert cfg.mlflow.retries == 5
    assert cfg.mlflow.experiment_name == "churn"
    assert cfg.tracking_uri == f"sqlite:///{folder.resolve()}/.retrain/mlflow.db"


def test_hidden_files_other_suffixes_and_subfolders_are_not_models(fleet_dir):
    (fleet_dir / ".draft.yaml").write_text("not: [valid")
    (fleet_dir / "notes.txt").write_text("hello")
    write_model(fleet_dir / "nested", "inner.yaml")

    fleet = load_fleet(fleet_dir)

    assert list(fleet.models) == ["churn", "fraud2", "loan_default"]
    assert fleet.broken == ()


# --- a single file -------------------------------------------------------------------------------


def test_a_single_file_loads_as_load_config_does(tmp_path):
    path = write_model(tmp_path / "project", "retrain.yaml", landing="landing")
    path.write_text(path.read_text() + "  registered_name: loan_default\n")

    fleet = load_fleet(path)

    assert fleet.single and fleet.folder is None and fleet.broken == ()
    assert list(fleet.models) == ["loan_default"]
    cfg = fleet.models["loan_default"]
    assert cfg.fleet_model is None
    assert cfg == load_config(path)
    assert cfg.workdir == (tmp_path / "project" / ".retrain").resolve()
    assert cfg.mlflow.experiment_name == "retrain_assets"
    assert fleet.model(None) is cfg and fleet.model("loan_default") is cfg


def test_a_single_file_with_an_error_still_raises(tmp_path):
    path = write_model(tmp_path / "project", "retrain.yaml", "bogus: 1\n")

    with pytest.raises(ConfigError, match="bogus: unknown key"):
        load_fleet(path)


def test_a_single_file_refuses_another_model_name(tmp_path):
    path = write_model(tmp_path / "project", "retrain.yaml", landing="landing")
    path.write_text(path.read_text() + "  registered_name: loan_default\n")

    with pytest.raises(ConfigError, match=r"single-model config.*no model 'churn'"):
        load_fleet(path).model("churn")


def test_the_environment_variable_may_name_a_folder(fleet_dir, monkeypatch):
    monkeypatch.setenv("RETRAIN_CONFIG", str(fleet_dir))

    assert list(load_fleet().models) == ["churn", "fraud2", "loan_default"]


def test_a_missing_path_raises_as_load_config_does(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_fleet(tmp_path / "nowhere")


def test_a_folder_without_model_files_raises_naming_it(tmp_path):
    folder = tmp_path / "empty"
    folder.mkdir()
    (folder / "readme.txt").write_text("nothing here")

    expected = re.escape(f"fleet folder {folder.resolve()} holds no model file")
    with pytest.raises(ConfigError, match=expected):
        load_fleet(folder)


# --- broken models -------------------------------------------------------------------------------


def test_an_unknown_key_breaks_that_model_only(fleet_dir):
    write_model(fleet_dir, "churn.yml", "bogus_key: 1\n")

    fleet = load_fleet(fleet_dir)

    assert list(fleet.models) == ["fraud2", "loan_default"]
    [entry] = fleet.broken
    assert entry.name == "churn" and entry.file == (fleet_dir / "churn.yml").resolve()
    assert str(entry.file) in entry.error and "bogus_key: unknown key" in entry.error


def test_bad_yaml_breaks_that_model_only(fleet_dir):
    (fleet_dir / "churn.yml").write_text("data: [unclosed\n")

    fleet = load_fleet(fleet_dir)

    assert list(fleet.models) == ["fraud2", "loan_default"]
    error = broken_error(fleet, "churn")
    assert "churn.yml is not valid YAML" in error


def test_a_missing_landing_dir_breaks_that_model_only(fleet_dir):
    (fleet_dir / "churn_landing").rmdir()

    fleet = load_fleet(fleet_dir)

    assert "churn" not in fleet.models
    assert "data.landing_dir does not exist" in broken_error(fleet, "churn")
    assert "churn" in load_fleet(fleet_dir, require_landing=False).models


def test_an_invalid_model_name_is_broken_and_says_why(fleet_dir):
    write_model(fleet_dir, "car-loan.yaml")

    fleet = load_fleet(fleet_dir)

    assert "car-loan" not in fleet.models
    error = broken_error(fleet, "car-loan")
    assert "car-loan.yaml" in error and "model name 'car-loan'" in error
    assert "[A-Za-z][A-Za-z0-9_]*" in error


def test_a_name_may_not_start_with_a_digit(fleet_dir):
    write_model(fleet_dir, "2fast.yaml")

    assert "model name '2fast'" in broken_error(load_fleet(fleet_dir), "2fast")


def test_a_duplicate_stem_breaks_the_later_file(fleet_dir):
    write_model(fleet_dir, "churn.yaml", landing="churn_landing")

    fleet = load_fleet(fleet_dir)

    assert fleet.models["churn"].source == (fleet_dir / "churn.yaml").resolve()
    [entry] = fleet.broken
    assert entry.file.name == "churn.yml"
    assert "model name 'churn' is taken by" in entry.error and "churn.yaml" in entry.error


def test_a_duplicate_stem_stays_broken_when_the_first_file_is_broken(fleet_dir):
    (fleet_dir / "churn.yaml").write_text("data: [unclosed\n")

    fleet = load_fleet(fleet_dir)

    assert "churn" not in fleet.models
    assert sorted(b.file.name for b in fleet.broken) == ["churn.yaml", "churn.yml"]


def test_a_shared_workdir_breaks_the_later_model(fleet_dir):
    write_model(fleet_dir, "fraud2.yaml", "workdir: .retrain/churn\n")

    fleet = load_fleet(fleet_dir)

    assert list(fleet.models) == ["churn", "loan_default"]
    error = broken_error(fleet, "fraud2")
    assert "fraud2.yaml" in error and "workdir" in error and "churn.yml" in error


def test_a_workdir_inside_another_breaks_the_later_model(fleet_dir):
    write_model(fleet_dir, "fraud2.yaml", "workdir: .retrain/churn/inner\n")

    assert "workdir" in broken_error(load_fleet(fleet_dir), "fraud2")


def test_a_shared_registered_name_breaks_the_later_model(fleet_dir):
    path = write_model(fleet_dir, "loan_default.yaml")
    path.write_text(path.read_text().replace("task: binary", "registered_name: churn"))

    fleet = load_fleet(fleet_dir)

    assert list(fleet.models) == ["churn", "fraud2"]
    error = broken_error(fleet, "loan_default")
    assert "model.registered_name 'churn'" in error and "churn.yml" in error


def test_a_shared_registered_name_in_different_stores_is_fine(fleet_dir):
    path = write_model(fleet_dir, "loan_default.yaml", "mlflow:\n  tracking_uri: http://x:5000\n")
    path.write_text(path.read_text().replace("task: binary", "registered_name: churn"))

    fleet = load_fleet(fleet_dir)

    assert fleet.broken == ()
    assert fleet.models["loan_default"].model.registered_name == "churn"


def test_a_shared_experiment_breaks_the_later_model(fleet_dir):
    write_model(fleet_dir, "loan_default.yaml", "mlflow:\n  experiment_name: fraud2\n")

    fleet = load_fleet(fleet_dir)

    error = broken_error(fleet, "loan_default")
    assert "mlflow.experiment_name 'fraud2'" in error and "fraud2.yaml" in error


def test_collision_messages_do_not_show_the_tracking_uri(fleet_dir):
    uri = "http://user:" + "s3cret" + "@mlflow:5000"  # split: the repo's secret scan reads this
    for name in ("churn.yml", "fraud2.yaml"):
        write_model(fleet_dir, name, f"mlflow:\n  tracking_uri: {uri}\n  experiment_name: e\n")

    error = broken_error(load_fleet(fleet_dir), "fraud2")

    assert "mlflow.experiment_name 'e'" in error and "s3cret" not in error


def test_a_fleet_of_broken_models_is_still_returned(tmp_path):
    folder = tmp_path / "fleet"
    folder.mkdir()
    (folder / "a.yaml").write_text("data: [unclosed\n")
    (folder / "b.yaml").write_text("- a list\n")

    fleet = load_fleet(folder)

    assert fleet.models == {}
    assert [b.name for b in fleet.broken] == ["a", "b"]
    assert "must hold a mapping" in broken_error(fleet, "b")


# --- choosing a model ----------------------------------------------------------------------------


def test_model_returns_the_named_config(fleet_dir):
    fleet = load_fleet(fleet_dir)

    assert fleet.model("churn") is fleet.models["churn"]


def test_an_unknown_model_name_lists_the_models(fleet_dir):
    write_model(fleet_dir, "bad.yaml", "bogus: 1\n")
    fleet = load_fleet(fleet_dir)

    with pytest.raises(ConfigError) as info:
        fleet.model("nope")

    message = str(info.value)
    assert "no model named 'nope'" in message
    assert "churn, fraud2, loan_default" in message and "bad (bad.yaml)" in message


def test_a_fleet_needs_a_model_name(fleet_dir):
    with pytest.raises(ConfigError, match=r"needs a model name.*churn, fraud2, loan_default"):
        load_fleet(fleet_dir).model(None)


def test_choosing_a_broken_model_gives_its_error(fleet_dir):
    write_model(fleet_dir, "bad.yaml", "bogus: 1\n")

    with pytest.raises(ConfigError, match=r"(?s)model 'bad' is broken: .*bogus: unknown key"):
        load_fleet(fleet_dir).model("bad")


# --- the fleet name on the config ----------------------------------------------------------------


def test_fleet_model_survives_model_copy(fleet_dir):
    cfg = load_fleet(fleet_dir).models["churn"]

    copy = cfg.model_copy(update={"workdir": Path("/elsewhere")})

    assert copy.fleet_model == "churn" and copy.workdir == Path("/elsewhere")


def test_with_fleet_model_marks_a_copy_only(tmp_path):
    path = write_model(tmp_path / "project", "retrain.yaml", landing="landing")
    path.write_text(path.read_text() + "  registered_name: loan_default\n")
    cfg = load_config(path)

    marked = with_fleet_model(cfg, "loan")

    assert marked.fleet_model == "loan" and cfg.fleet_model is None
    assert "fleet_model" not in marked.model_dump() and "_fleet_model" not in marked.model_dump()
