//! Istio host names as Sidecar egress hosts and ServiceEntry hosts write them: `*` (any), a
//! leading `*.` (a suffix; `*.example.com` does not match `example.com`) or an exact name,
//! compared case-insensitively, as istiod's `host.Name` matching does.

use crate::error::ConfigError;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HostMatch {
    Any,
    Suffix(String),
    Exact(String),
}

impl HostMatch {
    /// Parses one dnsName; errors are relative to it.
    pub fn parse(dns: &str) -> Result<HostMatch, ConfigError> {
        match dns {
            "" => Err(ConfigError::new("", "dnsName must not be empty")),
            "*" => Ok(HostMatch::Any),
            d => match d.strip_prefix('*') {
                Some(suffix) if suffix.starts_with('.') && !suffix.contains('*') => {
                    Ok(HostMatch::Suffix(suffix.to_ascii_lowercase()))
                }
                _ if d.contains('*') => Err(ConfigError::new(
                    "",
                    "a wildcard is only allowed as a leading '*.'",
                )),
                _ => Ok(HostMatch::Exact(d.to_ascii_lowercase())),
            },
        }
    }

    /// Whether the lower-case `fqdn` is this host.
    pub fn matches(&self, fqdn: &str) -> bool {
        match self {
            HostMatch::Any => true,
            HostMatch::Suffix(s) => fqdn.ends_with(s.as_str()),
            HostMatch::Exact(e) => fqdn == e,
        }
    }
}
