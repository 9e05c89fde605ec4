//! Regression tests for inputs found by the cargo-fuzz targets in `fuzz/` (`make fuzz`), fed to
//! the same public API as the target that found them, plus a replay of the committed seed
//! corpora (`fuzz/corpus/<target>/`) through the APIs that read raw bytes, so a seed that starts
//! to panic fails `cargo test` without a nightly toolchain.
//!
//! To add a finding: minimize it (`cargo +nightly fuzz tmin -a <target> <artifact>`), rerun it with
//! `MESHGUARD_FUZZ_DEBUG=1 cargo +nightly fuzz run -a <target> <minimized>` to see what a
//! structured target built from it, and add a test below with those values.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fs;
use std::path::PathBuf;

use meshguard_core::authn::jwt::{self, JwksSource, KeySet};
use meshguard_core::plugin::plugin_config::{load, NodeInfo};
use meshguard_core::request::header_pairs;

fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../fuzz/corpus")
        .join(target);
    let mut files: Vec<(String, Vec<u8>)> = fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).unwrap())
        })
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no seeds in {}", dir.display());
    files
}

// -----------------------------------------------------------------------------------------
// Seed corpora
// -----------------------------------------------------------------------------------------

#[test]
fn config_load_seeds_load_or_are_rejected_without_panicking() {
    let mut loaded = 0;
    for (name, bytes) in corpus("config_load") {
        match load(&bytes, &NodeInfo::default()) {
            Ok(_) => loaded += 1,
            Err(e) => assert!(!e.to_string().is_empty(), "{name}: empty error"),
        }
    }
    // The seeds are meant to reach the compilers, so they are valid configurations.
    assert!(loaded >= 4, "only {loaded} config_load seeds load");
}

#[test]
fn jwt_seeds_parse_without_panicking() {
    // Selector byte 0: `jwt::parse`; 2: `KeySet::parse` (see fuzz/fuzz_targets/jwt.rs).
    for (name, bytes) in corpus("jwt") {
        let Some((selector, rest)) = bytes.split_first() else {
            continue;
        };
        let text = String::from_utf8_lossy(rest);
        match selector % 5 {
            0 => {
                let _ = jwt::parse(&text);
            }
            2 => {
                let _ = KeySet::parse(&text, JwksSource::Inline);
                let _ = KeySet::parse(&text, JwksSource::Remote);
            }
            _ => {}
        }
        let _ = name;
    }
    let valid = corpus("jwt")
        .into_iter()
        .find(|(n, _)| n == "parse-valid-hs256")
        .expect("seed parse-valid-hs256");
    let token = String::from_utf8(valid.1[1..].to_vec()).unwrap();
    assert!(jwt::parse(&token).is_ok());
}

#[test]
fn matcher_pairs_seeds_decode_without_panicking() {
    for (name, bytes) in corpus("matchers") {
        if !name.starts_with("pairs-") {
            continue;
        }
        let rest = &bytes[1..];
        let _ = header_pairs::decode(rest);
        let _ = header_pairs::decode_exact(rest);
        let _ = header_pairs::decode_untyped(rest, u8::MAX);
    }
}
