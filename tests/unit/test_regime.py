"""The regime a candidate is trained for decides what drift is judged against once it is the
champion: a drift retraining starts a new regime where its streak began; any other retraining
stays in the champion's regime; with neither there is none (the training set is the reference)."""

from __future__ import annotations

from retrain_assets import names
from retrain_assets.training.candidate import regime_tags


def test_a_drift_retraining_starts_the_regime_where_the_shift_began() -> None:
    run = {names.REASON_TAG: "drift", names.REGIME_START_TAG: "2024-01-07"}
    champion = {names.REFERENCE_SINCE: "2023-11-02"}
    assert regime_tags(run, champion) == {names.REFERENCE_SINCE: "2024-01-07"}


def test_other_retrainings_keep_the_champions_regime() -> None:
    run = {names.REASON_TAG: "schedule"}
    assert regime_tags(run, {names.REFERENCE_SINCE: "2024-01-07"}) == {
        names.REFERENCE_SINCE: "2024-01-07"
    }


def test_no_shift_seen_means_no_regime() -> None:
    assert regime_tags({names.REASON_TAG: "bootstrap"}, {}) == {}
