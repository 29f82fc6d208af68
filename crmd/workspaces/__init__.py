"""Workspaces: who shares which data, with which role; API keys; the audit log."""
