//! Route resolution (DESIGN.md sections 2 and 6): which bundle route a request belongs to.
//! `request` mode matches method + `path_template` (single-segment `{name}` placeholders, an
//! exact path beats a template); `route-id` mode names the route in configuration.

use crate::config::{Bundle, Route};
use crate::path_match::PathIndex;
pub use crate::path_match::PathTemplate;
use std::collections::BTreeMap;

/// The bundle's routes indexed at load: by method, then by path segment (a trie), and by id, so
/// resolving a request costs the length of its path, not the number of routes.
#[derive(Debug, Clone, Default)]
pub struct RouteIndex {
    by_method: BTreeMap<String, PathIndex>,
    by_id: BTreeMap<String, usize>,
}

impl RouteIndex {
    /// Position of an earlier route with this id.
    pub fn id(&self, route_id: &str) -> Option<usize> {
        self.by_id.get(route_id).copied()
    }

    /// Positions of earlier routes of the same method and kind (exact or placeholder) that match
    /// some path this one matches, ascending.
    pub fn clashes(&self, route: &Route) -> Vec<usize> {
        self.by_method
            .get(&route.method)
            .map(|index| index.overlapping(&route.template))
            .unwrap_or_default()
    }

    /// Adds the route at `position` of the bundle's route list.
    pub fn insert(&mut self, route: &Route, position: usize) {
        self.by_method
            .entry(route.method.clone())
            .or_default()
            .insert(&route.template, position);
        self.by_id.entry(route.route_id.clone()).or_insert(position);
    }

    fn resolve(&self, method: &str, path: &str) -> Option<usize> {
        self.by_method.get(method)?.resolve(path)
    }
}

/// The route for `method` + `path`: an exact template first, then the (unique, checked at load)
/// placeholder template.
pub fn resolve<'b>(bundle: &'b Bundle, method: &str, path: &str) -> Option<&'b Route> {
    bundle
        .index
        .resolve(method, path)
        .and_then(|i| bundle.routes.get(i))
}
