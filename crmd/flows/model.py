"""A flow on the wire and as stored: its trigger, its steps and its goal.

A flow is a tree of steps: a branch holds two lists of steps, and every other step
runs and goes on to the next one in its list; the end of a list goes on after the
branch that holds it, and the end of the top list ends the flow. A step is found by
its **path**, the indexes and branch arms that lead to it (``"2.yes.0"``): a version
of a flow never changes, so a path names the same step for as long as a customer is
in that version.

Each kind of trigger and step is one optional field of one Struct (``Trigger``,
``Step``), exactly one of them set: that is how the JSON reads (``{"wait": "2h"}``,
``{"send": {...}}``) and it keeps the schema a plain object for OpenAPI.
``crmd.flows.checks`` says which combinations are allowed, naming the field.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

import msgspec

from crmd.http.schema import Body

Name = Annotated[str, msgspec.Meta(min_length=1, max_length=200, examples=["Thank you"])]
Rule = Annotated[str, msgspec.Meta(min_length=1, max_length=2000)]
EventName = Annotated[str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]
Duration = Annotated[str, msgspec.Meta(max_length=32, examples=["2h"])]
"""A whole number and a unit: ``30s``, ``15m``, ``2h``, ``3d``, ``1w``."""
TimeOfDay = Annotated[
    str, msgspec.Meta(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$", examples=["09:00"])
]
FieldName = Annotated[
    str, msgspec.Meta(min_length=1, max_length=64, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
]
DateField = Annotated[
    str, msgspec.Meta(min_length=1, max_length=70, pattern=r"^(attrs\.)?[A-Za-z_][A-Za-z0-9_]*$")
]
"""A date column (``lastOrderAt``) or a custom attribute (``attrs.birthday``)."""
ListValue = Annotated[str, msgspec.Meta(min_length=1, max_length=200)]

Status = Literal["draft", "active", "paused"]
Entry = Literal["once", "every"]


class OrderTrigger(Body):
    """An order is stored: any, only the customer's first (``first``), or one of at
    least ``minAmount``."""

    first: bool = False
    minAmount: Annotated[float, msgspec.Meta(ge=0)] | None = None


class Trigger(Body):
    """What puts a customer in the flow: exactly one of ``event``, ``order``,
    ``segment`` and ``anniversary``, and optionally a rule (``where``) on the
    customer's fields and, for an event or an order, on its properties
    (``event.<property>``)."""

    event: EventName | None = None
    order: OrderTrigger | None = None
    segment: str | None = None
    """A saved segment's id: a customer who is in it and was not, is entered (checked
    when the customer changes, and by the clock every ``[flows] segment_check_minutes``)."""
    anniversary: DateField | None = None
    """A date field of the customer (``attrs.<name>`` or a date column): entered each
    year on that day."""
    where: Rule | None = None


class WaitUntil(Body):
    """Wait until the next time the clock shows ``until`` in the customer's time zone
    (their ``timezone`` attribute, else ``[flows] timezone``)."""

    until: TimeOfDay


class Branch(Body):
    rule: Rule
    yes: list[Step] = []
    no: list[Step] = []


class Send(Body):
    """One message, templated as a campaign's is (``{name}``, ``{unsubscribe_url}``...)."""

    message: Annotated[str, msgspec.Meta(min_length=1, max_length=1000)]
    subject: Annotated[str, msgspec.Meta(max_length=200)] = ""
    html: Annotated[str, msgspec.Meta(max_length=50_000)] = ""
    vendor: Annotated[str, msgspec.Meta(max_length=200)] | None = None


class ListChange(Body):
    """Add ``value`` to, or remove it from, the customer's list attribute ``field``
    (``attrs.<field>``, a list of strings)."""

    field: FieldName
    value: ListValue


class Exit(Body):
    pass


class Step(Body):
    """Exactly one of the fields below (``id`` aside)."""

    wait: Duration | WaitUntil | None = None
    branch: Branch | None = None
    send: Send | None = None
    addTo: ListChange | None = None
    removeFrom: ListChange | None = None
    exit: Exit | None = None


class Goal(Body):
    """What ends the flow for a customer who reaches it: an event (by name, with an
    optional rule on its properties) or an order."""

    event: EventName | None = None
    order: bool = False
    where: Rule | None = None


class QuietHours(Body):
    """No message is sent from ``start`` to ``end`` in the customer's time zone: a send
    that falls in them waits until ``end``."""

    start: Annotated[TimeOfDay, msgspec.Meta(examples=["21:00"])]
    end: Annotated[TimeOfDay, msgspec.Meta(examples=["08:00"])]


class FlowBody(Body, kw_only=True):
    name: Name
    status: Status = "draft"
    entry: Entry = "once"
    reentryDays: Annotated[int, msgspec.Meta(ge=0, le=3650)] = 0
    """With ``entry: every``: the days that must pass after a customer entered before
    they may enter again (0: as soon as they have left)."""
    trigger: Annotated[Trigger, msgspec.Meta(examples=[{"event": "signup"}])]
    steps: Annotated[
        list[Step],
        msgspec.Meta(
            min_length=1,
            max_length=100,
            examples=[[{"wait": "1d"}, {"send": {"message": "Welcome, {name}!"}}]],
        ),
    ]
    goal: Goal | None = None
    quietHours: QuietHours | None = None
    """Default ``[flows] quiet_hours``."""


class FlowChange(Body):
    """A PATCH: the fields given replace the flow's; a change to an active flow's
    definition makes a new version."""

    name: Name | None = None
    status: Status | None = None
    entry: Entry | None = None
    reentryDays: Annotated[int, msgspec.Meta(ge=0, le=3650)] | None = None
    trigger: Trigger | None = None
    steps: Annotated[list[Step], msgspec.Meta(min_length=1, max_length=100)] | None = None
    goal: Goal | msgspec.UnsetType | None = msgspec.UNSET
    """``null`` removes the goal; absent keeps it."""
    quietHours: QuietHours | msgspec.UnsetType | None = msgspec.UNSET
    """``null`` removes the flow's own quiet hours (``[flows] quiet_hours`` then
    applies); absent keeps them."""


class Definition(msgspec.Struct, kw_only=True):
    """What a version of a flow is: everything a customer's run reads."""

    entry: Entry
    reentryDays: int
    trigger: Trigger
    steps: list[Step]
    goal: Goal | None = None
    quietHours: QuietHours | None = None


class StateStatus:
    ACTIVE = "active"
    """Queued to run its next step now."""
    WAITING = "waiting"
    """Until ``dueAt``."""
    DONE = "done"
    """Ran to the end of its steps."""
    EXITED = "exited"
    """An exit step, or the flow stopped for it (a step that cannot run)."""
    CONVERTED = "converted"
    """Reached the flow's goal."""


OPEN_STATES = (StateStatus.ACTIVE, StateStatus.WAITING)


class FlowState(msgspec.Struct, kw_only=True):
    """One customer's run through one version of a flow (``flow_states``)."""

    id: str = msgspec.field(name="_id")
    """``<flow>:<customer>:<entry number>``: entering twice at once makes one."""
    userId: str
    flowId: str
    version: int
    customerId: str
    entry: int
    status: str
    at: str
    """The path of the next step to run; "" when none is left."""
    n: int
    """Steps run so far: with the state's id, each step's idempotency key."""
    dueAt: datetime | None = None
    enteredAt: datetime
    updatedAt: datetime
    trigger: dict[str, object] = {}
    """The event or order that entered the customer: its name, id, properties and
    time (``at``)."""
    quietServed: int = -1
    """The step count whose send already waited out quiet hours: it goes when it wakes
    (with ``time_scale``, a wait ends before the real clock leaves quiet hours)."""
    reason: str = ""
