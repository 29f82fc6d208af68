"""Campaigns: a message to a segment, sent through a vendor plugin, one log per recipient."""
