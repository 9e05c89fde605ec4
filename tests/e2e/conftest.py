"""The e2e fixtures live in the meshguard_tools package (envoy-test/meshguard_tools/e2e/fixtures.py, installed
into .venv by `make deps`); importing them here makes them the fixtures of every test in this folder."""
from meshguard_tools.e2e.fixtures import (  # noqa: F401
    cert_dir,
    doc_server,
    echo_server,
    envoy,
    envoy_binary,
    envoy_pool,
    free_port_fixture,
    pytest_runtest_makereport,
    validate,
)
