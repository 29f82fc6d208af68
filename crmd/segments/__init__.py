"""Segments: a small, safe rule language over customers, compiled to MongoDB filters."""
