//! End-user authentication: Istio `RequestAuthentication` verified as Envoy's `jwt_authn` does.
//! The RSA and P-256 signature checks are the `meshguard-crypto` crate's (`crypto/`), P-384 the
//! `meshguard-crypto-p384` crate's (`crypto-p384/`).

pub mod authenticator;
pub mod decimal;
pub mod float_text;
pub mod jwks_schedule;
pub mod jwt;
pub mod jwt_json;
pub mod request_authentication;
