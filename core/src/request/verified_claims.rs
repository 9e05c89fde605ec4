//! The verified end-user token's claims, as authorization rules read them (`request.auth.*`).
//! Produced by authentication (meshguard's own verification or Envoy's `jwt_authn` metadata);
//! part of the request view, so the matchers never depend on how the token was verified.

use serde_json::{Map, Value};

/// The verified token's claims as authorization rules see them: the payload with the
/// space-delimited claims split into lists, as Envoy writes them to `payload_in_metadata`.
#[derive(Debug, Clone, PartialEq)]
pub struct Claims {
    payload: Map<String, Value>,
}

impl Claims {
    pub fn new(mut payload: Map<String, Value>, space_delimited: &[String]) -> Claims {
        for name in space_delimited {
            if let Some(Value::String(s)) = payload.get(name) {
                let items: Vec<Value> = s
                    .split(' ')
                    .filter(|p| !p.is_empty())
                    .map(|p| Value::String(p.to_string()))
                    .collect();
                if !items.is_empty() {
                    payload.insert(name.clone(), Value::Array(items));
                }
            }
        }
        Claims { payload }
    }

    /// The claim at a nested path, if present.
    pub fn get(&self, path: &[Box<str>]) -> Option<&Value> {
        let (first, rest) = path.split_first()?;
        let mut value = self.payload.get(&**first)?;
        for part in rest {
            value = value.as_object()?.get(&**part)?;
        }
        Some(value)
    }

    /// A top-level string claim (`iss`, `sub`).
    pub fn string(&self, name: &str) -> Option<&str> {
        self.payload.get(name).and_then(Value::as_str)
    }
}
