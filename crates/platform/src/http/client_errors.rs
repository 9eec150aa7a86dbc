//! Every 4xx a server answers is JSON in its error shape with a code, whoever produced it:
//! a handler, one of axum's extractors (a body too large, a method not allowed, a body
//! that is not JSON), or hyper itself for a request it cannot parse at all.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::extract::Request;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::json;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::error::{ErrorBody, ErrorCode};

/// How a server shapes its error bodies.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ErrorShape {
    /// `{"code": "NOT_FOUND", "message": "…"}`: the services.
    #[default]
    Service,
    /// `{"errors": [{"message": "…", "extensions": {"code": "NOT_FOUND"}}]}`: the GraphQL
    /// gateway.
    GraphQl,
}

impl ErrorShape {
    pub fn body(self, code: ErrorCode, message: &str) -> Vec<u8> {
        let value = match self {
            ErrorShape::Service => json!({ "code": code, "message": message }),
            ErrorShape::GraphQl => json!({
                "errors": [{ "message": message, "extensions": { "code": code } }]
            }),
        };
        serde_json::to_vec(&value).unwrap_or_default()
    }

    pub fn response(self, status: StatusCode, code: ErrorCode, message: &str) -> Response {
        let mut response = Response::new(Body::from(self.body(code, message)));
        *response.status_mut() = status;
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        response
    }

    /// Whether `body` already is an error of this shape.
    fn holds(self, body: &[u8]) -> bool {
        match self {
            ErrorShape::Service => serde_json::from_slice::<ErrorBody>(body).is_ok(),
            ErrorShape::GraphQl => serde_json::from_slice::<serde_json::Value>(body)
                .is_ok_and(|v| v.get("errors").is_some_and(|e| e.is_array())),
        }
    }
}

/// Error bodies longer than this are not read back to be reshaped.
const MAX_ERROR_BODY: usize = 64 * 1024;

/// Reshapes every 4xx of `router` that is not already an error of `shape` (HTML pages
/// meant for people stay as they are).
pub fn json_client_errors(router: Router, shape: ErrorShape) -> Router {
    router.layer(axum::middleware::from_fn(
        move |request: Request, next: Next| async move {
            let method = request.method().clone();
            let response = next.run(request).await;
            if !response.status().is_client_error() || is_html(&response) {
                return response;
            }
            let (mut parts, body) = response.into_parts();
            let bytes = to_bytes(body, MAX_ERROR_BODY).await.unwrap_or_default();
            if shape.holds(&bytes) {
                return Response::from_parts(parts, Body::from(bytes));
            }
            let (code, message) = match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(error) => (error.code, error.message),
                Err(_) => (
                    ErrorCode::for_status(parts.status),
                    message_for(parts.status, &method, &parts.headers, &bytes),
                ),
            };
            let reshaped = shape.response(parts.status, code, &message);
            parts.headers.remove(header::CONTENT_LENGTH);
            parts.headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            Response::from_parts(parts, reshaped.into_body())
        },
    ))
}

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"))
}

/// Words for a 4xx that came without any: the framework's own text when it has some.
fn message_for(
    status: StatusCode,
    method: &axum::http::Method,
    headers: &axum::http::HeaderMap,
    body: &[u8],
) -> String {
    match status {
        StatusCode::METHOD_NOT_ALLOWED => {
            match headers.get(header::ALLOW).and_then(|v| v.to_str().ok()) {
                Some(allowed) if !allowed.is_empty() => {
                    format!("{method} is not allowed here (allowed: {allowed})")
                }
                _ => format!("{method} is not allowed here"),
            }
        }
        StatusCode::PAYLOAD_TOO_LARGE => "the request body is too large".to_owned(),
        StatusCode::NOT_FOUND => "no such route".to_owned(),
        _ => match std::str::from_utf8(body).map(str::trim) {
            Ok(text) if !text.is_empty() => text.to_owned(),
            _ => status
                .canonical_reason()
                .unwrap_or("bad request")
                .to_lowercase(),
        },
    }
}

/// A connection whose automatic answers from hyper (a request it could not parse: a URI
/// over 64 KiB, headers over its limits, bytes that are not HTTP) come out as JSON errors.
///
/// hyper writes those answers itself, before any handler runs, as a bare status line with
/// `content-length: 0`; every 4xx of ours has a body (see [`json_client_errors`]), so a
/// 4xx head with an empty body is one of hyper's, and it is replaced as it is written.
pub struct ParseErrorsAsJson<T> {
    inner: T,
    shape: ErrorShape,
    /// A replacement answer still to be written, and how much of it was.
    pending: Vec<u8>,
    written: usize,
}

impl<T> ParseErrorsAsJson<T> {
    pub fn new(inner: T, shape: ErrorShape) -> Self {
        ParseErrorsAsJson {
            inner,
            shape,
            pending: Vec::new(),
            written: 0,
        }
    }
}

impl<T: AsyncWrite + Unpin> ParseErrorsAsJson<T> {
    fn drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.written < self.pending.len() {
            let n =
                ready!(Pin::new(&mut self.inner).poll_write(cx, &self.pending[self.written..]))?;
            if n == 0 {
                return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
            }
            self.written += n;
        }
        self.pending.clear();
        self.written = 0;
        Poll::Ready(Ok(()))
    }

    /// Takes `head` in place of hyper's automatic answer when it is one.
    fn replace(&mut self, cx: &mut Context<'_>, head: &[u8]) -> Option<Poll<io::Result<usize>>> {
        let replacement = automatic_answer(head, self.shape)?;
        self.pending = replacement;
        self.written = 0;
        // Written now if the socket takes it; otherwise on the flush that follows.
        if let Poll::Ready(Err(e)) = self.drain(cx) {
            return Some(Poll::Ready(Err(e)));
        }
        Some(Poll::Ready(Ok(head.len())))
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for ParseErrorsAsJson<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for ParseErrorsAsJson<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        if let Some(done) = self.replace(cx, buf) {
            return done;
        }
        Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        ready!(self.drain(cx))?;
        let mut filled = bufs.iter().filter(|b| !b.is_empty());
        if let (Some(only), None) = (filled.next(), filled.next())
            && let Some(done) = self.replace(cx, only)
        {
            return done;
        }
        Pin::new(&mut self.inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        ready!(self.drain(cx))?;
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The JSON answer that replaces `head` when `head` is a whole 4xx head with an empty body.
fn automatic_answer(head: &[u8], shape: ErrorShape) -> Option<Vec<u8>> {
    if !head.starts_with(b"HTTP/1.") || !head.ends_with(b"\r\n\r\n") || head.len() < 12 {
        return None;
    }
    let status: u16 = std::str::from_utf8(&head[9..12]).ok()?.parse().ok()?;
    let status = StatusCode::from_u16(status).ok()?;
    let empty = head
        .split(|b| *b == b'\n')
        .any(|line| line.eq_ignore_ascii_case(b"content-length: 0\r"));
    if !status.is_client_error() || !empty {
        return None;
    }
    let message = match status {
        StatusCode::URI_TOO_LONG => "the request URI is too long (at most 64 KiB)",
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => {
            "the request headers are too large or too many"
        }
        _ => "the request is not valid HTTP",
    };
    let body = shape.body(ErrorCode::for_status(status), message);
    let mut answer = format!(
        "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        status.as_u16(),
        status.canonical_reason().unwrap_or(""),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    Some(answer)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_empty_client_error_heads_are_replaced() {
        let hyper_414 = b"HTTP/1.1 414 URI Too Long\r\ncontent-length: 0\r\ndate: Thu, 03 Dec 2026 10:00:00 GMT\r\n\r\n";
        let answer =
            String::from_utf8(automatic_answer(hyper_414, ErrorShape::GraphQl).unwrap()).unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 414 URI Too Long\r\n"),
            "{answer}"
        );
        let body = answer.split("\r\n\r\n").nth(1).unwrap();
        let body: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

        let service = String::from_utf8(
            automatic_answer(
                b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n",
                ErrorShape::Service,
            )
            .unwrap(),
        )
        .unwrap();
        assert!(
            service.ends_with(
                r#"{"code":"BAD_USER_INPUT","message":"the request is not valid HTTP"}"#
            ),
            "{service}"
        );

        for untouched in [
            &b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..],
            b"HTTP/1.1 404 Not Found\r\ncontent-length: 31\r\n\r\n",
            b"HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\n\r\n",
            b"{\"data\":1}",
            b"HTTP/1.1 414",
        ] {
            assert!(automatic_answer(untouched, ErrorShape::GraphQl).is_none());
        }
    }
}
