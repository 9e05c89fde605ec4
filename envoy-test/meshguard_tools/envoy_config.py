#!/usr/bin/env python3
"""Render a static Envoy bootstrap that runs meshguard like an Istio sidecar inbound listener.

Used by the end-to-end tests (``from meshguard_tools import envoy_config``), bench, soak, difftest and by
``make run`` (CLI: ``python -m meshguard_tools.envoy_config``).

What it renders:
  * admin on 127.0.0.1:<admin_port>
  * listener ``inbound_plain`` (plaintext) and ``inbound_mtls`` (TLS, client certificate required, test CA),
    both ``traffic_direction: INBOUND`` (``traffic_direction="OUTBOUND"`` stands in for a sidecar's outbound side), HCM ``codec_type: AUTO`` (HTTP/1.1, h2c prior knowledge, h2 via ALPN)
  * HCM path handling as Istio's meshConfig ``pathNormalization`` modes
    (NONE / BASE (default) / MERGE_SLASHES / DECODE_AND_MERGE_SLASHES), each knob overridable
  * optional ``use_remote_address`` + ``xff_num_trusted_hops``
  * http_filters: the meshguard Wasm filter (V8, FAIL_CLOSED, plugin configuration as a JSON string),
    then the router; every route is a ``direct_response`` 200 ``ok\\n`` so no backend is needed
  * optional file access log that shows the decision (filter state ``wasm.meshguard.decision``)
  * optional node metadata (``NAMESPACE``, ``LABELS``) like an Istio sidecar's
  * optional ``envoy.filters.http.set_filter_state`` before the Wasm filter that stores
    ``%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%`` as filter state ``meshguard.direct_peer`` (``direct_peer_state=True``):
    Envoy's ``source.address`` follows a trusted X-Forwarded-For, so this is how the filter learns the TCP peer
  * optional Envoy ``envoy.filters.http.jwt_authn`` before the Wasm filter (``jwt_authn=``, see
    :func:`istio_jwt_authn` for the shape istiod generates), for ``jwtSource: envoyJwtAuthn``
  * optional route ``/echo`` (``echo_port=``) to a loopback upstream instead of the ``direct_response``, so tests
    can see the request headers the backend receives; optional extra static clusters and listeners
    (``extra_clusters=``, ``extra_listeners=``; :func:`static_cluster`, :func:`direct_response_listener`), e.g.
    the cluster a remote ``jwksUri`` is fetched through

CLI (see ``--help``); with no arguments it prints the committed ``envoy-test/envoy.yaml`` (the bookinfo demo).
``--check FILE`` exits 1 if FILE differs from what would be rendered.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import sys
from pathlib import Path

import yaml

from meshguard_tools.paths import DEMO_DIR

_handed_out: set[int] = set()


def free_port() -> int:
    """A loopback port nobody listens on now and never handed out before in this process: the
    kernel may return a just-released port again, and one Envoy config can need dozens."""
    for _ in range(1000):
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port
    raise RuntimeError("no free loopback port")

# Defaults of the committed example (paths relative to the repo root, as `func-e run` is started there).
DEFAULT_WASM = "target/wasm32-wasip1/release/meshguard.wasm"
DEFAULT_CERTS = "target/certs"
DEFAULT_PLAIN_PORT = 10000
DEFAULT_MTLS_PORT = 10001
DEFAULT_ADMIN_PORT = 9901
DEFAULT_DEMO = "bookinfo"

ACCESS_LOG_FORMAT = (
    '[%START_TIME%] %DOWNSTREAM_LOCAL_PORT% "%REQ(:METHOD)% %REQ(:PATH)% %PROTOCOL%" '
    "%RESPONSE_CODE% %FILTER_STATE(wasm.meshguard.decision:PLAIN)% "
    'peer="%DOWNSTREAM_PEER_URI_SAN%" remote=%DOWNSTREAM_REMOTE_ADDRESS_WITHOUT_PORT% '
    "direct=%DOWNSTREAM_DIRECT_REMOTE_ADDRESS_WITHOUT_PORT% details=%RESPONSE_CODE_DETAILS%\n"
)

# Istio meshConfig.pathNormalization.normalization -> HCM settings
NORMALIZATION = {
    "NONE": {"normalize_path": False, "merge_slashes": False, "path_with_escaped_slashes_action": None},
    "BASE": {"normalize_path": True, "merge_slashes": False, "path_with_escaped_slashes_action": None},
    "MERGE_SLASHES": {"normalize_path": True, "merge_slashes": True, "path_with_escaped_slashes_action": None},
    "DECODE_AND_MERGE_SLASHES": {
        "normalize_path": True,
        "merge_slashes": True,
        "path_with_escaped_slashes_action": "UNESCAPE_AND_FORWARD",
    },
}


def demo_names() -> list[str]:
    """The demos ``make run`` knows: envoy-test/demos/<name>.json."""
    return sorted(p.stem for p in DEMO_DIR.glob("*.json"))


class UnknownDemo(ValueError):
    pass


def load_demo(name: str) -> dict:
    """Load envoy-test/demos/<name>.json (or a path to a JSON file); UnknownDemo names the known ones."""
    p = Path(name)
    if not p.suffix:
        p = DEMO_DIR / f"{name}.json"
        if not p.exists():
            raise UnknownDemo(f"unknown demo {name!r}; the demos are: {', '.join(demo_names())} "
                              "(or a path to a plugin-configuration JSON file)")
    with open(p, encoding="utf-8") as f:
        return json.load(f)


def plugin_config_string(plugin_config, pretty: bool = False) -> str:
    """The plugin configuration as the JSON string Envoy hands to on_configure.

    A ``str`` is passed through untouched (lets tests send malformed JSON)."""
    if isinstance(plugin_config, str):
        return plugin_config
    if pretty:
        return json.dumps(plugin_config, indent=2, ensure_ascii=False) + "\n"
    return json.dumps(plugin_config, separators=(",", ":"), ensure_ascii=False)


def _tls_context(cert_dir: str, require_client_certificate: bool = True) -> dict:
    return {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
        "require_client_certificate": require_client_certificate,
        "common_tls_context": {
            "alpn_protocols": ["h2", "http/1.1"],
            "tls_certificates": [
                {
                    "certificate_chain": {"filename": f"{cert_dir}/server.crt"},
                    "private_key": {"filename": f"{cert_dir}/server.key"},
                }
            ],
            "validation_context": {"trusted_ca": {"filename": f"{cert_dir}/ca.crt"}},
        },
    }


def _wasm_filter(plugin_config, wasm_path: str, pretty: bool) -> dict:
    return {
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "meshguard",
                "root_id": "",
                "failure_policy": "FAIL_CLOSED",
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": plugin_config_string(plugin_config, pretty),
                },
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm_path}},
                },
            },
        },
    }


def _hcm(
    stat_prefix: str,
    plugin_config,
    *,
    wasm: bool,
    wasm_path: str,
    pretty: bool,
    normalize_path: bool,
    merge_slashes: bool,
    path_with_escaped_slashes_action: str | None,
    use_remote_address: bool,
    xff_num_trusted_hops: int,
    access_log: str | None,
    direct_peer_state: bool,
    access_log_format: str = ACCESS_LOG_FORMAT,
    jwt_authn: dict | None = None,
    echo_port: int | None = None,
    echo_prefix: str = "/echo",
    extra_filters: list | tuple = (),
) -> dict:
    hcm: dict = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": stat_prefix,
        "codec_type": "AUTO",
        "normalize_path": normalize_path,
    }
    if merge_slashes:
        hcm["merge_slashes"] = True
    if path_with_escaped_slashes_action:
        hcm["path_with_escaped_slashes_action"] = path_with_escaped_slashes_action
    if use_remote_address:
        hcm["use_remote_address"] = True
    if xff_num_trusted_hops:
        hcm["xff_num_trusted_hops"] = xff_num_trusted_hops
    if access_log:
        hcm["access_log"] = [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                    "log_format": {"text_format_source": {"inline_string": access_log_format}},
                },
            }
        ]
    hcm["route_config"] = {
        "name": "inbound",
        "virtual_hosts": [
            {
                "name": "all",
                "domains": ["*"],
                "routes": ([{"match": {"prefix": echo_prefix}, "route": {"cluster": ECHO_CLUSTER}}] if echo_port else [])
                + [
                    {
                        "match": {"prefix": "/"},
                        "direct_response": {"status": 200, "body": {"inline_string": "ok\n"}},
                    }
                ],
            }
        ],
    }
    filters = []
    if direct_peer_state:
        filters.append(
            {
                "name": "envoy.filters.http.set_filter_state",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.set_filter_state.v3.Config",
                    "on_request_headers": [
                        {
                            "object_key": "meshguard.direct_peer",
                            "factory_key": "envoy.string",
                            "format_string": {
                                "text_format_source": {"inline_string": "%DOWNSTREAM_DIRECT_REMOTE_ADDRESS%"}
                            },
                        }
                    ],
                },
            }
        )
    if jwt_authn is not None:
        filters.append(
            {
                "name": "envoy.filters.http.jwt_authn",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
                    **jwt_authn,
                },
            }
        )
    filters.extend(extra_filters)
    if wasm:
        filters.append(_wasm_filter(plugin_config, wasm_path, pretty))
    filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    hcm["http_filters"] = filters
    return hcm


def http_connection_manager(stat_prefix: str, plugin_config=None, *, wasm: bool = True,
                            wasm_path: str = DEFAULT_WASM, normalization: str = "BASE",
                            direct_peer_state: bool = False, use_remote_address: bool = False,
                            xff_num_trusted_hops: int = 0, jwt_authn: dict | None = None,
                            echo_port: int | None = None, echo_prefix: str = "/echo",
                            extra_filters: list | tuple = ()) -> dict:
    """The HCM typed_config of one test listener (what :func:`render` puts on both of its listeners),
    for callers that build their own listeners (the differential test, ``meshguard_tools/difftest/``, and the
    JWT parity test). ``extra_filters`` (e.g. RBAC) go after ``jwt_authn`` and before the Wasm filter."""
    return _hcm(stat_prefix, plugin_config, wasm=wasm, wasm_path=wasm_path, pretty=False,
                use_remote_address=use_remote_address, xff_num_trusted_hops=xff_num_trusted_hops,
                access_log=None, direct_peer_state=direct_peer_state, jwt_authn=jwt_authn,
                echo_port=echo_port, echo_prefix=echo_prefix, extra_filters=extra_filters,
                **NORMALIZATION[normalization])


def downstream_tls_context(cert_dir: str, require_client_certificate: bool = True) -> dict:
    """The listener TLS context (server certificate, test CA); client certificates optional if asked."""
    return _tls_context(cert_dir, require_client_certificate)


def render(
    plugin_config=None,
    *,
    wasm: bool = True,
    wasm_path: str = DEFAULT_WASM,
    cert_dir: str = DEFAULT_CERTS,
    plain_port: int = DEFAULT_PLAIN_PORT,
    mtls_port: int = DEFAULT_MTLS_PORT,
    admin_port: int = DEFAULT_ADMIN_PORT,
    normalization: str = "BASE",
    normalize_path: bool | None = None,
    merge_slashes: bool | None = None,
    path_with_escaped_slashes_action: str | None = None,
    use_remote_address: bool = False,
    xff_num_trusted_hops: int = 0,
    access_log: str | None = None,
    access_log_format: str = ACCESS_LOG_FORMAT,
    stats_config: dict | None = None,
    node_metadata: dict | None = None,
    direct_peer_state: bool = False,
    node_id: str = "sidecar~127.0.0.1~meshguard-test.default~default.svc.cluster.local",
    pretty: bool = False,
    jwt_authn: dict | None = None,
    echo_port: int | None = None,
    echo_prefix: str = "/echo",
    extra_clusters: list | None = None,
    extra_listeners: list | None = None,
    traffic_direction: str = "INBOUND",
    release_memory: bool = False,
) -> dict:
    """Return the Envoy bootstrap as a dict (dump it with :func:`to_yaml`).

    ``plugin_config``: dict (serialized to JSON) or str (sent as is). ``wasm=False`` renders the same
    listeners without the Wasm filter (infrastructure checks). ``node_metadata``: e.g.
    ``{"NAMESPACE": "default", "LABELS": {"app": "details"}}``.

    ``jwt_authn``: a ``JwtAuthentication`` message (without ``@type``) for an Envoy ``jwt_authn`` filter placed
    before the Wasm filter. ``echo_port``: requests whose path starts with ``echo_prefix`` are routed to the
    cluster ``echo`` (127.0.0.1:<echo_port>) instead of the ``direct_response``. ``extra_clusters`` /
    ``extra_listeners``: Envoy cluster / listener dicts appended to ``static_resources``.
    ``access_log_format``: the text format of the ``access_log`` file (default :data:`ACCESS_LOG_FORMAT`).
    ``stats_config``: replaces the bootstrap's ``stats_config`` (default: the ``meshguard_policy`` tag).
    ``traffic_direction``: of both test listeners (``INBOUND``, or ``OUTBOUND`` to stand in for a sidecar's
    outbound listener, where meshguard's ``direction: auto`` enforces Sidecar egress)."""
    norm = dict(NORMALIZATION[normalization])
    if normalize_path is not None:
        norm["normalize_path"] = normalize_path
    if merge_slashes is not None:
        norm["merge_slashes"] = merge_slashes
    if path_with_escaped_slashes_action is not None:
        norm["path_with_escaped_slashes_action"] = path_with_escaped_slashes_action
    if wasm and plugin_config is None:
        raise ValueError("plugin_config is required when wasm=True")

    def hcm(prefix: str) -> dict:
        return _hcm(
            prefix,
            plugin_config,
            wasm=wasm,
            wasm_path=wasm_path,
            pretty=pretty,
            use_remote_address=use_remote_address,
            xff_num_trusted_hops=xff_num_trusted_hops,
            access_log=access_log,
            access_log_format=access_log_format,
            direct_peer_state=direct_peer_state,
            jwt_authn=jwt_authn,
            echo_port=echo_port,
            echo_prefix=echo_prefix,
            **norm,
        )

    node: dict = {"id": node_id, "cluster": "meshguard-test"}
    if node_metadata:
        node["metadata"] = node_metadata

    def listener(name: str, port: int, tls: bool) -> dict:
        chain: dict = {
            "filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm(name)}]
        }
        if tls:
            chain["transport_socket"] = {"name": "envoy.transport_sockets.tls", "typed_config": _tls_context(cert_dir)}
        return {
            "name": name,
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
            "traffic_direction": traffic_direction,
            "filter_chains": [chain],
        }

    static: dict = {
        "listeners": [
            listener("inbound_plain", plain_port, tls=False),
            listener("inbound_mtls", mtls_port, tls=True),
        ]
        + list(extra_listeners or [])
    }
    clusters = ([static_cluster(ECHO_CLUSTER, echo_port)] if echo_port else []) + list(extra_clusters or [])
    if clusters:
        static["clusters"] = clusters
    bootstrap = {
        "node": node,
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        # What Istio's bootstrap adds for `extraStatTags: [meshguard_policy]`: the per-policy counters
        # become one metric per outcome with a meshguard_policy label.
        "stats_config": stats_config or {"stats_tags": [STATS_TAG_POLICY]},
        "static_resources": static,
    }
    if release_memory:
        bootstrap["memory_allocator_manager"] = dict(RELEASE_MEMORY)
    return bootstrap


# Envoy hands tcmalloc's free pages back to the kernel every second. V8 compiles the module at load in
# memory it frees right after, and tcmalloc would keep it: 5 MB of RSS at rest with few rules, about
# 27 MB at 10,000 (README, "Module size and memory"; `make footprint` measures it).
RELEASE_MEMORY = {"bytes_to_release": str(256 * 1024 * 1024), "memory_release_interval": "1s"}


ECHO_CLUSTER = "echo"

# Istio's extraStatTags regex for the tag meshguard_policy (tools/packaging/common/envoy_bootstrap.json).
STATS_TAG_POLICY = {"tag_name": "meshguard_policy", "regex": r"(meshguard_policy=\.=(.*?);\.;)"}

# What Istio's bootstrap (tools/packaging/common/envoy_bootstrap.json) sets for RBAC stats: only its own tag
# regexes (no Envoy default tags), among them the connection manager prefix (Istio's stat prefixes end in
# ";") and the three authorization tags.
ISTIO_RBAC_STATS_CONFIG = {
    "use_all_default_tags": False,
    "stats_tags": [
        {"tag_name": "http_conn_manager_prefix",
         "regex": r"^http\.(((?:[_.[:digit:]\w]*|[_\[\]aAbBcCdDeEfF[:digit:]\w\:]*));\.)"},
        {"tag_name": "authz_enforce_result", "regex": r"rbac(\.(allowed|denied))"},
        {"tag_name": "authz_dry_run_action", "regex": r"(\.istio_dry_run_(allow|deny)_)"},
        {"tag_name": "authz_dry_run_result", "regex": r"(\.shadow_(allowed|denied))"},
    ],
}


def static_cluster(name: str, port: int, address: str = "127.0.0.1") -> dict:
    """A STATIC plaintext HTTP/1.1 cluster with one endpoint."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": {"socket_address": {"address": address, "port_value": port}}}}]}
            ],
        },
    }


def direct_response_listener(name: str, port: int, body: str, content_type: str = "application/json") -> dict:
    """A plaintext listener that answers every request with 200 and ``body`` (e.g. a static JWKS)."""
    return {
        "name": name,
        "address": {"socket_address": {"address": "127.0.0.1", "port_value": port}},
        "filter_chains": [
            {
                "filters": [
                    {
                        "name": "envoy.filters.network.http_connection_manager",
                        "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                            "stat_prefix": name,
                            "route_config": {
                                "name": name,
                                "virtual_hosts": [
                                    {
                                        "name": name,
                                        "domains": ["*"],
                                        "routes": [
                                            {
                                                "match": {"prefix": "/"},
                                                "direct_response": {"status": 200, "body": {"inline_string": body}},
                                                "response_headers_to_add": [
                                                    {"header": {"key": "content-type", "value": content_type}}
                                                ],
                                            }
                                        ],
                                    }
                                ],
                            },
                            "http_filters": [
                                {
                                    "name": "envoy.filters.http.router",
                                    "typed_config": {
                                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"
                                    },
                                }
                            ],
                        },
                    }
                ]
            }
        ],
    }


def istio_jwt_authn(providers: dict, space_delimited_claims=("scope", "permission")) -> dict:
    """``JwtAuthentication`` as istiod generates it for RequestAuthentication (``policy_applier.go``): one
    provider -> ``requires_any[provider, allow_missing]``; several -> ``requires_any[P1, ..., requires_all[
    requires_any[Pi, allow_missing]...]]``; ``bypass_cors_preflight``. ``providers``: name -> provider
    message (``issuer``, ``local_jwks``, ...); ``payload_in_metadata: payload``, ``forward: false`` and the
    space-delimited claim normalization are filled in unless given."""
    full = {}
    for name, p in providers.items():
        p = dict(p)
        p.setdefault("payload_in_metadata", "payload")
        p.setdefault("forward", False)
        if space_delimited_claims:
            p.setdefault("normalize_payload_in_metadata", {"space_delimited_claims": list(space_delimited_claims)})
        full[name] = p
    names = list(full)
    if len(names) == 1:
        requires = {"requires_any": {"requirements": [{"provider_name": names[0]}, {"allow_missing": {}}]}}
    else:
        inner = [
            {"requires_any": {"requirements": [{"provider_name": n}, {"allow_missing": {}}]}} for n in names
        ]
        requires = {
            "requires_any": {
                "requirements": [{"provider_name": n} for n in names]
                + [{"requires_all": {"requirements": inner}}]
            }
        }
    return {
        "providers": full,
        "rules": [{"match": {"prefix": "/"}, "requires": requires}],
        "bypass_cors_preflight": True,
    }


class _Dumper(yaml.SafeDumper):
    pass


def _str_representer(dumper, data: str):
    # multi-line strings (pretty plugin configuration, log format) as literal blocks
    if "\n" in data and not data.startswith((" ", "\n")) and all(l == l.rstrip() for l in data.split("\n")):
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _str_representer)


def to_yaml(config: dict, header: str | None = None) -> str:
    text = yaml.dump(config, Dumper=_Dumper, sort_keys=False, width=120, allow_unicode=True, default_flow_style=False)
    return (header or "") + text


EXAMPLE_HEADER = """\
# GENERATED by envoy-test/meshguard_tools/envoy_config.py (demo: {demo}); do not edit by hand.
# Regenerate: make envoy-test/envoy.yaml   (a test fails when this file is out of date)
#
# Run from the repository root after `make build certs` (target/certs):
#   func-e run -c envoy-test/envoy.yaml        (or: $ENVOY -c envoy-test/envoy.yaml)
# Listeners: 127.0.0.1:{plain} plaintext, 127.0.0.1:{mtls} mTLS (client cert required), admin 127.0.0.1:{admin}.
"""


def render_example(demo: str = DEFAULT_DEMO, **kw) -> str:
    """The committed envoy-test/envoy.yaml (or, with other ports/paths, what `make run` starts)."""
    opts = dict(
        wasm_path=DEFAULT_WASM,
        cert_dir=DEFAULT_CERTS,
        plain_port=DEFAULT_PLAIN_PORT,
        mtls_port=DEFAULT_MTLS_PORT,
        admin_port=DEFAULT_ADMIN_PORT,
        access_log="/dev/stdout",
        pretty=True,
        release_memory=True,
    )
    opts.update({k: v for k, v in kw.items() if v is not None})
    pc = load_demo(demo)
    node_meta = {"NAMESPACE": pc.get("workload", {}).get("namespace", "default")}
    labels = pc.get("workload", {}).get("labels")
    if labels:
        node_meta["LABELS"] = labels
    cfg = render(pc, node_metadata=node_meta, **opts)
    header = EXAMPLE_HEADER.format(
        demo=demo, plain=opts["plain_port"], mtls=opts["mtls_port"], admin=opts["admin_port"]
    )
    return to_yaml(cfg, header)


# --------------------------------------------------------------------------------------------------
# bench, soak and difftest: the measured server with other filters, and a client-side sidecar stand-in


def server_bootstrap(*, filters: list | None, wasm_config: dict | None, wasm_path: str, cert_dir: str,
                     plain_port: int, mtls_port: int, admin_port: int) -> dict:
    """The measured Envoy: render() listeners, with `filters` (before the router) or meshguard."""
    if wasm_config is not None:
        cfg = render(wasm_config, wasm=True, wasm_path=wasm_path, cert_dir=cert_dir,
                     plain_port=plain_port, mtls_port=mtls_port, admin_port=admin_port)
    else:
        cfg = render(None, wasm=False, cert_dir=cert_dir, plain_port=plain_port,
                     mtls_port=mtls_port, admin_port=admin_port)
    for listener in cfg["static_resources"]["listeners"]:
        for chain in listener["filter_chains"]:
            for nf in chain["filters"]:
                hf = nf["typed_config"]["http_filters"]
                hf[:-1] = hf[:-1] + list(filters or [])  # before the router (last)
    return cfg


def client_bootstrap(*, listen_port: int, admin_port: int, server_port: int, cert_dir: str,
                     client_name: str) -> dict:
    """A sidecar stand-in: plaintext HTTP/1.1 in, mTLS with a SPIFFE client certificate out."""
    tls = {
        "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.UpstreamTlsContext",
        "sni": "localhost",
        "common_tls_context": {
            "tls_certificates": [{
                "certificate_chain": {"filename": f"{cert_dir}/{client_name}.crt"},
                "private_key": {"filename": f"{cert_dir}/{client_name}.key"},
            }],
            "validation_context": {
                "trusted_ca": {"filename": f"{cert_dir}/ca.crt"},
                "match_typed_subject_alt_names": [{"san_type": "DNS", "matcher": {"exact": "localhost"}}],
            },
        },
    }
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "outbound",
        "codec_type": "HTTP1",
        "route_config": {"name": "outbound", "virtual_hosts": [{
            "name": "server", "domains": ["*"],
            "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "server", "timeout": "30s"}}],
        }]},
        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
    }
    return {
        "node": {"id": "bench-client", "cluster": "bench-client"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": admin_port}}},
        "static_resources": {
            "listeners": [{
                "name": "outbound",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": listen_port}},
                "filter_chains": [{"filters": [{"name": "envoy.filters.network.http_connection_manager",
                                                "typed_config": hcm}]}],
            }],
            "clusters": [{
                "name": "server",
                "type": "STATIC",
                "connect_timeout": "2s",
                "load_assignment": {"cluster_name": "server", "endpoints": [{"lb_endpoints": [{"endpoint": {
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": server_port}}}}]}]},
                "circuit_breakers": {"thresholds": [{"max_connections": 100000, "max_pending_requests": 100000,
                                                     "max_requests": 100000}]},
                "transport_socket": {"name": "envoy.transport_sockets.tls", "typed_config": tls},
            }],
        },
    }


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--demo", default=DEFAULT_DEMO, help="demo name under envoy-test/demos/ or a JSON file")
    ap.add_argument("--wasm", default=None, help=f"wasm path (default {DEFAULT_WASM})")
    ap.add_argument("--certs", default=None, help=f"cert dir (default {DEFAULT_CERTS})")
    ap.add_argument("--plain-port", type=int, default=None)
    ap.add_argument("--mtls-port", type=int, default=None)
    ap.add_argument("--admin-port", type=int, default=None)
    ap.add_argument("--access-log", default=None, help="access log path (default /dev/stdout)")
    ap.add_argument("--normalization", default=None, choices=sorted(NORMALIZATION))
    ap.add_argument("-o", "--out", default="-", help="output file (default stdout)")
    ap.add_argument("--check", metavar="FILE", help="exit 1 if FILE differs from the rendering")
    a = ap.parse_args(argv)
    try:
        text = render_example(
            a.demo,
            wasm_path=a.wasm,
            cert_dir=a.certs,
            plain_port=a.plain_port,
            mtls_port=a.mtls_port,
            admin_port=a.admin_port,
            access_log=a.access_log,
            normalization=a.normalization,
        )
    except (UnknownDemo, FileNotFoundError) as e:
        print(f"envoy_config: {e}", file=sys.stderr)
        return 2
    if a.check:
        current = Path(a.check).read_text(encoding="utf-8") if os.path.exists(a.check) else ""
        if current != text:
            print(f"{a.check} is out of date; run: make envoy-test/envoy.yaml", file=sys.stderr)
            return 1
        return 0
    if a.out == "-":
        sys.stdout.write(text)
    else:
        tmp = a.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, a.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
