"""The fields a rule may name, each with its type."""

from __future__ import annotations

import re

NUMBER, DATE, STRING = "number", "date", "string"
ATTRIBUTE = "attribute"
"""A custom attribute (``attrs.<name>``): its type is the value's it is compared with."""

FIELDS: dict[str, str] = {
    "spend": NUMBER,
    "visits": NUMBER,
    "orderCount": NUMBER,
    "orderTotal": NUMBER,
    "lastActive": DATE,
    "lastOrderAt": DATE,
    "name": STRING,
    "email": STRING,
    "phone": STRING,
    "location": STRING,
}
INACTIVE_DAYS = "inactive_days"
"""Readable form: ``inactive_days > 90`` means ``lastActive < 90d``."""

EVENT_NAME = re.compile(r"[A-Za-z0-9_:-]{1,64}", re.ASCII)
"""An event's name (``crmd.events``): 1 to 64 letters, digits, ``_``, ``:`` or ``-``
(matched whole). No dot and no ``$``: a name is a field of the customer's document
(``eventTimes.<name>``) and a word of the rule language (``event.<name>.count``)."""
EVENT_NAME_RULE = "1 to 64 characters, each a letter, a digit, '_', ':' or '-'"


def is_event_name(text: str) -> bool:
    return EVENT_NAME.fullmatch(text) is not None


_ATTRIBUTE_NAME = re.compile(r"attrs\.[A-Za-z0-9_]{1,64}")  # fullmatch: $ allows a final "\n"
_EVENT_PROPERTY = re.compile(r"event\.[A-Za-z0-9_]{1,64}")
EVENT_PREFIX = "event."
"""A property of the event (or order) a rule is checked against: ``event.<property>``,
typed as a custom attribute is, by the value it is compared with."""


ORDER_FIELDS: dict[str, str] = {
    "amount": NUMBER,
    "orderDate": DATE,
    "items": STRING,
    "order_external_id": STRING,
    "customer_external_id": STRING,
    "customerEmail": STRING,
}
"""What a rule over orders may name (the console's order filter)."""


class FieldSet:
    """The fields one kind of record offers a rule."""

    def __init__(self, types: dict[str, str], customers: bool, events: bool = False) -> None:
        self.types = types
        self.customers = customers
        """Customers also have ``inactive_days`` and custom attributes."""
        self.events = events
        """A rule checked against an event as it happens (a flow's trigger or goal) may
        also name the event's properties, ``event.<property>``."""
        self.by_lower = {name.lower(): name for name in types}

    def type_of(self, name: str) -> str | None:
        """The field's type, or None when there is no such field. Names match ignoring
        case (``lastactive``); custom attributes keep theirs."""
        if self.customers and name.lower() == INACTIVE_DAYS:
            return NUMBER
        if self.customers and _ATTRIBUTE_NAME.fullmatch(name):
            return ATTRIBUTE
        if self.events and _EVENT_PROPERTY.fullmatch(name):
            return ATTRIBUTE
        canonical = self.by_lower.get(name.lower())
        return self.types[canonical] if canonical else None

    def canonical(self, name: str) -> str:
        if self.customers and name.lower() == INACTIVE_DAYS:
            return INACTIVE_DAYS
        return self.by_lower.get(name.lower(), name)

    def listing(self) -> str:
        extras = [INACTIVE_DAYS, "attrs.<name>"] if self.customers else []
        extras += ["event.<property>"] if self.events else []
        return ", ".join([*self.types, *extras])


CUSTOMERS = FieldSet(FIELDS, customers=True)
ORDERS = FieldSet(ORDER_FIELDS, customers=False)
CUSTOMERS_AND_EVENT = FieldSet(FIELDS, customers=True, events=True)
"""A flow's trigger or goal rule: the customer's fields and the event's properties."""


def field_type(name: str) -> str | None:
    return CUSTOMERS.type_of(name)


def canonical_name(name: str) -> str:
    return CUSTOMERS.canonical(name)


def known_fields() -> str:
    return CUSTOMERS.listing()
