"""The README documents what a user configures and what the platform runs; these tests keep it so.

The configuration reference is generated from the pydantic models, so a key added without a
docstring, or a README not regenerated, fails here. Every asset of the Definitions must have a row
saying what it is and what refreshes it, naming only jobs, sensors and schedules that exist.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from pydantic import BaseModel

from retrain_assets import config_doc
from retrain_assets.config import RetrainConfig

README = Path(__file__).resolve().parents[2] / "README.md"
ASSET_TABLE_HEADER = "| asset | group | what it is | what refreshes it | metadata |"


def _models(model: type[BaseModel] = RetrainConfig) -> list[type[BaseModel]]:
    nested = [
        f.annotation
        for f in model.model_fields.values()
        if isinstance(f.annotation, type) and issubclass(f.annotation, BaseModel)
    ]
    return [model, *(m for n in nested for m in _models(n))]


def _asset_rows() -> dict[str, str]:
    """Asset name -> its "what refreshes it" cell, from the README's asset table."""
    lines = README.read_text(encoding="utf-8").splitlines()
    assert ASSET_TABLE_HEADER in lines, "README has no asset table"
    rows = {}
    for line in lines[lines.index(ASSET_TABLE_HEADER) + 2 :]:
        if not line.startswith("|"):
            break
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        name = re.fullmatch(r"`(\w+)(\[day\])?`", cells[0])
        assert name, f"asset table row does not start with an asset name: {line}"
        assert all(cells[1:4]), f"asset table row has an empty cell: {line}"
        rows[name.group(1)] = cells[3]
    return rows


def test_readme_config_reference_is_up_to_date():
    section = config_doc.readme_section(README.read_text(encoding="utf-8"))
    assert section == config_doc.config_reference_markdown(), (
        "README config reference is out of date: run `make docs`"
    )


@pytest.mark.parametrize("model", _models(), ids=lambda m: m.__name__)
def test_every_config_key_is_documented(model):
    """A new key without a docstring under it (its description) fails here."""
    assert (model.__doc__ or "").strip(), f"{model.__name__} has no docstring"
    undocumented = [
        name
        for name, field in model.model_fields.items()
        if not (isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel))
        and not config_doc.field_description(model, name, field).strip()
    ]
    assert not undocumented, f"{model.__name__}: fields without a docstring: {undocumented}"


def test_reference_lists_every_key_with_type_and_default():
    text = config_doc.config_reference_markdown()
    keys = re.findall(r"^\| `([\w.]+)` \|", text, flags=re.MULTILINE)
    assert len(keys) == len(set(keys))
    assert {"workdir", "data.landing_dir", "drift.psi_threshold", "mlflow.ui_url"} <= set(keys)
    assert "source" not in keys  # set by the loader, not by the user
    assert "| `drift.psi_threshold` | float > 0 | `0.2` | A column whose PSI" in text
    assert "| `data.start_date` | date | **required** |" in text
    assert "| `training.strategy` | one of `full`, `rolling_window`," in text


def test_replace_section_keeps_the_rest_of_the_readme():
    readme = f"# t\n\nbefore\n{config_doc.START}\nstale\n{config_doc.END}\nafter\n"
    updated = config_doc.replace_section(readme)
    assert updated.startswith(f"# t\n\nbefore\n{config_doc.START}\n### Top level")
    assert updated.endswith(f"\n{config_doc.END}\nafter\n")
    assert config_doc.replace_section(updated) == updated
    with pytest.raises(ValueError, match="config-reference"):
        config_doc.replace_section("# no markers\n")


def test_every_asset_has_a_row_in_the_readme(project):
    assets = {k.to_user_string() for k in project.defs.resolve_asset_graph().get_all_asset_keys()}
    rows = _asset_rows()
    assert not assets - rows.keys(), f"assets without a README row: {sorted(assets - rows.keys())}"
    assert not rows.keys() - assets, f"README rows of no asset: {sorted(rows.keys() - assets)}"


def test_asset_table_names_only_existing_triggers(project):
    """The refresh column names real jobs, sensors and schedules, and every one of them."""
    defs = project.defs
    known = {
        *(j.name for j in defs.jobs or []),
        *(s.name for s in defs.sensors or []),
        *(s.name for s in defs.schedules or []),
    }
    named = {
        n
        for cell in _asset_rows().values()
        for n in re.findall(r"`(\w+_(?:job|sensor|schedule))`", cell)
    }
    assert named <= known, f"README names unknown jobs/sensors/schedules: {sorted(named - known)}"
    assert known <= named, f"README asset table never names: {sorted(known - named)}"
