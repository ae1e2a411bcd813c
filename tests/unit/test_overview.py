"""lib/overview.py: which models need attention and why (one test per rule), the order of the
rows, and the table, terminal text and chart made from them."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from retrain_assets.lib.overview import (
    FAILED,
    GATES_FAILED,
    HEADERS,
    OK,
    ModelStatus,
    StatusRow,
    Thresholds,
    assess,
    attention,
    config_error_text,
    counts,
    ordered,
    plot_status_png,
    relative_gap,
    status_table,
    status_text,
)

HEALTHY = ModelStatus(
    name="loans",
    task="binary",
    metric="roc_auc",
    higher_is_better=True,
    champion="3",
    champion_since="2024-01-02",
    newest_day="2024-01-10",
    live_metric=0.80,
    live_day="2024-01-10",
    live_degraded=False,
    estimated_metric=0.81,
    estimated_day="2024-01-10",
    estimated_degraded=False,
    test_metric=0.82,
    drift_day="2024-01-10",
    drift_share=0.1,
    drifted=False,
    retrain_day="2024-01-05",
    retrain_reason="schedule",
    retrain_outcome=OK,
)
REGRESSION = dataclasses.replace(
    HEALTHY,
    name="losses",
    task="regression",
    metric="rmse",
    higher_is_better=False,
    live_metric=100.0,
    test_metric=98.0,
    estimated_metric=None,
    estimated_day=None,
    estimated_degraded=None,
)


def with_(status: ModelStatus = HEALTHY, **changes) -> ModelStatus:
    return dataclasses.replace(status, **changes)


def test_a_healthy_model_needs_no_attention() -> None:
    assert attention(HEALTHY) == []
    assert attention(REGRESSION) == []
    assert HEALTHY.champion_age == 8


def test_a_broken_config_needs_attention_and_names_file_and_error() -> None:
    status = ModelStatus(name="typo", config_error="typo.yaml: drift.psi_treshold: unknown key")
    assert attention(status) == ["config error: typo.yaml: drift.psi_treshold: unknown key"]
    assert status.broken


def test_config_error_text_keeps_the_file_name_and_the_first_line() -> None:
    error = "/x/fleet/typo.yaml: drift.psi_treshold: extra inputs are not permitted\nmore\n"
    assert config_error_text(Path("/x/fleet/typo.yaml"), error) == (
        "typo.yaml: drift.psi_treshold: extra inputs are not permitted"
    )


def test_config_error_text_lists_the_keys_of_an_invalid_config() -> None:
    error = "invalid config /x/fleet/typo.yaml:\n  drift.psi_treshold: unknown key\n  a.b: bad\n"
    assert config_error_text(Path("/x/fleet/typo.yaml"), error) == (
        "typo.yaml: drift.psi_treshold: unknown key; a.b: bad"
    )


def test_no_champion_needs_attention() -> None:
    assert attention(with_(champion=None, test_metric=None)) == ["no champion"]


def test_an_unreadable_registry_needs_attention_without_claiming_no_champion() -> None:
    reasons = attention(with_(champion=None, test_metric=None, read_error="MLflow: down"))
    assert reasons == ["cannot read: MLflow: down"]


def test_a_degraded_live_metric_needs_attention_as_the_report_judged_it() -> None:
    # the report's verdict wins: a small fall it judged degraded, a large one it did not
    assert attention(with_(live_metric=0.815, live_degraded=True)) == [
        "live AUC 0.815 (2024-01-10) worse than test 0.820"
    ]
    assert attention(with_(live_metric=0.5, live_degraded=False)) == []


def test_without_a_verdict_the_live_metric_is_judged_by_the_relative_drop() -> None:
    assert attention(with_(live_metric=0.77, live_degraded=None)) == [
        "live AUC 0.770 (2024-01-10) worse than test 0.820"
    ]
    assert attention(with_(live_metric=0.79, live_degraded=None)) == []  # 0.79 > 0.82 x 0.95
    strict = Thresholds(relative_drop=0.01)
    assert attention(with_(live_metric=0.80, live_degraded=None), strict)


def test_an_error_metric_is_worse_when_it_rises() -> None:
    assert attention(with_(REGRESSION, live_metric=110.0, live_degraded=None)) == [
        "live RMSE 110.0 (2024-01-10) worse than test 98.000"
    ]
    assert attention(with_(REGRESSION, live_metric=80.0, live_degraded=None)) == []


def test_drift_on_the_newest_day_needs_attention() -> None:
    assert attention(with_(drifted=True, drift_share=0.5)) == ["drift on 2024-01-10 (share 50%)"]


def test_a_retraining_stopped_by_its_gates_needs_attention() -> None:
    assert attention(with_(retrain_outcome=GATES_FAILED)) == ["last retraining gates failed"]


def test_a_retraining_that_failed_needs_attention() -> None:
    assert attention(with_(retrain_outcome=FAILED)) == ["last retraining failed"]
    assert attention(with_(retrain_outcome="running")) == []


def test_no_retraining_for_too_many_data_days_needs_attention() -> None:
    stale = with_(retrain_day="2023-12-20")  # 21 data days before the newest
    assert attention(stale) == ["no retraining for 21 data days (last 2023-12-20)"]
    assert attention(stale, Thresholds(stale_days=30)) == []
    assert attention(with_(retrain_day="2023-12-27")) == []  # 14 days: not more than 14


def test_an_estimate_below_the_test_value_needs_attention() -> None:
    assert attention(with_(estimated_metric=0.80, estimated_degraded=True)) == [
        "estimated AUC 0.800 (2024-01-10) worse than test 0.820"
    ]
    assert attention(with_(estimated_metric=0.70, estimated_degraded=None)) == [
        "estimated AUC 0.700 (2024-01-10) worse than test 0.820"
    ]
    assert attention(with_(estimated_metric=0.79, estimated_degraded=None)) == []


def test_reasons_add_up() -> None:
    reasons = attention(with_(drifted=True, retrain_outcome=GATES_FAILED, live_degraded=True))
    assert len(reasons) == 3


def test_rows_needing_attention_come_first_broken_first_then_by_name() -> None:
    rows = [
        assess(with_(name="a")),
        assess(with_(name="z", drifted=True)),
        assess(ModelStatus(name="b", config_error="b.yaml: bad")),
        assess(with_(name="c", champion=None)),
    ]
    assert [r.status.name for r in ordered(rows)] == ["b", "c", "z", "a"]
    assert counts(rows) == {"models": 4, "needing_attention": 3, "broken": 1}


def test_relative_gap_is_positive_when_better_whatever_the_direction() -> None:
    assert relative_gap(0.88, 0.80, True) == pytest.approx(0.1)
    assert relative_gap(90.0, 100.0, False) == pytest.approx(0.1)
    assert relative_gap(None, 0.8, True) is None


def sample_rows() -> list[StatusRow]:
    return [
        assess(HEALTHY),
        assess(with_(REGRESSION, drifted=True, drift_share=0.4, challenger="5")),
        assess(ModelStatus(name="typo", config_error="typo.yaml: bad key")),
    ]


def test_the_markdown_table_has_a_row_per_model_with_its_facts() -> None:
    table = status_table(sample_rows())
    lines = table.strip().splitlines()
    assert lines[0].startswith("| model") and all(h in lines[0] for h in HEADERS)
    body = lines[2:]
    assert [line.split("|")[1].strip() for line in body] == ["typo", "losses", "loans"]
    loans = body[2]
    assert "v3" in loans and "0.800 (2024-01-10)" in loans and "-2.4%" in loans
    assert "2024-01-05 schedule" in loans and loans.rstrip(" |").endswith("ok")
    assert "drift on 2024-01-10 (share 40%)" in body[1] and "v5" in body[1]
    assert "config error: typo.yaml: bad key" in body[0]


def test_the_terminal_text_has_one_aligned_line_per_model_and_a_count() -> None:
    text = status_text(sample_rows())
    lines = text.splitlines()
    model_lines = [line for line in lines if line.split()[0] in ("loans", "losses", "typo")]
    assert len(model_lines) == 3
    column = lines[0].index("task")
    assert all(line[column - 2 : column] == "  " for line in model_lines)
    assert lines[-1] == "3 models, 2 need attention, 1 broken"


def test_the_chart_is_written(tmp_path: Path) -> None:
    path = plot_status_png(sample_rows(), tmp_path / "state" / "fleet_status.png")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert plot_status_png([], tmp_path / "empty.png").stat().st_size > 0
