"""The console script is the user's first contact: `simulate` must write a feed that the config
loader accepts as it is, and `make dev`'s demo feed must land its days one at a time."""

from __future__ import annotations

import json
import threading
from pathlib import Path

from retrain_assets import cli, dev
from retrain_assets.config import load_config
from retrain_assets.fleet import load_fleet
from retrain_assets.lib.data import feed


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


def test_demo_fleet_is_held_back_and_landed_one_day_at_a_time(tmp_path: Path) -> None:
    demo = tmp_path / "demo"
    assert dev.ensure_demo_data(demo) is True
    fleet = load_fleet(demo)
    assert not fleet.broken and list(fleet.models) == sorted(dev.DEMO_MODELS)
    assert {cfg.task for cfg in fleet.models.values()} == {"binary", "multiclass", "regression"}
    for name, spec in dev.DEMO_MODELS.items():
        landing, staged = demo / name / "landing", demo / name / dev.STAGED
        assert (landing / "reference.parquet").is_file()
        assert not list((landing / "features").iterdir())  # every day waits in the feed
        assert len(feed.pending_days(staged)) == spec.days + spec.label_delay
        cfg = fleet.models[name]
        assert cfg.data.landing_dir == landing and cfg.ingest.sensor_interval_seconds == 5
        assert cfg.workdir == demo / ".retrain" / name and cfg.model.registered_name == name
    assert dev.ensure_demo_data(demo) is False  # a restart keeps the feed where it was

    stop = threading.Event()
    stop.set()
    dev.run_feed(demo, 0.001, stop)  # stopped: lands nothing
    assert not list((demo / "car_loan" / "landing" / "features").iterdir())
    dev.run_feed(demo, 0.001, threading.Event())  # lands every model's days, then returns
    assert not dev.pending(demo)
    for name, spec in dev.DEMO_MODELS.items():
        assert len(list((demo / name / "landing" / "features").iterdir())) == spec.days
