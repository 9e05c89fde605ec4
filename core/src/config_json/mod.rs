//! The configuration's JSON, read by hand: a parsed document that keeps what serde's derive
//! needed to see (member order, repeated keys) and typed field access with serde's refusals.

pub mod outline;
pub mod raw;
pub mod reader;
pub mod source;
pub mod string_map;
