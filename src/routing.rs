//! Route resolution (DESIGN.md sections 2 and 6): which bundle route a request belongs to.
//! `request` mode matches method + `path_template` (single-segment `{name}` placeholders, an
//! exact path beats a template); `route-id` mode names the route in configuration.

use crate::config::{Bundle, Route};
pub use crate::path_match::PathTemplate;

/// The route for `method` + `path`: an exact template first, then the (unique, checked at load)
/// placeholder template.
pub fn resolve<'b>(bundle: &'b Bundle, method: &str, path: &str) -> Option<&'b Route> {
    let candidates = || {
        bundle
            .routes
            .iter()
            .filter(|r| r.method == method && r.template.matches(path))
    };
    candidates()
        .find(|r| r.template.is_exact())
        .or_else(|| candidates().next())
}
