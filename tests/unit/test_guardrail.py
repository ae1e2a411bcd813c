"""The guardrail must undo a promotion only on a real live regression, and only with enough rows."""

import numpy as np

from retrain_assets.lib.release.guardrail import assess_guardrail


def _scores(rng, y, strength):
    return 1 / (1 + np.exp(-(strength * y + rng.normal(size=len(y)))))


def test_regression_is_detected_and_ends_the_watch() -> None:
    rng = np.random.default_rng(0)
    y = rng.binomial(1, 0.2, 2000)
    verdict = assess_guardrail(
        y, _scores(rng, y, 0.3), _scores(rng, y, 2.0), batches=1, max_batches=5,
        margin=0.02, min_rows=300,
    )  # fmt: skip
    assert verdict.regression and verdict.done
    assert verdict.new_auc < verdict.previous_auc - 0.02 and "roll back" in verdict.reason


def test_no_regression_keeps_watching_until_the_last_batch() -> None:
    rng = np.random.default_rng(1)
    y = rng.binomial(1, 0.2, 2000)
    good, old = _scores(rng, y, 2.0), _scores(rng, y, 1.5)
    first = assess_guardrail(y, good, old, batches=2, max_batches=5, margin=0.02, min_rows=300)
    last = assess_guardrail(y, good, old, batches=5, max_batches=5, margin=0.02, min_rows=300)
    assert not first.regression and not first.done
    assert not last.regression and last.done


def test_too_few_rows_gives_no_verdict() -> None:
    y = np.array([0, 1, 0, 1])
    verdict = assess_guardrail(
        y, np.zeros(4), np.ones(4), batches=1, max_batches=5, margin=0.0, min_rows=300
    )
    assert not verdict.regression and verdict.new_auc is None and "no verdict" in verdict.reason
