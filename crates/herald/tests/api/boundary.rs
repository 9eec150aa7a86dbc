//! The service boundary: a service's port takes calls from Herald's services only. Every
//! route of every service refuses a customer's token, an admin's token, a credential
//! signed with another key, and nothing at all; users reach Herald through the gateway.

use herald::ServiceName;
use herald_platform::auth::ServiceKey;
use herald_test_support::{BackendSet, TestApp, backend_tests};

backend_tests!(every bus: every_service_route_refuses_users_and_strangers);

/// Every route of every service's API, with ids filled in; the public exceptions
/// (`/keys`, `/unsubscribe`, `/health`, `/ready`, `/metrics`) are not here.
fn routes(service: ServiceName) -> Vec<(&'static str, String)> {
    let id = uuid::Uuid::now_v7();
    let mut routes: Vec<(&str, String)> = match service {
        ServiceName::Users => vec![
            ("POST", "/users".into()),
            ("POST", "/users/import".into()),
            ("POST", "/sessions".into()),
            ("POST", "/password-resets".into()),
            ("POST", "/password-resets/redeem".into()),
            ("GET", "/users/me".into()),
            ("PATCH", "/users/me/preferences".into()),
            ("GET", format!("/users/{id}")),
        ],
        ServiceName::Products => vec![
            ("GET", "/products".into()),
            ("POST", "/products".into()),
            ("POST", "/products/lookup".into()),
            ("GET", format!("/products/{id}")),
            ("PATCH", format!("/products/{id}")),
            ("PUT", format!("/products/{id}/stock")),
            ("POST", format!("/products/{id}/watch")),
            ("POST", "/reservations".into()),
            ("POST", format!("/reservations/{id}/release")),
        ],
        ServiceName::Orders => vec![
            ("POST", "/orders".into()),
            ("GET", "/orders".into()),
            ("GET", "/orders/all".into()),
            ("GET", format!("/orders/{id}")),
            ("POST", format!("/orders/{id}/cancel")),
            ("POST", format!("/orders/{id}/status")),
        ],
        ServiceName::Notifications => vec![
            ("GET", "/notifications".into()),
            ("GET", "/notifications/unread-count".into()),
            ("POST", "/notifications/unchanged-since".into()),
            ("POST", "/notifications/read-all".into()),
            ("POST", format!("/notifications/{id}/read")),
            ("GET", "/promotions".into()),
            ("GET", "/promotions/audience".into()),
            ("POST", "/promotions".into()),
        ],
        ServiceName::Recommendations => vec![
            ("POST", "/activity".into()),
            ("GET", "/recommendations".into()),
        ],
        ServiceName::Scheduler => vec![
            ("GET", "/jobs".into()),
            ("POST", "/jobs/promotion-sweep/run".into()),
            ("GET", "/jobs/promotion-sweep/runs".into()),
        ],
        ServiceName::Gateway => return Vec::new(),
    };
    routes.extend([
        ("GET", "/dead-letters".into()),
        ("POST", "/dead-letters/replay-all".into()),
        ("POST", format!("/dead-letters/{id}/replay")),
        ("DELETE", format!("/dead-letters/{id}")),
    ]);
    routes
}

async fn every_service_route_refuses_users_and_strangers(set: BackendSet) {
    // All in one process the services listen on ports of their own only when asked.
    let app = TestApp::spawn_with(set, |s| s.service_ports = true).await;
    let customer = app.customer("Ada").await;
    let admin = app.admin().await;
    // A well-formed service credential, signed with a key this deployment does not use.
    let stranger = ServiceKey::generate()
        .credentials("gateway")
        .issue("products", None)
        .unwrap();
    let http = app.http();
    let mut walked = 0;
    for (service, url) in &app.services {
        for (method, path) in routes(*service) {
            for (who, token, expected) in [
                ("nobody", None, 401),
                ("a customer", Some(customer.token.as_str()), 403),
                ("an admin", Some(admin.token.as_str()), 403),
                ("a stranger", Some(stranger.as_str()), 401),
            ] {
                let mut request = http
                    .request(method.parse().unwrap(), format!("{url}{path}"))
                    .json(&serde_json::json!({}));
                if let Some(token) = token {
                    request = request.bearer_auth(token);
                }
                let answer = request.send().await.unwrap();
                let status = answer.status().as_u16();
                let body: serde_json::Value = answer.json().await.unwrap_or_default();
                assert_eq!(
                    status, expected,
                    "[{set:?}] {method} {service:?}{path} by {who}: {body}"
                );
                walked += 1;
            }
        }
    }
    assert!(walked > 100, "{walked}");
    // Through the gateway, the same people are served as always.
    let me = app
        .graphql(
            Some(&admin.token),
            "{ getUser { role } }",
            serde_json::json!({}),
        )
        .await;
    assert_eq!(me.data()["getUser"]["role"], "ADMIN");
    app.cleanup().await;
}
