"""Whether a registered version may become the champion, decided from the registry's own record.

A blocking check stops later steps only in its own run, so promotion (often a later run: the
canary's) never trusts that an earlier run's gates held: it reads the gate and canary results the
gates wrote as tags on the version itself, and refuses a version without them.
"""

from __future__ import annotations

from dataclasses import dataclass

QUALITY_GATES = ("gate.auc", "gate.metric")
"""The model-quality gate's tag: ``gate.auc`` for binary (every version registered before the
task types has only this one), ``gate.metric`` for multiclass and regression. Either passes."""
REQUIRED_GATES: tuple[tuple[str, ...], ...] = (QUALITY_GATES, ("gate.latency",))
"""Every gate a version must have passed; each entry lists alternative tags, one of which must
read ``passed``."""
CANARY_TAG = "canary"
PREVIOUS_TAG = "previous_champion"


@dataclass(frozen=True)
class Decision:
    """promote: move `champion`; keep: nothing to do yet; drop: the challenger lost for good."""

    action: str
    reason: str


def missing_gates(tags: dict[str, str]) -> list[str]:
    """Required gates that did not record a pass on the version, alternatives joined by ``/``:
    ``["gate.auc/gate.metric", "gate.latency"]`` for a version without any gate tag."""
    return [
        "/".join(alternatives)
        for alternatives in REQUIRED_GATES
        if not any(tags.get(tag) == "passed" for tag in alternatives)
    ]


def decide(
    champion: str | None, challenger: str | None, tags: dict[str, str], canary_mode: str
) -> Decision:
    """What to do with the challenger, given its registry tags.

    Raises ValueError when asked to promote a version whose tags do not show every gate passed:
    that is a broken invariant (someone set the alias by hand), not a normal outcome."""
    if challenger is None:
        return Decision("keep", f"no challenger; champion stays v{champion}")
    missing = missing_gates(tags)
    if missing:
        raise ValueError(f"v{challenger} has no passed {', '.join(missing)}: refusing to promote")
    if champion is None:
        return Decision("promote", f"first champion: v{challenger} passed its gates")
    if challenger == champion:
        return Decision("keep", f"v{challenger} already is the champion")
    if canary_mode == "none":
        return Decision("promote", f"v{challenger} passed its gates (canary mode none)")
    verdict = tags.get(CANARY_TAG)
    if verdict == "passed":
        return Decision("promote", f"v{challenger} passed its gates and the canary")
    if verdict == "failed":
        return Decision("drop", f"v{challenger} failed the canary; champion stays v{champion}")
    return Decision("keep", f"v{challenger} awaits the canary; champion stays v{champion}")
