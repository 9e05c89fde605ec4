//! Experiment (issue 15 item 6): a `matchit` router for exact and template paths against the
//! hand-built `RuleIndex` (exact keys, prefix lengths, template literal heads).
//!
//! `cargo bench -p meshguard-core --bench path_index` builds N path-only rules (the case the
//! path index exists for: no principal to anchor on), half exact paths `/svc{i}/items`, half
//! Istio templates `/api/{*}/items{i}`, and times load (index build) and one decision (candidate
//! lookup, then the candidates' predicates until one matches) for the last rule's paths and a
//! path no rule matches.

use std::hint::black_box;
use std::time::Instant;

use meshguard_core::matchers::path_match::PathMatch;
use meshguard_core::matchers::predicate::{Predicate, Subject, Tri};
use meshguard_core::matchers::rule_index::RuleIndex;
use meshguard_core::request::request_view::{Headers, StaticConnection};

fn rules(n: usize) -> Vec<(String, Predicate)> {
    (0..n)
        .map(|i| {
            let p = if i % 2 == 0 {
                format!("/svc{i}/items")
            } else {
                format!("/api/{{*}}/items{i}")
            };
            let m = PathMatch::parse(&p).expect("path");
            (p, Predicate::Path(m))
        })
        .collect()
}

/// Istio template -> matchit route: `{*}` one segment (a named parameter), exact paths escaped.
fn route(p: &str) -> String {
    let mut out = String::new();
    for (k, seg) in p.split('/').enumerate() {
        if k > 0 {
            out.push('/');
        }
        if seg == "{*}" {
            out.push_str(&format!("{{p{k}}}"));
        } else {
            out.push_str(&seg.replace('{', "{{").replace('}', "}}"));
        }
    }
    out
}

fn time<F: FnMut()>(mut f: F, iters: u32) -> f64 {
    let mut best = f64::MAX;
    for _ in 0..5 {
        let t = Instant::now();
        for _ in 0..iters {
            f();
        }
        best = best.min(t.elapsed().as_nanos() as f64 / f64::from(iters));
    }
    best
}

fn main() {
    println!("| rules | index | build | decide exact | decide template | decide no match |");
    println!("|---:|---|---:|---:|---:|---:|");
    for n in [10usize, 10_000] {
        let rs = rules(n);
        let preds: Vec<&Predicate> = rs.iter().map(|(_, p)| p).collect();
        let last_exact = n - 2 + (n % 2);
        let reqs = [
            format!("/svc{}/items", if n % 2 == 0 { n - 2 } else { n - 1 }),
            format!("/api/v1/items{}", if n % 2 == 0 { n - 1 } else { n - 2 }),
            "/nomatch/x".to_string(),
        ];
        let _ = last_exact;
        let conn = StaticConnection::default();
        let decide_with = |cands: &[u32], hdrs: &[(String, Vec<u8>)]| {
            let s = Subject {
                headers: Headers::new(hdrs),
                connection: &conn,
                claims: None,
            };
            cands
                .iter()
                .copied()
                .find(|i| preds[*i as usize].eval(&s) == Tri::True)
        };
        // hand-built
        let t = Instant::now();
        let index = RuleIndex::build(preds.iter().copied());
        let build_hand = t.elapsed().as_secs_f64() * 1e3;
        let mut row_hand = Vec::new();
        let mut row_mit = Vec::new();
        let t = Instant::now();
        let mut router = matchit::Router::new();
        let mut by_route: std::collections::HashMap<String, Vec<u32>> = Default::default();
        for (i, (p, _)) in rs.iter().enumerate() {
            by_route.entry(route(p)).or_default().push(i as u32);
        }
        for (r, ids) in by_route {
            router.insert(r, ids).expect("route");
        }
        let build_mit = t.elapsed().as_secs_f64() * 1e3;
        for path in &reqs {
            let hdrs = vec![(":path".to_string(), path.as_bytes().to_vec())];
            let s = Subject {
                headers: Headers::new(&hdrs),
                connection: &conn,
                claims: None,
            };
            let mut out = Vec::new();
            index.candidates(&s, &mut out);
            let a = decide_with(&out, &hdrs);
            let b = router
                .at(path)
                .ok()
                .and_then(|m| decide_with(m.value, &hdrs));
            assert_eq!(a, b, "{path}");
            row_hand.push(time(
                || {
                    let s = Subject {
                        headers: Headers::new(&hdrs),
                        connection: &conn,
                        claims: None,
                    };
                    index.candidates(&s, &mut out);
                    black_box(decide_with(&out, &hdrs));
                },
                20_000,
            ));
            row_mit.push(time(
                || {
                    black_box(
                        router
                            .at(black_box(path))
                            .ok()
                            .and_then(|m| decide_with(m.value, &hdrs)),
                    );
                },
                20_000,
            ));
        }
        for (name, build, row) in [
            ("hand-built", build_hand, row_hand),
            ("matchit", build_mit, row_mit),
        ] {
            println!(
                "| {n} | {name} | {build:.2} ms | {:.0} ns | {:.0} ns | {:.0} ns |",
                row[0], row[1], row[2]
            );
        }
    }
}
