//! `Cache-Control: no-store` on every answer of this crate's routers, and the request body
//! limit, as one layer.
//!
//! Every `Router::layer` call wraps each route in one more boxed `Route`, and axum clones
//! the whole chain of boxes below a `Route` on every call; `GET /me` is the hottest
//! authenticated endpoint. This layer adds the header without boxing the response future
//! (axum's `map_response` boxes it), and [`answers`] stacks it with `DefaultBodyLimit` so
//! that the two cost one `Route`.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::extract::DefaultBodyLimit;
use axum::response::Response;
use http::HeaderValue;
use http::header::CACHE_CONTROL;
use pin_project_lite::pin_project;
use tower_layer::Layer;
use tower_service::Service;

/// The layers every route of [`router`](crate::router) and
/// [`privacy_router`](crate::privacy_router) sits in: `Cache-Control: no-store` unless the
/// handler set a `Cache-Control` itself (answers carry personal data and cookies: no shared
/// or browser cache may keep them), and the body limit of [`BODY_LIMIT`](crate::BODY_LIMIT).
pub(crate) fn answers() -> (NoStoreLayer, DefaultBodyLimit) {
    (
        NoStoreLayer,
        DefaultBodyLimit::max(crate::routes::BODY_LIMIT),
    )
}

/// Adds `Cache-Control: no-store` to responses that have no `Cache-Control`.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct NoStoreLayer;

impl<S> Layer<S> for NoStoreLayer {
    type Service = NoStore<S>;

    fn layer(&self, inner: S) -> NoStore<S> {
        NoStore { inner }
    }
}

/// The service of [`NoStoreLayer`].
#[derive(Debug, Clone)]
pub(crate) struct NoStore<S> {
    inner: S,
}

impl<S, R> Service<R> for NoStore<S>
where
    S: Service<R, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = NoStoreFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        NoStoreFuture {
            inner: self.inner.call(request),
        }
    }
}

pin_project! {
    /// The response future of [`NoStore`].
    pub(crate) struct NoStoreFuture<F> {
        #[pin]
        inner: F,
    }
}

impl<F, E> Future for NoStoreFuture<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = Result<Response, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut response = ready!(self.project().inner.poll(cx))?;
        response
            .headers_mut()
            .entry(CACHE_CONTROL)
            .or_insert(HeaderValue::from_static("no-store"));
        Poll::Ready(Ok(response))
    }
}
