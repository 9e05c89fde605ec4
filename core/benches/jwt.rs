//! Native benchmark of the uncached JWT path (plain harness, no criterion): what the filter runs
//! for a request whose token is not in the token cache.
//!
//! ```text
//! cargo bench -p meshguard-core --bench jwt                      # RS256, PS256, RS384, ES256
//! cargo bench -p meshguard-core --bench jwt -- --algs RS256      # these algorithms
//! cargo bench -p meshguard-core --bench jwt -- --only RS256 2000 # 2000 requests, for a profiler
//! cargo bench -p meshguard-core --bench jwt -- --only RS256 2000 --tokens /tmp/rs256.json
//! ```
//!
//! The configuration is `make bench`'s JWT case (`envoy-test/meshguard_tools/bench/jwt_bench.py`):
//! a RequestAuthentication with the signing key's JWKS inline (`kid`, `alg`, `use`) and an ALLOW
//! policy `requestPrincipals: ["*"]`. The tokens carry the same claims (`iss`, `sub`, `iat`,
//! `exp`; a distinct `sub` each) and the same header (`alg`, `typ`, `kid`). Every request goes
//! through `decide_request` (the header map decoded from the proxy-wasm pairs wire format, the
//! authenticator with its token cache of 100, the authorization), over 1000 distinct tokens in
//! rotation: every request is a cache miss and pays a parse, a hash and a signature check.
//!
//! `--only ALG N` runs N such requests and nothing else timed: under callgrind,
//! `valgrind --tool=callgrind --toggle-collect='*decide_request*' target/release/deps/jwt-* --only
//! RS256 2000 --tokens FILE` (the key and tokens made by a first run without the profiler; build
//! with `CARGO_PROFILE_RELEASE_STRIP=false` for the symbols) then `callgrind_annotate
//! --inclusive=yes` gives the instructions per function of the uncached path, key generation
//! and token signing excluded. The bench profile inherits
//! `[profile.release]` (the crypto crates at their own opt-level, the core at "z"), native x86-64
//! code: the shares are close to the module's, not its absolute counts.

use std::cell::RefCell;
use std::error::Error;
use std::hint::black_box;
use std::time::Instant;

use jwt_simple::prelude::*;
use meshguard_core::authn::authenticator::AuthnState;
use meshguard_core::plugin::engine::{Engine, Verdict};
use meshguard_core::plugin::plugin_config::{self, NodeInfo};
use meshguard_core::plugin::request_pipeline::{decide_request, PipelineRequest, Side};
use meshguard_core::request::header_pairs;
use meshguard_core::request::request_view::{Headers, StaticConnection};
use serde_json::{json, Value};

const ISSUER: &str = "https://issuer.bench.meshguard.test";
const DISTINCT: usize = 1000;

/// The JWK and `DISTINCT` tokens of one fresh key of `alg`.
fn key_and_tokens(alg: &str) -> Result<(Value, Vec<String>), Box<dyn Error>> {
    let kid = format!("bench-{}", alg.to_lowercase());
    let claims = |k: usize| {
        Claims::create(jwt_simple::prelude::Duration::from_hours(24))
            .with_issuer(ISSUER)
            .with_subject(format!("bench-user-{k}"))
    };
    macro_rules! rsa {
        ($pair:ty) => {{
            let kp = <$pair>::generate(2048)?.with_key_id(&kid);
            let tokens = (0..DISTINCT)
                .map(|k| kp.sign(claims(k)))
                .collect::<Result<Vec<_>, _>>()?;
            (kp.public_key().to_jwk(), tokens)
        }};
    }
    let (jwk, tokens) = match alg {
        "RS256" => rsa!(RS256KeyPair),
        "RS384" => rsa!(RS384KeyPair),
        "RS512" => rsa!(RS512KeyPair),
        "PS256" => rsa!(PS256KeyPair),
        "ES256" => {
            let kp = ES256KeyPair::generate().with_key_id(&kid);
            let point = kp.public_key().public_key().to_bytes_uncompressed();
            let (x, y) = point.get(1..).ok_or("short point")?.split_at(32);
            let b64 = |b: &[u8]| Base64UrlSafeNoPadding::encode_to_string(b);
            let jwk = json!({"kty": "EC", "crv": "P-256", "x": b64(x)?, "y": b64(y)?,
                             "kid": kid, "alg": "ES256", "use": "sig"});
            let tokens = (0..DISTINCT)
                .map(|k| kp.sign(claims(k)))
                .collect::<Result<Vec<_>, _>>()?;
            (jwk.to_string(), tokens)
        }
        other => return Err(format!("unsupported algorithm {other}").into()),
    };
    // jwt-simple's RSA JWK carries `kid`, `alg` and `use` as the bench's does.
    Ok((serde_json::from_str(&jwk)?, tokens))
}

fn engine(jwk: &Value) -> Result<Engine, Box<dyn Error>> {
    let jwks = json!({ "keys": [jwk] }).to_string();
    let config = json!({
        "workload": {"namespace": "default", "labels": {"app": "bench"}},
        "resources": [
            {"apiVersion": "security.istio.io/v1", "kind": "RequestAuthentication",
             "metadata": {"name": "bench-jwt", "namespace": "default"},
             "spec": {"jwtRules": [{"issuer": ISSUER, "jwks": jwks}]}},
            {"apiVersion": "security.istio.io/v1", "kind": "AuthorizationPolicy",
             "metadata": {"name": "require-jwt", "namespace": "default"},
             "spec": {"action": "ALLOW",
                      "rules": [{"from": [{"source": {"requestPrincipals": ["*"]}}]}]}},
        ],
    });
    let (engine, _) = plugin_config::load(&serde_json::to_vec(&config)?, &NodeInfo::default())
        .map_err(|e| e.to_string())?;
    Ok(engine)
}

/// The request headers in the proxy-wasm pairs wire format.
fn wire(token: &str) -> Vec<u8> {
    let bearer = format!("Bearer {token}");
    let pairs = [
        (":authority", "localhost:10000"),
        (":path", "/api/items"),
        (":method", "GET"),
        (":scheme", "https"),
        ("user-agent", "wrk"),
        ("authorization", bearer.as_str()),
        ("x-forwarded-proto", "https"),
        ("x-request-id", "5f0c5a2e-1d3b-4d7e-9a51-0b8f1c2d3e4f"),
    ];
    header_pairs::encode(&pairs)
}

/// `requests` requests over the distinct tokens in rotation; the seconds they took.
fn run(engine: &Engine, wires: &[Vec<u8>], requests: usize) -> Result<f64, Box<dyn Error>> {
    let cache = RefCell::new(AuthnState::new(100));
    let conn = StaticConnection::default();
    let no_payload = || None;
    // The tokens are signed with jwt-simple's clock (valid for 24 hours from now).
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)?
        .as_secs();
    let clock = || now;
    let start = Instant::now();
    for wire in wires.iter().cycle().take(requests) {
        let pairs = header_pairs::decode(black_box(wire)).ok_or("bad pairs")?;
        let request = PipelineRequest {
            headers: Headers::from_wire(&pairs),
            connection: &conn,
            side: Side::Inbound,
            clock: &clock,
            jwt_authn_payload: &no_payload,
        };
        let outcome = decide_request(engine, &request, &cache);
        if outcome.verdict != Verdict::Allow {
            return Err(format!("unexpected verdict {:?}", outcome.verdict).into());
        }
        black_box(outcome);
    }
    Ok(start.elapsed().as_secs_f64())
}

fn main() -> Result<(), Box<dyn Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let flag = |name: &str| {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
    };
    if let Some(alg) = flag("--only") {
        let requests = args
            .iter()
            .position(|a| a == "--only")
            .and_then(|i| args.get(i + 2))
            .map_or(Ok(2000), |n| n.parse())?;
        // Key generation and signing are slow under a profiler: `--tokens FILE` keeps them.
        let (jwk, tokens) = match flag("--tokens") {
            Some(file) if std::path::Path::new(file).exists() => {
                serde_json::from_slice(&std::fs::read(file)?)?
            }
            Some(file) => {
                let made = key_and_tokens(alg)?;
                std::fs::write(file, serde_json::to_vec(&made)?)?;
                made
            }
            None => key_and_tokens(alg)?,
        };
        let engine = engine(&jwk)?;
        let wires: Vec<Vec<u8>> = tokens.iter().map(|t| wire(t)).collect();
        run(&engine, &wires, requests)?;
        println!("{requests} {alg} requests, every one a cache miss");
        return Ok(());
    }
    let algs = flag("--algs").map_or("RS256,PS256,RS384,ES256", |s| s.as_str());
    println!("{:<8} {:>14}", "alg", "us per request");
    for alg in algs.split(',') {
        let (jwk, tokens) = key_and_tokens(alg)?;
        let engine = engine(&jwk)?;
        let wires: Vec<Vec<u8>> = tokens.iter().map(|t| wire(t)).collect();
        run(&engine, &wires, DISTINCT)?;
        let mut times: Vec<f64> = (0..5)
            .map(|_| run(&engine, &wires, 2 * DISTINCT))
            .collect::<Result<_, _>>()?;
        times.sort_by(f64::total_cmp);
        let median = times.get(times.len() / 2).copied().unwrap_or(0.0);
        println!("{alg:<8} {:>14.1}", median * 1e6 / (2 * DISTINCT) as f64);
    }
    Ok(())
}
