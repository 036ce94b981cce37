//! Routes registered at their full path under a mount point, for [`router_at`](crate::router_at)
//! and [`privacy_router_at`](crate::privacy_router_at).
//!
//! `Router::nest` re-registers every nested route with a layer that rebuilds the request's URI
//! without the prefix and inserts a `NestedPath` extension, on every request: on `GET /me`,
//! about 4,500 instructions and 10 allocations per request (callgrind, `benches/README.md`). Registering
//! the routes at `prefix + path` answers the same requests without that work.

use axum::Router;
use axum::routing::MethodRouter;

/// A router being built at a mount point.
pub(crate) struct At<S> {
    prefix: String,
    router: Router<S>,
}

impl<S> At<S>
where
    S: Clone + Send + Sync + 'static,
{
    /// Routes under `prefix` (see [`mount_point`]).
    pub(crate) fn new(prefix: &str) -> Self {
        Self {
            prefix: mount_point(prefix),
            router: Router::new(),
        }
    }

    /// Adds `method_router` at `path` (relative to the mount point, starting with `/`).
    pub(crate) fn route(mut self, path: &str, method_router: MethodRouter<S>) -> Self {
        let full = format!("{}{path}", self.prefix);
        self.router = self.router.route(&full, method_router);
        self
    }

    /// The routes built.
    pub(crate) fn into_router(self) -> Router<S> {
        self.router
    }
}

/// `prefix` as a mount point: empty for the root, else `/segment...` without a trailing `/`.
///
/// # Panics
///
/// When `prefix` is not empty and does not start with `/`, or holds a path parameter or
/// wildcard (`{`, `}`, `*`): the handlers' `Path` extractors would see its captures. This is
/// the application's configuration, not client input; `Router::nest` panics on bad paths too.
pub(crate) fn mount_point(prefix: &str) -> String {
    let trimmed = prefix.trim_end_matches('/');
    assert!(
        trimmed.is_empty() || trimmed.starts_with('/'),
        "ciam-axum: mount point `{prefix}` must start with `/`"
    );
    assert!(
        !trimmed.contains(['{', '}', '*']),
        "ciam-axum: mount point `{prefix}` must not hold path parameters or wildcards"
    );
    trimmed.to_owned()
}

#[cfg(test)]
mod tests {
    use super::mount_point;

    #[test]
    fn mount_points_are_normalized() {
        assert_eq!(mount_point(""), "");
        assert_eq!(mount_point("/"), "");
        assert_eq!(mount_point("/auth"), "/auth");
        assert_eq!(mount_point("/auth/"), "/auth");
        assert_eq!(mount_point("/api/v1/auth"), "/api/v1/auth");
    }

    #[test]
    #[should_panic(expected = "must start with `/`")]
    fn a_relative_mount_point_is_refused() {
        mount_point("auth");
    }

    #[test]
    #[should_panic(expected = "path parameters")]
    fn a_mount_point_with_a_capture_is_refused() {
        mount_point("/{tenant}/auth");
    }
}
