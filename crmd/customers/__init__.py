"""Customers and their orders by API: posted, read with what happened to them, changed."""
