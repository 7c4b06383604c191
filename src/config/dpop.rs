//! A JWT provider's DPoP settings (DESIGN.md section 14): `dpop`, `dpop_algorithms`,
//! `dpop_max_age_seconds` and `dpop_nonce`, read from the provider's object with JSON-path
//! errors. Settings that only matter with DPoP on are refused when it is off, so a typo'd
//! `"dpop": "disabled"` cannot hide a policy the operator thinks is in force.

use super::reader::{self, Obj, Result};
use crate::dpop::{self, Mode, Settings, DEFAULT_MAX_AGE_SECONDS};

/// The provider keys this module reads, for the provider's allowed-key list.
pub const KEYS: [&str; 4] = [
    "dpop",
    "dpop_algorithms",
    "dpop_max_age_seconds",
    "dpop_nonce",
];

/// Reads the DPoP settings of the provider object `obj`.
pub fn parse(obj: &Obj<'_>) -> Result<Settings> {
    let mode = obj
        .child("dpop", |n| {
            let name = reader::string(&n)?;
            Mode::parse(&name).map_or_else(
                || {
                    n.err(format!(
                        "must be \"disabled\", \"allowed\" or \"required\", not {name:?}"
                    ))
                },
                Ok,
            )
        })?
        .unwrap_or_default();
    let algorithms = obj.array("dpop_algorithms", |n| {
        let name = reader::string(&n)?;
        match dpop::proof_alg(&name) {
            Some(a) => Ok(a),
            None if name == "Ed25519" => {
                n.err("use \"EdDSA\" (it also admits proofs whose alg is \"Ed25519\")")
            }
            None => n.err(format!(
                "unsupported DPoP proof algorithm {name:?} (supported: EdDSA, ES256, RS256)"
            )),
        }
    })?;
    if let Some(algs) = &algorithms {
        if algs.is_empty() {
            return obj.err("dpop_algorithms", "must not be empty");
        }
        if let Some(i) = (1..algs.len()).find(|&i| algs[..i].contains(&algs[i])) {
            return Err(reader::ConfigError {
                path: format!("{}[{i}]", obj.key_path("dpop_algorithms")),
                message: "duplicate algorithm".into(),
            });
        }
    }
    let max_age_seconds = obj.int("dpop_max_age_seconds", 1, 3600)?;
    let nonce_rotate_seconds = obj.child("dpop_nonce", |n| {
        let o = n.object(Some(&["rotate_seconds"]))?;
        match o.int("rotate_seconds", 1, 86_400)? {
            Some(s) => Ok(s),
            None => o.err("rotate_seconds", "is required"),
        }
    })?;
    if mode == Mode::Disabled {
        if let Some(key) = KEYS[1..].iter().find(|k| obj.raw(k).is_some()) {
            return obj.err(
                key,
                "only allowed with \"dpop\": \"allowed\" or \"required\"",
            );
        }
    }
    Ok(Settings {
        mode,
        algorithms: algorithms.unwrap_or_else(|| dpop::DEFAULT_ALGORITHMS.to_vec()),
        max_age_seconds: max_age_seconds.unwrap_or(DEFAULT_MAX_AGE_SECONDS),
        nonce_rotate_seconds,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::reader::Node;
    use crate::dpop::Alg;
    use serde_json::{json, Value};

    fn parse_value(v: &Value) -> core::result::Result<Settings, String> {
        let node = Node::root(v);
        let obj = node.object(None).map_err(|e| e.to_string())?;
        parse(&obj).map_err(|e| e.to_string())
    }

    #[test]
    fn defaults_and_full_settings() {
        assert_eq!(parse_value(&json!({})), Ok(Settings::default()));
        assert_eq!(
            parse_value(&json!({
                "dpop": "required",
                "dpop_algorithms": ["ES256"],
                "dpop_max_age_seconds": 10,
                "dpop_nonce": {"rotate_seconds": 300}
            })),
            Ok(Settings {
                mode: Mode::Required,
                algorithms: vec![Alg::ES256],
                max_age_seconds: 10,
                nonce_rotate_seconds: Some(300),
            })
        );
        assert_eq!(
            parse_value(&json!({"dpop": "allowed"})).map(|s| s.mode),
            Ok(Mode::Allowed)
        );
    }

    #[test]
    fn errors_name_the_json_path() {
        for (config, error) in [
            (json!({"dpop": "on"}), "$.dpop: must be \"disabled\", \"allowed\" or \"required\", not \"on\""),
            (json!({"dpop": true}), "$.dpop: must be a string"),
            (json!({"dpop": "required", "dpop_algorithms": []}), "$.dpop_algorithms: must not be empty"),
            (json!({"dpop": "required", "dpop_algorithms": "EdDSA"}), "$.dpop_algorithms: must be an array"),
            (json!({"dpop": "required", "dpop_algorithms": ["EdDSA", "HS256"]}), "$.dpop_algorithms[1]: unsupported DPoP proof algorithm \"HS256\" (supported: EdDSA, ES256, RS256)"),
            (json!({"dpop": "required", "dpop_algorithms": ["none"]}), "$.dpop_algorithms[0]: unsupported DPoP proof algorithm \"none\" (supported: EdDSA, ES256, RS256)"),
            (json!({"dpop": "required", "dpop_algorithms": ["Ed25519"]}), "$.dpop_algorithms[0]: use \"EdDSA\" (it also admits proofs whose alg is \"Ed25519\")"),
            (json!({"dpop": "required", "dpop_algorithms": ["ES256", "EdDSA", "ES256"]}), "$.dpop_algorithms[2]: duplicate algorithm"),
            (json!({"dpop": "required", "dpop_max_age_seconds": 0}), "$.dpop_max_age_seconds: must be an integer from 1 to 3600"),
            (json!({"dpop": "required", "dpop_max_age_seconds": 3601}), "$.dpop_max_age_seconds: must be an integer from 1 to 3600"),
            (json!({"dpop": "required", "dpop_nonce": {}}), "$.dpop_nonce.rotate_seconds: is required"),
            (json!({"dpop": "required", "dpop_nonce": {"rotate_seconds": 0}}), "$.dpop_nonce.rotate_seconds: must be an integer from 1 to 86400"),
            (json!({"dpop": "required", "dpop_nonce": {"rotate_seconds": 60, "x": 1}}), "$.dpop_nonce.x: unknown key (allowed: rotate_seconds)"),
            (json!({"dpop_max_age_seconds": 30}), "$.dpop_max_age_seconds: only allowed with \"dpop\": \"allowed\" or \"required\""),
            (json!({"dpop": "disabled", "dpop_nonce": {"rotate_seconds": 60}}), "$.dpop_nonce: only allowed with \"dpop\": \"allowed\" or \"required\""),
        ] {
            assert_eq!(parse_value(&config), Err(error.to_string()), "{config}");
        }
    }
}
