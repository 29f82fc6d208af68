"""Rule trees back to rule text, for the round-trip and property tests."""

from __future__ import annotations

import json

from crmd.segments.ast import (
    And,
    EventCount,
    Exists,
    InList,
    Node,
    Not,
    Or,
    Relative,
    Value,
)


def render_value(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.10g}" if value != int(value) else str(int(value))
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, Relative):
        return f"{value.days}d"
    if value.whole_day:
        return value.at.date().isoformat()
    return value.at.isoformat().replace("+00:00", "Z")


def render(node: Node) -> str:
    if isinstance(node, And | Or):
        joiner = " AND " if isinstance(node, And) else " OR "
        return joiner.join(f"({render(item)})" for item in node.items)
    if isinstance(node, Not):
        return f"NOT ({render(node.item)})"
    if isinstance(node, Exists):
        return f"exists {node.field}"
    if isinstance(node, EventCount):
        window = "" if node.days is None else f" in {node.days}d"
        return f"event.{node.name}.count {node.op} {node.count}{window}"
    if isinstance(node, InList):
        return f"{node.field} in ({', '.join(render_value(v) for v in node.values)})"
    return f"{node.field} {node.op} {render_value(node.value)}"
