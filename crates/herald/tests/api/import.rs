//! `importUsers` through the public API: an admin brings customers in, all or nothing;
//! they are not welcomed, cannot sign in without a password, and a promotion reaches them.

use std::time::Duration;

use herald::ServiceName;
use herald_test_support::{
    ADMIN_EMAIL, ADMIN_PASSWORD, BackendSet, TestApp, backend_tests, eventually,
};

use crate::notifications::welcome;
use serde_json::{Value, json};

backend_tests!(
    every bus: imported_customers_are_reached_but_not_welcomed,
    the_import_command_reports_every_row_by_line,
    an_imported_customer_signs_in_through_a_password_reset,
    a_thousand_customers_with_their_preferences_go_in_one_call
);

const IMPORT: &str =
    "mutation($i: ImportUsersInput!) { importUsers(input: $i) { created skipped } }";

async fn imported_customers_are_reached_but_not_welcomed(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let email = |name: &str| format!("{name}-{tag}@shop.example");
    let users = json!([
        { "name": "Imported One", "email": email("one") },
        { "name": "Imported Two", "email": email("two"),
          "preferences": { "promotions": false, "timezone": "Asia/Tokyo" } },
        { "name": "Imported Three", "email": email("three"),
          "preferences": { "categories": ["tea"] } },
    ]);

    // Customers may not; a bad row anywhere refuses the whole list, naming it.
    let refused = app
        .graphql(Some(&ada.token), IMPORT, json!({ "i": { "users": users } }))
        .await;
    assert_eq!(refused.error_code(), Some("FORBIDDEN"));
    let mut bad = users.clone();
    bad[2]["email"] = json!("three at example");
    let refused = app
        .graphql(Some(&admin.token), IMPORT, json!({ "i": { "users": bad } }))
        .await;
    assert_eq!(refused.error_code(), Some("BAD_USER_INPUT"));
    let error = refused.errors()[0].clone();
    assert_eq!(error["extensions"]["rows"][0]["index"], 2, "{error}");
    assert!(
        error["message"].as_str().unwrap().contains("users[2]"),
        "{error}"
    );

    // The welcomes of the two registered are counted before anything is imported.
    for who in [&admin, &ada] {
        welcome(&app, who).await;
    }
    let security = async || {
        app.metric(
            ServiceName::Notifications,
            "notifications_decisions_total",
            "type=\"SECURITY\"",
        )
        .await
    };
    let security_before = security().await;
    // Imported once; the same list again is all skipped.
    for expected in [
        json!({ "created": 3, "skipped": 0 }),
        json!({ "created": 0, "skipped": 3 }),
    ] {
        let imported = app
            .graphql(
                Some(&admin.token),
                IMPORT,
                json!({ "i": { "users": users } }),
            )
            .await;
        assert_eq!(imported.data()["importUsers"], expected);
    }

    // No password yet: no sign-in.
    let login = app.login(&email("one"), "anything at all").await;
    assert_eq!(login.error_code(), Some("UNAUTHENTICATED"));

    // The audience, counted before sending: those who want promotions (the admin, Ada,
    // One and Three), once the notifications service heard of the import; Three prefers tea.
    let audience = async |category: Value| {
        app.graphql(
            Some(&admin.token),
            "query($c: String) { promotionAudience(category: $c) }",
            json!({ "c": category }),
        )
        .await
    };
    eventually(Duration::from_secs(20), "the import counted", || async {
        (audience(Value::Null).await.data()["promotionAudience"] == 4).then_some(())
    })
    .await;
    assert_eq!(
        audience(json!(" Tea ")).await.data()["promotionAudience"],
        1
    );
    assert_eq!(
        audience(json!("garden")).await.data()["promotionAudience"],
        0
    );
    assert_eq!(
        audience(json!("")).await.error_code(),
        Some("BAD_USER_INPUT")
    );
    let by_customer = app
        .graphql(Some(&ada.token), "{ promotionAudience }", json!({}))
        .await;
    assert_eq!(by_customer.error_code(), Some("FORBIDDEN"));

    // A promotion reaches exactly them, which shows the notifications service knows them.
    let created = app
        .graphql(
            Some(&admin.token),
            "mutation($i: PromotionInput!) { createPromotion(input: $i) { id } }",
            json!({ "i": { "title": "Welcome offer", "body": "For our customers" } }),
        )
        .await;
    let id = created.data()["createPromotion"]["id"].clone();
    let sent: Value = eventually(Duration::from_secs(20), "the promotion sent", || async {
        let list = app
            .graphql(
                Some(&admin.token),
                "{ promotions { id status recipients } }",
                json!({}),
            )
            .await;
        list.data()["promotions"]
            .as_array()?
            .iter()
            .find(|p| p["id"] == id && p["status"] == "SENT")
            .cloned()
    })
    .await;
    assert_eq!(sent["recipients"], 4, "{sent}");
    // And none of the imported was welcomed: no SECURITY decision was added.
    let security_after = security().await;
    assert_eq!(
        security_after, security_before,
        "no welcome for imported customers"
    );
    app.cleanup().await;
}

/// `herald import users` against a running Herald: CSV from a file, NDJSON from standard
/// input; rows refused by the file or by the API are named by line, the others imported.
async fn the_import_command_reports_every_row_by_line(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let dir = tempfile::tempdir().unwrap();
    let csv = dir.path().join("customers.csv");
    std::fs::write(
        &csv,
        format!(
            "name,email,promotions,categories\n\
             Ann,ann-{tag}@shop.example,yes,tea\n\
             Ben,not-an-email,,\n\
             \n\
             Cat,cat-{tag}@shop.example,maybe,\n\
             Dee,dee-{tag}@shop.example,no,coffee;tea\n\
             Known,{ADMIN_EMAIL},,\n"
        ),
    )
    .unwrap();
    let run = |args: Vec<String>, stdin: Option<String>| {
        let gateway = app.gateway.clone();
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
                .args(["import", "users"])
                .args(&args)
                .args(["--url", &gateway, "--admin-email", ADMIN_EMAIL])
                .args(["--admin-password", ADMIN_PASSWORD])
                .env("HERALD_DATA_DIR", tempfile::tempdir().unwrap().path())
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .expect("running herald import");
            let mut input = child.stdin.take().unwrap();
            input
                .write_all(stdin.unwrap_or_default().as_bytes())
                .unwrap();
            drop(input);
            child.wait_with_output().unwrap()
        })
    };

    let output = run(
        vec![csv.display().to_string(), "--chunk".into(), "2".into()],
        None,
    )
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stdout}{stderr}");
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 3, "{stdout}");
    assert!(
        lines[0].starts_with("line 3: ") && lines[0].contains("email"),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("line 5: ") && lines[1].contains("'maybe'"),
        "{stdout}"
    );
    assert_eq!(lines[2], "2 created, 1 skipped (already known), 2 rejected");
    assert!(stderr.contains("2 rows were rejected"), "{stderr}");

    // NDJSON on standard input; Ann is known by now.
    let ndjson = format!(
        "{{\"name\": \"Ann\", \"email\": \"ann-{tag}@shop.example\"}}\n\
         {{\"name\": \"Eve\", \"email\": \"eve-{tag}@shop.example\", \"preferences\": {{\"timezone\": \"Asia/Tokyo\"}}}}\n"
    );
    let output = run(vec!["-".into()], Some(ndjson)).await.unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.trim(),
        "1 created, 1 skipped (already known), 0 rejected"
    );

    // A header with a column nobody knows stops before anything is sent.
    std::fs::write(&csv, "name,email,shoe size\nZed,zed@shop.example,44\n").unwrap();
    let output = run(vec![csv.display().to_string()], None).await.unwrap();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("unknown column 'shoe size'"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    app.cleanup().await;
}

/// An imported customer gets in through a password reset: the link arrives by email (in-app
/// preferences only) and in-app, it works once, and the change is told; a registered
/// customer's earlier tokens stop working.
async fn an_imported_customer_signs_in_through_a_password_reset(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let email = format!("ivy-{tag}@shop.example");
    let imported = app
        .graphql(
            Some(&admin.token),
            IMPORT,
            json!({ "i": { "users": [{ "name": "Ivy", "email": email }] } }),
        )
        .await;
    assert_eq!(imported.data()["importUsers"]["created"], 1);
    let ask = async |email: &str| {
        app.graphql(
            None,
            "mutation($e: String!) { requestPasswordReset(email: $e) }",
            json!({ "e": email }),
        )
        .await
    };
    // The imported customer must be known to the notifications service first.
    eventually(Duration::from_secs(20), "the import counted", || async {
        let asked = app
            .graphql(Some(&admin.token), "{ promotionAudience }", json!({}))
            .await;
        (asked.data()["promotionAudience"].as_i64()? >= 2).then_some(())
    })
    .await;
    assert_eq!(ask(&email).await.data()["requestPasswordReset"], true);
    assert_eq!(
        ask(&format!("nobody-{tag}@shop.example")).await.data()["requestPasswordReset"],
        true,
        "the same answer for no account"
    );

    // The link, by email although Ivy's channels are in-app only.
    let token = reset_token(&app, &email).await;
    let reset =
        "mutation($i: ResetPasswordInput!) { resetPassword(input: $i) { token user { id } } }";
    let signed_in = app
        .graphql(
            None,
            reset,
            json!({ "i": { "token": token, "password": "a brand new password" } }),
        )
        .await;
    let ivy_token = signed_in.data()["resetPassword"]["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let used = app
        .graphql(
            None,
            reset,
            json!({ "i": { "token": token, "password": "another new password" } }),
        )
        .await;
    assert_eq!(used.error_code(), Some("BAD_USER_INPUT"));
    assert!(
        app.login(&email, "a brand new password")
            .await
            .errors()
            .is_empty()
    );

    // In-app too: the link and the change, both SECURITY.
    let titles = eventually(
        Duration::from_secs(20),
        "the notice of the change",
        || async {
            let page = app
                .graphql(
                    Some(&ivy_token),
                    "{ getNotifications { nodes { type title } } }",
                    json!({}),
                )
                .await;
            let nodes = page.data()["getNotifications"]["nodes"].as_array()?.clone();
            (nodes.len() == 2).then_some(nodes)
        },
    )
    .await;
    assert_eq!(titles[0]["title"], "Your password was changed");
    assert_eq!(titles[1]["title"], "Set a new password");
    assert!(titles.iter().all(|n| n["type"] == "SECURITY"));

    // A registered customer's tokens from before the reset stop working.
    let ada = app.customer("Ada").await;
    let ada_email = app
        .graphql(Some(&ada.token), "{ getUser { email } }", json!({}))
        .await
        .data()["getUser"]["email"]
        .as_str()
        .unwrap()
        .to_owned();
    welcome(&app, &ada).await;
    ask(&ada_email).await.data();
    // This time through the page the link opens.
    let token = reset_token(&app, &ada_email).await;
    let page = format!("{}/reset-password", app.gateway);
    let opened = app
        .http()
        .get(format!("{page}?token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(opened.status(), 200);
    assert_eq!(opened.headers()["cache-control"], "no-store");
    assert_eq!(opened.headers()["referrer-policy"], "no-referrer");
    let form = opened.text().await.unwrap();
    assert!(form.contains(&format!("value=\"{token}\"")), "{form}");
    assert!(form.contains("<label for=\"password\">"), "{form}");
    let incomplete = app.http().get(&page).send().await.unwrap();
    assert_eq!(incomplete.status(), 400);
    let submit = async || {
        app.http()
            .post(&page)
            .form(&[
                ("token", token.as_str()),
                ("password", "ada's new password"),
            ])
            .send()
            .await
            .unwrap()
    };
    let set = submit().await;
    assert_eq!(set.status(), 200);
    assert!(set.text().await.unwrap().contains("Your password is set"));
    let again = submit().await;
    assert_eq!(again.status(), 422);
    assert!(again.text().await.unwrap().contains("used, expired"));
    assert!(
        app.login(&ada_email, "ada's new password")
            .await
            .errors()
            .is_empty()
    );
    eventually(Duration::from_secs(10), "the old token refused", || async {
        let me = app
            .graphql(Some(&ada.token), "{ getUser { id } }", json!({}))
            .await;
        (me.error_code() == Some("UNAUTHENTICATED")).then_some(())
    })
    .await;
    app.cleanup().await;
}

/// The token of the reset link mailed to `email`; security mail has no unsubscribe link.
async fn reset_token(app: &TestApp, email: &str) -> String {
    let mailbox = app.data_dir().join("mailbox");
    let mail = eventually(Duration::from_secs(20), "the reset email", || async {
        std::fs::read_dir(&mailbox).ok()?.find_map(|entry| {
            let text = unfold(&std::fs::read_to_string(entry.ok()?.path()).ok()?);
            (text.contains(email) && text.contains("reset-password?token=")).then_some(text)
        })
    })
    .await;
    assert!(!mail.contains("List-Unsubscribe"), "{mail}");
    mail.split("reset-password?token=")
        .nth(1)
        .unwrap()
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .collect()
}

/// An email's text with quoted-printable undone where the link needs it (soft line breaks,
/// `=3D`).
fn unfold(email: &str) -> String {
    email
        .replace("=\r\n", "")
        .replace("=\n", "")
        .replace("=3D", "=")
}

/// The most one call takes, each customer with full preferences: more than the body limit
/// of anyone but an admin.
async fn a_thousand_customers_with_their_preferences_go_in_one_call(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let tag = uuid::Uuid::now_v7().simple().to_string();
    let users: Vec<Value> = (0..1000)
        .map(|i| {
            json!({
                "name": format!("Customer number {i} of the old shop"),
                "email": format!("customer-{i}-{tag}@old-shop.example"),
                "preferences": {
                    "promotions": i % 2 == 0, "orderUpdates": true, "recommendations": true,
                    "inventoryAlerts": false, "categories": ["tea", "coffee", "books"],
                    "channels": ["IN_APP", "EMAIL"], "timezone": "America/Argentina/Buenos_Aires",
                    "quietHoursStart": "22:30", "quietHoursEnd": "07:15"
                }
            })
        })
        .collect();
    let body = json!({ "query": IMPORT, "variables": { "i": { "users": users } } }).to_string();
    assert!(
        body.len() > 256 * 1024,
        "{} bytes: beyond the default limit",
        body.len()
    );
    let post = async |token: &str| {
        app.http()
            .post(format!("{}/graphql", app.gateway))
            .bearer_auth(token)
            .header("content-type", "application/json")
            .body(body.clone())
            .send()
            .await
            .unwrap()
    };
    assert_eq!(
        post(&ada.token).await.status(),
        413,
        "a customer's body stays limited"
    );
    let answer: Value = post(&admin.token).await.json().await.unwrap();
    assert_eq!(
        answer["data"]["importUsers"],
        json!({ "created": 1000, "skipped": 0 }),
        "{answer}"
    );
    app.cleanup().await;
}
