"""Flows: what crmd does when customers act (``crmd.flows.model`` is the definition)."""
