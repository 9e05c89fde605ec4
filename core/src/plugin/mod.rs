//! The pipeline layer: the plugin configuration contract, the compiled plugin and the request
//! pipeline that the wasm filter, the CLI and the tests share.

pub mod counters;
pub mod engine;
pub mod plugin_config;
pub mod rbac_report;
pub mod request_pipeline;
pub mod settings;
