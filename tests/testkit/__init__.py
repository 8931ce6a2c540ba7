"""Shared helpers of the test suite (importable: ``pythonpath = ["tests"]``)."""
