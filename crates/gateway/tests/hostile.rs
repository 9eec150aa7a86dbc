//! The gateway's request entry against generated hostile GraphQL (a property test, run
//! for a bounded number of cases in every test run; `PROPTEST_CASES` runs more): deep
//! nesting of every bracket, fragment webs with cycles and doublings, aliases, directives,
//! variables, long and odd strings, truncations, bytes that are not JSON. Whatever comes,
//! the answer is a 4xx or a GraphQL answer whose errors carry a contract code, quickly,
//! and the process survives. Findings stay as regression tests below (and in
//! `proptest-regressions/`).

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, to_bytes};
use axum::http::{Request, header};
use herald_gateway::build;
use herald_platform::Settings;
use herald_platform::auth::{ServiceKey, SigningKey, TokenVerifier};
use herald_platform::cache::{Cache, MemoryCache};
use herald_platform::http::Readiness;
use proptest::prelude::*;
use serde_json::Value;
use tower::ServiceExt;

const CODES: [&str; 8] = [
    "UNAUTHENTICATED",
    "FORBIDDEN",
    "NOT_FOUND",
    "BAD_USER_INPUT",
    "CONFLICT",
    "RATE_LIMITED",
    "INSUFFICIENT_STOCK",
    "INTERNAL",
];

/// The gateway alone: every service it would call is an address that refuses at once.
fn gateway() -> Router {
    let refused = "http://127.0.0.1:9".to_owned();
    let settings = Settings {
        users_url: Some(refused.clone()),
        products_url: Some(refused.clone()),
        orders_url: Some(refused.clone()),
        notifications_url: Some(refused.clone()),
        recommendations_url: Some(refused.clone()),
        scheduler_url: Some(refused),
        rate_limit_client_per_minute: 0,
        rate_limit_user_per_minute: 0,
        ..Settings::default()
    };
    let key = SigningKey::generate().unwrap();
    let verifier = TokenVerifier::new(&[key.public_key().clone()]).unwrap();
    let cache = Cache::new(Arc::new(MemoryCache::new(1_000)), "fuzz");
    build(
        &settings,
        verifier,
        ServiceKey::generate().credentials("gateway"),
        herald_gateway::InProcess::default(),
        Readiness::default(),
        &cache,
    )
    .router
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends `body` and checks the answer; returns it for more checks.
async fn answer(router: &Router, body: Vec<u8>) -> (u16, Value) {
    let request = Request::post("/graphql")
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body))
        .unwrap();
    let response = tokio::time::timeout(Duration::from_secs(10), router.clone().oneshot(request))
        .await
        .expect("answered within 10 s")
        .unwrap();
    let status = response.status().as_u16();
    let bytes = to_bytes(response.into_body(), usize::MAX).await.unwrap();
    let json: Value = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&bytes)));
    assert!(status < 500, "status {status}: {json}");
    let answers = match &json {
        Value::Array(batch) => batch.clone(),
        one => vec![one.clone()],
    };
    for one in answers {
        for error in one["errors"].as_array().into_iter().flatten() {
            let code = error["extensions"]["code"].as_str().unwrap_or_default();
            assert!(
                CODES.contains(&code),
                "an error without a contract code: {error}"
            );
            // Bad input is never INTERNAL; only calls to the (absent) services are.
            if code == "INTERNAL" {
                assert!(
                    error["path"].is_array(),
                    "INTERNAL before any field ran: {error}"
                );
            }
        }
    }
    (status, json)
}

fn query_body(query: &str, variables: Value) -> Vec<u8> {
    serde_json::to_vec(&serde_json::json!({ "query": query, "variables": variables })).unwrap()
}

fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("products".to_owned()),
        Just("getUser".to_owned()),
        Just("getNotifications".to_owned()),
        Just("getUnreadNotificationsCount".to_owned()),
        Just("myOrders".to_owned()),
        Just("nodes".to_owned()),
        Just("items".to_owned()),
        Just("id".to_owned()),
        Just("name".to_owned()),
        Just("__typename".to_owned()),
        Just("__schema".to_owned()),
        Just("__type".to_owned()),
        Just("types".to_owned()),
        Just("fields".to_owned()),
        Just("ofType".to_owned()),
        Just("interfaces".to_owned()),
        Just("loginUser".to_owned()),
        "[a-zA-Z_][a-zA-Z0-9_]{0,8}",
    ]
}

fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        any::<i64>().prop_map(|n| n.to_string()),
        any::<f64>().prop_map(|f| format!("{f:e}")),
        "\"([^\"\\\\]|\\\\[nrt\"\\\\/]|\\\\u[0-9a-fA-F]{4}){0,20}\"",
        Just("\"\"\"block \\\"\"\" string\"\"\"".to_owned()),
        Just("null".to_owned()),
        Just("true".to_owned()),
        Just("$v".to_owned()),
        "[A-Z]{1,8}",
        (1usize..20_000).prop_map(|n| format!("\"{}\"", "x".repeat(n))),
    ];
    leaf.prop_recursive(6, 48, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6)
                .prop_map(|items| format!("[{}]", items.join(", "))),
            prop::collection::vec((name(), inner), 0..6).prop_map(|fields| {
                let fields: Vec<String> = fields
                    .into_iter()
                    .map(|(k, v)| format!("{k}: {v}"))
                    .collect();
                format!("{{{}}}", fields.join(", "))
            }),
        ]
    })
}

fn arguments() -> impl Strategy<Value = String> {
    prop::collection::vec((name(), value()), 0..3).prop_map(|args| {
        if args.is_empty() {
            String::new()
        } else {
            let args: Vec<String> = args.into_iter().map(|(k, v)| format!("{k}: {v}")).collect();
            format!("({})", args.join(", "))
        }
    })
}

fn directives() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("@skip(if: true)".to_owned()),
            Just("@include(if: false)".to_owned()),
            Just("@include(if: $v)".to_owned()),
            Just("@deprecated".to_owned()),
            "@[a-z]{1,5}",
        ],
        0..3,
    )
    .prop_map(|d| d.join(" "))
}

fn selection_set() -> impl Strategy<Value = String> {
    let field = (
        proptest::option::of(name()),
        name(),
        arguments(),
        directives(),
    )
        .prop_map(|(alias, name, args, directives)| match alias {
            Some(alias) => format!("{alias}: {name}{args} {directives}"),
            None => format!("{name}{args} {directives}"),
        })
        .boxed();
    let leaf = prop::collection::vec(
        prop_oneof![field.clone(), (0u8..12).prop_map(|i| format!("...F{i}"))],
        1..5,
    )
    .prop_map(|items| format!("{{ {} }}", items.join(" ")));
    leaf.prop_recursive(8, 64, 4, move |inner| {
        prop::collection::vec(
            prop_oneof![
                (field.clone(), inner.clone()).prop_map(|(f, set)| format!("{f} {set}")),
                inner.clone().prop_map(|set| format!("... on Query {set}")),
                inner.prop_map(|set| format!("... {set}")),
                (0u8..12).prop_map(|i| format!("...F{i}")),
            ],
            1..5,
        )
        .prop_map(|items| format!("{{ {} }}", items.join(" ")))
    })
}

fn document() -> impl Strategy<Value = String> {
    let operation = (
        prop_oneof![
            Just(""),
            Just("query Q($v: Boolean) "),
            Just("mutation "),
            Just("subscription S ")
        ],
        selection_set(),
    )
        .prop_map(|(kind, set)| format!("{kind}{set}"));
    let fragments = prop::collection::vec(
        (
            0u8..12,
            prop_oneof![Just("Query"), Just("__Type"), Just("Nope")],
            selection_set(),
        ),
        0..8,
    );
    (operation, fragments).prop_map(|(operation, fragments)| {
        let mut doc = operation;
        for (i, on, set) in fragments {
            doc.push_str(&format!(" fragment F{i} on {on} {set}"));
        }
        doc
    })
}

/// Ways to make a document worse: wrap it in deep brackets, repeat a piece of it, cut it.
fn mangled() -> impl Strategy<Value = String> {
    (
        document(),
        0u8..5,
        0usize..20_000,
        any::<prop::sample::Index>(),
    )
        .prop_map(|(doc, how, n, at)| match how {
            0 => doc,
            1 => {
                let open = ["{", "[", "(", "{a:"][n % 4];
                let close = ["}", "]", ")", "}"][n % 4];
                format!(
                    "{{ products(first: {}1{}) {{ id }} }} {doc}",
                    open.repeat(n),
                    close.repeat(n)
                )
            }
            2 => {
                let cut = at.index(doc.len().max(1));
                let cut = (0..=cut)
                    .rev()
                    .find(|i| doc.is_char_boundary(*i))
                    .unwrap_or(0);
                doc[..cut].to_owned()
            }
            3 => {
                let piece = &doc[..doc.len().min(40)];
                let piece = (0..=piece.len())
                    .rev()
                    .find(|i| doc.is_char_boundary(*i))
                    .map(|i| &doc[..i])
                    .unwrap_or("");
                format!("{doc} {}", piece.repeat(n.min(5_000)))
            }
            _ => format!(
                "{doc} {}",
                (0..n.min(500))
                    .map(|i| format!("a{i}: products(first: 100) {{ nodes {{ id }} }}"))
                    .collect::<String>()
            ),
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn any_document_gets_a_coded_answer(query in mangled(), variables in prop_oneof![
        Just(Value::Null),
        Just(serde_json::json!({ "v": true })),
        Just(serde_json::json!({ "v": "x".repeat(20_000) })),
    ]) {
        let router = gateway();
        runtime().block_on(answer(&router, query_body(&query, variables)));
    }

    #[test]
    fn any_bytes_get_a_coded_answer(body in prop::collection::vec(any::<u8>(), 0..2_000)) {
        let router = gateway();
        runtime().block_on(answer(&router, body));
    }
}

/// Cases found or feared, kept.
#[test]
fn known_attacks_get_coded_answers() {
    let router = gateway();
    let rt = runtime();
    let chain = |n: usize, spreads: usize| {
        let mut q = format!("{{ ...F{n} }} fragment F0 on Query {{ __typename }}");
        for i in 1..=n {
            q.push_str(&format!(
                " fragment F{i} on Query {{ {} }}",
                format!("...F{} ", i - 1).repeat(spreads)
            ));
        }
        q
    };
    for query in [
        format!(
            "{{ products(first: {}{}) {{ totalCount }} }}",
            "[".repeat(100_000),
            "]".repeat(100_000)
        ),
        format!(
            "{{ products(first: {}1{}) {{ totalCount }} }}",
            "{a:".repeat(50_000),
            "}".repeat(50_000)
        ),
        chain(60, 2),
        chain(60, 1),
        chain(8, 8),
        "{ ...A } fragment A on Query { ...B } fragment B on Query { ...A }".to_owned(),
        // A doubling chain that also spreads a fragment nobody defined (measured as nothing,
        // it once let the depth walk expand 2^24 spreads).
        chain(24, 2).replace("{ ...F", "{ ...Nope ...F"),
        // Fan-out: thousands of aliases, each a call to a service.
        format!(
            "{{ {} }}",
            (0..3_300)
                .map(|i| format!("p{i}: products(first: 1) {{ totalCount }}"))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        "query($v: [[[[[[Int]]]]]]) { __typename }".to_owned(),
        format!("{{ {} }}", "__typename @skip(if: false) ".repeat(10_000)),
        format!("{{ __typename {} }}", "@include(if: true) ".repeat(1_000)),
        "{ __schema { types { fields { type { fields { type { fields { name } } } } } } } }"
            .to_owned(),
        "subscription { notificationReceived { id } }".to_owned(),
        "\"\"\"".to_owned(),
        "{ a(s: \"\\u{ZZZZ}\") }".to_owned(),
    ] {
        rt.block_on(answer(&router, query_body(&query, Value::Null)));
    }
    // Variables nested past serde's recursion limit.
    let deep = format!(
        "{{\"query\": \"{{ __typename }}\", \"variables\": {{\"v\": {}1{}}}}}",
        "[".repeat(10_000),
        "]".repeat(10_000)
    );
    let (status, _) = rt.block_on(answer(&router, deep.into_bytes()));
    assert_eq!(status, 400);
    // A batch past its limit, and one of bad pieces.
    let batch: Vec<Value> = (0..21)
        .map(|_| serde_json::json!({ "query": "{ __typename }" }))
        .collect();
    let (status, _) = rt.block_on(answer(&router, serde_json::to_vec(&batch).unwrap()));
    assert_eq!(status, 400);
    let (_, answers) = rt.block_on(answer(
        &router,
        br#"[{"query": "{"}, {"query": 5}, {}]"#.to_vec(),
    ));
    assert!(answers.is_object() || answers.is_array());
}
