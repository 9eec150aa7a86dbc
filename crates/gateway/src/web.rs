//! The browser app, served from files inside the binary (no build step, nothing from a
//! CDN): the customer app at `/`, the admin console at `/admin`, and their scripts and
//! stylesheet under `/app/`. The pages only call the public GraphQL API, so what they may
//! do is what the API allows the signed-in user.
//!
//! The files are in `assets/app/`: `herald.js` (the API, the session, live updates, page
//! helpers), `customer.js`, `admin.js` and `app.css`.

use std::hash::{DefaultHasher, Hasher};
use std::sync::LazyLock;

use axum::Router;
use axum::extract::Path;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use herald_platform::ErrorCode;
use herald_platform::http::ErrorShape;

/// One file the app is made of.
struct File {
    name: &'static str,
    content_type: &'static str,
    bytes: &'static [u8],
}

macro_rules! file {
    ($name:literal, $type:literal) => {
        File {
            name: $name,
            content_type: $type,
            bytes: include_bytes!(concat!("../assets/app/", $name)),
        }
    };
}

const FILES: &[File] = &[
    file!("index.html", "text/html; charset=utf-8"),
    file!("admin.html", "text/html; charset=utf-8"),
    file!("app.css", "text/css; charset=utf-8"),
    file!("herald.js", "text/javascript; charset=utf-8"),
    file!("customer.js", "text/javascript; charset=utf-8"),
    file!("admin.js", "text/javascript; charset=utf-8"),
];

/// The pages load only their own files and talk only to their own origin (GraphQL over
/// HTTP and WebSocket); no inline script or style, no framing.
const POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Each file's entity tag, from its content: a browser asks again on every load and gets
/// 304 until the binary changes.
static TAGS: LazyLock<Vec<HeaderValue>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|file| {
            let mut hasher = DefaultHasher::new();
            hasher.write(file.bytes);
            HeaderValue::from_str(&format!("\"{:016x}\"", hasher.finish()))
                .expect("hex is a header value")
        })
        .collect()
});

pub fn routes() -> Router {
    Router::new()
        .route("/", get(|headers: HeaderMap| async move { serve("index.html", &headers) }))
        .route(
            "/admin",
            get(|headers: HeaderMap| async move { serve("admin.html", &headers) }),
        )
        .route(
            "/app/{file}",
            get(|Path(file): Path<String>, headers: HeaderMap| async move {
                serve(&file, &headers)
            }),
        )
}

fn serve(name: &str, request: &HeaderMap) -> Response {
    let Some(index) = FILES.iter().position(|file| file.name == name) else {
        return ErrorShape::GraphQl.response(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            &format!("the app has no file {name:?}"),
        );
    };
    let file = &FILES[index];
    let tag = &TAGS[index];
    let fresh = request
        .get(header::IF_NONE_MATCH)
        .is_some_and(|sent| sent == tag);
    let mut response = if fresh {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        ([(header::CONTENT_TYPE, file.content_type)], file.bytes).into_response()
    };
    let headers = response.headers_mut();
    headers.insert(header::ETAG, tag.clone());
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    if file.content_type.starts_with("text/html") {
        headers.insert(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(POLICY),
        );
        headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        headers.insert(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        );
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_the_pages_load_is_served() {
        for page in ["index.html", "admin.html"] {
            let html =
                std::str::from_utf8(FILES.iter().find(|f| f.name == page).unwrap().bytes).unwrap();
            for link in html.split("/app/").skip(1) {
                let name = link.split('"').next().unwrap();
                assert!(
                    FILES.iter().any(|f| f.name == name),
                    "{page} loads /app/{name}, which is not served"
                );
            }
        }
        for script in FILES.iter().filter(|f| f.name.ends_with(".js")) {
            let text = std::str::from_utf8(script.bytes).unwrap();
            for import in text.split("from './").skip(1) {
                let name = import.split('\'').next().unwrap();
                assert!(
                    FILES.iter().any(|f| f.name == name),
                    "{} imports ./{name}, which is not served",
                    script.name
                );
            }
        }
    }

    #[test]
    fn a_browser_that_has_a_file_is_told_so() {
        let first = serve("app.css", &HeaderMap::new());
        assert_eq!(first.status(), StatusCode::OK);
        let tag = first.headers()[header::ETAG].clone();
        let mut again = HeaderMap::new();
        again.insert(header::IF_NONE_MATCH, tag);
        assert_eq!(serve("app.css", &again).status(), StatusCode::NOT_MODIFIED);
        assert_eq!(
            serve("../Cargo.toml", &HeaderMap::new()).status(),
            StatusCode::NOT_FOUND
        );
    }
}
