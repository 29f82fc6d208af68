"""The docstrings written under a Struct's fields (as Python's own attribute docstrings
are), for the API's document: msgspec describes a Struct by its class docstring only."""

from __future__ import annotations

import ast
import inspect
import itertools
import textwrap
from collections.abc import Iterator, Mapping
from functools import cache
from typing import Any

import msgspec


def _structs(root: type = msgspec.Struct) -> Iterator[type]:
    sub: type
    for sub in root.__subclasses__():
        yield sub
        yield from _structs(sub)


@cache
def field_docs(struct: type) -> dict[str, str]:
    """``{field: docstring}`` for the fields of ``struct`` (and of the Structs it extends)
    that have a string literal right below them."""
    found: dict[str, str] = {}
    for cls in reversed(struct.__mro__):
        if not (isinstance(cls, type) and issubclass(cls, msgspec.Struct)):
            continue
        if cls is msgspec.Struct:
            continue
        try:
            source = textwrap.dedent(inspect.getsource(cls))
        except (OSError, TypeError):
            continue
        body = ast.parse(source).body[0]
        if not isinstance(body, ast.ClassDef):
            continue
        statements = body.body
        for here, after in itertools.pairwise(statements):
            if (
                isinstance(here, ast.AnnAssign)
                and isinstance(here.target, ast.Name)
                and isinstance(after, ast.Expr)
                and isinstance(after.value, ast.Constant)
                and isinstance(after.value.value, str)
            ):
                found[here.target.id] = inspect.cleandoc(after.value.value)
    return found


def describe_fields(components: Mapping[str, Any], used: list[type]) -> None:
    """Put each documented field's docstring in its component's schema (by the field's
    encoded name), for every Struct named among ``components``."""
    by_name: dict[str, type] = {}
    for struct in [*used, *_structs()]:
        by_name.setdefault(struct.__name__, struct)
    for name, schema in components.items():
        found = by_name.get(name)
        properties = schema.get("properties") if isinstance(schema, dict) else None
        if found is None or not properties:
            continue
        struct = found
        encoded = {f.name: f.encode_name for f in msgspec.structs.fields(struct)}
        for field, text in field_docs(struct).items():
            key = encoded.get(field)
            if key in properties and "description" not in properties[key]:
                properties[key]["description"] = text
