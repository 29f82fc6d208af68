"""Events: what customers do, posted by the API (``POST /api/v1/events``) or raised by
orders, stored per customer through the ``events`` stream, counted in rules
(``event.<name>.count``) and handed to whatever reacts to them (``after_store``)."""
