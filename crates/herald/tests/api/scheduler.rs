//! Scheduled jobs and promotions through GraphQL; two scheduler processes on one database.

use std::time::Duration;

use herald::ServiceName;
use herald_test_support::cluster::Cluster;
use herald_test_support::{BackendSet, TestApp, backend_tests, eventually, real_backends};
use serde_json::{Value, json};

backend_tests!(
    every bus: admins_list_and_run_scheduled_jobs,
    a_promotion_reaches_every_opted_in_user,
    a_category_promotion_reaches_who_bought_or_browsed_the_category,
    the_recommendation_digest_names_new_picks_once;
    real only: two_scheduler_processes_run_each_due_job_once
);

const JOBS: &str = "{ scheduledJobs { name schedule nextRunAt lastRunAt lastOutcome } }";

async fn job(app: &TestApp, token: &str, name: &str) -> Value {
    let jobs = app.graphql(Some(token), JOBS, json!({})).await;
    jobs.data()["scheduledJobs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|j| j["name"] == name)
        .cloned()
        .unwrap_or_else(|| panic!("no job {name}: {jobs:?}"))
}

async fn admins_list_and_run_scheduled_jobs(set: BackendSet) {
    let app = TestApp::spawn_with(set, |s| {
        s.schedule_promotions = "* * * * *".to_owned();
        s.schedule_order_checks = "0 3 * * *".to_owned();
    })
    .await;
    let admin = app.admin().await;
    let customer = app.customer("Curious").await;

    let jobs = app.graphql(Some(&admin.token), JOBS, json!({})).await;
    let names: Vec<&str> = jobs.data()["scheduledJobs"]
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["order-checks", "promotions", "recommendation-digest"]
    );
    let checks = job(&app, &admin.token, "order-checks").await;
    assert_eq!(checks["schedule"], "0 3 * * *");
    assert!(
        checks["nextRunAt"].as_str().unwrap().contains("T03:00:00"),
        "{checks}"
    );
    assert_eq!(checks["lastRunAt"], Value::Null);
    let digest = job(&app, &admin.token, "recommendation-digest").await;
    assert_eq!(
        (digest["schedule"].as_str(), &digest["nextRunAt"]),
        (Some(""), &Value::Null)
    );

    let run = "mutation($n: String!) { runScheduledJob(name: $n) }";
    let ran = app
        .graphql(Some(&admin.token), run, json!({ "n": "order-checks" }))
        .await;
    assert_eq!(ran.data()["runScheduledJob"], true);
    let outcome = eventually(Duration::from_secs(15), "the run's outcome", || async {
        let checks = job(&app, &admin.token, "order-checks").await;
        let outcome = checks["lastOutcome"].as_str()?.to_owned();
        (outcome != "running").then_some(outcome)
    })
    .await;
    assert_eq!(outcome, "ok: 0 stuck orders reported, 0 late deliveries");
    assert!(job(&app, &admin.token, "order-checks").await["lastRunAt"].is_string());

    let unknown = app
        .graphql(Some(&admin.token), run, json!({ "n": "no-such-job" }))
        .await;
    assert_eq!(unknown.error_code(), Some("NOT_FOUND"));
    let by_customer = app
        .graphql(Some(&customer.token), run, json!({ "n": "order-checks" }))
        .await;
    assert_eq!(by_customer.error_code(), Some("FORBIDDEN"));
    let listed = app.graphql(Some(&customer.token), JOBS, json!({})).await;
    assert_eq!(listed.error_code(), Some("FORBIDDEN"));
    app.cleanup().await;
}

const PROMOTIONS: &str = "{ promotions { id title category sendAt status recipients } }";
const CREATE: &str = "mutation($i: PromotionInput!) {
  createPromotion(input: $i) { id title body category sendAt status recipients }
}";

async fn promotions_of(app: &TestApp, token: &str) -> Vec<String> {
    let page = app
        .graphql(
            Some(token),
            "{ getNotifications(first: 50) { nodes { type title } } }",
            json!({}),
        )
        .await;
    page.data()["getNotifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "PROMOTION")
        .map(|n| n["title"].as_str().unwrap().to_owned())
        .collect()
}

async fn a_promotion_reaches_every_opted_in_user(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let bob = app.customer("Bob").await;
    // Their welcomes prove the notifications service knows all three.
    for who in [&admin, &ada, &bob] {
        eventually(Duration::from_secs(10), "the welcome", || async {
            let page = app
                .graphql(
                    Some(&who.token),
                    "{ getNotifications { totalCount } }",
                    json!({}),
                )
                .await;
            (page.data()["getNotifications"]["totalCount"].as_i64()? >= 1).then_some(())
        })
        .await;
    }

    let later = app
        .graphql(
            Some(&admin.token),
            CREATE,
            json!({ "i": { "title": "Next week", "body": "Soon", "sendAt": "2099-01-01T00:00:00Z" } }),
        )
        .await;
    // Beyond a year ahead is refused; within it, scheduled.
    assert_eq!(later.error_code(), Some("BAD_USER_INPUT"));
    let send_at = (chrono::Utc::now() + chrono::Duration::days(7)).to_rfc3339();
    let later = app
        .graphql(
            Some(&admin.token),
            CREATE,
            json!({ "i": { "title": "Next week", "body": "Soon", "sendAt": send_at } }),
        )
        .await;
    assert_eq!(later.data()["createPromotion"]["status"], "SCHEDULED");

    let now = app
        .graphql(
            Some(&admin.token),
            CREATE,
            json!({ "i": { "title": "Spring sale", "body": "20 % off everything" } }),
        )
        .await;
    let created = now.data()["createPromotion"].clone();
    assert_eq!(created["title"], "Spring sale");
    assert_eq!(created["category"], Value::Null);
    let sent = eventually(Duration::from_secs(15), "the promotion sent", || async {
        let list = app.graphql(Some(&admin.token), PROMOTIONS, json!({})).await;
        let first = list.data()["promotions"][0].clone();
        (first["status"] == "SENT").then_some(first)
    })
    .await;
    assert_eq!(sent["id"], created["id"], "newest first");
    assert_eq!(sent["recipients"], 3, "{sent}");
    for who in [&admin, &ada, &bob] {
        assert_eq!(promotions_of(&app, &who.token).await, ["Spring sale"]);
    }
    let list = app.graphql(Some(&admin.token), PROMOTIONS, json!({})).await;
    assert_eq!(list.data()["promotions"][1]["status"], "SCHEDULED");
    assert_eq!(list.data()["promotions"][1]["recipients"], 0);

    let empty = app
        .graphql(
            Some(&admin.token),
            CREATE,
            json!({ "i": { "title": " ", "body": "x" } }),
        )
        .await;
    assert_eq!(empty.error_code(), Some("BAD_USER_INPUT"));
    let by_customer = app
        .graphql(
            Some(&ada.token),
            CREATE,
            json!({ "i": { "title": "Mine", "body": "x" } }),
        )
        .await;
    assert_eq!(by_customer.error_code(), Some("FORBIDDEN"));
    let listed = app.graphql(Some(&ada.token), PROMOTIONS, json!({})).await;
    assert_eq!(listed.error_code(), Some("FORBIDDEN"));
    app.cleanup().await;
}

/// Two scheduler processes on the same PostgreSQL, a job due every second: each due time
/// is run once, by one of them, and the job's owner handles each run once.
async fn two_scheduler_processes_run_each_due_job_once() {
    let real = real_backends().expect("the real servers");
    let mut cluster = Cluster::new(
        std::path::Path::new(env!("CARGO_BIN_EXE_herald")),
        BackendSet::Real,
    );
    cluster.set_env("HERALD_SCHEDULE_ORDER_CHECKS", "* * * * * *");
    cluster.set_env("HERALD_SCHEDULE_PROMOTIONS", "");
    cluster.set_env("HERALD_SCHEDULE_RECOMMENDATION_DIGEST", "");
    cluster.set_env("HERALD_SCHEDULER_TICK_MS", "100");
    cluster.start(
        "services",
        &[
            "users",
            "products",
            "orders",
            "recommendations",
            "notifications",
            "gateway",
        ],
    );
    cluster.wait_ready().await;
    let mut replicas = Vec::new();
    for name in ["scheduler-a", "scheduler-b"] {
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap();
        cluster.start_with_env(
            name,
            &["scheduler"],
            &[("HERALD_SCHEDULER_ADDR", addr.to_string())],
        );
        replicas.push(name);
    }
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&real.database_url).await.unwrap();
    let scheduler = format!("{}scheduler", cluster.schema_prefix());
    let orders = format!("{}orders", cluster.schema_prefix());
    // Both replicas compete for several due times.
    eventually(
        Duration::from_secs(60),
        "six runs of order-checks",
        || async {
            let runs: i64 = sqlx::query_scalar(sqlx::AssertSqlSafe(format!(
                "SELECT COUNT(*) FROM \"{scheduler}\".job_runs WHERE job = 'order-checks'"
            )))
            .fetch_one(&pool)
            .await
            .ok()?;
            (runs >= 6).then_some(())
        },
    )
    .await;
    for name in replicas {
        cluster.terminate(name);
    }
    let runs: Vec<(String, i64, String)> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
        "SELECT id, due_at, runner FROM \"{scheduler}\".job_runs WHERE job = 'order-checks' ORDER BY due_at"
    )))
    .fetch_all(&pool)
    .await
    .unwrap();
    assert!(
        runs.len() >= 5,
        "a run a second for several seconds: {runs:?}"
    );
    let mut due: Vec<i64> = runs.iter().map(|(_, due, _)| *due).collect();
    due.dedup();
    assert_eq!(due.len(), runs.len(), "each due time once: {runs:?}");
    let runners: std::collections::BTreeSet<&str> =
        runs.iter().map(|(_, _, runner)| runner.as_str()).collect();
    eprintln!(
        "{} runs claimed by {} scheduler processes",
        runs.len(),
        runners.len()
    );

    // A scheduler that only records outcomes (the job switched off) hears how each ended.
    cluster.set_env("HERALD_SCHEDULE_ORDER_CHECKS", "");
    cluster.start("outcomes", &["scheduler"]);
    let count = |sql: String| {
        let pool = pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(sql.as_str()))
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    let total = runs.len() as i64;
    eventually(Duration::from_secs(30), "every run's outcome", || async {
        let finished = count(format!(
            "SELECT COUNT(*) FROM \"{scheduler}\".job_runs WHERE job = 'order-checks' AND ok IS NOT NULL"
        ))
        .await;
        (finished == total).then_some(())
    })
    .await;
    let ok = count(format!(
        "SELECT COUNT(*) FROM \"{scheduler}\".job_runs WHERE job = 'order-checks' AND outcome LIKE 'ok: %'"
    ))
    .await;
    assert_eq!(ok, total);
    // The orders service ran the job once per run: one inbox entry per job_due.
    let handled = count(format!(
        "SELECT COUNT(*) FROM \"{orders}\".herald_inbox WHERE consumer = 'orders'"
    ))
    .await;
    assert_eq!(handled, total, "runs handled by the orders service");
    pool.close().await;
    cluster.cleanup().await;
}

/// Runs `name` now and waits for its outcome.
async fn run_job(app: &TestApp, token: &str, name: &str) -> String {
    let before = job(app, token, name).await["lastRunAt"].clone();
    let ran = app
        .graphql(
            Some(token),
            "mutation($n: String!) { runScheduledJob(name: $n) }",
            json!({ "n": name }),
        )
        .await;
    assert_eq!(ran.data()["runScheduledJob"], true);
    eventually(Duration::from_secs(15), "the run's outcome", || async {
        let now = job(app, token, name).await;
        let outcome = now["lastOutcome"].as_str()?.to_owned();
        (now["lastRunAt"] != before && outcome != "running").then_some(outcome)
    })
    .await
}

async fn recommendation_notes(app: &TestApp, token: &str) -> Vec<Value> {
    let page = app
        .graphql(
            Some(token),
            "{ getNotifications(first: 50) { nodes { type title body data } } }",
            json!({}),
        )
        .await;
    page.data()["getNotifications"]["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["type"] == "RECOMMENDATION")
        .cloned()
        .collect()
}

async fn the_recommendation_digest_names_new_picks_once(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let mut products = Vec::new();
    for (name, category) in [("Espresso Beans", "coffee"), ("Burr Grinder", "coffee")] {
        let input = json!({ "input": { "name": name, "category": category, "priceCents": 1000, "stock": 50 } });
        let created = app
            .graphql(
                Some(&admin.token),
                "mutation($input: ProductInput!) { createProduct(input: $input) { id } }",
                input,
            )
            .await;
        products.push(
            created.data()["createProduct"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let placed = app
        .graphql(
            Some(&ada.token),
            "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { status } }",
            json!({ "p": products[0] }),
        )
        .await;
    assert_eq!(placed.data()["placeOrder"]["status"], "CONFIRMED");
    // The recommendations service has heard of the purchase when the grinder is picked.
    eventually(
        Duration::from_secs(15),
        "a recommendation for Ada",
        || async {
            let picks = app
                .graphql(
                    Some(&ada.token),
                    "{ getRecommendations(limit: 3) { product { name } } }",
                    json!({}),
                )
                .await;
            let picks = picks.data()["getRecommendations"].as_array()?.clone();
            (picks.len() == 1 && picks[0]["product"]["name"] == "Burr Grinder").then_some(())
        },
    )
    .await;

    let outcome = run_job(&app, &admin.token, "recommendation-digest").await;
    assert!(
        outcome.starts_with("ok: ") && outcome.ends_with(" digests"),
        "{outcome}"
    );
    let notes = eventually(Duration::from_secs(15), "Ada's digest", || async {
        let notes = recommendation_notes(&app, &ada.token).await;
        (!notes.is_empty()).then_some(notes)
    })
    .await;
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0]["title"], "Picked for you: Burr Grinder");
    assert!(
        notes[0]["body"].as_str().unwrap().contains("coffee"),
        "the reason: {}",
        notes[0]
    );
    assert_eq!(notes[0]["data"]["productIds"][0], products[1].as_str());

    // Within the digest period nobody gets a second one.
    // (The job sent nothing: no event is on its way.)
    assert_eq!(
        run_job(&app, &admin.token, "recommendation-digest").await,
        "ok: 0 digests"
    );
    assert_eq!(recommendation_notes(&app, &ada.token).await.len(), 1);
    app.cleanup().await;
}

async fn a_category_promotion_reaches_who_bought_or_browsed_the_category(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let admin = app.admin().await;
    let ada = app.customer("Ada").await;
    let bob = app.customer("Bob").await;
    let cleo = app.customer("Cleo").await;
    let mut ids = Vec::new();
    for (name, category) in [
        ("Espresso Beans", "coffee"),
        ("Sencha", "tea"),
        ("Moka Pot", "coffee"),
    ] {
        let input = json!({ "input": { "name": name, "category": category, "priceCents": 900, "stock": 50 } });
        let created = app
            .graphql(
                Some(&admin.token),
                "mutation($input: ProductInput!) { createProduct(input: $input) { id } }",
                input,
            )
            .await;
        ids.push(
            created.data()["createProduct"]["id"]
                .as_str()
                .unwrap()
                .to_owned(),
        );
    }
    let order = "mutation($p: ID!) { placeOrder(input: { items: [{ productId: $p, quantity: 1 }] }) { status } }";
    // Ada bought coffee, Bob tea; Cleo only looked at a coffee pot.
    for (who, product) in [(&ada, &ids[0]), (&bob, &ids[1])] {
        let placed = app
            .graphql(Some(&who.token), order, json!({ "p": product }))
            .await;
        assert_eq!(placed.data()["placeOrder"]["status"], "CONFIRMED");
    }
    eventually(
        Duration::from_secs(15),
        "the catalog reaching recommendations",
        || async {
            let viewed = app
            .graphql(
                Some(&cleo.token),
                "mutation($p: ID!) { createUserActivity(input: { type: VIEW, productId: $p }) }",
                json!({ "p": ids[2] }),
            )
            .await;
            (viewed.error_code().is_none()).then_some(())
        },
    )
    .await;

    // The interests reach the notifications service as events: promote once it has them.
    app.wait_for_rows(
        ServiceName::Notifications,
        "Ada's and Cleo's interest in coffee in the notifications service",
        "SELECT COUNT(*) FROM category_interests \
         WHERE LOWER(category) = 'coffee' AND user_id IN ($1, $2)",
        &[&ada.user_id, &cleo.user_id],
        2,
    )
    .await;
    let reached = "Coffee week";
    app.graphql(
        Some(&admin.token),
        CREATE,
        json!({ "i": { "title": reached, "body": "Beans and pots", "category": "Coffee" } }),
    )
    .await
    .data();
    eventually(
        Duration::from_secs(20),
        "the coffee promotion reaching Ada and Cleo",
        || async {
            let (a, c) = (
                promotions_of(&app, &ada.token).await,
                promotions_of(&app, &cleo.token).await,
            );
            (a.iter().any(|t| t == reached) && c.iter().any(|t| t == reached)).then_some(())
        },
    )
    .await;
    assert!(
        promotions_of(&app, &bob.token).await.is_empty(),
        "Bob only bought tea"
    );
    let list = app.graphql(Some(&admin.token), PROMOTIONS, json!({})).await;
    let sent = list.data()["promotions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["title"] == reached)
        .cloned()
        .unwrap();
    assert_eq!(sent["category"], "Coffee");
    assert_eq!(sent["recipients"], 2, "{sent}");
    app.cleanup().await;
}
