"""Delivery receipts: signed vendor callbacks, reconciled in batches into the logs."""
