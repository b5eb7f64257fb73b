"""End-to-end fixtures: ``make_central`` and ``central`` live in ``tests/conftest.py``."""
