"""`retrain-assets backtest --compare` on someone else's data, not the simulator's: CSV files (the
feature files `;` separated), string ids, a string target with ``positive_label: malignant``, no
timestamp column, no answer key, and a config living apart from its data (tests/dagster/
test_own_data.py). The served live AUCs must count ``malignant`` as the positive class: mapped the
wrong way they would be 1 - AUC, well below 0.5 on this easy data set.

Two policies over 4 data days of ~54 rows: about 30 s."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from retrain_assets.cli import main
from tests.dagster.test_backtest import _hashes
from tests.dagster.test_backtest_compare import FIGURES
from tests.dagster.test_own_data import _write_feed

LAST_DAY = "2024-03-04"  # 4 of the 5 data days: the replays stay within the suite's budget
LABEL_DAYS = ["2024-03-02", "2024-03-03", "2024-03-04"]  # labels land a day late
NO_ANSWER_KEY = ("detection_delay_batches", "false_alarms")


def _truth_auc(landing: Path, predictions: Path) -> float:
    """AUC of the champion scores a replay stored, against the user's own labels read straight
    from their CSV files with `malignant` as 1: the figure the backtest must agree with."""
    files = [landing / "labels" / f"{day}.csv" for day in LABEL_DAYS]
    labels = pd.concat(pd.read_csv(p) for p in files)
    scores = pd.concat(pd.read_parquet(p) for p in sorted(predictions.glob("*.parquet")))
    rows = labels.merge(scores, on="patient_id", validate="one_to_one")
    assert len(rows) == len(labels)  # every string id found its stored score
    return float(roc_auc_score(rows["diagnosis"] == "malignant", rows["champion_score"]))


def test_compare_on_a_foreign_csv_feed_with_a_string_target(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = _write_feed(tmp_path / "feed")
    before = _hashes(tmp_path / "feed")
    report_path, out = tmp_path / "compare.json", tmp_path / "replays"
    argv = ["backtest", "--config", str(config), "--compare", "--policies", "never,daily"]
    argv += ["--to", LAST_DAY, "--json", str(report_path), "--out", str(out), "--quiet"]
    code = main(argv)
    assert code == 0
    assert "mean live AUC" in capsys.readouterr().out
    result = json.loads(report_path.read_text())
    assert list(result["policies"]) == ["never", "daily"]
    assert result["truth"] is None

    for name, figures in result["policies"].items():
        assert set(FIGURES) <= set(figures), name
        missing = [k for k in FIGURES if figures[k] is None and k not in NO_ANSWER_KEY]
        assert missing == [], name
        assert all(figures[k] is None for k in NO_ANSWER_KEY), name  # no ground_truth.json
        assert figures["labelled_days"] == len(LABEL_DAYS), name
        # malignant is 1: a flipped target would give 1 - AUC, well below 0.5
        assert figures["mean_live_auc"] > 0.95 and figures["final_live_auc"] > 0.95, name
        assert figures["baseline_live_auc"] > 0.95, name
        # and the final live AUC is exactly the one the user's own CSV labels give
        landing = tmp_path / "feed" / "data" / "incoming"
        stored = out / name / "work" / "monitoring" / "predictions"
        assert figures["final_live_auc"] == pytest.approx(_truth_auc(landing, stored), abs=1e-4)

    never, daily = result["policies"]["never"], result["policies"]["daily"]
    assert never["retrains"] == {"bootstrap": 1} and never["retrains_total"] == 1
    assert never["promotions"] == 0 and never["final_champion_version"] == "1"
    # never serves the bootstrap model, which is the baseline: same model, same rows
    assert never["final_live_auc"] == never["baseline_live_auc"]
    assert daily["retrains"]["bootstrap"] == 1 and daily["retrains"].get("schedule", 0) >= 1
    assert daily["promotions"] >= 1 and daily["baseline_live_auc"] == never["baseline_live_auc"]

    labelled = [d for d in result["days"] if d["live_auc"]["never"] is not None]
    assert [d["day"] for d in labelled] == LABEL_DAYS
    assert all(min(d["live_auc"].values()) > 0.9 for d in labelled)

    assert _hashes(tmp_path / "feed") == before  # the user's data and config: only read
    assert not (tmp_path / "feed" / "state").exists()  # nor their workdir written
