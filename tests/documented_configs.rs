//! The plugin configurations shipped in envoy/ and examples/ are valid proofgate configs: a
//! documented config that Envoy would refuse is a broken promise.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use proofgate::config::{Config, Routing};

/// The JSON block under the first `value: |` line, up to the first line indented less.
fn embedded_json(path: &str) -> String {
    let text = std::fs::read_to_string(format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut lines = text
        .lines()
        .skip_while(|l| !l.trim_end().ends_with("value: |"));
    let header = lines.next().expect("no `value: |` block");
    let indent = header.len() - header.trim_start().len();
    lines
        .take_while(|l| l.trim().is_empty() || l.len() - l.trim_start().len() > indent)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn demo_gateway_config_is_valid() {
    let config = Config::parse(embedded_json("envoy/envoy.yaml").as_bytes()).unwrap();
    assert_eq!(config.routing, Routing::Request);
    assert_eq!(config.bundle.as_ref().map(|b| b.routes.len()), Some(2));
    assert_eq!(
        config.issuers[0].issuer,
        "https://issuer.example/external-jwks"
    );
}

#[test]
fn istio_envoyfilter_config_is_valid() {
    let config = Config::parse(embedded_json("examples/istio-wasmplugin.yaml").as_bytes()).unwrap();
    assert_eq!(config.routing, Routing::RouteId("orders.create".into()));
    assert!(config.bundle.is_none());
}
