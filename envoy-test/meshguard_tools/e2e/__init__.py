"""pytest fixtures and helpers of the end-to-end tests in tests/e2e (see fixtures.py)."""
