//! Dead letters through the public API and the CLI.

use std::time::Duration;

use herald_platform::bus::{Bus, topology};
use herald_test_support::events::{shipped_order, unreadable_order};
use herald_test_support::{BackendSet, TestApp, backend_tests, eventually};
use serde_json::{Value, json};

backend_tests!(every bus: admins_list_replay_and_discard_dead_letters);

const LIST: &str = "query($queue: String) { deadLetters(queue: $queue) { id queue eventType error attempts failedAt payload } }";

async fn admins_list_replay_and_discard_dead_letters(set: BackendSet) {
    let mut app = TestApp::spawn_with(set, |s| {
        s.bus_max_attempts = 2;
        s.bus_retry_delay_ms = 50;
    })
    .await;
    let admin = app.admin().await;
    let customer = app.customer("Curious").await;

    // An order event whose payload no consumer can read.
    let bus = Bus::connect(&app.settings, &topology()).await.unwrap();
    let broken = unreadable_order(json!({ "not": "an order" }));
    bus.publish(std::slice::from_ref(&broken)).await.unwrap();

    let letters = eventually(Duration::from_secs(10), "the dead letter", || async {
        let response = app.graphql(Some(&admin.token), LIST, json!({})).await;
        let letters = response.data()["deadLetters"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        (!letters.is_empty()).then_some(letters)
    })
    .await;
    assert_eq!(letters.len(), 1, "{letters:?}");
    let letter = &letters[0];
    assert_eq!(letter["queue"], "notifications.critical");
    assert_eq!(letter["eventType"], "order.shipped");
    assert_eq!(letter["payload"], json!({ "not": "an order" }));
    assert!(!letter["error"].as_str().unwrap().is_empty());

    let by_queue = app
        .graphql(Some(&admin.token), LIST, json!({ "queue": "products" }))
        .await;
    assert_eq!(by_queue.data()["deadLetters"], json!([]));
    let forbidden = app.graphql(Some(&customer.token), LIST, json!({})).await;
    assert_eq!(forbidden.error_code(), Some("FORBIDDEN"));

    // Replaying a message that still cannot be read brings it back as a dead letter, once.
    let replay = "mutation($id: ID!) { replayDeadLetter(id: $id) }";
    let replayed = app
        .graphql(Some(&admin.token), replay, json!({ "id": letter["id"] }))
        .await;
    assert_eq!(replayed.data()["replayDeadLetter"], true);
    let again = eventually(
        Duration::from_secs(10),
        "the replayed dead letter",
        || async {
            let response = app.graphql(Some(&admin.token), LIST, json!({})).await;
            let letters = response.data()["deadLetters"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            letters.into_iter().find(|l| l["id"] != letter["id"])
        },
    )
    .await;
    let listed = app.graphql(Some(&admin.token), LIST, json!({})).await;
    assert_eq!(listed.data()["deadLetters"].as_array().unwrap().len(), 1);
    let unknown = app
        .graphql(
            Some(&admin.token),
            replay,
            json!({ "id": uuid::Uuid::now_v7().to_string() }),
        )
        .await;
    assert_eq!(unknown.error_code(), Some("NOT_FOUND"));

    if set == BackendSet::Embedded {
        // The CLI reads the same storage, of every service that keeps dead letters (the
        // orders service and the scheduler consume too).
        app.stop().await;
        for service in [herald::ServiceName::Orders, herald::ServiceName::Scheduler] {
            let db = service
                .descriptor()
                .open_database(&app.settings)
                .await
                .unwrap()
                .unwrap();
            let letter = shipped_order();
            herald_platform::deadletters::DeadLetters::new(db.clone())
                .store(
                    service.as_str(),
                    herald_platform::bus::DeadMessage::Event(&letter),
                    &format!("kept by {}", service.as_str()),
                    3,
                )
                .await
                .unwrap();
            db.close().await;
        }
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
            .args(["dlq", "list", "--data-dir"])
            .arg(app.data_dir())
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&output.stdout);
        assert!(
            output.status.success() && text.contains("order.shipped"),
            "{text}"
        );
        assert!(
            text.contains("kept by orders") && text.contains("kept by scheduler"),
            "{text}"
        );
        // And discards them by id (the API below expects only the notifications one).
        for service in [herald::ServiceName::Orders, herald::ServiceName::Scheduler] {
            let db = service
                .descriptor()
                .open_database(&app.settings)
                .await
                .unwrap()
                .unwrap();
            let kept = herald_platform::deadletters::DeadLetters::new(db.clone())
                .list(Some(service.as_str()), 10)
                .await
                .unwrap();
            db.close().await;
            assert_eq!(kept.len(), 1, "{service:?}");
            let output = std::process::Command::new(env!("CARGO_BIN_EXE_herald"))
                .args(["dlq", "discard", &kept[0].id.to_string(), "--data-dir"])
                .arg(app.data_dir())
                .output()
                .unwrap();
            assert!(
                output.status.success(),
                "{}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        app.restart().await;
    }

    let discard = "mutation($id: ID!) { discardDeadLetter(id: $id) }";
    let discarded = app
        .graphql(Some(&admin.token), discard, json!({ "id": again["id"] }))
        .await;
    assert_eq!(discarded.data()["discardDeadLetter"], true);
    let empty = app.graphql(Some(&admin.token), LIST, json!({})).await;
    assert_eq!(empty.data()["deadLetters"], Value::Array(vec![]));
    let replay_all = app
        .graphql(
            Some(&admin.token),
            "mutation { replayAllDeadLetters }",
            json!({}),
        )
        .await;
    assert_eq!(replay_all.data()["replayAllDeadLetters"], 0);
    app.cleanup().await;
}
