//! Native benchmark of the policy engine (plain harness, no criterion).
//!
//! ```text
//! cargo bench --bench engine              # sizes 10, 100, 1000, 10000
//! cargo bench --bench engine -- --quick   # sizes 10, 1000, shorter batches
//! cargo bench --bench engine -- --sizes 1,10000,99997   # these sizes (99,997 + 3 DENY = 100,000)
//! cargo bench --bench engine -- --load-only 10000   # one load, for a profiler
//! cargo bench --bench engine -- --load-file cfg.json   # load a file (massif)
//! cargo bench --bench engine -- --decide-only 50    # 100,000 decisions, for a profiler
//! ```
//!
//! Needs `[[bench]] name = "engine" harness = false` in Cargo.toml. Uses only the public API:
//! `config::load` compiles N ALLOW AuthorizationPolicies (the same families as `make bench`:
//! rule i allows principal `cluster.local/ns/ns{i%20}/sa/sa{i}` to GET/POST `/svc{i}/*` and
//! `/api/{*}/items{i}` when `x-tenant: t{i}`, every 3rd rule with `notPaths`, every 5th with
//! `notPrincipals`) plus three DENY policies; `Engine::decide` is timed for the caller of the last
//! rule (the worst case for a linear scan):
//!
//! * allowed: `GET /svc{N-1}/items/42` (prefix path);
//! * allowed (template): `GET /api/v1/items{N-1}`;
//! * denied, no match: the right path with `x-tenant: nobody` (every ALLOW rule is tried);
//! * denied by DENY: `GET /admin/config` (the DENY policies decide first).
//!
//! Memory: a counting global allocator reports the heap the loaded engine holds and the
//! peak above the input during `load` (native 64-bit sizes; wasm32 pointers are half as wide).
//!
//! Two tables: with the three DENY policies of `make bench` (including `notNamespaces` with 20
//! namespaces, evaluated for every request), and without the `notNamespaces` one, which shows
//! the cost of the ALLOW rules on their own.
//!
//! Times are medians of several batches; the machine is shared, so compare rows of one run.
//! The bench profile inherits `[profile.release]` (opt-level "z", the size-optimized code the wasm
//! module ships), so absolute numbers are for that optimization level.

use std::alloc::{GlobalAlloc, Layout, System};
use std::error::Error;
use std::hint::black_box;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use meshguard_core::config_json::source::CHUNK;
use meshguard_core::plugin::engine::Engine;
use meshguard_core::plugin::plugin_config::{self, NodeInfo};
use meshguard_core::request::peer::Peer;
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Map, Value};

const NAMESPACES: usize = 20;

/// The system allocator, counting live heap bytes and their high-water mark.
struct CountingAlloc;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every call is forwarded unchanged to `System`; the counters only observe sizes.
unsafe impl GlobalAlloc for CountingAlloc {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = System.alloc(layout);
        if !p.is_null() {
            let live = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(live, Ordering::Relaxed);
        }
        p
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        System.dealloc(ptr, layout);
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        let p = System.realloc(ptr, layout, new_size);
        if !p.is_null() {
            if new_size >= layout.size() {
                let grown = new_size - layout.size();
                let live = LIVE.fetch_add(grown, Ordering::Relaxed) + grown;
                PEAK.fetch_max(live, Ordering::Relaxed);
            } else {
                LIVE.fetch_sub(layout.size() - new_size, Ordering::Relaxed);
            }
        }
        p
    }
}

#[global_allocator]
static ALLOCATOR: CountingAlloc = CountingAlloc;

/// Heap held by the loaded engine and the peak above the input during `load`, in bytes
/// (native 64-bit sizes; wasm32 pointers are half as wide).
fn load_heap(bytes: &[u8]) -> Result<(usize, usize), Box<dyn Error>> {
    let before = LIVE.load(Ordering::Relaxed);
    PEAK.store(before, Ordering::Relaxed);
    let loaded =
        plugin_config::load(black_box(bytes), &NodeInfo::default()).map_err(|e| e.to_string())?;
    let held = LIVE.load(Ordering::Relaxed).saturating_sub(before);
    let peak = PEAK.load(Ordering::Relaxed).saturating_sub(before);
    drop(black_box(loaded));
    Ok((held, peak))
}

fn identity(i: usize) -> String {
    format!("cluster.local/ns/ns{}/sa/sa{i}", i % NAMESPACES)
}

fn policy(name: &str, action: &str, rules: Value) -> Value {
    json!({
        "apiVersion": "security.istio.io/v1",
        "kind": "AuthorizationPolicy",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"selector": {"matchLabels": {"app": "bench"}}, "action": action, "rules": rules},
    })
}

fn allow_rule(i: usize) -> Value {
    let mut source = Map::new();
    source.insert("principals".into(), json!([identity(i)]));
    if i % 5 == 0 {
        let blocked = format!("cluster.local/ns/ns{}/sa/blocked{i}", i % NAMESPACES);
        source.insert("notPrincipals".into(), json!([blocked]));
    }
    let mut operation = Map::new();
    operation.insert("methods".into(), json!(["GET", "POST"]));
    operation.insert(
        "paths".into(),
        json!([format!("/svc{i}/*"), format!("/api/{{*}}/items{i}")]),
    );
    if i % 3 == 0 {
        operation.insert("notPaths".into(), json!([format!("/svc{i}/internal*")]));
    }
    json!({
        "from": [{"source": source}],
        "to": [{"operation": operation}],
        "when": [{"key": "request.headers[x-tenant]", "values": [format!("t{i}")]}],
    })
}

/// `namespace_deny`: include the `notNamespaces: [ns0..ns19]` DENY policy (part of the family
/// `make bench` uses; the second table leaves it out to show the ALLOW scan on its own).
fn config_json(n: usize, namespace_deny: bool) -> Result<Vec<u8>, Box<dyn Error>> {
    let namespaces: Vec<String> = (0..NAMESPACES).map(|k| format!("ns{k}")).collect();
    let mut resources = vec![policy(
        "deny-admin",
        "DENY",
        json!([{"to": [{"operation": {"paths": ["/admin*"]}}]}]),
    )];
    if namespace_deny {
        resources.push(policy(
            "deny-foreign-namespaces",
            "DENY",
            json!([{"from": [{"source": {"notNamespaces": namespaces}}]}]),
        ));
    }
    resources.push(policy(
        "deny-delete",
        "DENY",
        json!([{"to": [{"operation": {"methods": ["DELETE"]}}]}]),
    ));
    let width = n.to_string().len().max(5);
    for i in 0..n {
        resources.push(policy(
            &format!("allow-svc{i:0width$}"),
            "ALLOW",
            json!([allow_rule(i)]),
        ));
    }
    let cfg = json!({
        "workload": {"namespace": "default", "labels": {"app": "bench"}},
        "rootNamespace": "istio-system",
        "trustDomain": "cluster.local",
        "resources": resources,
    });
    Ok(serde_json::to_vec(&cfg)?)
}

fn headers(path: &str, tenant: &str) -> Vec<(String, Vec<u8>)> {
    [
        (":authority", "bench.default.svc.cluster.local"),
        (":path", path),
        (":method", "GET"),
        (":scheme", "https"),
        ("user-agent", "wrk"),
        ("accept", "*/*"),
        ("x-tenant", tenant),
        ("x-request-id", "5f0c5a2e-1d3b-4d7e-9a51-0b8f1c2d3e4f"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.as_bytes().to_vec()))
    .collect()
}

fn connection(caller: usize) -> StaticConnection {
    StaticConnection {
        peer: Some(Peer::new(
            Some(format!("spiffe://{}", identity(caller)).into_bytes()),
            None,
            Some(format!("CN=sa{caller},O=meshguard-test").into_bytes()),
        )),
        source_ip: "127.0.0.1".parse().ok(),
        remote_ip: "127.0.0.1".parse().ok(),
        destination_ip: "127.0.0.1".parse().ok(),
        destination_port: Some(10001),
        sni: Some(b"localhost".to_vec()),
        ..StaticConnection::default()
    }
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(f64::NAN)
}

/// Median wall time of one `load`, in milliseconds.
fn time_load(bytes: &[u8], budget: Duration) -> Result<f64, Box<dyn Error>> {
    let node = NodeInfo::default();
    let mut samples = Vec::new();
    let start = Instant::now();
    while samples.len() < 3 || (start.elapsed() < budget && samples.len() < 50) {
        let t = Instant::now();
        let loaded = plugin_config::load(black_box(bytes), &node).map_err(|e| e.to_string())?;
        samples.push(t.elapsed().as_secs_f64() * 1e3);
        drop(black_box(loaded));
    }
    Ok(median(samples))
}

/// Median nanoseconds per decision; checks the verdict first.
fn time_decide(
    engine: &Engine,
    pairs: &[(String, Vec<u8>)],
    conn: &StaticConnection,
    expect_allowed: bool,
    batch_target: Duration,
    batches: usize,
) -> Result<f64, Box<dyn Error>> {
    let decision = engine.decide(Headers::new(pairs), conn);
    if decision.is_allowed() != expect_allowed {
        return Err(format!(
            "unexpected decision {} for {:?} (expected allowed={expect_allowed})",
            decision.summary(),
            pairs.get(1)
        )
        .into());
    }
    // calibrate: iterations per batch so one batch takes about batch_target
    let mut iters: u64 = 1;
    loop {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(
                engine
                    .decide(Headers::new(black_box(pairs)), conn)
                    .is_allowed(),
            );
        }
        if t.elapsed() >= batch_target / 4 || iters >= 1 << 30 {
            let per = t.elapsed().as_secs_f64() / iters as f64;
            iters = ((batch_target.as_secs_f64() / per.max(1e-9)) as u64).max(1);
            break;
        }
        iters *= 4;
    }
    let mut samples = Vec::with_capacity(batches);
    for _ in 0..batches {
        let t = Instant::now();
        for _ in 0..iters {
            black_box(
                engine
                    .decide(Headers::new(black_box(pairs)), conn)
                    .is_allowed(),
            );
        }
        samples.push(t.elapsed().as_secs_f64() * 1e9 / iters as f64);
    }
    Ok(median(samples))
}

fn fmt_ns(ns: f64) -> String {
    if ns >= 100_000.0 {
        format!("{:.0} us", ns / 1e3)
    } else if ns >= 10_000.0 {
        format!("{:.1} us", ns / 1e3)
    } else {
        format!("{ns:.0} ns")
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().collect();
    if let Some(n) = args
        .iter()
        .position(|a| a == "--load-only")
        .and_then(|i| args.get(i + 1))
    {
        // For profilers (`valgrind --tool=callgrind`): compile N rules once, nothing else.
        let bytes = config_json(n.parse()?, true)?;
        let (engine, _report) =
            plugin_config::load(&bytes, &NodeInfo::default()).map_err(|e| e.to_string())?;
        println!("loaded {} bytes", bytes.len());
        drop(black_box(engine));
        return Ok(());
    }
    if let Some(path) = args
        .iter()
        .position(|a| a == "--load-file")
        .and_then(|i| args.get(i + 1))
    {
        // For profilers (`valgrind --tool=massif`): one load of a configuration file, as the
        // filter loads it (the text, read before, is the only other allocation).
        let bytes = std::fs::read(path)?;
        let input = bytes.len();
        let (held, peak) = load_heap(&bytes)?;
        println!(
            "load (read {CHUNK} bytes at a time, as the filter reads Envoy's copy): {input} \
            bytes in, engine heap {held} bytes, load peak {peak} bytes (the text not included)"
        );
        return Ok(());
    }
    if let Some(n) = args
        .iter()
        .position(|a| a == "--decide-only")
        .and_then(|i| args.get(i + 1))
    {
        // For profilers: N rules, then 100,000 decisions for the allowed request.
        let n: usize = n.parse()?;
        let bytes = config_json(n, true)?;
        let (engine, _report) =
            plugin_config::load(&bytes, &NodeInfo::default()).map_err(|e| e.to_string())?;
        let caller = n - 1;
        let conn = connection(caller);
        let ok = headers(&format!("/svc{caller}/items/42"), &format!("t{caller}"));
        let allowed = (0..100_000)
            .filter(|_| {
                engine
                    .decide(Headers::new(black_box(&ok)), &conn)
                    .is_allowed()
            })
            .count();
        println!("{allowed} of 100000 allowed");
        return Ok(());
    }
    let quick = args.iter().any(|a| a == "--quick");
    let listed: Option<Vec<usize>> = args
        .iter()
        .position(|a| a == "--sizes")
        .and_then(|i| args.get(i + 1))
        .map(|s| s.split(',').map(str::parse).collect())
        .transpose()?;
    let sizes: &[usize] = match (&listed, quick) {
        (Some(listed), _) => listed,
        (None, true) => &[10, 1_000],
        (None, false) => &[10, 100, 1_000, 10_000],
    };
    let (batch, batches, load_budget) = if quick {
        (Duration::from_millis(20), 5, Duration::from_millis(300))
    } else {
        (Duration::from_millis(50), 9, Duration::from_secs(1))
    };

    println!(
        "meshguard engine benchmark (native, {} build)",
        std::env::consts::ARCH
    );
    println!(
        "decision time: median of {batches} batches of ~{batch:?}; load: median wall time of \
        config::load"
    );
    for (namespace_deny, title) in [
        (
            true,
            "DENY policies: /admin*, notNamespaces [ns0..ns19], DELETE (as in `make bench`)",
        ),
        (
            false,
            "DENY policies: /admin*, DELETE (no notNamespaces policy: the ALLOW scan on its own)",
        ),
    ] {
        println!();
        println!("{title}");
        println!();
        println!(
            "| rules | config bytes | load (compile) | engine heap | load peak heap | \
            allowed | allowed (template) | denied: no match | denied: DENY rule |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
        for &n in sizes {
            let bytes = config_json(n, namespace_deny)?;
            let load_ms = time_load(&bytes, load_budget)?;
            let (held, peak) = load_heap(&bytes)?;
            let (engine, _report) =
                plugin_config::load(&bytes, &NodeInfo::default()).map_err(|e| e.to_string())?;
            let caller = n - 1;
            let conn = connection(caller);
            let tenant = format!("t{caller}");
            let ok = headers(&format!("/svc{caller}/items/42"), &tenant);
            let tmpl = headers(&format!("/api/v1/items{caller}"), &tenant);
            let nomatch = headers(&format!("/svc{caller}/items/42"), "nobody");
            let admin = headers("/admin/config", &tenant);
            let t_ok = time_decide(&engine, &ok, &conn, true, batch, batches)?;
            let t_tmpl = time_decide(&engine, &tmpl, &conn, true, batch, batches)?;
            let t_nomatch = time_decide(&engine, &nomatch, &conn, false, batch, batches)?;
            let t_admin = time_decide(&engine, &admin, &conn, false, batch, batches)?;
            println!(
                "| {n} | {} | {:.2} ms | {:.1} MB | {:.1} MB | {} | {} | {} | {} |",
                bytes.len(),
                load_ms,
                held as f64 / 1e6,
                peak as f64 / 1e6,
                fmt_ns(t_ok),
                fmt_ns(t_tmpl),
                fmt_ns(t_nomatch),
                fmt_ns(t_admin),
            );
        }
    }
    Ok(())
}
