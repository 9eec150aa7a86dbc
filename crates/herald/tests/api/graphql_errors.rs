use herald_test_support::{BackendSet, TestApp, backend_tests};
use serde_json::json;

backend_tests!(every bus: malformed_requests_get_client_errors);

async fn malformed_requests_get_client_errors(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let me = app.customer("Quinn").await;

    // Syntax error, unknown field, wrong variable type: GraphQL errors with a code, never a 500.
    for query in [
        "{ getUser { id ",
        "{ getUser { password } }",
        "query($n: Int) { getNotifications(first: $n) { totalCount } }",
    ] {
        let variables = if query.contains("$n") {
            json!({ "n": "many" })
        } else {
            json!({})
        };
        let response = app.graphql(Some(&me.token), query, variables).await;
        assert!(response.status < 500, "{query}: {}", response.status);
        assert_eq!(
            response.error_code(),
            Some("BAD_USER_INPUT"),
            "{query}: {:?}",
            response.body
        );
    }

    // Too deep: rejected by the depth limit before anything runs (unknown fields or not).
    let deep = format!("{{ {} id {} }}", "getUser { ".repeat(13), "}".repeat(13));
    let response = app.graphql(Some(&me.token), &deep, json!({})).await;
    assert_eq!(
        response.error_code(),
        Some("BAD_USER_INPUT"),
        "{:?}",
        response.body
    );
    assert!(
        response.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("deep"),
        "{:?}",
        response.body
    );

    // Not JSON at all.
    let raw = app
        .http()
        .post(format!("{}/graphql", app.gateway))
        .header("content-type", "application/json")
        .body("{ this is not json")
        .send()
        .await
        .unwrap();
    assert_eq!(raw.status(), 400);
    let body: serde_json::Value = raw.json().await.unwrap();
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_USER_INPUT");

    // Over the body limit.
    let huge = "x".repeat(app.settings.max_body_bytes + 1);
    let response = app
        .http()
        .post(format!("{}/graphql", app.gateway))
        .json(&json!({ "query": format!("{{ getUser {{ id }} }} # {huge}") }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 413);

    // A batch works and each answer stands alone.
    let batch = app
        .post_graphql(
            Some(&me.token),
            &json!([{ "query": "{ getUser { name } }" }, { "query": "{ nope }" }]),
        )
        .await;
    assert_eq!(batch.body[0]["data"]["getUser"]["name"], "Quinn");
    assert_eq!(
        batch.body[1]["errors"][0]["extensions"]["code"],
        "BAD_USER_INPUT"
    );
    app.cleanup().await;
}
