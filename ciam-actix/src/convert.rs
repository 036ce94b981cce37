//! Conversions at the adapter's edge: actix-web 4 speaks `http` 0.2, ciam-axum `http` 1.
//!
//! Names, values and status codes are carried over byte for byte; both versions validate
//! them by the same rules, so a value one accepts the other accepts too.

use actix_web::HttpResponse;
use actix_web::http::StatusCode as ActixStatus;
use actix_web::http::header::{
    HeaderMap as ActixHeaders, HeaderName as ActixName, HeaderValue as ActixValue,
};
use actix_web::web::Bytes;
use axum::response::Response;
use futures_util::FutureExt;
use http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};

/// An actix request's headers as an `http` 1 map (every value, in order).
pub(crate) fn headers(from: &ActixHeaders) -> http::HeaderMap {
    let mut to = http::HeaderMap::with_capacity(from.len());
    for (name, value) in from {
        let converted = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        );
        if let (Ok(name), Ok(mut converted)) = converted {
            converted.set_sensitive(value.is_sensitive());
            to.append(name, converted);
        }
    }
    to
}

/// One named header of an actix request, as an `http` 1 map.
pub(crate) fn header(from: &ActixHeaders, name: http::HeaderName) -> http::HeaderMap {
    let mut to = http::HeaderMap::new();
    for value in from.get_all(name.as_str()) {
        if let Ok(value) = http::HeaderValue::from_bytes(value.as_bytes()) {
            to.append(name.clone(), value);
        }
    }
    to
}

/// An actix method as an `http` 1 method. Every method actix parses is a valid token, so the
/// fallback never happens; were it to, `POST` is the strictest reading (state-changing, so
/// origin-checked).
pub(crate) fn method(from: &actix_web::http::Method) -> http::Method {
    http::Method::from_bytes(from.as_str().as_bytes()).unwrap_or(http::Method::POST)
}

/// An `http` 1 header value as an actix one.
pub(crate) fn value(from: &http::HeaderValue) -> Option<ActixValue> {
    ActixValue::from_bytes(from.as_bytes()).ok()
}

/// The status, headers and body of a response, in actix's types.
#[derive(Debug, Clone)]
pub(crate) struct Parts {
    pub(crate) status: ActixStatus,
    pub(crate) headers: ActixHeaders,
    pub(crate) body: Bytes,
}

impl Parts {
    /// Status and headers of `response`, with `body` (read by the caller). Framing headers
    /// are left to actix, which sets them for the body it sends.
    fn new(head: &http::response::Parts, body: Bytes) -> Self {
        let status = ActixStatus::from_u16(head.status.as_u16())
            .unwrap_or(ActixStatus::INTERNAL_SERVER_ERROR);
        let mut headers = ActixHeaders::with_capacity(head.headers.len());
        for (name, v) in &head.headers {
            if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
                continue;
            }
            if let (Ok(name), Some(v)) = (ActixName::from_bytes(name.as_str().as_bytes()), value(v))
            {
                headers.append(name, v);
            }
        }
        Self {
            status,
            headers,
            body,
        }
    }

    /// Reads a whole response (a handler's answer, of any size the handler chose).
    pub(crate) async fn read(response: Response) -> Self {
        let (head, body) = response.into_parts();
        match axum::body::to_bytes(body, usize::MAX).await {
            Ok(bytes) => Self::new(&head, bytes),
            Err(e) => {
                tracing::error!(error = %e, "reading a ciam-axum response body failed");
                Self::internal()
            }
        }
    }

    /// Reads a response whose body is already in memory (ciam-axum's rejections: JSON built
    /// in place), without waiting.
    pub(crate) fn read_now(response: Response) -> Self {
        let (head, body) = response.into_parts();
        match axum::body::to_bytes(body, usize::MAX).now_or_never() {
            Some(Ok(bytes)) => Self::new(&head, bytes),
            _ => {
                tracing::error!("a ciam-axum rejection body was not in memory");
                Self::internal()
            }
        }
    }

    fn internal() -> Self {
        Self {
            status: ActixStatus::INTERNAL_SERVER_ERROR,
            headers: ActixHeaders::new(),
            body: Bytes::new(),
        }
    }

    /// The actix response.
    pub(crate) fn response(&self) -> HttpResponse {
        let mut response = HttpResponse::with_body(self.status, self.body.clone());
        for (name, v) in &self.headers {
            response.headers_mut().append(name.clone(), v.clone());
        }
        response.map_into_boxed_body()
    }
}
