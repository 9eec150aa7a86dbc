//! The small pages a link from an email opens (`/unsubscribe`, `/reset-password`): Herald's
//! own text in the look of the customer app, whose stylesheet the gateway serves at
//! [`STYLESHEET`]. Such a page may carry a token in its address, so it is never cached,
//! framed or sent on as a referrer, and it runs no script.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

/// Where the gateway serves the app's stylesheet.
pub const STYLESHEET: &str = "/app/app.css";

/// A page titled `title` holding `content`: HTML built by the caller from its own text,
/// with anything it was given passed through [`escape`].
pub fn small_page(status: StatusCode, title: &str, content: &str) -> Response {
    let title = escape(title);
    let html = format!(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <meta name=\"referrer\" content=\"no-referrer\">\
         <title>{title} – Herald</title><link rel=\"stylesheet\" href=\"{STYLESHEET}\"></head>\
         <body><header class=\"top\"><a class=\"brand\" href=\"/\">Herald</a></header>\
         <main class=\"narrow\"><div class=\"card\"><h1>{title}</h1>{content}</div></main>\
         </body></html>"
    );
    let mut response = (status, Html(html)).into_response();
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CACHE_CONTROL, "no-store"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (
            header::CONTENT_SECURITY_POLICY,
            "default-src 'none'; style-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// `text` made safe to put in HTML text or a quoted attribute.
pub fn escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => escaped.push_str("&amp;"),
            '<' => escaped.push_str("&lt;"),
            '>' => escaped.push_str("&gt;"),
            '"' => escaped.push_str("&quot;"),
            '\'' => escaped.push_str("&#39;"),
            c => escaped.push(c),
        }
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_page_has_the_apps_look_and_nothing_given_becomes_markup() {
        let response = small_page(StatusCode::BAD_REQUEST, "<b>x</b>", "<p>ok</p>");
        assert_eq!(response.status(), StatusCode::BAD_REQUEST);
        assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store");
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(html.contains("<h1>&lt;b&gt;x&lt;/b&gt;</h1>"), "{html}");
        assert!(html.contains(STYLESHEET), "{html}");
        assert_eq!(escape("a\"b'<&>"), "a&quot;b&#39;&lt;&amp;&gt;");
    }
}
