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
    imported_customers_are_reached_but_not_welcomed,
    the_import_command_reports_every_row_by_line
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
