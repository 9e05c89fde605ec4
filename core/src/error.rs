//! Typed configuration errors: where in the configuration (a field path such as
//! `resources[2].spec.rules[0].from[1].source.principals[0]`) and what is wrong. Envoy logs one
//! line per rejected configuration, naming the field, as istiod's validation webhook would.

use std::fmt;

/// A configuration problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: &str, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    pub fn within(mut self, prefix: &str) -> ConfigError {
        self.path = if self.path.is_empty() {
            prefix.to_string()
        } else if self.path.starts_with('[') {
            format!("{prefix}{}", self.path)
        } else {
            format!("{prefix}.{}", self.path)
        };
        self
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}", self.reason)
        } else {
            write!(f, "{}: {}", self.path, self.reason)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The result of compiling one piece of configuration.
pub type ConfigResult<T> = Result<T, ConfigError>;

/// A configuration error at `path`.
pub fn config_err<T>(path: &str, reason: impl Into<String>) -> ConfigResult<T> {
    Err(ConfigError::new(path, reason))
}
