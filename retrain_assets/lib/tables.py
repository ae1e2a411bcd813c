"""Tables for people: markdown for asset metadata, plain text for a terminal (tabulate)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub-flavoured markdown table; cells are printed as given (no number parsing)."""
    from tabulate import tabulate

    return tabulate(list(rows), headers=list(headers), tablefmt="github", disable_numparse=True)


def text_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """Left-aligned columns two spaces apart, the headers underlined with dashes."""
    from tabulate import tabulate

    return tabulate(list(rows), headers=list(headers), tablefmt="simple", disable_numparse=True)
