"""Static checks of what users apply or write by hand; no Envoy is started here.

* ``wasmplugin/**/*.yaml`` (the top-level examples and the seed walk-throughs in subdirectories):
  every document is an Istio ``WasmPlugin`` (extensions.istio.io/v1alpha1) with the fields and
  values Istio accepts, set up the way an authorization filter must be (never ``FAIL_OPEN``,
  sidecar inbound only, except a Sidecar-egress configuration, which runs on the outbound side),
  and its ``pluginConfig`` is a valid meshguard configuration.
* ``schema/meshguard-config.schema.json``: a valid draft 2020-12 schema, documented (every property
  has a description), which accepts the demo configurations ``envoy-test/demos/*.json`` and the
  positive cases below and rejects the negative ones, each at the expected place.

The schema mirrors the loader (core/src/plugin/plugin_config.rs, core/src/authorization/,
core/src/authn/request_authentication.rs, core/src/mtls/peer_authentication.rs,
core/src/egress/sidecar.rs) up to the differences its top-level description lists. Loading each
``pluginConfig`` with the real loader is done by test_wasmplugin_crd.py (``meshguard lint``) and
test_seed_manifests.py (``envoy`` with the module).
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from jsonschema import Draft202012Validator

REPO = Path(__file__).resolve().parents[2]
SCHEMA_PATH = REPO / "schema" / "meshguard-config.schema.json"
WASMPLUGIN_DIR = REPO / "wasmplugin"
DEMO_DIR = REPO / "envoy-test" / "demos"

SCHEMA = json.loads(SCHEMA_PATH.read_text())
VALIDATOR = Draft202012Validator(SCHEMA)

# WasmPlugin spec fields and enums (istio/api extensions/v1alpha1/wasm.proto).
WASMPLUGIN_FIELDS = {
    "selector", "targetRef", "targetRefs", "url", "sha256", "imagePullPolicy", "imagePullSecret",
    "verificationKey", "pluginConfig", "pluginName", "phase", "priority", "failStrategy", "vmConfig",
    "match", "type",
}
PHASES = {"UNSPECIFIED_PHASE", "AUTHN", "AUTHZ", "STATS"}
FAIL_STRATEGIES = {"FAIL_CLOSE", "FAIL_OPEN", "FAIL_RELOAD"}
MATCH_MODES = {"UNDEFINED", "CLIENT", "SERVER", "CLIENT_AND_SERVER"}
PULL_POLICIES = {"UNSPECIFIED_POLICY", "IfNotPresent", "Always"}
PLUGIN_TYPES = {"UNSPECIFIED_PLUGIN_TYPE", "HTTP", "NETWORK"}
URL_SCHEMES = ("oci://", "https://", "http://", "file://")


# --------------------------------------------------------------------------------------------------
# helpers


def schema_errors(instance) -> list:
    """All schema errors, including the nested ones under anyOf / oneOf / if-then."""
    out, todo = [], list(VALIDATOR.iter_errors(instance))
    while todo:
        e = todo.pop()
        out.append(e)
        todo.extend(e.context or [])
    return out


def explain(errors) -> str:
    return "\n".join(f"  {e.json_path}: {e.message}" for e in errors[:20])


def wasmplugin_documents() -> list[tuple[str, dict]]:
    docs = []
    paths = sorted(WASMPLUGIN_DIR.rglob("*.yaml")) + sorted(WASMPLUGIN_DIR.rglob("*.yml"))
    for path in paths:
        name = path.relative_to(WASMPLUGIN_DIR).as_posix()
        for i, doc in enumerate(yaml.safe_load_all(path.read_text())):
            # an empty document (a stray `---`); the vendored CRD (wasmplugin/crd/) is not a manifest
            if doc is not None and doc.get("kind") != "CustomResourceDefinition":
                docs.append((f"{name}#{i}", doc))
    return docs


DOCS = wasmplugin_documents()
DOC_IDS = [name for name, _ in DOCS]


def ap(spec=None, *, name="p", namespace="default", api="security.istio.io/v1", **envelope):
    """An AuthorizationPolicy resource."""
    obj = {"apiVersion": api, "kind": "AuthorizationPolicy", "metadata": {"name": name}}
    if namespace is not None:
        obj["metadata"]["namespace"] = namespace
    if spec is not None:
        obj["spec"] = spec
    obj.update(envelope)
    return obj


def ra(spec=None, *, name="r", namespace="default", api="security.istio.io/v1", **envelope):
    """A RequestAuthentication resource."""
    obj = ap(spec, name=name, namespace=namespace, api=api, **envelope)
    obj["kind"] = "RequestAuthentication"
    return obj


def kube(kind, api, spec=None, *, name="r", namespace="default", **envelope):
    obj = {"apiVersion": api, "kind": kind, "metadata": {"name": name}}
    if namespace is not None:
        obj["metadata"]["namespace"] = namespace
    if spec is not None:
        obj["spec"] = spec
    obj.update(envelope)
    return obj


def pa(spec=None, *, name="p", api="security.istio.io/v1", **kw):
    """A PeerAuthentication resource."""
    return kube("PeerAuthentication", api, spec, name=name, **kw)


def rbac(kind, spec=None, *, name="r", api="rbac.istio.io/v1alpha1", **kw):
    """A legacy rbac.istio.io resource (ClusterRbacConfig, RbacConfig, ServiceRole, ServiceRoleBinding)."""
    return kube(kind, api, spec, name=name, **kw)


def sidecar(spec=None, *, name="s", api="networking.istio.io/v1alpha3", **kw):
    """An Istio Sidecar resource."""
    return kube("Sidecar", api, spec, name=name, **kw)


def security_rule(spec=None, *, name="r", api="supergloo.solo.io/v1", **kw):
    """A SuperGloo SecurityRule resource."""
    return kube("SecurityRule", api, spec, name=name, **kw)


# A JWKS the loader accepts (one HMAC key; `oct` keys are allowed inline only).
JWKS = json.dumps({"keys": [{"kty": "oct", "alg": "HS256", "kid": "k1", "k": "c2VjcmV0LWtleS1mb3ItdGVzdHM"}]})


def jwt_rule(**fields):
    """A jwtRules entry; issuer and inline jwks unless overridden (None removes a field)."""
    rule = {"issuer": "https://issuer.example.com", "jwks": JWKS, **fields}
    return {k: v for k, v in rule.items() if v is not None}


def cfg(*resources, **top):
    return {"workload": {"namespace": "default", "labels": {"app": "a"}}, **top, "resources": list(resources)}


def deny_to(**operation):
    return {"action": "DENY", "rules": [{"to": [{"operation": operation}]}]}


def allow_from(**source):
    return {"rules": [{"from": [{"source": source}]}]}


def when(key, values=None, not_values=None):
    c = {"key": key}
    if values is not None:
        c["values"] = values
    if not_values is not None:
        c["notValues"] = not_values
    return {"action": "ALLOW", "rules": [{"when": [c]}]}


# --------------------------------------------------------------------------------------------------
# the schema itself


def test_schema_is_valid_draft_2020_12():
    assert SCHEMA["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(SCHEMA)


def test_every_property_has_a_description():
    missing = []

    def walk(node, where):
        if isinstance(node, dict):
            for name, sub in node.get("properties", {}).items():
                if not isinstance(sub, dict) or not sub.get("description"):
                    missing.append(f"{where}/properties/{name}")
            for key, sub in node.items():
                if key in ("properties", "$defs", "patternProperties") and isinstance(sub, dict):
                    # a map of names to schemas: walk the schemas, not the map (a property may be
                    # named `properties`, as a ServiceRoleBinding subject's is)
                    for k, v in sub.items():
                        walk(v, f"{where}/{key}/{k}")
                else:
                    walk(sub, f"{where}/{key}")
        elif isinstance(node, list):
            for i, sub in enumerate(node):
                walk(sub, f"{where}/{i}")

    walk(SCHEMA, "#")
    # Conditional branches (if/then) only narrow properties declared elsewhere; skip them.
    missing = [m for m in missing if "/if/" not in m and "/then/" not in m and "/not/" not in m
               and "/anyOf/" not in m]
    assert not missing, "properties without a description:\n" + "\n".join(missing)


def test_top_level_defaults_match_the_loader():
    props = SCHEMA["properties"]
    assert props["rootNamespace"]["default"] == "istio-system"
    assert props["trustDomain"]["default"] == "cluster.local"
    assert props["decisionHeader"]["default"] is False
    assert props["jwksClusters"]["default"] == {}
    assert props["jwksRefreshSeconds"]["default"] == 1200
    assert props["jwtCacheSize"]["default"] == 100
    assert props["jwtSource"]["default"] == "filter"


# --------------------------------------------------------------------------------------------------
# wasmplugin/*.yaml


def test_there_are_wasmplugin_manifests():
    names = {name.split("#")[0] for name in DOC_IDS}
    assert {"bookinfo-details.yaml", "pong-server.yaml", "mesh-default-deny.yaml"} <= names
    # one walk-through directory per seed (tests/e2e/test_seed_*.py replay them in Envoy)
    seeds = {name.split("/")[0] for name in names if "/" in name}
    assert {"bookinfo-securityrule", "pong-server", "bookinfo-sidecar", "hipstershop", "keycloak-quarkus"} <= seeds


@pytest.mark.parametrize("name,doc", DOCS, ids=DOC_IDS)
def test_wasmplugin_fields(name, doc):
    assert doc.get("apiVersion") == "extensions.istio.io/v1alpha1"
    assert doc.get("kind") == "WasmPlugin"
    meta = doc.get("metadata") or {}
    assert meta.get("name"), "metadata.name is required"
    assert meta.get("namespace"), "write metadata.namespace: it decides which workloads the selector sees"
    spec = doc.get("spec")
    assert isinstance(spec, dict)
    assert set(spec) <= WASMPLUGIN_FIELDS, f"unknown WasmPlugin fields: {set(spec) - WASMPLUGIN_FIELDS}"

    url = spec.get("url")
    assert isinstance(url, str) and url.startswith(URL_SCHEMES), f"bad url {url!r}"
    if "sha256" in spec:
        sha = spec["sha256"]
        assert isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)
    assert spec.get("imagePullPolicy", "UNSPECIFIED_POLICY") in PULL_POLICIES
    assert spec.get("phase", "UNSPECIFIED_PHASE") in PHASES
    assert spec.get("type", "UNSPECIFIED_PLUGIN_TYPE") in PLUGIN_TYPES - {"NETWORK"}, "meshguard is an HTTP filter"
    if "priority" in spec:
        assert isinstance(spec["priority"], int) and not isinstance(spec["priority"], bool)
        assert -(2**31) <= spec["priority"] < 2**31

    assert "failStrategy" in spec, "write failStrategy explicitly"
    assert spec["failStrategy"] in FAIL_STRATEGIES
    assert spec["failStrategy"] != "FAIL_OPEN", "an authorization filter must never fail open"

    for sel in spec.get("match", []):
        assert set(sel) <= {"mode", "ports"}
        assert sel.get("mode", "UNDEFINED") in MATCH_MODES
        for port in sel.get("ports", []):
            assert set(port) == {"number"} and 1 <= port["number"] <= 65535

    selector = spec.get("selector")
    if selector is not None:
        assert set(selector) == {"matchLabels"}
        assert all(isinstance(k, str) and isinstance(v, str) for k, v in selector["matchLabels"].items())
    assert not (selector and (spec.get("targetRefs") or spec.get("targetRef"))), "selector and targetRefs exclude each other"


def _enforces_sidecar_egress(config: dict) -> bool:
    """A configuration whose job is a Sidecar's egress list (REGISTRY_ONLY), enforced on the caller's side."""
    kinds = {r.get("kind") for r in config.get("resources", []) if isinstance(r, dict)}
    return "Sidecar" in kinds and config.get("outboundTrafficPolicy") == "REGISTRY_ONLY" and kinds == {"Sidecar"}


@pytest.mark.parametrize("name,doc", DOCS, ids=DOC_IDS)
def test_wasmplugin_runs_on_sidecar_inbound_only(name, doc):
    """meshguard enforces sidecar policies: `match: [{mode: SERVER}]`, in the AUTHZ phase. The one exception is
    a configuration that only enforces a Sidecar's egress list: that runs on the workload's outbound side,
    `match: [{mode: CLIENT}]`, with a selector (CLIENT without one would also match the gateways)."""
    spec = doc["spec"]
    assert spec.get("phase") == "AUTHZ"
    modes = [sel.get("mode", "UNDEFINED") for sel in spec.get("match", [])]
    if _enforces_sidecar_egress(spec.get("pluginConfig") or {}):
        assert modes and all(m == "CLIENT" for m in modes), f"match modes {modes}: egress needs only CLIENT"
        assert spec.get("selector"), "an outbound (CLIENT) plugin must select its workloads"
        return
    assert modes and all(m == "SERVER" for m in modes), f"match modes {modes}: expected only SERVER"


@pytest.mark.parametrize("name,doc", DOCS, ids=DOC_IDS)
def test_wasmplugin_plugin_config_matches_schema(name, doc):
    config = doc["spec"].get("pluginConfig")
    assert isinstance(config, dict), "pluginConfig must be the meshguard configuration object"
    # Istio sends pluginConfig as JSON; YAML must not have produced anything JSON cannot carry.
    assert json.loads(json.dumps(config)) == config
    errors = schema_errors(config)
    assert not errors, f"{name}: pluginConfig does not match the schema:\n{explain(errors)}"


def test_mesh_wide_plugin_reads_the_workload_from_node_metadata():
    mesh = [doc for name, doc in DOCS if name.startswith("mesh-default-deny.yaml")]
    assert mesh
    for doc in mesh:
        assert doc["metadata"]["namespace"] == "istio-system"
        assert "selector" not in doc["spec"] and "targetRefs" not in doc["spec"]
        assert "workload" not in doc["spec"]["pluginConfig"]


# --------------------------------------------------------------------------------------------------
# demo configurations

DEMOS = sorted(DEMO_DIR.glob("*.json")) if DEMO_DIR.is_dir() else []


@pytest.mark.parametrize("path", DEMOS, ids=[p.name for p in DEMOS])
def test_demo_config_matches_schema(path):
    errors = schema_errors(json.loads(path.read_text()))
    assert not errors, f"{path.name} does not match the schema:\n{explain(errors)}"


# --------------------------------------------------------------------------------------------------
# positive and negative schema cases (each also holds for the loader)

VALID = {
    "empty": {},
    "only-settings": {"rootNamespace": "mesh-root", "trustDomain": "td", "trustDomainAliases": ["old-td"],
                      "decisionHeader": True},
    "jwt-settings": {"jwksClusters": {"https://kc.example.com/certs": "outbound|443||kc.example.com", "http://x/": ""},
                     "jwksRefreshSeconds": 1, "jwtCacheSize": 0, "jwtSource": "filter"},
    "jwt-source-envoy-jwt-authn": cfg(ra({"jwtRules": [jwt_rule()]}), ap(allow_from(requestPrincipals=["*"])),
                                      jwtSource="envoyJwtAuthn", jwtCacheSize=4294967295),
    "missing-spec": cfg(ap(None)),
    "null-spec": cfg({**ap(None), "spec": None}, {**ra(None), "spec": None}),
    "request-authentication-without-spec": cfg(ra(None, api="security.istio.io/v1beta1")),
    "request-authentication-empty-rules": cfg(ra({"jwtRules": []})),
    "request-authentication-every-field": cfg(ra({"selector": {"matchLabels": {"app": "a"}}, "jwtRules": [
        jwt_rule(audiences=["api", "web"], fromHeaders=[{"name": "X-Jwt", "prefix": ""}, {"name": "authorization", "prefix": "Bearer "}],
                 fromParams=["token"], fromCookies=["session"], outputPayloadToHeader="x-jwt-payload",
                 outputClaimToHeaders=[{"header": "X_Sub-1", "claim": "sub"}, {"header": "x-nested", "claim": "a.b"}],
                 forwardOriginalToken=True, timeout="1.5s", spaceDelimitedClaims=["roles"]),
        jwt_rule(issuer=None, jwks=None, jwksUri="https://kc.example.com/realms/demo/protocol/openid-connect/certs", timeout="5.s"),
        jwt_rule(jwks=None, jwksUri="http://[::1]:8080/certs", timeout="0.250s"),
        jwt_rule(jwks=None, jwksUri="http://keycloak.iam:+08080"),
    ]}), jwksClusters={"http://keycloak.iam:+08080": "jwks"}),
    "request-authentication-target-refs": cfg(ra({"targetRefs": [{"kind": "Gateway", "name": "gw"}], "jwtRules": [jwt_rule()]}),
                                              # The loader checks kind/name only for AuthorizationPolicy.
                                              ra({"targetRef": {}}, name="r2")),
    "request-authentication-dry-run-annotation-ignored": cfg(ra({}, metadata={"name": "r", "annotations": {"istio.io/dry-run": "yes"}})),
    "request-principals": cfg(ap(allow_from(requestPrincipals=["https://issuer.example.com/alice", "*"],
                                            notRequestPrincipals=["*/bob", "iss*", "*sub", "iss/*"]))),
    "request-principals-with-service-accounts": cfg(ap(allow_from(serviceAccounts=["sa"], requestPrincipals=["*"]))),
    "only-not-request-principals": cfg(ap(allow_from(notRequestPrincipals=["x/y"]))),
    "allow-nothing": cfg(ap({})),
    "allow-all": cfg(ap({"rules": [{}]})),
    "no-metadata-namespace": cfg(ap(allow_from(principals=["*"]), namespace=None)),
    "empty-metadata-namespace": cfg(ap(allow_from(principals=["*"]), namespace="")),
    "v1beta1": cfg(ap(deny_to(paths=["/x"]), api="security.istio.io/v1beta1")),
    "kubectl-metadata-and-status": cfg(ap(
        {"action": "AUDIT", "rules": [{}]},
        status={"validationMessages": []},
        metadata={"name": "p", "namespace": "default", "uid": "1", "resourceVersion": "7", "generation": 2,
                  "labels": {"a": "b"}, "managedFields": [{"manager": "kubectl"}],
                  "annotations": {"istio.io/dry-run": "true", "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
    )),
    "v1-list-nested": cfg({"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": [
        ap({}, name="a"), {"apiVersion": "v1", "kind": "List", "items": [ap({"rules": [{}]}, name="b")]}]}),
    "target-refs": cfg(ap({"targetRefs": [{"group": "gateway.networking.k8s.io", "kind": "Gateway", "name": "gw"}]})),
    "empty-target-refs-with-selector": cfg(ap({"selector": {"matchLabels": {}}, "targetRefs": []})),
    "every-source-field": cfg(ap({"rules": [{"from": [
        {"source": {"principals": ["cluster.local/ns/a/sa/b"], "notPrincipals": ["*/sa/c"],
                    "namespaces": ["a*b"], "notNamespaces": ["kube-system"],
                    "ipBlocks": ["10.0.0.0/8", "192.168.1.1"], "notIpBlocks": ["10.1.0.0/16"],
                    "remoteIpBlocks": ["::1", "2001:db8::/32"], "notRemoteIpBlocks": ["0.0.0.0/0"],
                    "trustDomains": ["*.example.com"], "notTrustDomains": ["evil*"]}},
        {"source": {"serviceAccounts": ["default/sleep", "httpbin"], "notServiceAccounts": ["x"]}}]}]})),
    "every-operation-field": cfg(ap({"rules": [{"to": [{"operation": {
        "hosts": ["*.example.com"], "notHosts": ["admin.example.com"], "ports": ["8080", "00443"],
        "notPorts": ["65535"], "methods": ["GET", "HEAD"], "notMethods": ["DELETE"],
        "paths": ["/api/*", "/v1/{*}/items/{**}"], "notPaths": ["*.php"]}}]}]})),
    "when-keys": cfg(ap({"rules": [{"when": [
        {"key": "request.headers[X-Token]", "values": ["a"], "notValues": ["b"]},
        {"key": "source.ip", "values": ["10.0.0.0/8"]},
        {"key": "remote.ip", "notValues": ["1.2.3.4"]},
        {"key": "destination.ip", "values": ["fe80::1/64"]},
        {"key": "destination.port", "values": ["443"]},
        {"key": "source.namespace", "values": ["default"]},
        {"key": "source.principal", "values": ["*"]},
        {"key": "source.serviceAccount", "values": ["ns/sa"]},
        {"key": "source.trustDomain", "values": ["td*"]},
        {"key": "connection.sni", "values": ["*.svc.cluster.local"]},
        {"key": "experimental.envoy.filters.network.mysql_proxy[db.table]", "values": ["[update]"]},
        {"key": "request.headers[a]", "values": [], "notValues": ["b"]},
        {"key": "request.auth.principal", "values": ["https://issuer.example.com/alice"]},
        {"key": "request.auth.audiences", "values": ["api", "web*"]},
        {"key": "request.auth.presenter", "notValues": ["*"]},
        {"key": "request.auth.claims[iss]", "values": ["a"]},
        {"key": "request.auth.claims[groups][0]", "values": ["admin"]},
        {"key": "request.auth.claims[a.b][c]", "values": ["*"]},
        {"key": "request.auth.claims[[good]", "values": ["x"]},  # istiod: one name, "[good"
        {"key": "request.auth.claims[]x]", "values": ["x"]},  # istiod: one name, "]x"
        {"key": "request.auth.claimsrequest.auth.claims[a]", "values": ["x"]},  # prefix trimmed repeatedly
    ]}]})),
    "paths-without-braces": cfg(ap(deny_to(paths=["/a/*", "*", "/x/(y)"], notPaths=["/{*}", "/{**}"]))),
    # --- mesh kinds: PeerAuthentication, legacy RBAC, Sidecar, SecurityRule (and their top-level fields)
    "peer-authentication-every-field": cfg(pa({"selector": {"matchLabels": {"app": "a"}}, "mtls": {"mode": "STRICT"},
                                               "portLevelMtls": {"8080": {"mode": "PERMISSIVE"}, "+09": {"mode": "UNSET"}}},
                                              metadata={"name": "p", "creationTimestamp": "2024-01-01T00:00:00Z"}),
                                           pa(None, name="n", api="security.istio.io/v1beta1"), pa({"mtls": {}}, name="e"),
                                           pa({"selector": {}, "portLevelMtls": {"1": {"mode": "DISABLE"}}}, name="x")),
    "legacy-rbac-every-field": cfg(
        rbac("ClusterRbacConfig", {"mode": "ON_WITH_INCLUSION", "inclusion": {"services": ["a.default.svc.cluster.local"], "namespaces": ["x"]},
                                   "exclusion": {}, "enforcementMode": "PERMISSIVE"}, name="default"),
        rbac("ServiceRole", {"rules": [{"services": ["*"], "paths": ["/a*"], "notPaths": ["/b"], "methods": ["GET"],
                                        "notMethods": ["PUT"], "hosts": ["a"], "notHosts": ["b"], "ports": [0, 65535], "notPorts": [80],
                                        "constraints": [{"key": "request.headers[X-A]", "values": ["1"]},
                                                        {"key": "destination.labels[version]", "values": ["v1"]},
                                                        {"key": "destination.namespace", "values": ["default"]},
                                                        {"key": "destination.ip", "values": ["10.0.0.0/8"]},
                                                        {"key": "destination.port", "values": ["+0443"]}]}]}),
        rbac("ServiceRole", None, name="empty"),
        rbac("ServiceRoleBinding", {"subjects": [{"user": "*"}, {"group": ""},
                                                 {"user": "cluster.local/ns/default/sa/x", "properties": {
                                                     "request.headers[hello]": "world", "request.auth.claims[iss]": "i",
                                                     "source.ip": "10.0.0.1", "source.namespace": "default", "source.principal": "*",
                                                     "request.auth.principal": "i/s", "request.auth.audiences": "a",
                                                     "request.auth.presenter": "p"}}],
                                    "roleRef": {"kind": "ServiceRole", "name": "r"}})),
    "rbac-config-old-name": cfg(rbac("RbacConfig", {"mode": "OFF"}, name="default")),
    "sidecar-every-field": cfg(sidecar({"workloadSelector": {"labels": {"app": "a"}}, "ingress": [{"port": {"number": 9080}}],
                                        "egress": [{"port": {"number": 9080, "protocol": "HTTP"}, "bind": "127.0.0.1", "captureMode": "NONE",
                                                    "hosts": ["./*", "*/*.example.com", "~/*", "istio-system/*", "ns/a.b.svc.cluster.local"]}],
                                        "outboundTrafficPolicy": {"mode": "REGISTRY_ONLY", "egressProxy": {"host": "x"}},
                                        "inboundConnectionPool": {"http": {}}}),
                               sidecar(None, name="s2", api="networking.istio.io/v1"), sidecar({}, name="s3", api="networking.istio.io/v1beta1"),
                               outboundTrafficPolicy="REGISTRY_ONLY", direction="outbound"),
    "security-rule-every-selector": cfg(
        security_rule({"targetMesh": {"name": "istio", "namespace": "supergloo-system"},
                       "sourceSelector": {"upstreamSelector": {"upstreams": [{"name": "default-productpage-9080", "namespace": "supergloo-system"}]}},
                       "destinationSelector": {"namespaceSelector": {"namespaces": ["default"]}},
                       "allowedPaths": ["/details/*"], "allowedMethods": ["GET", "*"]}),
        security_rule({"sourceSelector": {"labelSelector": {"labelsToMatch": {"app": "pp"}}},
                       "destinationSelector": {"serviceSelector": {"services": [{"name": "details"}]}}}, name="b"),
        security_rule({"sourceSelector": {"serviceSelector": {"services": [{"name": "pp", "namespace": "default"}]}},
                       "destinationSelector": {"labelSelector": {}}}, name="c"),
        security_rule({"sourceSelector": {"namespaceSelector": {}},
                       "destinationSelector": {"upstreamSelector": {"upstreams": [{"name": "anything"}]}}}, name="d"),
        security_rule(None, name="e"),
        serviceAccounts={"default/productpage": ["bookinfo-productpage"], "x/y": []},
        inventory=[{"namespace": "default", "labels": {"app": "pp"}, "serviceAccount": "bookinfo-productpage"},
                   {"namespace": "default", "serviceAccount": "sa"}]),
    "workload-services": {"workload": {"namespace": "default", "labels": {}, "services": ["a.default.svc.cluster.local", ""]},
                          "direction": "auto", "outboundTrafficPolicy": "ALLOW_ANY"},
}


def _with(base, path, value):
    """A deep copy of ``base`` with ``value`` set at ``path`` (a list of keys and indexes)."""
    out = copy.deepcopy(base)
    node = out
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return out


BOOKINFO = cfg(ap({"selector": {"matchLabels": {"app": "a"}}, "action": "ALLOW", "rules": [
    {"from": [{"source": {"principals": ["cluster.local/ns/default/sa/productpage"]}}],
     "to": [{"operation": {"methods": ["GET"], "paths": ["/details/*"]}}]}]}))
SPEC = ["resources", 0, "spec"]
RULE = SPEC + ["rules", 0]
SOURCE = RULE + ["from", 0, "source"]
OPERATION = RULE + ["to", 0, "operation"]

RA = cfg(ra({"selector": {"matchLabels": {"app": "a"}}, "jwtRules": [jwt_rule()]}))
JWT_RULE = ["resources", 0, "spec", "jwtRules", 0]
JR = "$.resources[0].spec.jwtRules[0]"


def ra_rule(**fields):
    """RA with its jwtRule changed (None removes a field)."""
    out = copy.deepcopy(RA)
    rule = out["resources"][0]["spec"]["jwtRules"][0]
    rule.update(fields)
    for k in [k for k, v in rule.items() if v is None]:
        del rule[k]
    return out


# name -> (configuration, JSON path of the place the schema must complain about)
INVALID = {
    "unknown-top-level-field": ({**BOOKINFO, "policies": []}, "$"),
    "unknown-workload-field": (_with(BOOKINFO, ["workload", "name"], "x"), "$.workload"),
    "workload-without-namespace": ({"workload": {"labels": {}}}, "$.workload"),
    "empty-root-namespace": ({"rootNamespace": ""}, "$.rootNamespace"),
    "empty-trust-domain-alias": ({"trustDomainAliases": ["td", ""]}, "$.trustDomainAliases[1]"),
    "decision-header-not-boolean": ({"decisionHeader": "yes"}, "$.decisionHeader"),
    "resources-not-a-list": ({"resources": {}}, "$.resources"),
    "unknown-envelope-field": (_with(BOOKINFO, ["resources", 0, "data"], {}), "$.resources[0]"),
    "missing-metadata-name": (_with(BOOKINFO, ["resources", 0, "metadata"], {"namespace": "default"}),
                              "$.resources[0].metadata"),
    "other-api-version": (cfg(ap({}, api="security.istio.io/v1alpha1")), "$.resources[0].apiVersion"),
    "list-not-v1": (cfg({"apiVersion": "meta/v1", "kind": "List", "items": []}), "$.resources[0].kind"),
    "list-unknown-field": (cfg({"apiVersion": "v1", "kind": "List", "items": [], "kind2": 1}), "$.resources[0]"),
    "list-without-items": (cfg({"apiVersion": "v1", "kind": "List"}), "$.resources[0]"),
    "list-item-other-kind": (cfg({"apiVersion": "v1", "kind": "List", "items": [
        {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}]}), "$.resources[0].items[0].kind"),
    "dry-run-not-boolean": (_with(BOOKINFO, ["resources", 0, "metadata", "annotations"], {"istio.io/dry-run": "yes"}),
                            "$.resources[0].metadata.annotations.istio.io/dry-run"),
    "unknown-spec-field": (_with(BOOKINFO, SPEC + ["rule"], []), "$.resources[0].spec"),
    "unknown-rule-field": (_with(BOOKINFO, RULE + ["unless"], []), "$.resources[0].spec.rules[0]"),
    "unknown-source-field": (_with(BOOKINFO, SOURCE + ["principal"], ["a"]), "$.resources[0].spec.rules[0].from[0].source"),
    "unknown-operation-field": (_with(BOOKINFO, OPERATION + ["path"], ["/a"]), "$.resources[0].spec.rules[0].to[0].operation"),
    "unknown-selector-field": (_with(BOOKINFO, SPEC + ["selector", "matchExpressions"], []), "$.resources[0].spec.selector"),
    "custom-action": (_with(BOOKINFO, SPEC + ["action"], "CUSTOM"), "$.resources[0].spec.action"),
    "lowercase-action": (_with(BOOKINFO, SPEC + ["action"], "allow"), "$.resources[0].spec.action"),
    "provider": (_with(BOOKINFO, SPEC + ["provider"], {"name": "ext"}), "$.resources[0].spec.provider"),
    "empty-principal": (_with(BOOKINFO, SOURCE + ["principals"], [""]), "$.resources[0].spec.rules[0].from[0].source.principals[0]"),
    "empty-path": (_with(BOOKINFO, OPERATION + ["paths"], ["/a", ""]), "$.resources[0].spec.rules[0].to[0].operation.paths[1]"),
    "empty-method": (_with(BOOKINFO, OPERATION + ["methods"], [""]), "$.resources[0].spec.rules[0].to[0].operation.methods[0]"),
    "deny-without-rules": (cfg(ap({"action": "DENY"})), "$.resources[0].spec"),
    "deny-with-empty-rules": (cfg(ap({"action": "DENY", "rules": []})), "$.resources[0].spec.rules"),
    "selector-and-target-ref": (_with(BOOKINFO, SPEC + ["targetRef"], {"kind": "Gateway", "name": "gw"}), "$.resources[0].spec"),
    "null-rule": (cfg(ap({"rules": [None]})), "$.resources[0].spec.rules[0]"),
    "empty-from": (_with(BOOKINFO, RULE + ["from"], []), "$.resources[0].spec.rules[0].from"),
    "from-without-source": (_with(BOOKINFO, RULE + ["from"], [{}]), "$.resources[0].spec.rules[0].from[0]"),
    "empty-source": (_with(BOOKINFO, SOURCE, {}), "$.resources[0].spec.rules[0].from[0].source"),
    "source-with-only-empty-lists": (_with(BOOKINFO, SOURCE, {"principals": []}), "$.resources[0].spec.rules[0].from[0].source"),
    "empty-operation": (_with(BOOKINFO, OPERATION, {}), "$.resources[0].spec.rules[0].to[0].operation"),
    "service-accounts-with-principals": (_with(BOOKINFO, SOURCE + ["serviceAccounts"], ["sa"]),
                                         "$.resources[0].spec.rules[0].from[0].source"),
    "service-account-wildcard": (cfg(ap(allow_from(serviceAccounts=["ns/*"]))),
                                 "$.resources[0].spec.rules[0].from[0].source.serviceAccounts[0]"),
    "too-many-service-accounts": (cfg(ap(allow_from(serviceAccounts=[f"sa{i}" for i in range(17)]))),
                                  "$.resources[0].spec.rules[0].from[0].source.serviceAccounts"),
    "trust-domain-with-slash": (cfg(ap(allow_from(trustDomains=["td/ns"]))),
                                "$.resources[0].spec.rules[0].from[0].source.trustDomains[0]"),
    "bad-cidr": (cfg(ap(allow_from(ipBlocks=["10.0.0.0/33"]))), "$.resources[0].spec.rules[0].from[0].source.ipBlocks[0]"),
    "cidr-leading-zero": (cfg(ap(allow_from(ipBlocks=["010.0.0.1"]))), "$.resources[0].spec.rules[0].from[0].source.ipBlocks[0]"),
    "port-as-number": (_with(BOOKINFO, OPERATION + ["ports"], [8080]), "$.resources[0].spec.rules[0].to[0].operation.ports[0]"),
    "port-out-of-range": (_with(BOOKINFO, OPERATION + ["ports"], ["65536"]), "$.resources[0].spec.rules[0].to[0].operation.ports[0]"),
    "port-not-a-number": (_with(BOOKINFO, OPERATION + ["notPorts"], ["http"]), "$.resources[0].spec.rules[0].to[0].operation.notPorts[0]"),
    "path-template-not-absolute": (_with(BOOKINFO, OPERATION + ["paths"], ["{*}/a"]),
                                   "$.resources[0].spec.rules[0].to[0].operation.paths[0]"),
    "path-template-operator-in-segment": (_with(BOOKINFO, OPERATION + ["paths"], ["/a{*}"]),
                                          "$.resources[0].spec.rules[0].to[0].operation.paths[0]"),
    "path-template-double-glob-twice": (_with(BOOKINFO, OPERATION + ["paths"], ["/{**}/x/{**}"]),
                                        "$.resources[0].spec.rules[0].to[0].operation.paths[0]"),
    "when-unknown-key": (cfg(ap(when("request.header[x]", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-empty-header-name": (cfg(ap(when("request.headers[]", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-destination-namespace": (cfg(ap(when("destination.namespace", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-without-values": (cfg(ap(when("source.ip"))), "$.resources[0].spec.rules[0].when[0]"),
    "when-empty-values": (cfg(ap(when("source.ip", [], []))), "$.resources[0].spec.rules[0].when[0]"),
    "when-empty-value": (cfg(ap(when("request.headers[x]", [""]))), "$.resources[0].spec.rules[0].when[0].values[0]"),
    "when-bad-port": (cfg(ap(when("destination.port", ["80a"]))), "$.resources[0].spec.rules[0].when[0].values[0]"),
    "when-bad-ip": (cfg(ap(when("source.ip", None, ["1.2.3"]))), "$.resources[0].spec.rules[0].when[0].notValues[0]"),
    "when-without-key": (cfg(ap({"rules": [{"when": [{"values": ["a"]}]}]})), "$.resources[0].spec.rules[0].when[0]"),
    # metadata, kinds, targetRefs
    "empty-metadata-name": (_with(BOOKINFO, ["resources", 0, "metadata", "name"], ""), "$.resources[0].metadata.name"),
    "empty-workload-namespace": ({"workload": {"namespace": ""}}, "$.workload.namespace"),
    # seed 001's DestinationRule: a real Istio kind meshguard does not enforce
    "other-kind": (cfg({"apiVersion": "networking.istio.io/v1alpha3", "kind": "DestinationRule",
                        "metadata": {"name": "r"}, "spec": {"host": "pong-server-service"}}), "$.resources[0].kind"),
    "authentication-v1alpha1-policy": (cfg({"apiVersion": "authentication.istio.io/v1alpha1", "kind": "Policy",
                                            "metadata": {"name": "frontend-authn"}, "spec": {}}), "$.resources[0].kind"),
    "request-authentication-other-api-version": (cfg(ra({}, api="security.istio.io/v1alpha1")), "$.resources[0].apiVersion"),
    "target-ref-without-name": (cfg(ap({"targetRef": {"kind": "Gateway"}})), "$.resources[0].spec.targetRef"),
    "target-refs-empty-kind": (cfg(ap({"targetRefs": [{"kind": "", "name": "gw"}]})), "$.resources[0].spec.targetRefs[0].kind"),
    # paths with braces
    "path-named-variable": (_with(BOOKINFO, OPERATION + ["paths"], ["/users/{id}"]),
                            "$.resources[0].spec.rules[0].to[0].operation.paths[0]"),
    "path-stray-brace": (_with(BOOKINFO, OPERATION + ["notPaths"], ["/a}"]),
                         "$.resources[0].spec.rules[0].to[0].operation.notPaths[0]"),
    # request principals and request.auth keys
    "empty-request-principal": (cfg(ap(allow_from(requestPrincipals=["a/b", ""]))),
                                "$.resources[0].spec.rules[0].from[0].source.requestPrincipals[1]"),
    "only-empty-request-principals": (cfg(ap(allow_from(requestPrincipals=[], notRequestPrincipals=[]))),
                                      "$.resources[0].spec.rules[0].from[0].source"),
    "request-principals-not-a-list": (cfg(ap(allow_from(requestPrincipals="iss/sub"))),
                                      "$.resources[0].spec.rules[0].from[0].source.requestPrincipals"),
    "when-claim-without-name": (cfg(ap(when("request.auth.claims", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-claim-empty-name": (cfg(ap(when("request.auth.claims[]", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-claim-empty-nested-name": (cfg(ap(when("request.auth.claims[a][]", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-claim-dot": (cfg(ap(when("request.auth.claims.iss", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-claim-unclosed": (cfg(ap(when("request.auth.claims[a][b", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-unknown-auth-key": (cfg(ap(when("request.auth.issuer", ["a"]))), "$.resources[0].spec.rules[0].when[0].key"),
    "when-auth-empty-value": (cfg(ap(when("request.auth.principal", ["a/b", ""]))), "$.resources[0].spec.rules[0].when[0].values[1]"),
    # top-level JWT settings
    "jwks-refresh-zero": ({"jwksRefreshSeconds": 0}, "$.jwksRefreshSeconds"),
    "jwks-refresh-negative": ({"jwksRefreshSeconds": -5}, "$.jwksRefreshSeconds"),
    "jwks-refresh-string": ({"jwksRefreshSeconds": "1200"}, "$.jwksRefreshSeconds"),
    "jwt-cache-negative": ({"jwtCacheSize": -1}, "$.jwtCacheSize"),
    "jwt-cache-fraction": ({"jwtCacheSize": 1.5}, "$.jwtCacheSize"),
    "jwt-cache-too-large": ({"jwtCacheSize": 2**32}, "$.jwtCacheSize"),
    "jwt-source-unknown": ({"jwtSource": "istio"}, "$.jwtSource"),
    "jwt-source-wrong-case": ({"jwtSource": "EnvoyJwtAuthn"}, "$.jwtSource"),
    "jwks-clusters-not-a-map": ({"jwksClusters": ["outbound|443||x"]}, "$.jwksClusters"),
    "jwks-cluster-not-a-string": ({"jwksClusters": {"https://x/": 1}}, "$.jwksClusters.https://x/"),
    # RequestAuthentication
    "ra-unknown-spec-field": (_with(RA, ["resources", 0, "spec", "action"], "ALLOW"), "$.resources[0].spec"),
    "ra-unknown-rule-field": (ra_rule(jwks_uri="https://x/"), JR),
    "ra-selector-and-target-ref": (_with(RA, ["resources", 0, "spec", "targetRef"], {"kind": "Gateway", "name": "gw"}),
                                   "$.resources[0].spec"),
    "ra-unknown-target-ref-field": (cfg(ra({"targetRefs": [{"kind": "Gateway", "name": "gw", "port": 80}]})),
                                    "$.resources[0].spec.targetRefs[0]"),
    "ra-rules-not-a-list": (_with(RA, ["resources", 0, "spec", "jwtRules"], {}), "$.resources[0].spec.jwtRules"),
    "ra-no-issuer-inline-jwks": (ra_rule(issuer=None), JR),
    "ra-empty-issuer": (ra_rule(issuer=""), JR + ".issuer"),
    "ra-no-keys": (ra_rule(jwks=None), JR),
    "ra-no-keys-no-issuer": (ra_rule(jwks=None, issuer=None), JR),
    "ra-jwks-and-jwks-uri": (ra_rule(jwksUri="https://issuer.example.com/jwks"), JR),
    "ra-jwks-uri-no-scheme": (ra_rule(jwks=None, jwksUri="issuer.example.com/jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-other-scheme": (ra_rule(jwks=None, jwksUri="ftp://issuer.example.com/jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-no-host": (ra_rule(jwks=None, jwksUri="https:///jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-empty-host": (ra_rule(jwks=None, jwksUri="https://:8443/jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-bad-port": (ra_rule(jwks=None, jwksUri="https://idp:https/jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-port-out-of-range": (ra_rule(jwks=None, jwksUri="http://idp:65536/jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-ipv6-without-port": (ra_rule(jwks=None, jwksUri="http://[::1]/jwks"), JR + ".jwksUri"),
    "ra-jwks-uri-empty": (ra_rule(jwks=None, jwksUri=""), JR + ".jwksUri"),
    "ra-jwks-empty": (ra_rule(jwks=""), JR + ".jwks"),
    "ra-jwks-not-json-object": (ra_rule(jwks="[]"), JR + ".jwks"),
    "ra-jwks-as-object": (ra_rule(jwks=json.loads(JWKS)), JR + ".jwks"),
    "ra-empty-audience": (ra_rule(audiences=["a", ""]), JR + ".audiences[1]"),
    "ra-audiences-string": (ra_rule(audiences="a"), JR + ".audiences"),
    "ra-from-header-without-name": (ra_rule(fromHeaders=[{"prefix": "Bearer "}]), JR + ".fromHeaders[0]"),
    "ra-from-header-empty-name": (ra_rule(fromHeaders=[{"name": ""}]), JR + ".fromHeaders[0].name"),
    "ra-from-header-unknown-field": (ra_rule(fromHeaders=[{"name": "a", "value": "b"}]), JR + ".fromHeaders[0]"),
    "ra-from-header-string": (ra_rule(fromHeaders=["authorization"]), JR + ".fromHeaders[0]"),
    "ra-empty-from-param": (ra_rule(fromParams=[""]), JR + ".fromParams[0]"),
    "ra-empty-from-cookie": (ra_rule(fromCookies=["c", ""]), JR + ".fromCookies[1]"),
    "ra-payload-header-bad": (ra_rule(outputPayloadToHeader="x jwt"), JR + ".outputPayloadToHeader"),
    "ra-payload-header-empty": (ra_rule(outputPayloadToHeader=""), JR + ".outputPayloadToHeader"),
    "ra-claim-header-bad": (ra_rule(outputClaimToHeaders=[{"header": "x:sub", "claim": "sub"}]),
                            JR + ".outputClaimToHeaders[0].header"),
    "ra-claim-header-empty-claim": (ra_rule(outputClaimToHeaders=[{"header": "x-sub", "claim": ""}]),
                                    JR + ".outputClaimToHeaders[0].claim"),
    "ra-claim-header-without-claim": (ra_rule(outputClaimToHeaders=[{"header": "x-sub"}]), JR + ".outputClaimToHeaders[0]"),
    "ra-forward-token-string": (ra_rule(forwardOriginalToken="true"), JR + ".forwardOriginalToken"),
    "ra-timeout-without-unit": (ra_rule(timeout="5"), JR + ".timeout"),
    "ra-timeout-millis": (ra_rule(timeout="500ms"), JR + ".timeout"),
    "ra-timeout-negative": (ra_rule(timeout="-1s"), JR + ".timeout"),
    "ra-timeout-number": (ra_rule(timeout=5), JR + ".timeout"),
    "ra-empty-space-delimited-claim": (ra_rule(spaceDelimitedClaims=[""]), JR + ".spaceDelimitedClaims[0]"),
    # --- mesh kinds
    "pa-unknown-field": (cfg(pa({"mode": "STRICT"})), "$.resources[0].spec"),
    "pa-bad-mode": (cfg(pa({"mtls": {"mode": "strict"}})), "$.resources[0].spec.mtls.mode"),
    "pa-port-level-without-selector": (cfg(pa({"portLevelMtls": {"80": {"mode": "STRICT"}}})), "$.resources[0].spec"),
    "pa-port-zero": (cfg(pa({"selector": {}, "portLevelMtls": {"0": {"mode": "STRICT"}}})), "$.resources[0].spec.portLevelMtls"),
    "pa-port-name": (cfg(pa({"selector": {}, "portLevelMtls": {"http": {"mode": "STRICT"}}})), "$.resources[0].spec.portLevelMtls"),
    "pa-port-without-mode": (cfg(pa({"selector": {}, "portLevelMtls": {"80": {}}})), "$.resources[0].spec.portLevelMtls.80"),
    "pa-other-api-version": (cfg(pa({}, api="security.istio.io/v1alpha1")), "$.resources[0].apiVersion"),
    "pa-creation-timestamp-number": (cfg(pa({}, metadata={"name": "p", "creationTimestamp": 5})), "$.resources[0].metadata.creationTimestamp"),
    "rbac-config-not-default": (cfg(rbac("ClusterRbacConfig", {"mode": "ON"}, name="other")), "$.resources[0].metadata.name"),
    "rbac-config-twice": (cfg(rbac("ClusterRbacConfig", {"mode": "ON"}, name="default"),
                              rbac("RbacConfig", {"mode": "OFF"}, name="default")), "$.resources"),
    "rbac-config-bad-mode": (cfg(rbac("ClusterRbacConfig", {"mode": "ON_WITH_INCLUDE"}, name="default")), "$.resources[0].spec.mode"),
    "rbac-other-api-version": (cfg(rbac("ServiceRole", {}, api="rbac.istio.io/v1beta1")), "$.resources[0].apiVersion"),
    "role-rule-without-services": (cfg(rbac("ServiceRole", {"rules": [{"methods": ["GET"]}]})), "$.resources[0].spec.rules[0]"),
    "role-rule-empty-services": (cfg(rbac("ServiceRole", {"rules": [{"services": []}]})), "$.resources[0].spec.rules[0].services"),
    "binding-without-subjects": (cfg(rbac("ServiceRoleBinding", {"subjects": [], "roleRef": {"kind": "ServiceRole", "name": "r"}})),
                                 "$.resources[0].spec.subjects"),
    "binding-without-role-ref": (cfg(rbac("ServiceRoleBinding", {"subjects": [{"user": "*"}]})), "$.resources[0].spec"),
    "binding-role-ref-other-kind": (cfg(rbac("ServiceRoleBinding", {"subjects": [{"user": "*"}], "roleRef": {"kind": "ClusterRole", "name": "r"}})),
                                    "$.resources[0].spec.roleRef.kind"),
    "binding-without-spec": (cfg(rbac("ServiceRoleBinding", None)), "$.resources[0]"),
    "binding-null-spec": (cfg({**rbac("ServiceRoleBinding", None), "spec": None}), "$.resources[0].spec"),
    "binding-empty-subject": (cfg(rbac("ServiceRoleBinding", {"subjects": [{}], "roleRef": {"kind": "ServiceRole", "name": "r"}})),
                              "$.resources[0].spec.subjects[0]"),
    "binding-empty-user": (cfg(rbac("ServiceRoleBinding", {"subjects": [{"user": ""}], "roleRef": {"kind": "ServiceRole", "name": "r"}})),
                           "$.resources[0].spec.subjects[0].user"),
    "binding-unknown-property": (cfg(rbac("ServiceRoleBinding", {"subjects": [{"properties": {"source.bogus": "x"}}],
                                                                 "roleRef": {"kind": "ServiceRole", "name": "r"}})),
                                 "$.resources[0].spec.subjects[0].properties"),
    "binding-empty-property-value": (cfg(rbac("ServiceRoleBinding", {"subjects": [{"properties": {"request.headers[a]": ""}}],
                                                                     "roleRef": {"kind": "ServiceRole", "name": "r"}})),
                                     "$.resources[0].spec.subjects[0].properties.request.headers[a]"),
    "binding-bad-source-ip": (cfg(rbac("ServiceRoleBinding", {"subjects": [{"properties": {"source.ip": "1.2.3.999"}}],
                                                              "roleRef": {"kind": "ServiceRole", "name": "r"}})),
                              "$.resources[0].spec.subjects[0].properties.source.ip"),
    "sidecar-host-without-namespace": (cfg(sidecar({"egress": [{"hosts": ["reviews.bookinfo.svc.cluster.local"]}]})),
                                       "$.resources[0].spec.egress[0].hosts[0]"),
    "sidecar-host-inner-wildcard": (cfg(sidecar({"egress": [{"hosts": ["ns/a*.example.com"]}]})), "$.resources[0].spec.egress[0].hosts[0]"),
    "sidecar-host-empty-dns": (cfg(sidecar({"egress": [{"hosts": ["ns/"]}]})), "$.resources[0].spec.egress[0].hosts[0]"),
    "sidecar-egress-without-hosts": (cfg(sidecar({"egress": [{"bind": "0.0.0.0"}]})), "$.resources[0].spec.egress[0]"),
    "sidecar-unknown-field": (cfg(sidecar({"egress": [], "outbound": {}})), "$.resources[0].spec"),
    "sidecar-bad-mode": (cfg(sidecar({"outboundTrafficPolicy": {"mode": "REGISTRY"}})), "$.resources[0].spec.outboundTrafficPolicy.mode"),
    "sidecar-other-api-version": (cfg(sidecar({}, api="networking.istio.io/v1alpha1")), "$.resources[0].apiVersion"),
    "security-rule-two-selector-kinds": (cfg(security_rule({"destinationSelector": {"namespaceSelector": {}, "labelSelector": {}}})),
                                         "$.resources[0].spec.destinationSelector"),
    "security-rule-bad-source-upstream": (cfg(security_rule({"sourceSelector": {"upstreamSelector": {"upstreams": [{"name": "productpage"}]}}})),
                                          "$.resources[0].spec.sourceSelector.upstreamSelector.upstreams[0].name"),
    "security-rule-unknown-field": (cfg(security_rule({"allowedPath": ["/"]})), "$.resources[0].spec"),
    "security-rule-ref-without-name": (cfg(security_rule({"targetMesh": {"namespace": "x"}})), "$.resources[0].spec.targetMesh"),
    "security-rule-other-api-version": (cfg(security_rule({}, api="supergloo.solo.io/v1alpha1")), "$.resources[0].apiVersion"),
    "outbound-traffic-policy-lowercase": ({"outboundTrafficPolicy": "registry_only"}, "$.outboundTrafficPolicy"),
    "direction-unknown": ({"direction": "both"}, "$.direction"),
    "inventory-without-service-account": ({"inventory": [{"namespace": "default"}]}, "$.inventory[0]"),
    "service-accounts-not-lists": ({"serviceAccounts": {"default/a": "sa"}}, "$.serviceAccounts.default/a"),
    "workload-services-not-a-list": ({"workload": {"namespace": "a", "services": "a.b.svc.cluster.local"}}, "$.workload.services"),
}


@pytest.mark.parametrize("config", VALID.values(), ids=VALID.keys())
def test_schema_accepts(config):
    errors = schema_errors(config)
    assert not errors, explain(errors)


@pytest.mark.parametrize("config,where", INVALID.values(), ids=INVALID.keys())
def test_schema_rejects(config, where):
    top = list(VALIDATOR.iter_errors(config))
    assert top, "the schema accepted an invalid configuration"
    paths = {e.json_path for e in schema_errors(config)}
    assert where in paths, f"expected an error at {where}, got:\n{explain(schema_errors(config))}"
