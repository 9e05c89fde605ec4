//! meshguard-crypto-p384: [`p384_verify`], meshguard's verification-only ECDSA on P-384
//! (ES384), mirroring BoringSSL as Envoy 1.40's `jwt_authn` calls it (the module doc says how).
//!
//! Pure functions of public data: `meshguard-core` (`authn::jwt`) imports this crate, never the
//! reverse, and its one meshguard dependency is `meshguard-crypto`, whose generic group law
//! (`short_weierstrass`) it instantiates for P-384's field (`tests/architecture.rs`). It is apart
//! from `meshguard-crypto` only for its opt-level ("s": this code is written for size; the
//! workspace's Cargo.toml says why): generic code is compiled in the crate that instantiates it,
//! so the shared group law runs here at "s". `P384PublicKey::new` and `verify` are
//! `#[inline(never)]`, so that LTO keeps them at this crate's level (see `meshguard-crypto`).

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod p384_verify;
