//! Typed configuration errors: where in the configuration (a [`ConfigPath`] of field names and
//! indexes, shown as `resources[2].spec.rules[0].from[1].source.principals[0]`) and what is
//! wrong. Envoy logs one line per rejected configuration, naming the field, as istiod's
//! validation webhook would.
//!
//! Paths are built only when something is wrong: a compiler returns an error relative to what
//! it was given, and each caller on the way out puts its own segment in front
//! ([`ConfigError::within`]), so a configuration that loads builds no path at all. Callers
//! that need a part of the path (the CLI's resource index) read the segments, not the text.

use std::borrow::Cow;
use std::fmt;

/// One step of a [`ConfigPath`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathSegment {
    /// An object field: `spec`, `rules`, `notPrincipals`.
    Field(Cow<'static, str>),
    /// A list element: `[3]`.
    Index(usize),
    /// A map entry: `annotations[meshguard.io/deny-status]`.
    Key(String),
}

/// Where a value sits in the plugin configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ConfigPath {
    segments: Vec<PathSegment>,
}

impl ConfigPath {
    /// The configuration itself (shown as nothing).
    pub fn root() -> ConfigPath {
        ConfigPath::default()
    }

    /// This path, then the field `name`.
    pub fn field(mut self, name: impl Into<Cow<'static, str>>) -> ConfigPath {
        self.segments.push(PathSegment::Field(name.into()));
        self
    }

    /// This path, then list element `index`.
    pub fn index(mut self, index: usize) -> ConfigPath {
        self.segments.push(PathSegment::Index(index));
        self
    }

    /// This path, then map entry `key`.
    pub fn key(mut self, key: impl Into<String>) -> ConfigPath {
        self.segments.push(PathSegment::Key(key.into()));
        self
    }

    /// This path, then `rest`.
    pub fn join(mut self, rest: ConfigPath) -> ConfigPath {
        self.segments.extend(rest.segments);
        self
    }

    pub fn segments(&self) -> &[PathSegment] {
        &self.segments
    }

    pub fn is_empty(&self) -> bool {
        self.segments.is_empty()
    }

    /// `N` for a path inside `resources[N]`.
    pub fn resource_index(&self) -> Option<usize> {
        match self.segments.as_slice() {
            [PathSegment::Field(f), PathSegment::Index(i), ..] if f == "resources" => Some(*i),
            _ => None,
        }
    }

    /// The same path inside `resources[index]` instead of the resource it named.
    pub fn with_resource_index(mut self, index: usize) -> ConfigPath {
        if self.resource_index().is_some() {
            if let Some(segment) = self.segments.get_mut(1) {
                *segment = PathSegment::Index(index);
            }
        }
        self
    }
}

/// A path of one field (`""` is the root): `err("from", ...)`.
impl From<&'static str> for ConfigPath {
    fn from(field: &'static str) -> ConfigPath {
        if field.is_empty() {
            ConfigPath::root()
        } else {
            ConfigPath::root().field(field)
        }
    }
}

impl fmt::Display for ConfigPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, segment) in self.segments.iter().enumerate() {
            match segment {
                PathSegment::Field(name) if i == 0 => f.write_str(name)?,
                PathSegment::Field(name) => write!(f, ".{name}")?,
                PathSegment::Index(index) => write!(f, "[{index}]")?,
                PathSegment::Key(key) => write!(f, "[{key}]")?,
            }
        }
        Ok(())
    }
}

/// Where one Kubernetes object sits in `resources`: `resources[index]`, then `items[i]` for each
/// `v1` `List` it is inside. Kept for every object while the configuration loads, so it holds
/// numbers only; [`ResourcePath::path`] builds the [`ConfigPath`] when there is an error.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResourcePath {
    index: usize,
    items: Vec<usize>,
}

impl ResourcePath {
    /// `resources[index]`.
    pub fn new(index: usize) -> ResourcePath {
        ResourcePath {
            index,
            items: Vec::new(),
        }
    }

    /// Item `i` of the `List` at this place.
    pub fn item(&self, i: usize) -> ResourcePath {
        let mut items = self.items.clone();
        items.push(i);
        ResourcePath {
            index: self.index,
            items,
        }
    }

    /// `resources[2].items[0]`.
    pub fn path(&self) -> ConfigPath {
        self.items.iter().fold(
            ConfigPath::root().field("resources").index(self.index),
            |path, i| path.field("items").index(*i),
        )
    }
}

/// A configuration problem: where it is and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: ConfigPath,
    pub reason: String,
}

impl ConfigError {
    pub fn new(path: impl Into<ConfigPath>, reason: impl Into<String>) -> ConfigError {
        ConfigError {
            path: path.into(),
            reason: reason.into(),
        }
    }

    /// The error of a part, seen from the whole: `prefix` goes in front of the path.
    pub fn within(mut self, prefix: impl Into<ConfigPath>) -> ConfigError {
        self.path = prefix.into().join(self.path);
        self
    }

    /// The error of list element `index`, seen from the list.
    pub fn at_index(self, index: usize) -> ConfigError {
        self.within(ConfigPath::root().index(index))
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
pub fn config_err<T>(path: impl Into<ConfigPath>, reason: impl Into<String>) -> ConfigResult<T> {
    Err(ConfigError::new(path, reason))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_reads_as_the_field_path_of_the_configuration() {
        let path = ConfigPath::root()
            .field("resources")
            .index(2)
            .field("metadata")
            .field("annotations")
            .key("meshguard.io/deny-status");
        assert_eq!(
            path.to_string(),
            "resources[2].metadata.annotations[meshguard.io/deny-status]"
        );
        assert_eq!(path.resource_index(), Some(2));
        assert_eq!(ConfigPath::root().to_string(), "");
    }

    #[test]
    fn an_error_gains_the_callers_segments_in_front() {
        let e = ConfigError::new("notPrincipal", "unknown field")
            .within(ConfigPath::root().field("from").index(0).field("source"))
            .at_index(1)
            .within("rules")
            .within(ConfigPath::root().field("resources").index(0).field("spec"));
        assert_eq!(
            e.to_string(),
            "resources[0].spec.rules[1].from[0].source.notPrincipal: unknown field"
        );
        assert_eq!(
            ResourcePath::new(3).item(1).path().to_string(),
            "resources[3].items[1]"
        );
        let moved = e.path.with_resource_index(4);
        assert_eq!(moved.resource_index(), Some(4));
        assert!(moved.to_string().starts_with("resources[4].spec.rules[1]"));
    }
}
