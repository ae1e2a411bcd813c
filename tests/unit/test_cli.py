"""The console script is the user's first contact: `simulate` must write a feed that the config
loader accepts as it is, and `make dev`'s demo step must simulate only into an empty folder."""

from __future__ import annotations

import json
from pathlib import Path

from retrain_assets import cli, dev
from retrain_assets.config import load_config


def test_simulate_command_writes_a_loadable_feed(tmp_path: Path, capsys) -> None:
    out = tmp_path / "feed"
    code = cli.main(
        [
            "simulate", "--out", str(out), "--days", "5", "--rows-per-day", "50",
            "--drift", "abrupt", "--drift-day", "2", "--label-delay", "1", "--seed", "4",
            "--start-date", "2024-05-01", "--reference-rows", "200",
        ]
    )  # fmt: skip
    assert code == 0
    truth = json.loads(capsys.readouterr().out)
    assert truth["drift"] == "abrupt" and truth["drift_date"] == "2024-05-03"
    cfg = load_config(out / "retrain.yaml")
    assert cfg.data.start_date.isoformat() == "2024-05-01"
    assert len(list((out / "landing" / "features").glob("*.parquet"))) == 5
    assert sorted(p.stem for p in (out / "landing" / "labels").glob("*.parquet"))[0] == "2024-05-02"


def test_demo_data_is_simulated_only_when_the_landing_folder_is_empty(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    assert dev.ensure_demo_data(demo) is True
    first = sorted((demo / "landing" / "features").iterdir())
    stamp = first[0].stat().st_mtime_ns
    assert dev.ensure_demo_data(demo) is False
    assert first[0].stat().st_mtime_ns == stamp
    cfg = load_config(demo / "retrain.yaml")
    assert cfg.data.landing_dir == demo / "landing"
