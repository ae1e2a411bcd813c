"""A fleet as users run it: the real `dg dev` (webserver + daemon) on a folder of three model files
(binary with an abrupt drift, multiclass and regression without one, different label delays) and
a fourth, broken file. Nothing but the daemon's sensors drives it. Polled through the GraphQL API
until every model ingested its days and trained its champion, the drifting model retrained on
drift, the others did not, `fleet_status` was refreshed after the promotions, and the drifting
model's webhook received its alerts; then the overview is looked at in a browser.

Minutes long: `make test-fleet` runs it (CI too), not `make test`."""

from __future__ import annotations

import dataclasses
import datetime as dt
import time
from pathlib import Path

import pytest
import yaml

from retrain_assets.lib.data import simulate as sim
from tests.e2e.test_daemon import ARTIFACTS, CHROMIUM, CHROMIUM_ARGS, _graphql, dg_dev
from tests.unit.test_alerts import Receiver

pytestmark = pytest.mark.fleet

REPO = Path(__file__).resolve().parents[2]
DEADLINE_S = 900
TODAY = dt.date.today()
BASE = sim.SimulationSpec(
    days=5, rows_per_day=300, label_delay=1, seed=3, reference_rows=2000,
    start_date=TODAY - dt.timedelta(days=9),
)  # fmt: skip
MODELS = {
    "loans": dataclasses.replace(BASE, drift="abrupt", drift_day=1),
    "repayment": dataclasses.replace(BASE, task="multiclass", label_delay=2, seed=4),
    "losses": dataclasses.replace(BASE, task="regression", seed=5),
}
FAST = {"sensor_interval_seconds": 2}
RUNS = """{ runsOrError(limit: 500) { ... on Runs { results { runId jobName status
  tags { key value } } } } }"""
FLEET_STATUS = """{ assetOrError(assetKey: {path: ["fleet_status"]}) { ... on Asset {
  assetMaterializations(limit: 1) { metadataEntries { label
  ... on MarkdownMetadataEntry { mdStr } ... on IntMetadataEntry { intValue } } } } } }"""
BROKEN = """{ assetOrError(assetKey: {path: ["typo", "config_error"]}) { ... on Asset {
  definition { description groupName } } } }"""


def _fleet(folder: Path) -> Path:
    from retrain_assets.fleet import fleet_model_contract

    for name, spec in MODELS.items():
        sim.simulate(folder / name, spec)
        contract = fleet_model_contract(
            yaml.safe_load((folder / name / "retrain.yaml").read_text()), name
        )
        contract.update(
            ingest=FAST,
            drift={**FAST, "html_report": False, "cooldown_days": 1},
            performance=FAST,
            canary={**FAST, "mode": "none"},
            guardrail={**FAST, "enabled": False},
            gates={"max_p95_latency_ms": 5000},
        )
        if name == "loans":
            contract["alerts"] = {
                "webhook_url_env": "FLEET_TEST_WEBHOOK",
                "sensor_interval_seconds": 2,
            }
        (folder / f"{name}.yaml").write_text(yaml.safe_dump(contract))
    broken = yaml.safe_load((folder / "losses.yaml").read_text())
    broken["drift"]["psi_treshold"] = 0.3
    (folder / "typo.yaml").write_text(yaml.safe_dump(broken))
    return folder


@pytest.fixture
def fleet_daemon(tmp_path: Path):
    folder = _fleet(tmp_path / "fleet")
    with Receiver() as receiver:
        hook = receiver.url("/hook/fleet-token")
        with dg_dev(tmp_path, folder, FLEET_TEST_WEBHOOK=hook) as (port, _):
            yield port, receiver


def _by_model(runs: list[dict]) -> dict[str, list[tuple[str, str, dict]]]:
    out: dict[str, list[tuple[str, str, dict]]] = {}
    for run in runs:
        tags = {t["key"]: t["value"] for t in run["tags"]}
        out.setdefault(tags.get("retrain/model", ""), []).append(
            (run["jobName"], run["status"], tags)
        )
    return out


def _settled(runs: dict[str, list[tuple[str, str, dict]]]) -> bool:
    """Every model ingested every landing file and retrained as expected; nothing in flight."""
    if any(
        status not in ("SUCCESS", "FAILURE", "CANCELED")
        for m in runs.values()
        for _, status, _ in m
    ):
        return False
    for name, spec in MODELS.items():
        landed = [r for r in runs.get(name, []) if "landing/file" in r[2]]
        if len(landed) < 1 + spec.days + spec.days:  # reference, features, labels (some late)
            return False
    return any(t.get("retrain/reason") == "drift" for _, _, t in runs.get("loans", []))


def test_a_fleet_of_three_models_runs_through_the_daemon(fleet_daemon) -> None:
    port, receiver = fleet_daemon
    started, state = time.monotonic(), "starting"
    while time.monotonic() - started < DEADLINE_S:
        time.sleep(5)
        try:
            runs = _by_model(_graphql(port, RUNS)["runsOrError"]["results"])
        except OSError:
            continue  # the webserver is still starting
        state = {m: len(r) for m, r in runs.items()}
        if _settled(runs):
            break
    else:
        pytest.fail(f"the fleet did not settle within {DEADLINE_S} s: {state}")

    # Every run belongs to a model and runs that model's jobs; the overview's own runs have none.
    for model, model_runs in runs.items():
        assert all(job.startswith(f"{model}_") for job, _, _ in model_runs) or model == ""
    assert {job for job, _, _ in runs.get("", [])} <= {"fleet_status_job"}
    assert not [r for m in runs.values() for r in m if r[1] != "SUCCESS"], state
    reasons = {
        m: sorted(t["retrain/reason"] for job, _, t in runs[m] if job == f"{m}_retrain_job")
        for m in MODELS
    }
    assert reasons["loans"][0] == "bootstrap" and "drift" in reasons["loans"]
    assert reasons["repayment"] == reasons["losses"] == ["bootstrap"]  # loans' drift stays its own

    # The broken file: the others run; the UI shows its error as an asset.
    broken = _graphql(port, BROKEN)["assetOrError"]["definition"]
    assert (
        broken["groupName"] == "fleet_config_errors"
        and "drift.psi_treshold" in broken["description"]
    )

    # fleet_status was refreshed after the promotions: one row per model, the broken one included.
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        found = _graphql(port, FLEET_STATUS)["assetOrError"]["assetMaterializations"]
        entries = {e["label"]: e for e in found[0]["metadataEntries"]} if found else {}
        if entries.get("models", {}).get("intValue") == 4:
            break
        time.sleep(5)
    table = entries["table"]["mdStr"]
    assert all(name in table for name in (*MODELS, "typo")), table

    # The drifting model's webhook heard of its drift retraining and its promotions.
    kinds = [p["kind"] for p in receiver.payloads]
    assert "retraining_started" in kinds and "promotion" in kinds, kinds
    assert all(p["model"] == "loans" for p in receiver.payloads)
    _look_at_the_overview(port)


def _look_at_the_overview(port: int) -> None:
    """The fleet overview and the fleet's asset list, in a real browser."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(exist_ok=True)
    base = f"http://127.0.0.1:{port}"
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1600, "height": 1100})
        page.goto(f"{base}/assets/fleet_status")
        page.get_by_text("needing_attention").first.wait_for(timeout=30_000)
        page.get_by_text("[Show Markdown]").first.click()  # the table, in a dialog
        page.get_by_text("psi_treshold", exact=False).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "fleet_status.png"))
        page.goto(f"{base}/assets")
        page.get_by_text("loans / drift_report").first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "fleet_assets.png"))
        page.goto(f"{base}/assets/typo/config_error")
        page.get_by_text("drift.psi_treshold", exact=False).first.wait_for(timeout=30_000)
        page.screenshot(path=str(ARTIFACTS / "fleet_config_error.png"))
        browser.close()
