"""The README's configuration reference, generated from the pydantic models in config.py.

Every key is listed dotted (`drift.psi_threshold`) with its type, default and meaning; the meaning
is the attribute docstring written under the field, read here from the models' source (pydantic's
`use_attribute_docstrings` would do it at every import of the config, which is slow; only this
module needs them). `make docs` rewrites the README section between the markers; a unit test fails
when the README and the models disagree.

    python -m retrain_assets.config_doc                   # print the reference
    python -m retrain_assets.config_doc --write README.md # replace it in place
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import functools
import inspect
import json
import re
import types
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin

import annotated_types as at
from pydantic import BaseModel
from pydantic.fields import FieldInfo

from retrain_assets.config import RetrainConfig

START = "<!-- config-reference:start -->"
END = "<!-- config-reference:end -->"
LOADER_SET = {"source"}
"""Keys the loader fills in; a value written in the file would be overwritten, so not listed."""

_SCALARS = {int: "int", float: "float", bool: "bool", str: "str", Path: "path", dt.date: "date"}


@functools.cache
def _module_docstrings(source_file: str) -> dict[str, dict[str, str]]:
    """Class name -> {attribute: the docstring written under it} for the top-level classes of a
    source file, cleaned as pydantic cleans them (`inspect.cleandoc`)."""
    tree = ast.parse(Path(source_file).read_text(encoding="utf-8"))
    out: dict[str, dict[str, str]] = {}
    for node in tree.body:
        if not isinstance(node, ast.ClassDef):
            continue
        docs = out[node.name] = {}
        for previous, statement in zip(node.body, node.body[1:], strict=False):
            if (
                isinstance(previous, ast.AnnAssign)
                and isinstance(previous.target, ast.Name)
                and isinstance(statement, ast.Expr)
                and isinstance(statement.value, ast.Constant)
                and isinstance(statement.value.value, str)
            ):
                docs[previous.target.id] = inspect.cleandoc(statement.value.value)
    return out


def field_description(model: type[BaseModel], name: str, field: FieldInfo) -> str:
    """What a field means: its description, else the docstring under it in the class that
    declares it (a field inherited from a base class is documented there)."""
    if field.description:
        return field.description
    for cls in model.__mro__:
        if name in inspect.get_annotations(cls):
            source_file = inspect.getsourcefile(cls)
            docs = _module_docstrings(source_file) if source_file else {}
            return docs.get(cls.__name__, {}).get(name, "")
    return ""


def sections(
    model: type[BaseModel] = RetrainConfig, prefix: str = ""
) -> list[tuple[str, type[BaseModel], list[tuple[str, FieldInfo]]]]:
    """(dotted section name, model, [(dotted key, field)]) for a model and every nested model;
    the top-level section's name is ""."""
    rows: list[tuple[str, FieldInfo]] = []
    nested: list = []
    for name, field in model.model_fields.items():
        if not prefix and name in LOADER_SET:
            continue
        key = f"{prefix}{name}"
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            nested += sections(field.annotation, f"{key}.")
        else:
            rows.append((key, field))
    return [(prefix.rstrip("."), model, rows), *nested]


def type_text(annotation: Any) -> str:
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return "one of " + ", ".join(f"`{a}`" for a in args)
    if origin in (Union, types.UnionType):
        names = [type_text(a) for a in args if a is not type(None)]
        text = ", ".join(names[:-1]) + " or " + names[-1] if len(names) > 1 else names[0]
        return f"{text} or null" if type(None) in args else text
    if origin is list:
        return f"list of {type_text(args[0])}"
    if origin is dict:
        return "mapping"
    return _SCALARS.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _number(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def bounds_text(field: FieldInfo) -> str:
    """The field's numeric constraints: `≥ 1`, `in [0, 1]`, `in (0, 0.5)`."""
    low = high = None
    for item in field.metadata:
        if isinstance(item, at.Ge | at.Gt):
            low = ("[", item.ge) if isinstance(item, at.Ge) else ("(", item.gt)
        if isinstance(item, at.Le | at.Lt):
            high = ("]", item.le) if isinstance(item, at.Le) else (")", item.lt)
    if low and high:
        return f" in {low[0]}{_number(low[1])}, {_number(high[1])}{high[0]}"
    if low:
        return f" {'≥' if low[0] == '[' else '>'} {_number(low[1])}"
    if high:
        return f" {'≤' if high[0] == ']' else '<'} {_number(high[1])}"
    return ""


def default_text(field: FieldInfo) -> str:
    if field.is_required():
        return "**required**"
    value = field.get_default(call_default_factory=True, validated_data={})
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = str(value).lower()
    elif isinstance(value, Path | dt.date):
        text = str(value)
    elif isinstance(value, list | dict):
        text = json.dumps(value)
    else:
        text = _number(value)
    return f"`{text}`"


def _cell(text: str) -> str:
    """A docstring as one table cell: one line; characters markdown would act on escaped."""
    return re.sub(r"([\\*<|])", r"\\\1", " ".join(text.split()))


def config_reference_markdown() -> str:
    """The reference as markdown: one table per section, in the models' order."""
    out: list[str] = []
    for name, model, rows in sections():
        if not rows:
            continue
        out += (
            [f"### `{name}`", "", _cell(model.__doc__ or ""), ""] if name else ["### Top level", ""]
        )
        out += ["| key | type | default | meaning |", "|---|---|---|---|"]
        for key, field in rows:
            kind = type_text(field.annotation) + bounds_text(field)
            meaning = _cell(field_description(model, key.rsplit(".", 1)[-1], field))
            out.append(f"| `{key}` | {kind} | {default_text(field)} | {meaning} |")
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def readme_section(readme: str) -> str:
    """The text between the markers (ValueError when they are missing)."""
    start, end = readme.find(START), readme.find(END)
    if start < 0 or end < start:
        raise ValueError(f"README has no {START} ... {END} section")
    return readme[start + len(START) : end].strip("\n") + "\n"


def replace_section(readme: str) -> str:
    readme_section(readme)  # the markers must exist
    start, end = readme.find(START) + len(START), readme.find(END)
    return f"{readme[:start]}\n{config_reference_markdown()}{readme[end:]}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--write", type=Path, help="rewrite this file's reference section")
    args = parser.parse_args(argv)
    if args.write is None:
        print(config_reference_markdown(), end="")
        return
    text = args.write.read_text(encoding="utf-8")
    updated = replace_section(text)
    if updated != text:
        args.write.write_text(updated, encoding="utf-8")
    print(f"{args.write}: config reference {'updated' if updated != text else 'up to date'}")


if __name__ == "__main__":
    main()
