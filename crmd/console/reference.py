"""``/reference``: the API's OpenAPI document as a page a person reads, rendered here
from the document itself (no script, nobody else's)."""

from __future__ import annotations

import json
import re
from collections import Counter
from typing import Any

from aiohttp import web

from crmd.console.web import open_page, render
from crmd.http.openapi import TAGS, api_document

routes = web.RouteTableDef()
LIMITS = (
    ("minLength", "at least {} characters"),
    ("maxLength", "at most {} characters"),
    ("minimum", "≥ {}"),
    ("maximum", "≤ {}"),
    ("exclusiveMinimum", "> {}"),
    ("minItems", "at least {} items"),
    ("maxItems", "at most {} items"),
    ("pattern", "matching {}"),
    ("format", "{}"),
)


def kind(schema: Any) -> dict[str, Any]:
    """A schema, told briefly: its type (a component's name links to it), its allowed
    values and its limits."""
    if not isinstance(schema, dict):
        return {"type": "any", "ref": None, "notes": []}
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return {"type": name, "ref": name, "notes": []}
    for either in ("anyOf", "oneOf"):
        if either in schema:
            told = [kind(s) for s in schema[either]]
            types = [t["type"] for t in told]
            notes = [n for t in told for n in t["notes"]]
            refs = [t["ref"] for t in told if t["ref"]]
            return {
                "type": " or ".join(types),
                "ref": refs[0] if len(refs) == 1 else None,
                "notes": notes,
            }
    notes = [text.format(schema[key]) for key, text in LIMITS if key in schema]
    if "enum" in schema:
        notes.insert(0, "one of " + ", ".join(str(v) for v in schema["enum"]))
    if "default" in schema:
        notes.append(f"default {json.dumps(schema['default'])}")
    values = schema.get("enum", ())
    base = schema.get("type") or (
        "string" if values and all(isinstance(v, str) for v in values) else "any"
    )
    if base == "array":
        item = kind(schema.get("items", {}))
        return {
            "type": f"array of {item['type']}",
            "ref": item["ref"],
            "notes": notes + item["notes"],
        }
    if base == "object" and "additionalProperties" in schema:
        value = kind(schema["additionalProperties"])
        return {"type": f"object of {value['type']}", "ref": value["ref"], "notes": notes}
    return {"type": base, "ref": None, "notes": notes}


def _alias_target(description: str) -> str:
    """The operationId-less anchor of the route an original client's route stands for:
    its method and path, as written in the description."""
    found = re.search(r"use `([A-Z]+) ([^`]+)`", description)
    return f"{found[1]} {found[2]}" if found else ""


def spans(text: str) -> list[tuple[str, bool]]:
    """Text with its ``code`` spans (between backticks, doubled or not) marked."""
    parts = text.replace("``", "`").split("`")
    return [(part, index % 2 == 1) for index, part in enumerate(parts) if part]


def operations(document: dict[str, Any]) -> list[dict[str, Any]]:
    """Every operation, grouped by tag in the document's order."""
    groups: dict[str, list[dict[str, Any]]] = {tag: [] for tag in TAGS}
    ids = {
        f"{method.upper()} {path}": operation["operationId"]
        for path, item in document["paths"].items()
        for method, operation in item.items()
    }
    for path, item in document["paths"].items():
        for method, operation in item.items():
            body = operation.get("requestBody", {}).get("content", {})
            groups[operation["tags"][0]].append(
                {
                    "anchor": operation["operationId"],
                    "method": method.upper(),
                    "path": path,
                    "summary": operation["summary"],
                    "description": spans(operation.get("description", "")),
                    "deprecated": operation.get("deprecated", False),
                    "public": not operation["security"],
                    "signed": any("receiptSignature" in s for s in operation["security"]),
                    "instead": ids.get(_alias_target(operation.get("description", ""))),
                    "parameters": [
                        {
                            **p,
                            "kind": kind(p["schema"]),
                            "description": spans(p.get("description", "")),
                        }
                        for p in operation.get("parameters", [])
                    ],
                    "bodies": [
                        {"media": media, "kind": kind(c.get("schema"))} for media, c in body.items()
                    ],
                    "responses": [
                        {
                            "key": f"{status} {r['description']}",
                            "status": status,
                            "description": r["description"],
                            "bodies": [
                                {"media": m, "kind": kind(c.get("schema"))}
                                for m, c in r.get("content", {}).items()
                            ],
                        }
                        for status, r in operation["responses"].items()
                    ],
                }
            )
    return [
        {"tag": tag, "about": TAGS[tag], "operations": found}
        for tag, found in groups.items()
        if found
    ]


def shared_errors(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The error answers (same status, same meaning) that at least half the operations
    give: said once, above them all, and no more under each. Each operation is told
    which of them it may give (``shared``)."""
    operations = [op for group in groups for op in group["operations"]]
    seen: dict[str, dict[str, Any]] = {}
    counts: Counter[str] = Counter()
    for op in operations:
        for answer in op["responses"]:
            if answer["status"].startswith(("4", "5")):
                counts[answer["key"]] += 1
                seen.setdefault(answer["key"], answer)
    keys = {key for key, n in counts.items() if n * 2 >= len(operations)}
    for op in operations:
        op["shared"] = [a["status"] for a in op["responses"] if a["key"] in keys]
    return sorted((seen[key] for key in keys), key=lambda a: (a["status"], a["description"]))


def schemas(document: dict[str, Any]) -> list[dict[str, Any]]:
    found = []
    for name, schema in sorted(document["components"]["schemas"].items()):
        required = set(schema.get("required", ()))
        found.append(
            {
                "name": name,
                "description": spans(schema.get("description", "")),
                "fields": [
                    {
                        "name": field,
                        "required": field in required,
                        "kind": kind(value),
                        "description": spans(
                            value.get("description", "") if isinstance(value, dict) else ""
                        ),
                    }
                    for field, value in schema.get("properties", {}).items()
                ],
                "kind": None if "properties" in schema else kind(schema),
            }
        )
    return found


@routes.get("/reference")
@open_page
async def reference(request: web.Request) -> web.Response:
    document = api_document(request.app)
    groups = operations(document)
    shared = shared_errors(groups)
    return render(
        request,
        "reference.html",
        {
            "title": "API reference",
            "info": document["info"],
            "groups": groups,
            "shared": shared,
            "shared_keys": {a["key"] for a in shared},
            "schemas": schemas(document),
            "schemes": document["components"]["securitySchemes"],
        },
        section="API",
    )
