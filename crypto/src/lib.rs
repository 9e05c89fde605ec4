//! meshguard-crypto: the verification-only signature primitives meshguard checks JWTs with,
//! where the RustCrypto backends were too slow on wasm32 (see each module for the upstream
//! behaviour it mirrors: BoringSSL as Envoy 1.40's `jwt_authn` calls it):
//!
//! * [`rsa_verify`]: RSA PKCS#1 v1.5 and PSS (RS256/384/512, PS256/384/512);
//! * [`p256_verify`]: ECDSA on P-256 (ES256);
//! * [`short_weierstrass`]: the group law and double-scalar multiplication of the NIST prime
//!   curves, generic over their field: P-256 here and `meshguard-crypto-p384`'s P-384 instantiate
//!   it (each in its own crate, so each at its own opt-level);
//! * [`mod_inverse`]: the inverse modulo an odd modulus (binary extended Euclid), generic over
//!   the curve's arithmetic: P-256's `s^-1 mod n` and P-384's inversions mod n and p.
//!
//! ES384's P-384 is the `meshguard-crypto-p384` crate's (`crypto-p384/`), built for size.
//!
//! Pure functions of public data (keys, signatures, digests): no host, no configuration, no
//! dependency on the rest of meshguard. `meshguard-core` (`authn::jwt`) imports this crate, never
//! the reverse (`tests/architecture.rs`). It is a crate of its own so that the release profile
//! builds it for speed (opt-level 2) while `meshguard-core` is built for size ("z"): the
//! workspace's Cargo.toml says what each costs.
//!
//! The entry points the core calls (`RsaPublicKey::new`, `verify_pkcs1v15`, `verify_pss`, and
//! `P256PublicKey::new` and `verify`) are `#[inline(never)]`: with LTO a
//! function called from one place is inlined into its caller whatever its size, and code
//! inlined into a core function is compiled at the core's "z". (Measured on RS256 with this
//! crate at "s", the attribute changed nothing today; it keeps the boundary where the profile
//! says it is.)

#![cfg_attr(
    test,
    allow(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::indexing_slicing
    )
)]

pub mod mod_inverse;
pub mod p256_verify;
pub mod rsa_verify;
pub mod short_weierstrass;
