//! The request as the core sees it: headers, connection attributes and the proxy-wasm map wire
//! format.

pub mod header_pairs;
pub mod json_value;
pub mod path_normalization;
pub mod peer;
pub mod request_view;
pub mod verified_claims;
