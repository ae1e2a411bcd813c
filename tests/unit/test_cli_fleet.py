"""The command line with a fleet folder: `models` says which models load and exits 1 when one
does not, `backtest` needs `--model` to know which model to replay, and `simulate --model` writes
a model into a fleet folder that the fleet loader accepts as it is, with the fleet's defaults."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from retrain_assets import cli
from retrain_assets.fleet import load_fleet

MODEL = """\
data:
  landing_dir: {name}_landing
  target_column: label
  numerical_features: [amount]
  start_date: 2024-01-01
model:
  task: binary
"""


def write_model(folder: Path, name: str, extra: str = "") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}_landing").mkdir(exist_ok=True)
    path = folder / f"{name}.yaml"
    path.write_text(MODEL.format(name=name) + extra, encoding="utf-8")
    return path


@pytest.fixture
def fleet_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "fleet"
    write_model(folder, "churn")
    write_model(folder, "loan_default")
    return folder


def lines(text: str) -> dict[str, list[str]]:
    """Output lines split on whitespace, keyed by the model name (first column)."""
    rows = [line.split(maxsplit=3) for line in text.splitlines() if line.strip()]
    return {row[0] + ("!" if row[1] == "BROKEN" else ""): row for row in rows}


# --- models ----------------------------------------------------------------------------------


def test_models_lists_an_ok_fleet_and_exits_0(fleet_dir, capsys):
    code = cli.main(["models", "--config", str(fleet_dir)])

    out, err = capsys.readouterr()
    assert code == 0
    churn = out.splitlines()[0].split()
    assert churn == ["churn", "binary", "churn", str(fleet_dir.resolve() / ".retrain/churn"), "ok"]
    assert list(lines(out)) == ["churn", "loan_default"]
    assert "2 ok, 0 broken" in err


def test_models_reports_a_broken_model_and_exits_1(fleet_dir, capsys):
    write_model(fleet_dir, "fraud", "bogus_key: 1\n")

    code = cli.main(["models", "--config", str(fleet_dir)])

    out, err = capsys.readouterr()
    assert code == 1
    rows = lines(out)
    assert rows["churn"][-1].endswith("ok") and rows["loan_default"][-1].endswith("ok")
    name, status, file, error = rows["fraud!"]
    assert (name, status, file) == ("fraud", "BROKEN", str((fleet_dir / "fraud.yaml").resolve()))
    assert "bogus_key: unknown key" in error and "\n" not in error
    assert "2 ok, 1 broken" in err


def test_models_reads_the_environment_variable_and_a_single_file(tmp_path, monkeypatch, capsys):
    path = write_model(tmp_path / "project", "retrain")
    path.write_text(path.read_text() + "  registered_name: loan_default\n")
    monkeypatch.setenv("RETRAIN_CONFIG", str(path))

    code = cli.main(["models"])

    out, err = capsys.readouterr()
    assert code == 0
    [line] = out.splitlines()
    workdir = str((tmp_path / "project" / ".retrain").resolve())
    assert line.split() == ["loan_default", "binary", "loan_default", workdir, "ok"]
    assert "single-model config" in err


def test_models_exits_1_when_a_single_file_does_not_load(tmp_path, capsys):
    path = write_model(tmp_path / "project", "retrain")  # no registered_name: no fleet default

    code = cli.main(["models", "--config", str(path)])

    out, err = capsys.readouterr()
    assert code == 1 and out == ""
    assert "model.registered_name: required key is missing" in err


# --- backtest / rollback: choosing the model -------------------------------------------------


def test_backtest_of_a_fleet_folder_without_model_fails_listing_the_models(fleet_dir):
    with pytest.raises(SystemExit) as info:
        cli.main(["backtest", "--config", str(fleet_dir), "--quiet"])

    message = str(info.value.code)
    assert "needs a model name" in message and "churn, loan_default" in message
    assert "--model NAME" in message


def test_backtest_of_an_unknown_model_fails_listing_the_models(fleet_dir):
    with pytest.raises(SystemExit, match=r"no model named 'nope'.*churn, loan_default"):
        cli.main(["backtest", "--config", str(fleet_dir), "--model", "nope", "--compare"])


def test_backtest_of_a_single_file_rejects_another_model_name(tmp_path):
    path = write_model(tmp_path / "project", "retrain")
    path.write_text(path.read_text() + "  registered_name: loan_default\n")

    with pytest.raises(SystemExit, match=r"no model 'churn'.*drop --model"):
        cli.main(["backtest", "--config", str(path), "--model", "churn"])


def test_backtest_finds_a_fleet_models_answer_key_in_its_folder(fleet_dir):
    cfg = load_fleet(fleet_dir).model("churn")
    assert cli.truth_path(None, cfg) is None  # none written yet: load_truth looks beside the file
    (fleet_dir / "churn").mkdir()
    (fleet_dir / "churn" / "ground_truth.json").write_text("{}")

    assert cli.truth_path(None, cfg) == fleet_dir.resolve() / "churn" / "ground_truth.json"
    assert cli.truth_path(Path("given.json"), cfg) == Path("given.json")


# --- simulate --model --------------------------------------------------------------------------


TINY = ["--days", "3", "--rows-per-day", "50", "--reference-rows", "200", "--seed", "1"]


def test_simulate_model_writes_a_fleet_model_the_loader_accepts(tmp_path, capsys):
    out = tmp_path / "fleet"

    code = cli.main(["simulate", "--out", str(out), "--model", "loans", *TINY])

    assert code == 0
    truth = json.loads(capsys.readouterr().out)
    assert truth["days"] == 3
    assert (out / "loans.yaml").is_file() and not (out / "loans" / "retrain.yaml").exists()
    assert (out / "loans" / "ground_truth.json").is_file()
    assert len(list((out / "loans" / "landing" / "features").glob("*.parquet"))) == 3
    fleet = load_fleet(out)
    assert fleet.broken == () and list(fleet.models) == ["loans"]
    cfg = fleet.models["loans"]
    assert cfg.data.landing_dir == (out / "loans" / "landing").resolve()
    assert cfg.workdir == (out / ".retrain" / "loans").resolve()
    assert (cfg.model.registered_name, cfg.mlflow.experiment_name) == ("loans", "loans")
    assert cfg.tracking_uri == f"sqlite:///{out.resolve()}/.retrain/mlflow.db"


def test_simulate_model_leaves_the_fleet_defaults_to_the_loader(tmp_path):
    out = tmp_path / "fleet"
    cli.main(["simulate", "--out", str(out), "--model", "loans", "--task", "regression", *TINY])

    raw = yaml.safe_load((out / "loans.yaml").read_text())

    assert "workdir" not in raw and "mlflow" not in raw
    assert raw["model"] == {"task": "regression"}
    assert raw["data"]["landing_dir"] == "loans/landing"


def test_simulate_two_models_into_one_fleet(tmp_path, capsys):
    out = tmp_path / "fleet"
    cli.main(["simulate", "--out", str(out), "--model", "loans", *TINY])
    cli.main(["simulate", "--out", str(out), "--model", "churn", "--task", "multiclass", *TINY])
    capsys.readouterr()

    fleet = load_fleet(out)

    assert fleet.broken == () and list(fleet.models) == ["churn", "loans"]
    assert fleet.models["churn"].task == "multiclass"


def test_simulate_refuses_an_invalid_model_name(tmp_path):
    with pytest.raises(SystemExit, match="'car-loan' is not a model name"):
        cli.main(["simulate", "--out", str(tmp_path / "f"), "--model", "car-loan", *TINY])
    assert not (tmp_path / "f").exists()
