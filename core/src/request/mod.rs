//! The request as the core sees it: headers, connection attributes and the proxy-wasm map wire
//! format.

pub mod header_pairs;
pub mod request_view;
