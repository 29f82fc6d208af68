"""Campaign fixtures live in tests/conftest.py (the isolation walk needs them too)."""
