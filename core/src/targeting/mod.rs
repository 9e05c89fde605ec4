//! Which resources apply to this workload: namespaces, labels, selectors.

pub mod attachment;
pub mod workload;
