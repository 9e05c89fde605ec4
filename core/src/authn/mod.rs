//! End-user authentication: Istio `RequestAuthentication` verified as Envoy's `jwt_authn` does.
//! The RSA and P-256 signature checks are the `meshguard-crypto` crate's (`crypto/`).

pub mod authenticator;
pub mod jwks_schedule;
pub mod jwt;
pub mod jwt_json;
pub mod request_authentication;
