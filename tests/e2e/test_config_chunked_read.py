"""meshguard reads its configuration from Envoy a 32 KiB chunk at a time (`proxy_get_buffer_bytes` with a start and
a size, README "The configuration read from Envoy a chunk at a time"). A configuration of several chunks, with a
chunk boundary inside a multi-byte character and strings full of escapes, must load in the real Envoy as a whole
(every policy decides, the start-up line counts every resource), and a broken one must still be refused."""
import time

from meshguard_tools import envoy_config
from meshguard_tools.e2e.policies import allow, config, rule, to

CHUNK = 32 * 1024
POLICIES = 300


def chunked_config() -> str:
    """The configuration text, shifted by leading whitespace until a chunk boundary splits a character."""
    note = 'é€😀 "quoted" \\ back\tslash ' * 12
    cfg = config(*[allow(f"p{i}", [rule(to_=[to(paths=[f"/p{i}"])])], annotations={"note": note})
                   for i in range(POLICIES)], labels={"app": "chunked-read"})
    text = envoy_config.plugin_config_string(cfg)
    for pad in range(4):
        data = (" " * pad + text).encode()
        if any(0x80 <= data[k] <= 0xBF for k in range(CHUNK, len(data), CHUNK)):
            return " " * pad + text
    raise AssertionError("no padding puts a chunk boundary inside a character")


def test_a_configuration_of_several_chunks_loads_whole(envoy):
    text = chunked_config()
    assert len(text.encode()) > 4 * CHUNK
    c = envoy(text)
    for i in (0, POLICIES // 2, POLICIES - 1):
        r = c.request("GET", f"/p{i}")
        assert (r.status, r.header("x-meshguard-decision")) == (200, f"allow ns[default]-policy[p{i}]-rule[0]"), r
    assert c.request("GET", "/elsewhere").status == 403
    time.sleep(0.3)
    lines = [line for line in c.envoy.log_path.read_text("utf-8", "replace").splitlines()
             if "configuration loaded" in line and "chunked-read" in line]
    assert lines and all(f"{POLICIES} resources, {POLICIES} apply, {POLICIES} rules" in line for line in lines), lines


def test_a_configuration_broken_in_its_last_chunk_is_refused(validate):
    text = chunked_config()
    assert text.endswith("}")
    broken = text[:-1] + ",}"
    rc, out = validate(broken)
    assert rc != 0, out
    # serde_json's message and position in the whole text, as when the text was copied in whole.
    column = len(broken.encode())  # serde_json counts bytes
    assert f"configuration is not valid JSON: trailing comma at line 1 column {column}" in out, out
