//! The public edge under hostile input: every recursive structure is bounded before
//! anything recurses over it, cost follows list sizes, and answers keep the query's order.

use std::time::{Duration, Instant};

use herald_test_support::{BackendSet, TestApp, backend_tests};
use serde_json::json;

backend_tests!(
    every bus: hostile_queries_are_refused_quickly,
    cost_multiplies_by_list_sizes,
    overlong_arguments_are_refused_before_any_service_call,
    answers_keep_the_query_order,
    every_client_error_is_json_and_cors_follows_its_allow_list,
    the_pages_come_from_the_binary_under_a_strict_policy,
    connections_are_bounded_in_number_and_time
);

/// `F0 { __typename }`, then `Fi { ...F(i-1) ...F(i-1) }`: 2^n fields once expanded.
pub fn doubling_fragments(n: usize) -> String {
    let mut query = format!("{{ ...F{n} }} fragment F0 on Query {{ __typename }}");
    for i in 1..=n {
        query.push_str(&format!(
            " fragment F{i} on Query {{ ...F{j} ...F{j} }}",
            j = i - 1
        ));
    }
    query
}

/// The attacks of the edge issue, each a single anonymous request.
pub fn hostile_queries() -> Vec<(&'static str, String)> {
    vec![
        (
            "lists nested 100,000 deep",
            format!(
                "{{ products(first: {}{}) {{ totalCount }} }}",
                "[".repeat(100_000),
                "]".repeat(100_000)
            ),
        ),
        (
            "objects nested 100,000 deep",
            format!(
                "{{ products(first: {}1{}) {{ totalCount }} }}",
                "{a: ".repeat(100_000),
                "}".repeat(100_000)
            ),
        ),
        (
            "selections nested 10,000 deep",
            format!("{{ {} id {} }}", "a { ".repeat(10_000), "}".repeat(10_000)),
        ),
        ("a doubling chain of 30 fragments", doubling_fragments(30)),
        ("a doubling chain of 60 fragments", doubling_fragments(60)),
        ("a chain of 60 fragments", {
            let mut query = "{ ...F59 } fragment F0 on Query { __typename }".to_owned();
            for i in 1..60 {
                query.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i - 1));
            }
            query
        }),
        (
            "a fragment cycle",
            "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".to_owned(),
        ),
        (
            "a doubling chain of 24 fragments spreading an unknown one",
            {
                let mut query = "{ ...F24 } fragment F0 on Query { ...Nope }".to_owned();
                for i in 1..=24 {
                    query.push_str(&format!(
                        " fragment F{i} on Query {{ ...F{j} ...F{j} ...Nope }}",
                        j = i - 1
                    ));
                }
                query
            },
        ),
        ("3,300 aliases of a list", {
            let fields: Vec<String> = (0..3300)
                .map(|i| format!("p{i}: products(first: 1) {{ totalCount }}"))
                .collect();
            format!("{{ {} }}", fields.join(" "))
        }),
        ("16 fragments of 8 aliases spread 8 times", {
            let eight: Vec<String> = (0..8)
                .map(|i| format!("p{i}: products(first: 1) {{ totalCount }}"))
                .collect();
            format!(
                "{{ ...A ...A ...A ...A ...A ...A ...A ...A }} fragment A on Query {{ ...B ...B }} \
                 fragment B on Query {{ {} }}",
                eight.join(" ")
            )
        }),
    ]
}

async fn hostile_queries_are_refused_quickly(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    for (what, query) in hostile_queries() {
        let started = Instant::now();
        // Bodies past the limit are refused as such; these fit in the default 256 KiB or
        // are sent to a gateway that accepts more below.
        let response = app.graphql(None, &query, json!({})).await;
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "{what}: took {:?}",
            started.elapsed()
        );
        assert!(response.status < 500, "{what}: {}", response.status);
        assert_eq!(
            response.error_code(),
            Some("BAD_USER_INPUT"),
            "{what}: {}",
            response.body
        );
    }
    // The process is alive and well.
    let health = app
        .http()
        .get(format!("{}/health", app.gateway))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    app.cleanup().await;
}

async fn cost_multiplies_by_list_sizes(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let budget = app.settings.max_query_complexity;

    // 40 aliases of a page of 100: 40 × (1 + 100 × 3) = 12,040 nodes, refused up front
    // naming the limit and its setting.
    let aliases: String = (0..40)
        .map(|i| format!("p{i}: products(first: 100) {{ nodes {{ id name }} }} "))
        .collect();
    let response = app
        .graphql(None, &format!("{{ {aliases} }}"), json!({}))
        .await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{}",
        response.body
    );
    let message = response.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        message.contains(&budget.to_string()) && message.contains("HERALD_MAX_QUERY_COMPLEXITY"),
        "{message}"
    );

    // Variables count as literals do.
    let response = app
        .graphql(
            None,
            "query($n: Int) { a: products(first: $n) { nodes { id name } } b: products(first: $n) { nodes { id name } } }",
            json!({ "n": 100_000 }),
        )
        .await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{}",
        response.body
    );

    // An order's lines count at their largest (100).
    let me = app.customer("Cost").await;
    let orders = |first: i32| {
        format!("{{ myOrders(first: {first}) {{ id items {{ quantity product {{ name }} }} }} }}")
    };
    let response = app.graphql(Some(&me.token), &orders(20), json!({})).await;
    assert!(response.body.get("errors").is_none(), "{}", response.body);
    let response = app.graphql(Some(&me.token), &orders(100), json!({})).await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{}",
        response.body
    );

    // Ordinary pages pass.
    let response = app
        .graphql(
            Some(&me.token),
            "{ products(first: 100) { nodes { id name priceCents } totalCount } getNotifications(first: 100) { nodes { id title } totalCount } }",
            json!({}),
        )
        .await;
    assert!(response.body.get("errors").is_none(), "{}", response.body);
    app.cleanup().await;
}

async fn overlong_arguments_are_refused_before_any_service_call(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let long = "x".repeat(66_000);
    let response = app
        .graphql(
            None,
            "query($s: String) { products(search: $s) { totalCount } }",
            json!({ "s": long }),
        )
        .await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{}",
        response.body
    );
    assert!(
        response.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("$s"),
        "{}",
        response.body
    );
    let response = app
        .graphql(
            None,
            &format!("{{ products(search: \"{long}\") {{ totalCount }} }}"),
            json!({}),
        )
        .await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{}",
        response.body
    );
    // Within the gateway's bound, the products service's own rule answers, still as bad input.
    let response = app
        .graphql(
            None,
            &format!(
                "{{ products(search: \"{}\") {{ totalCount }} }}",
                "y".repeat(5_000)
            ),
            json!({}),
        )
        .await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{}",
        response.body
    );
    app.cleanup().await;
}

async fn answers_keep_the_query_order(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let me = app.customer("Order").await;
    let raw = app
        .graphql_text(
            Some(&me.token),
            "{ z: products(first: 1) { totalCount pageInfo { hasNextPage } } y: getUser { name id } x: __typename ...F w: getUnreadNotificationsCount } fragment F on Query { v: getNotifications { totalCount } }",
        )
        .await;
    assert!(!raw.contains("errors"), "{raw}");
    let at = |key: &str| raw.find(&format!("\"{key}\":")).unwrap();
    assert!(
        at("z") < at("y") && at("y") < at("x") && at("x") < at("v") && at("v") < at("w"),
        "{raw}"
    );
    assert!(at("name") < at("id"), "{raw}");
    app.cleanup().await;
}

/// A raw HTTP exchange on a fresh connection: what hyper itself answers, too.
async fn raw_http(gateway: &str, request: Vec<u8>) -> (u16, serde_json::Value) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let addr = gateway.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream.write_all(&request).await.unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut answer)).await;
    let text = String::from_utf8_lossy(&answer);
    let status = text[9..12].parse().unwrap();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    assert!(
        head.to_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    (
        status,
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {text}")),
    )
}

async fn every_client_error_is_json_and_cors_follows_its_allow_list(set: BackendSet) {
    let app = TestApp::spawn_with(set, |s| {
        s.cors_origins = "https://shop.example".to_owned();
    })
    .await;
    let http = app.http();
    let code = |body: &serde_json::Value| {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .map(str::to_owned)
    };

    // From handlers, extractors and routing: 413, 405, 404, 400.
    let big = http
        .post(format!("{}/graphql", app.gateway))
        .header("content-type", "application/json")
        .body(vec![b' '; app.settings.max_body_bytes + 1])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);
    let body: serde_json::Value = big.json().await.unwrap();
    assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    assert!(
        body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("HERALD_MAX_BODY_BYTES")
    );
    for (method, path, status, expected) in [
        ("PUT", "/graphql", 405, "BAD_USER_INPUT"),
        ("GET", "/nowhere", 404, "NOT_FOUND"),
        ("GET", "/app/nowhere.js", 404, "NOT_FOUND"),
        ("GET", "/graphql/ws", 400, "BAD_USER_INPUT"),
    ] {
        let response = http
            .request(method.parse().unwrap(), format!("{}{path}", app.gateway))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), status, "{method} {path}");
        let body: serde_json::Value = response.json().await.unwrap();
        assert_eq!(
            code(&body).as_deref(),
            Some(expected),
            "{method} {path}: {body}"
        );
    }
    // From hyper, before any handler: a URI over 64 KiB, too many headers, not HTTP.
    let long_uri = format!(
        "GET /graphql?q={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let (status, body) = raw_http(&app.gateway, long_uri.into_bytes()).await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (414, Some("BAD_USER_INPUT")),
        "{body}"
    );
    let headers: String = (0..200).map(|i| format!("x-h{i}: v\r\n")).collect();
    let many = format!("GET /health HTTP/1.1\r\nhost: x\r\n{headers}\r\n");
    let (status, body) = raw_http(&app.gateway, many.into_bytes()).await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (431, Some("BAD_USER_INPUT")),
        "{body}"
    );
    let (status, body) = raw_http(&app.gateway, b"NOT HTTP AT ALL\r\n\r\n".to_vec()).await;
    assert_eq!(
        (status, code(&body).as_deref()),
        (400, Some("BAD_USER_INPUT")),
        "{body}"
    );

    // Only JSON bodies: a form a page on another origin can post without a preflight is
    // refused, and so is a body without a type; an empty batch is no request.
    for content_type in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        None,
    ] {
        let mut request = http
            .post(format!("{}/graphql", app.gateway))
            .body(r#"{"query":"{ __typename }"}"#);
        if let Some(content_type) = content_type {
            request = request.header("content-type", content_type);
        }
        let refused = request.send().await.unwrap();
        assert_eq!(refused.status(), 415, "{content_type:?}");
        let body: serde_json::Value = refused.json().await.unwrap();
        assert_eq!(code(&body).as_deref(), Some("BAD_USER_INPUT"), "{body}");
    }
    for content_type in ["application/json; charset=utf-8", "Application/JSON"] {
        let fine = http
            .post(format!("{}/graphql", app.gateway))
            .header("content-type", content_type)
            .body(r#"{"query":"{ __typename }"}"#)
            .send()
            .await
            .unwrap();
        assert_eq!(fine.status(), 200, "{content_type}");
    }
    let empty = http
        .post(format!("{}/graphql", app.gateway))
        .json(&json!([]))
        .send()
        .await
        .unwrap();
    assert_eq!(empty.status(), 400);
    // Errors quote a client's input only in part.
    let long_name = format!("{{ {} }}", "a".repeat(100_000));
    let unknown = app.graphql(None, &long_name, json!({})).await;
    let message = unknown.body["errors"][0]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        !message.is_empty() && message.len() < 1000,
        "{}",
        &unknown.body.to_string()[..500]
    );

    // The Bearer scheme in any case.
    let ada = app.customer("Ada").await;
    let me = http
        .post(format!("{}/graphql", app.gateway))
        .header("authorization", format!("bearer {}", ada.token))
        .json(&json!({ "query": "{ getUser { id } }" }))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = me.json().await.unwrap();
    assert_eq!(
        body["data"]["getUser"]["id"],
        ada.user_id.as_str(),
        "{body}"
    );

    // CORS: the allowed origin is told so (preflight and answer), another is not.
    let preflight = |origin: &str| {
        http.request(reqwest::Method::OPTIONS, format!("{}/graphql", app.gateway))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type, authorization",
            )
            .send()
    };
    let allowed = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        allowed.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    let methods = allowed.headers()["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(methods.contains("POST"), "{methods}");
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    let answer = http
        .post(format!("{}/graphql", app.gateway))
        .header("origin", "https://shop.example")
        .json(&json!({ "query": "{ __typename }" }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        answer.headers()["access-control-allow-origin"],
        "https://shop.example"
    );
    app.cleanup().await;
}

/// One address holds a bounded number of connections; headers and bodies that dribble in
/// are cut off; a refused connection still gets a JSON 429.
async fn connections_are_bounded_in_number_and_time(set: BackendSet) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app = TestApp::spawn_with(set, |s| s.connections_per_client = 4).await;
    let addr = app.gateway.trim_start_matches("http://").to_owned();
    let connect = || tokio::net::TcpStream::connect(addr.clone());

    // Headers sent a byte at a time are cut off (10 s), and so is a body that stalls.
    let slow_headers = async {
        let mut stream = connect().await.unwrap();
        stream
            .write_all(b"POST /graphql HTTP/1.1\r\nhost: x\r\n")
            .await
            .unwrap();
        let started = Instant::now();
        let mut rest = Vec::new();
        loop {
            tokio::time::sleep(Duration::from_secs(1)).await;
            if stream.write_all(b"x-slow: 1\r\n").await.is_err() {
                break;
            }
            let mut buf = [0u8; 512];
            if let Ok(Ok(n)) =
                tokio::time::timeout(Duration::from_millis(10), stream.read(&mut buf)).await
            {
                rest.extend_from_slice(&buf[..n]);
                if n == 0 {
                    break;
                }
            }
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "a slow sender kept its connection for 20 s"
            );
        }
        started.elapsed()
    };
    let slow_body = async {
        let mut stream = connect().await.unwrap();
        stream
            .write_all(
                b"POST /graphql HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n\
                  content-length: 100\r\n\r\n{\"query\"",
            )
            .await
            .unwrap();
        let mut answer = Vec::new();
        tokio::time::timeout(Duration::from_secs(20), stream.read_to_end(&mut answer))
            .await
            .expect("a stalled body is answered")
            .unwrap();
        String::from_utf8_lossy(&answer).into_owned()
    };
    let (held, stalled) = tokio::join!(slow_headers, slow_body);
    assert!(held < Duration::from_secs(15), "{held:?}");
    assert!(stalled.starts_with("HTTP/1.1 408"), "{stalled}");
    assert!(stalled.contains("BAD_USER_INPUT"), "{stalled}");

    // Four open connections are fine (each proven by an answer, once the connections
    // above are gone); the fifth is refused at once, in JSON.
    let mut idle = Vec::new();
    while idle.len() < 4 {
        let mut stream = connect().await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\n\r\n")
            .await
            .unwrap();
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = tokio::time::timeout(Duration::from_secs(5), stream.read(&mut buf))
                .await
                .expect("answered")
                .unwrap();
            assert!(n > 0, "closed without an answer");
            head.extend_from_slice(&buf[..n]);
        }
        if head.starts_with(b"HTTP/1.1 200") {
            idle.push(stream);
        } else {
            assert!(head.starts_with(b"HTTP/1.1 429"));
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    let mut fifth = connect().await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), fifth.read_to_end(&mut answer))
        .await
        .expect("refused at once")
        .unwrap();
    let text = String::from_utf8_lossy(&answer);
    assert!(text.starts_with("HTTP/1.1 429"), "{text}");
    assert!(text.to_lowercase().contains("retry-after: 1"), "{text}");
    let body: serde_json::Value = serde_json::from_str(text.split_once("\r\n\r\n").unwrap().1)
        .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert_eq!(body["errors"][0]["extensions"]["code"], "RATE_LIMITED");

    // Closing one makes room.
    idle.pop();
    let mut room = None;
    for _ in 0..50 {
        let mut stream = connect().await.unwrap();
        stream
            .write_all(b"GET /health HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut answer = Vec::new();
        let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
        if answer.starts_with(b"HTTP/1.1 200") {
            room = Some(200);
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(room, Some(200), "a closed connection gives its place back");

    app.cleanup().await;
}

/// The customer app, the admin console and the pages links open: from the binary, with a
/// policy that lets them load only their own files and call only their own origin.
async fn the_pages_come_from_the_binary_under_a_strict_policy(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let http = app.http();
    for (path, kind, title) in [
        ("/", "text/html", "<title>Herald</title>"),
        ("/admin", "text/html", "<title>Herald console</title>"),
        ("/app/herald.js", "text/javascript", "export class Live"),
        ("/app/app.css", "text/css", ".badge"),
    ] {
        let response = http
            .get(format!("{}{path}", app.gateway))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers().clone();
        assert!(
            headers["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {headers:?}"
        );
        let tag = headers["etag"].clone();
        if kind == "text/html" {
            let policy = headers["content-security-policy"].to_str().unwrap();
            for rule in [
                "script-src 'self'",
                "connect-src 'self'",
                "frame-ancestors 'none'",
            ] {
                assert!(policy.contains(rule), "{path}: {policy}");
            }
        }
        let body = response.text().await.unwrap();
        assert!(body.contains(title), "{path}: {body}");
        let again = http
            .get(format!("{}{path}", app.gateway))
            .header("if-none-match", tag)
            .send()
            .await
            .unwrap();
        assert_eq!(again.status(), 304, "{path}");
    }
    // The pages an email's links open wear the app's stylesheet.
    let reset = http
        .get(format!("{}/reset-password?token=x", app.gateway))
        .send()
        .await
        .unwrap();
    assert!(
        reset.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("style-src 'self'")
    );
    assert!(reset.text().await.unwrap().contains("/app/app.css"));
    app.cleanup().await;
}
