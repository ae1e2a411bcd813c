"""The post-promotion guardrail: for the first labelled batches after a promotion, the previous
champion keeps being scored in the shadow; if the new champion does worse than it on the same
rows by more than a margin, the promotion is undone."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from sklearn.metrics import roc_auc_score


@dataclass(frozen=True)
class GuardrailVerdict:
    """The new champion against the one it replaced, on the same labelled rows."""

    n_rows: int
    batches: int
    new_auc: float | None
    previous_auc: float | None
    regression: bool
    done: bool  # the watch is over (enough batches without a regression)
    reason: str


def assess_guardrail(
    y: np.ndarray,
    new_score: np.ndarray,
    previous_score: np.ndarray,
    *,
    batches: int,
    max_batches: int,
    margin: float,
    min_rows: int,
) -> GuardrailVerdict:
    """Regression when, over at least min_rows rows, new AUC < previous AUC - margin."""
    n = len(y)
    if n < min_rows or len(np.unique(y)) < 2:
        done = batches >= max_batches
        why = f"{n} labelled rows scored by both (< {min_rows} or one class): no verdict yet"
        return GuardrailVerdict(n, batches, None, None, False, done, why)
    new, old = float(roc_auc_score(y, new_score)), float(roc_auc_score(y, previous_score))
    regression = new < old - margin
    done = regression or batches >= max_batches
    verdict = "regression: roll back" if regression else "no regression"
    reason = (
        f"new champion AUC {new:.4f} vs previous {old:.4f} on the same {n} rows over {batches} "
        f"batch(es) (margin {margin}): {verdict}"
    )
    return GuardrailVerdict(n, batches, new, old, regression, done, reason)
