"""meshguard_tools: everything Python in the repository, as one package (installed into .venv in editable mode
by `make deps-run` / `make deps`; stdlib-only modules such as ``oci`` also run with ``PYTHONPATH=envoy-test``).

    paths           where the repository, target/, the demos and the Envoy binary are
    launcher        the one Envoy launcher: start from a bootstrap, /ready, admin, /proc readings, stop
    envoy_config    Envoy bootstraps: meshguard as an Istio sidecar inbound listener (also `make run`'s CLI)
    demo_examples   the curl commands `make run` prints for a demo
    istio_rbac      AuthorizationPolicy -> the RBAC filters istiod generates (bench and difftest compare)
    certs           the test PKI (certs.sh)
    oci             the Istio "compat" OCI image of meshguard.wasm, build and push (`make oci`)
    release         the release files: module, image tar and digest, CycloneDX SBOM, SHA256SUMS (`make release`)
    wasm_imports    the module's import check (`make test`)
    wasm_exports    the post-link step removing unused proxy-wasm callbacks (`make build`), the exports check
    e2e/            pytest fixtures (fixtures), client, loopback servers, policy builders, bypass, seeds, JWT
    bench/          `make bench`
    soak/           `make soak`
    difftest/       `make difftest`
"""
