//! The compiled matchers: strings, paths, identities, CIDRs, JSON claim paths, the closed
//! [`predicate::Predicate`] algebra over them and the load-time rule index.

pub mod attribute_vocabulary;
pub mod cidr;
pub mod identity_match;
pub mod json_path;
pub mod path_match;
pub mod predicate;
pub mod rule_index;
pub mod sort_order;
pub mod string_match;
pub mod substring;
