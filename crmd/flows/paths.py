"""Where a customer is in a flow: a step's path (``"2.yes.0"``) and the step after it.

The step after a step is the next one in its list; after the last one of a branch's
arm, the step after that branch; after the last one of the top list, none (""), and
the flow is done.
"""

from __future__ import annotations

from crmd.flows.model import Step

FIRST = "0"
END = ""


def parse(path: str) -> list[int | str]:
    """``"2.yes.0"`` as ``[2, "yes", 0]``."""
    return [int(p) if p.isdigit() else p for p in path.split(".")] if path else []


def step_at(steps: list[Step], path: str) -> Step | None:
    """The step ``path`` names, or None when there is none (a path of another version)."""
    parts = parse(path)
    current: list[Step] = steps
    step: Step | None = None
    while parts:
        index = parts.pop(0)
        if not isinstance(index, int) or index >= len(current):
            return None
        step = current[index]
        if not parts:
            return step
        arm = parts.pop(0)
        if step.branch is None or arm not in ("yes", "no"):
            return None
        current = step.branch.yes if arm == "yes" else step.branch.no
    return step


def first_of(steps: list[Step]) -> str:
    return FIRST if steps else END


def arm_start(steps: list[Step], branch_path: str, arm: str) -> str:
    """Where a branch's arm begins: its first step, or the step after the branch when
    the arm is empty."""
    step = step_at(steps, branch_path)
    assert step is not None and step.branch is not None
    chosen = step.branch.yes if arm == "yes" else step.branch.no
    return f"{branch_path}.{arm}.0" if chosen else after(steps, branch_path)


def after(steps: list[Step], path: str) -> str:
    """The path of the step that runs after ``path``'s (END when none is left)."""
    parts = parse(path)
    while parts:
        index = parts[-1]
        assert isinstance(index, int)
        enclosing = _list_at(steps, parts[:-1])
        if index + 1 < len(enclosing):
            return _text([*parts[:-1], index + 1])
        parts = parts[:-2]  # out of the arm: the step after the branch holding it
    return END


def _list_at(steps: list[Step], prefix: list[int | str]) -> list[Step]:
    if not prefix:
        return steps
    branch = step_at(steps, _text(prefix[:-1]))
    assert branch is not None and branch.branch is not None
    return branch.branch.yes if prefix[-1] == "yes" else branch.branch.no


def _text(parts: list[int | str]) -> str:
    return ".".join(str(p) for p in parts)
