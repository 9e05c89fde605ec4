//! End-user authentication: Istio `RequestAuthentication` verified as Envoy's `jwt_authn` does.

pub mod authenticator;
pub mod jwks_schedule;
pub mod jwt;
pub mod jwt_json;
pub mod p256_verify;
pub mod p384_verify;
pub mod request_authentication;
pub mod rsa_verify;
