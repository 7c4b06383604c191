//! A small JSON reader that remembers where it is, so every configuration error names the JSON
//! path of the offending value (`$.trust_material.issuers[0].keys[1].public_key_b64url`).

use serde_json::{Map, Value};

/// A configuration error: where, and what is wrong there.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub message: String,
}

impl core::fmt::Display for ConfigError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

pub type Result<T> = core::result::Result<T, ConfigError>;

/// A JSON value and its path.
#[derive(Clone, Copy)]
pub struct Node<'a> {
    pub value: &'a Value,
    path: &'a str,
}

/// An object node whose keys may be checked against an allowed list.
pub struct Obj<'a> {
    map: &'a Map<String, Value>,
    path: String,
}

impl<'a> Node<'a> {
    pub fn root(value: &'a Value) -> Self {
        Node { value, path: "$" }
    }

    pub fn err<T>(&self, message: impl Into<String>) -> Result<T> {
        Err(ConfigError {
            path: self.path.to_string(),
            message: message.into(),
        })
    }

    /// This node as an object; with `allowed`, unknown keys are errors.
    pub fn object(&self, allowed: Option<&[&str]>) -> Result<Obj<'a>> {
        let Value::Object(map) = self.value else {
            return self.err("must be an object");
        };
        if let Some(allowed) = allowed {
            if let Some(k) = map.keys().find(|k| !allowed.contains(&k.as_str())) {
                return Err(ConfigError {
                    path: format!("{}.{k}", self.path),
                    message: format!("unknown key (allowed: {})", allowed.join(", ")),
                });
            }
        }
        Ok(Obj {
            map,
            path: self.path.to_string(),
        })
    }
}

impl<'a> Obj<'a> {
    pub fn path(&self) -> &str {
        &self.path
    }

    pub fn key_path(&self, key: &str) -> String {
        format!("{}.{key}", self.path)
    }

    pub fn err<T>(&self, key: &str, message: impl Into<String>) -> Result<T> {
        Err(ConfigError {
            path: self.key_path(key),
            message: message.into(),
        })
    }

    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        match self.map.get(key) {
            None | Some(Value::Null) => None,
            some => some,
        }
    }

    /// A child node, if present and not null; `with` receives it with its path.
    pub fn child<T>(
        &self,
        key: &str,
        with: impl FnOnce(Node<'_>) -> Result<T>,
    ) -> Result<Option<T>> {
        match self.raw(key) {
            None => Ok(None),
            Some(value) => {
                let path = self.key_path(key);
                with(Node { value, path: &path }).map(Some)
            }
        }
    }

    pub fn required<T>(&self, key: &str, with: impl FnOnce(Node<'_>) -> Result<T>) -> Result<T> {
        match self.child(key, with)? {
            Some(v) => Ok(v),
            None => self.err(key, "is required"),
        }
    }

    /// A non-empty string without surrounding whitespace.
    pub fn string(&self, key: &str) -> Result<Option<String>> {
        self.child(key, |n| string(&n))
    }

    pub fn required_string(&self, key: &str) -> Result<String> {
        self.required(key, |n| string(&n))
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>> {
        self.child(key, |n| match n.value {
            Value::Bool(b) => Ok(*b),
            _ => n.err("must be true or false"),
        })
    }

    /// An integer within `min..=max`.
    pub fn int(&self, key: &str, min: i64, max: i64) -> Result<Option<i64>> {
        self.child(key, |n| match n.value.as_i64() {
            Some(v) if (min..=max).contains(&v) => Ok(v),
            _ => n.err(format!("must be an integer from {min} to {max}")),
        })
    }

    /// Each element of an array, with its indexed path.
    pub fn array<T>(
        &self,
        key: &str,
        mut each: impl FnMut(Node<'_>) -> Result<T>,
    ) -> Result<Option<Vec<T>>> {
        let Some(value) = self.raw(key) else {
            return Ok(None);
        };
        let base = self.key_path(key);
        let Value::Array(items) = value else {
            return Err(ConfigError {
                path: base,
                message: "must be an array".into(),
            });
        };
        let mut out = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let path = format!("{base}[{i}]");
            out.push(each(Node {
                value: item,
                path: &path,
            })?);
        }
        Ok(Some(out))
    }
}

/// A node that must be a non-empty string without leading or trailing whitespace.
pub fn string(n: &Node<'_>) -> Result<String> {
    match n.value {
        Value::String(s) if s.is_empty() => n.err("must not be empty"),
        Value::String(s) if s.trim() != s => n.err("must not have leading or trailing whitespace"),
        Value::String(s) => Ok(s.clone()),
        _ => n.err("must be a string"),
    }
}
