"""How the plugin configuration reaches Envoy, for `make footprint`'s delivery levers.

The bench bootstrap carries meshguard's filter inline on both of its listeners, as a JSON file.
Istio delivers a WasmPlugin differently: istiod sends the filter as an ECDS resource (an
``envoy.config.core.v3.TypedExtensionConfig`` in a binary protobuf ``DiscoveryResponse`` over
gRPC), the listeners' filter chains only name it (``config_discovery``), and the plugin
configuration is a ``google.protobuf.StringValue`` holding the JSON of ``pluginConfig``. This
module rewrites a bootstrap (a dict, as ``envoy_config.server_bootstrap`` returns it) to:

* keep the filter on one listener only (``inbound_plain``, the one the footprint's request uses);
* carry the configuration as a ``google.protobuf.Struct`` instead of a ``StringValue`` (Envoy
  hands a filter the Any's serialized bytes for any type but StringValue/BytesValue, so only a
  filter that ignores its configuration can be measured this way);
* deliver the filter through ECDS from a file (``path_config_source``): a JSON
  ``DiscoveryResponse`` or a binary protobuf one (``.pb``, which Envoy's ``loadFromFile`` parses
  with ``ParseFromString``, as a gRPC response is parsed). The binary file is written by the
  small protobuf encoder below (only the fields used here), so no protobuf package is needed.

It also writes the bootstrap as YAML (Envoy picks its parser from the file name: ``.yaml`` goes
through yaml-cpp and a JSON conversion, ``.json`` straight to protobuf's JSON parser).
"""
from __future__ import annotations

import json
import struct
from pathlib import Path

from meshguard_tools import envoy_config
from meshguard_tools.wasm_imports import uleb128 as _varint  # protobuf's varint is unsigned LEB128

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
TEC_TYPE = "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
STRING_TYPE = "type.googleapis.com/google.protobuf.StringValue"
STRUCT_TYPE = "type.googleapis.com/google.protobuf.Struct"
ECDS_NAME = "meshguard"


# --- protobuf wire format (proto3: varints and length-delimited fields only) ----------------------

def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited field (string, bytes, message)."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _text(number: int, s: str) -> bytes:
    return _field(number, s.encode("utf-8")) if s else b""


def _any(type_url: str, value: bytes) -> bytes:
    return _text(1, type_url) + _field(2, value)


def _value(v) -> bytes:
    """google.protobuf.Value."""
    if v is None:
        return _varint(1 << 3) + _varint(0)
    if isinstance(v, bool):
        return _varint(4 << 3) + _varint(int(v))
    if isinstance(v, (int, float)):
        return _varint(2 << 3 | 1) + struct.pack("<d", float(v))
    if isinstance(v, str):
        return _field(3, v.encode("utf-8"))
    if isinstance(v, dict):
        return _field(5, _struct(v))
    if isinstance(v, list):
        return _field(6, b"".join(_field(1, _value(x)) for x in v))
    raise TypeError(f"no protobuf Value for {type(v).__name__}")


def _struct(d: dict) -> bytes:
    """google.protobuf.Struct (map<string, Value> fields = 1)."""
    return b"".join(_field(1, _text(1, k) + _field(2, _value(v))) for k, v in d.items())


def _configuration(any_json: dict) -> bytes:
    """The plugin configuration Any of a JSON filter config, encoded."""
    if any_json["@type"] == STRING_TYPE:
        return _any(STRING_TYPE, _text(1, any_json["value"]))
    if any_json["@type"] == STRUCT_TYPE:
        return _any(STRUCT_TYPE, _struct(any_json["value"]))
    raise ValueError(f"unsupported configuration type {any_json['@type']}")


def wasm_filter_pb(wasm: dict) -> bytes:
    """envoy.extensions.filters.http.wasm.v3.Wasm from its JSON form (the fields the bench uses:
    PluginConfig name 1, root_id 2, vm_config 3, configuration 4, failure_policy 7; VmConfig vm_id 1,
    runtime 2, code 3 (AsyncDataSource local 1, DataSource filename 1))."""
    c = wasm["config"]
    vm = c["vm_config"]
    vm_pb = (_text(1, vm.get("vm_id", "")) + _text(2, vm["runtime"])
             + _field(3, _field(1, _text(1, vm["code"]["local"]["filename"]))))
    plugin = _text(1, c.get("name", "")) + _text(2, c.get("root_id", "")) + _field(3, vm_pb)
    if "configuration" in c:
        plugin += _field(4, _configuration(c["configuration"]))
    if c.get("failure_policy") == "FAIL_CLOSED":
        plugin += _varint(7 << 3) + _varint(2)  # envoy.extensions.wasm.v3.FailurePolicy.FAIL_CLOSED
    return _field(1, plugin)


def discovery_response_pb(name: str, wasm: dict) -> bytes:
    """A DiscoveryResponse (version_info 1, resources 2, type_url 4) with one TypedExtensionConfig
    (name 1, typed_config 2) holding the Wasm filter."""
    tec = _text(1, name) + _field(2, _any(WASM_TYPE, wasm_filter_pb(wasm)))
    return _text(1, "1") + _field(2, _any(TEC_TYPE, tec)) + _text(4, TEC_TYPE)


def discovery_response_json(name: str, wasm: dict) -> dict:
    return {"version_info": "1", "type_url": TEC_TYPE,
            "resources": [{"@type": TEC_TYPE, "name": name, "typed_config": wasm}]}


# --- bootstrap rewrites ---------------------------------------------------------------------------

def _wasm_filters(cfg: dict):
    """(listener index, http_filters list, position) of every Wasm filter of the bootstrap."""
    for k, listener in enumerate(cfg["static_resources"]["listeners"]):
        for chain in listener["filter_chains"]:
            for nf in chain["filters"]:
                hf = nf["typed_config"]["http_filters"]
                for i, f in enumerate(hf):
                    if f.get("name") == "envoy.filters.http.wasm":
                        yield k, hf, i


def one_listener(cfg: dict) -> None:
    """Removes the Wasm filter from every listener but the first (``inbound_plain``)."""
    for k, hf, i in list(_wasm_filters(cfg)):
        if k > 0:
            del hf[i]


def struct_configuration(cfg: dict) -> None:
    """The plugin configuration as a ``google.protobuf.Struct`` (the JSON object itself)."""
    for _, hf, i in _wasm_filters(cfg):
        conf = hf[i]["typed_config"]["config"]["configuration"]
        hf[i]["typed_config"]["config"]["configuration"] = {"@type": STRUCT_TYPE, "value": json.loads(conf["value"])}


def ecds(cfg: dict, path: Path, binary: bool) -> None:
    """Moves the Wasm filters to ECDS resources, each in its own file (``path``, then
    ``<stem>-1<suffix>``...: Envoy takes one resource per ECDS response), ``.pb`` binary or ``.json``;
    every listener that had a filter names its resource instead. Identical filters are one resource
    (as istiod sends one per WasmPlugin); filters that differ (a distinct ``vm_id``) are one each."""
    resources: dict = {}
    for _, hf, i in list(_wasm_filters(cfg)):
        wasm = hf[i]["typed_config"]
        key = json.dumps(wasm, sort_keys=True)
        if key not in resources:
            k = len(resources)
            name = f"{ECDS_NAME}-{k}" if k else ECDS_NAME
            file = path.with_name(f"{path.stem}-{k}{path.suffix}") if k else path
            if binary:
                file.write_bytes(discovery_response_pb(name, wasm))
            else:
                file.write_text(json.dumps(discovery_response_json(name, wasm), separators=(",", ":")),
                                encoding="utf-8")
            resources[key] = (name, file)
        name, file = resources[key]
        hf[i] = {"name": name, "config_discovery": {
            "config_source": {"path_config_source": {"path": str(file)}, "resource_api_version": "V3"},
            "type_urls": [WASM_TYPE]}}


def write_yaml(cfg: dict, path: Path) -> Path:
    path.write_text(envoy_config.to_yaml(cfg), encoding="utf-8")
    return path
