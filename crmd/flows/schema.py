"""Flows as the API answers them: a flow with its definition, versions and counts.

The request bodies are the model's (``FlowBody``, ``FlowChange``); a stored flow is
``FlowRecord``, as ``crmd.flows.service`` reads it from ``flows``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec
from bson import ObjectId

from crmd.flows.model import Definition
from crmd.http.describe import Moment

FlowStatus = Literal["draft", "active", "paused", "archived"]


class FlowRecord(msgspec.Struct, kw_only=True):
    """A ``flows`` document (the storage contract)."""

    id: ObjectId = msgspec.field(name="_id")
    n: int
    name: str
    status: FlowStatus
    version: int
    """The current version's number: what a customer entering now runs."""
    definition: Definition
    triggerKey: str
    createdAt: datetime
    updatedAt: datetime
    activatedAt: datetime | None = None
    """When it was first activated: from then on, a change to its definition makes a
    new version."""


class FlowCounts(msgspec.Struct):
    """Customers by where they are in the flow (every version), and messages sent."""

    entered: int
    """Entries, each customer's each time (a flow with ``entry: every``)."""
    waiting: int
    active: int
    """Running a step now (between a wait and the next)."""
    done: int
    exited: int
    converted: int
    """Reached the goal."""
    messaged: int
    """Messages its send steps handed to a vendor."""


class StepRuns(msgspec.Struct):
    """How many times a step of the current version has run."""

    path: str
    kind: str
    runs: int


class VersionRef(msgspec.Struct):
    version: int
    createdAt: Moment


class FlowVersion(msgspec.Struct):
    """One version of a flow, as it was made: never changed once a customer may be in
    it."""

    flowId: str
    version: int
    definition: Definition
    createdAt: Moment


class Flow(msgspec.Struct, kw_only=True):
    id: str
    name: str
    status: FlowStatus
    version: int
    definition: Definition
    """The current version's."""
    triggerKey: str
    createdAt: Moment
    updatedAt: Moment
    activatedAt: Moment | None
    actions: list[Literal["activate", "pause", "archive"]]
    """What an operator may do now (``POST /flows/{id}/<action>``; archive is
    ``DELETE``)."""
    counts: FlowCounts
    versions: list[VersionRef] = []
    """On a single flow's answer: each version, oldest first."""
    steps: list[StepRuns] = []
    """On a single flow's answer: each step of the current version that has run."""


class FlowList(msgspec.Struct):
    items: list[Flow]
    total: int
    cursor: str | None
    """Pass it back as ``cursor`` for the next page; null on the last."""


FlowFilter = Annotated[
    Literal["draft", "active", "paused", "archived", "all"],
    msgspec.Meta(description="Only flows in this status; `all` with archived ones too."),
]
