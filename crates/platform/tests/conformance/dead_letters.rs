//! Messages a consumer gives up on: they land in the dead-letter store once, nothing is lost
//! while the store fails, and admins replay or discard them.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use anyhow::anyhow;
use async_trait::async_trait;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use herald_events::{Envelope, Role};
use herald_platform::backend_tests;
use herald_platform::bus::{DeadLetterSink, DeadMessage, EventHandler, HandlerError, QueueSpec};
use herald_platform::db::Database;
use herald_platform::deadletters::{
    self, DeadLetterAdmin, DeadLetters, DeadLettersApi, DeadLettersOverHttp, ReplayError,
};
use herald_platform::outbox::first_delivery;
use herald_platform::testing::BackendSet;
use herald_platform::testing::{TestKey, serve_on_loopback};
use herald_platform::{ApiError, ErrorCode};
use serde_json::{Value, json};
use tower::ServiceExt;
use uuid::Uuid;

use crate::support::{
    QUIET, TestBus, dead_lettered, event, eventually, lock, on_bus, quick_retries,
};

backend_tests!(
    every bus: a_message_failing_every_attempt_is_dead_lettered_once_and_holds_back_nothing(threads = 4),
    replayed_dead_letters_are_handled_once_more_without_a_second_effect(threads = 4),
    a_message_that_is_no_event_is_dead_lettered_as_it_came(threads = 4),
    nothing_is_lost_while_the_dead_letter_store_fails(threads = 4),
    admins_list_replay_and_discard_dead_letters_over_http(threads = 4),
    both_implementations_keep_one_contract(threads = 4),
    a_copy_failing_again_replaces_its_dead_letter(threads = 4)
);

/// Fails one event on every delivery; accepts and records the others.
struct FailsAlways {
    failing: Uuid,
    attempts: Mutex<Vec<Instant>>,
    effects: Mutex<Vec<(Uuid, Instant)>>,
}

#[async_trait]
impl EventHandler for FailsAlways {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if event.id == self.failing {
            lock(&self.attempts).push(Instant::now());
            return Err(HandlerError::Retry(anyhow!(
                "the payment provider is unavailable"
            )));
        }
        lock(&self.effects).push((event.id, Instant::now()));
        Ok(())
    }
}

async fn a_message_failing_every_attempt_is_dead_lettered_once_and_holds_back_nothing(
    set: BackendSet,
) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("payments", &["order.*"])])
            .await;
        let store = bus.dead_letters().await;
        let failing = event("order.placed");
        let good: Vec<Envelope> = (0..20).map(|_| event("order.paid")).collect();
        bus.publish(std::slice::from_ref(&failing)).await;
        bus.publish(&good).await;
        let handler = Arc::new(FailsAlways {
            failing: failing.id,
            attempts: Mutex::default(),
            effects: Mutex::default(),
        });
        let consumer = bus.consume_with(
            "payments",
            handler.clone(),
            quick_retries(1, 3),
            Arc::new(store.clone()),
        );
        let letters = dead_lettered(&store, 1).await;
        consumer.stop().await;

        let letter = &letters[0];
        assert_eq!(letter.queue, "payments");
        assert_eq!(letter.event_id, Some(failing.id.to_string()));
        assert_eq!(letter.event_type, "order.placed");
        assert_eq!(letter.attempts, 3);
        assert!(
            letter.error.contains("the payment provider is unavailable"),
            "{}",
            letter.error
        );
        assert_eq!(letter.payload, failing.data);
        let attempts = lock(&handler.attempts).clone();
        assert_eq!(attempts.len(), 3, "delivered max_attempts times");
        let effects = lock(&handler.effects).clone();
        assert_eq!(effects.len(), 20, "every good message was handled");
        for (id, at) in &effects {
            assert!(
                *at < attempts[2],
                "{id} was handled only after the failing message's last attempt"
            );
        }
        assert_eq!(bus.depth("payments").await, 0);
    })
    .await;
}

/// Fails while `broken`: `order.placed` before its effect, `order.paid` after it (the effect
/// committed, then something else failed). Effects go through the inbox of `consumer`.
struct Fulfilment {
    db: Database,
    consumer: &'static str,
    broken: Arc<AtomicBool>,
    deliveries: Mutex<HashMap<Uuid, usize>>,
}

impl Fulfilment {
    fn deliveries(&self, id: Uuid) -> usize {
        lock(&self.deliveries).get(&id).copied().unwrap_or(0)
    }
}

#[async_trait]
impl EventHandler for Fulfilment {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        *lock(&self.deliveries).entry(event.id).or_default() += 1;
        let broken = self.broken.load(Ordering::SeqCst);
        if broken && event.event_type == "order.placed" {
            return Err(HandlerError::Retry(anyhow!("the warehouse is offline")));
        }
        let mut tx = self.db.begin().await?;
        if first_delivery(&mut tx, self.consumer, event).await? {
            sqlx::query("INSERT INTO conformance_shipments (consumer, event_id) VALUES ($1, $2)")
                .bind(self.consumer)
                .bind(event.id.to_string())
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        if broken {
            return Err(HandlerError::Retry(anyhow!(
                "the confirmation email bounced"
            )));
        }
        Ok(())
    }
}

async fn shipments(db: &Database) -> Vec<(String, String)> {
    let mut rows: Vec<(String, String)> =
        sqlx::query_as("SELECT consumer, event_id FROM conformance_shipments")
            .fetch_all(db.pool())
            .await
            .expect("reading shipments");
    rows.sort();
    rows
}

async fn replayed_dead_letters_are_handled_once_more_without_a_second_effect(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        let db = bus.database().await;
        sqlx::query(
            "CREATE TABLE conformance_shipments (consumer TEXT NOT NULL, event_id TEXT NOT NULL)",
        )
        .execute(db.pool())
        .await
        .expect("creating the shipments table");
        bus.declare(&[
            QueueSpec::new("fulfilment", &["order.*"]),
            QueueSpec::new("audit", &["order.placed"]),
        ])
        .await;
        let store = DeadLetters::new(db.clone());
        let broken = Arc::new(AtomicBool::new(true));
        let handler = |consumer| {
            Arc::new(Fulfilment {
                db: db.clone(),
                consumer,
                broken: broken.clone(),
                deliveries: Mutex::default(),
            })
        };
        let (fulfilment, audit) = (handler("fulfilment"), handler("audit"));
        let placed = event("order.placed");
        let paid = event("order.paid");
        bus.publish(&[placed.clone(), paid.clone()]).await;
        let consumers = [
            bus.consume_with(
                "fulfilment",
                fulfilment.clone(),
                quick_retries(4, 2),
                Arc::new(store.clone()),
            ),
            bus.consume_with(
                "audit",
                audit.clone(),
                quick_retries(4, 2),
                Arc::new(store.clone()),
            ),
        ];
        let letters = dead_lettered(&store, 3).await;
        let letter_of = |queue: &str, id: Uuid| {
            letters
                .iter()
                .find(|l| l.queue == queue && l.event_id == Some(id.to_string()))
                .unwrap_or_else(|| panic!("no dead letter of {id} in {queue}: {letters:?}"))
                .clone()
        };
        let placed_letter = letter_of("fulfilment", placed.id);
        let paid_letter = letter_of("fulfilment", paid.id);
        let audit_letter = letter_of("audit", placed.id);
        assert_eq!(paid_letter.error, "the confirmation email bounced");
        assert_eq!(
            shipments(&db).await,
            [("fulfilment".to_owned(), paid.id.to_string())],
            "the paid order's effect happened before its failure"
        );

        broken.store(false, Ordering::SeqCst);
        let bus_handle = bus.bus();
        assert!(
            !store
                .replay(Uuid::now_v7(), &bus_handle)
                .await
                .expect("replaying")
        );
        assert!(
            store
                .replay(placed_letter.id, &bus_handle)
                .await
                .expect("replaying")
        );
        assert!(
            !store
                .replay(placed_letter.id, &bus_handle)
                .await
                .expect("replaying"),
            "a dead letter is replayed once"
        );
        assert_eq!(store.get(placed_letter.id).await.expect("reading"), None);
        eventually("the replayed order shipped", || {
            fulfilment.deliveries(placed.id) == 3
        })
        .await;

        assert_eq!(
            store
                .replay_all(Some("fulfilment"), &bus_handle)
                .await
                .expect("replaying all"),
            1,
            "only the paid order is left in fulfilment"
        );
        eventually("the paid order delivered again", || {
            fulfilment.deliveries(paid.id) == 3
        })
        .await;
        assert!(store.discard(audit_letter.id).await.expect("discarding"));
        assert!(!store.discard(audit_letter.id).await.expect("discarding"));
        assert_eq!(store.get(audit_letter.id).await.expect("reading"), None);
        tokio::time::sleep(QUIET).await;
        for consumer in consumers {
            consumer.stop().await;
        }

        let mut expected = vec![
            ("fulfilment".to_owned(), placed.id.to_string()),
            ("fulfilment".to_owned(), paid.id.to_string()),
        ];
        expected.sort();
        assert_eq!(
            shipments(&db).await,
            expected,
            "one effect per event, none twice"
        );
        assert_eq!(
            audit.deliveries(placed.id),
            2,
            "a replay goes to its own queue only"
        );
        assert_eq!(store.list(None, 500).await.expect("listing"), []);
        assert_eq!(
            store
                .replay_all(None, &bus_handle)
                .await
                .expect("replaying all"),
            0
        );
    })
    .await;
}

/// Accepts everything (no message in these scenarios is an event it could handle).
#[derive(Default)]
struct Counts(AtomicUsize);

#[async_trait]
impl EventHandler for Counts {
    async fn handle(&self, _event: &Envelope) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

async fn a_message_that_is_no_event_is_dead_lettered_as_it_came(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("raw", &["order.*"])]).await;
        let store = bus.dead_letters().await;
        bus.publish_raw("raw", "this is not an event").await;
        bus.publish_raw("raw", r#"{"type": "order.placed"}"#).await;
        let handler = Arc::new(Counts::default());
        let consumer = bus.consume_with(
            "raw",
            handler.clone(),
            quick_retries(4, 3),
            Arc::new(store.clone()),
        );
        let mut letters = dead_lettered(&store, 2).await;
        consumer.stop().await;
        assert_eq!(handler.0.load(Ordering::SeqCst), 0);
        assert_eq!(bus.depth("raw").await, 0);

        letters.sort_by_key(|l| l.payload.is_string());
        let payloads: Vec<&Value> = letters.iter().map(|l| &l.payload).collect();
        assert_eq!(
            payloads,
            [
                &json!({"type": "order.placed"}),
                &json!("this is not an event")
            ]
        );
        for letter in &letters {
            assert_eq!(letter.event_type, "unknown");
            assert_eq!(letter.event_id, None);
            assert_eq!(letter.attempts, 1, "it can never succeed");
            assert!(
                letter.error.contains("not an event envelope"),
                "{}",
                letter.error
            );
        }
        let replayed = store.replay(letters[0].id, &bus.bus()).await;
        assert!(
            matches!(replayed, Err(ReplayError::NotAnEvent(_))),
            "{replayed:?}"
        );
        assert_eq!(
            store.replay_all(None, &bus.bus()).await.expect("replaying"),
            0
        );
        assert_eq!(
            store.list(None, 10).await.expect("listing").len(),
            2,
            "kept until discarded"
        );
    })
    .await;
}

/// A store that refuses writes until it is mended.
struct MendableStore {
    store: DeadLetters,
    working: AtomicBool,
    refused: AtomicUsize,
}

#[async_trait]
impl DeadLetterSink for MendableStore {
    async fn dead_letter(
        &self,
        queue: &str,
        message: DeadMessage<'_>,
        error: &str,
        attempts: u32,
    ) -> anyhow::Result<()> {
        if !self.working.load(Ordering::SeqCst) {
            self.refused.fetch_add(1, Ordering::SeqCst);
            anyhow::bail!("the database is down");
        }
        self.store
            .dead_letter(queue, message, error, attempts)
            .await
    }
}

/// Rejects `order.garbled`; fails everything else.
struct NeverHandles;

#[async_trait]
impl EventHandler for NeverHandles {
    async fn handle(&self, event: &Envelope) -> Result<(), HandlerError> {
        if event.event_type == "order.garbled" {
            return Err(HandlerError::Reject(anyhow!("no such order")));
        }
        Err(HandlerError::Retry(anyhow!("the warehouse is offline")))
    }
}

async fn nothing_is_lost_while_the_dead_letter_store_fails(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("fragile", &["order.*"])])
            .await;
        let sink = Arc::new(MendableStore {
            store: bus.dead_letters().await,
            working: AtomicBool::new(false),
            refused: AtomicUsize::new(0),
        });
        let garbled = event("order.garbled");
        let stuck = event("order.placed");
        bus.publish(&[garbled.clone(), stuck.clone()]).await;
        let consumer = bus.consume_with(
            "fragile",
            Arc::new(NeverHandles),
            quick_retries(2, 2),
            sink.clone(),
        );
        // Each message comes back after the store refused it, again and again.
        eventually("several refusals", || {
            sink.refused.load(Ordering::SeqCst) >= 6
        })
        .await;
        assert_eq!(sink.store.list(None, 10).await.expect("listing"), []);

        sink.working.store(true, Ordering::SeqCst);
        let letters = dead_lettered(&sink.store, 2).await;
        consumer.stop().await;
        let attempts: HashMap<String, u32> = letters
            .iter()
            .map(|l| (l.event_type.clone(), l.attempts))
            .collect();
        assert_eq!(
            attempts,
            HashMap::from([
                ("order.garbled".to_owned(), 1),
                ("order.placed".to_owned(), 2)
            ])
        );
        assert_eq!(bus.depth("fragile").await, 0);
    })
    .await;
}

async fn call(
    router: &axum::Router,
    method: Method,
    uri: &str,
    token: Option<&str>,
) -> (StatusCode, Value) {
    let mut request = Request::builder().method(method).uri(uri);
    if let Some(token) = token {
        request = request.header("authorization", format!("Bearer {token}"));
    }
    let response = router
        .clone()
        .oneshot(request.body(Body::empty()).expect("a request"))
        .await
        .expect("the router answers");
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 20)
        .await
        .expect("a body");
    let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, body)
}

async fn admins_list_replay_and_discard_dead_letters_over_http(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[QueueSpec::new("orders", &["order.*"])]).await;
        let store = bus.dead_letters().await;
        let events: Vec<Envelope> = (0..3).map(|_| event("order.placed")).collect();
        for (n, e) in events.iter().enumerate() {
            store
                .store(
                    "orders",
                    DeadMessage::Event(e),
                    "the warehouse is offline",
                    5,
                )
                .await
                .expect("storing");
            store
                .store(
                    "other",
                    DeadMessage::Event(e),
                    &format!("other failure {n}"),
                    1,
                )
                .await
                .expect("storing");
        }
        let key = TestKey::generate("users");
        let admin = key.token(Uuid::now_v7(), Role::Admin);
        let customer = key.token(Uuid::now_v7(), Role::Customer);
        let router = deadletters::router(
            deadletters::DeadLetterAdmin::new("users", store.clone(), bus.bus()),
            key.verifier.clone(),
        );

        let (status, _) = call(&router, Method::GET, "/dead-letters", None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
        // An admin's own token is not a service's call.
        let own = key.user_token(Uuid::now_v7(), Role::Admin);
        let (status, _) = call(&router, Method::GET, "/dead-letters", Some(&own)).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        let (status, body) = call(&router, Method::GET, "/dead-letters", Some(&customer)).await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::FORBIDDEN, &json!("FORBIDDEN"))
        );
        for bad in ["0", "501", "many"] {
            let (status, body) = call(
                &router,
                Method::GET,
                &format!("/dead-letters?first={bad}"),
                Some(&admin),
            )
            .await;
            assert_eq!(
                (status, &body["code"]),
                (StatusCode::UNPROCESSABLE_ENTITY, &json!("BAD_USER_INPUT")),
                "first={bad}"
            );
        }

        let (status, listed) = call(
            &router,
            Method::GET,
            "/dead-letters?queue=orders&first=2",
            Some(&admin),
        )
        .await;
        assert_eq!(status, StatusCode::OK, "{listed}");
        let listed = listed.as_array().expect("a list").clone();
        assert_eq!(listed.len(), 2);
        let newest = &listed[0];
        assert_eq!(
            newest["eventId"],
            json!(events[2].id.to_string()),
            "newest first"
        );
        assert_eq!(newest["queue"], "orders");
        assert_eq!(newest["eventType"], "order.placed");
        assert_eq!(newest["error"], "the warehouse is offline");
        assert_eq!(newest["attempts"], 5);
        assert_eq!(newest["payload"], events[2].data);
        let failed_at = newest["failedAt"].as_str().expect("failedAt");
        chrono::DateTime::parse_from_rfc3339(failed_at).expect("failedAt is RFC 3339");
        let (_, all) = call(&router, Method::GET, "/dead-letters", Some(&admin)).await;
        assert_eq!(all.as_array().map(Vec::len), Some(6));

        let id = newest["id"].as_str().expect("an id").to_owned();
        let (status, body) = call(
            &router,
            Method::POST,
            &format!("/dead-letters/{id}/replay"),
            Some(&customer),
        )
        .await;
        assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
        let (status, body) = call(
            &router,
            Method::POST,
            &format!("/dead-letters/{id}/replay"),
            Some(&admin),
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, json!({"replayed": true})));
        assert_eq!(
            bus.depth("orders").await,
            1,
            "the event is back in its queue"
        );
        let (status, body) = call(
            &router,
            Method::POST,
            &format!("/dead-letters/{id}/replay"),
            Some(&admin),
        )
        .await;
        assert_eq!(
            (status, &body["code"]),
            (StatusCode::NOT_FOUND, &json!("NOT_FOUND"))
        );
        let (status, _) = call(
            &router,
            Method::POST,
            "/dead-letters/not-an-id/replay",
            Some(&admin),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let other = store.list(Some("other"), 1).await.expect("listing")[0].id;
        let (status, body) = call(
            &router,
            Method::DELETE,
            &format!("/dead-letters/{other}"),
            Some(&admin),
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, json!({"discarded": true})));
        let (status, _) = call(
            &router,
            Method::DELETE,
            &format!("/dead-letters/{other}"),
            Some(&admin),
        )
        .await;
        assert_eq!(status, StatusCode::NOT_FOUND);

        let (status, body) = call(
            &router,
            Method::POST,
            "/dead-letters/replay-all?queue=orders",
            Some(&admin),
        )
        .await;
        assert_eq!((status, body), (StatusCode::OK, json!({"replayed": 2})));
        assert_eq!(bus.depth("orders").await, 3);
        let (_, left) = call(&router, Method::GET, "/dead-letters", Some(&admin)).await;
        let queues: Vec<&Value> = left
            .as_array()
            .expect("a list")
            .iter()
            .map(|l| &l["queue"])
            .collect();
        assert_eq!(
            queues,
            [&json!("other"), &json!("other")],
            "the other queue's stay"
        );
    })
    .await;
}

async fn a_copy_failing_again_replaces_its_dead_letter(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        let store = bus.dead_letters().await;
        let placed = event("order.placed");
        for (error, attempts) in [("first failure", 5), ("second failure", 2)] {
            store
                .store("orders", DeadMessage::Event(&placed), error, attempts)
                .await
                .expect("storing");
        }
        store
            .store("audit", DeadMessage::Event(&placed), "audit failure", 1)
            .await
            .expect("storing");
        for _ in 0..2 {
            store
                .store(
                    "orders",
                    DeadMessage::Unreadable(b"garbage"),
                    "not an event",
                    1,
                )
                .await
                .expect("storing");
        }
        let orders = store.list(Some("orders"), 10).await.expect("listing");
        let events: Vec<_> = orders.iter().filter(|l| l.event_id.is_some()).collect();
        assert_eq!(
            events.len(),
            1,
            "one dead letter per event and queue: {orders:?}"
        );
        assert_eq!(
            (events[0].error.as_str(), events[0].attempts),
            ("second failure", 2)
        );
        assert_eq!(orders.len(), 3, "bodies that are no event are each kept");
        assert_eq!(
            store.list(Some("audit"), 10).await.expect("listing").len(),
            1
        );
    })
    .await;
}

/// One contract, two implementations: a service's dead letters managed in its process and
/// over HTTP (with a service credential) answer every operation alike, errors included.
async fn both_implementations_keep_one_contract(set: BackendSet) {
    on_bus(set, async |bus: &TestBus| {
        bus.declare(&[
            QueueSpec::new("orders", &["order.*"]),
            QueueSpec::new("orders.audit", &["order.*"]),
        ])
        .await;
        let store = bus.dead_letters().await;
        let key = TestKey::generate("orders");
        let admin_here = DeadLetterAdmin::new("orders", store.clone(), bus.bus());
        let router = deadletters::router(admin_here.clone(), key.verifier.clone());
        let over_http = DeadLettersOverHttp::new(
            serve_on_loopback(router, &key.service_key, "gateway", "orders").await,
        );
        let claims = |role| key.claims(Uuid::now_v7(), role);
        let (admin, customer) = (claims(Role::Admin), claims(Role::Customer));
        let implementations: [(&str, &dyn DeadLettersApi); 2] =
            [("in process", &admin_here), ("over HTTP", &over_http)];

        for (name, letters) in implementations {
            assert_eq!(letters.service(), "orders", "{name}");
            let placed = event("order.placed");
            let other = event("order.placed");
            store
                .store(
                    "orders",
                    DeadMessage::Event(&placed),
                    "the warehouse is offline",
                    5,
                )
                .await
                .expect("storing");
            store
                .store(
                    "orders.audit",
                    DeadMessage::Event(&other),
                    "audit failed",
                    1,
                )
                .await
                .expect("storing");
            store
                .store(
                    "orders",
                    DeadMessage::Unreadable(b"garbage"),
                    "not an event",
                    1,
                )
                .await
                .expect("storing");

            assert_eq!(
                code(letters.list(&customer, None, 50).await),
                ErrorCode::Forbidden,
                "{name}"
            );
            for first in [0, 501] {
                assert_eq!(
                    code(letters.list(&admin, None, first).await),
                    ErrorCode::BadUserInput,
                    "{name}: first {first}"
                );
            }
            let listed = letters.list(&admin, Some("orders"), 50).await.expect(name);
            assert_eq!(listed.len(), 2, "{name}: {listed:?}");
            let same = |letter: &deadletters::DeadLetter| {
                (
                    letter.id,
                    letter.queue.clone(),
                    letter.event_type.clone(),
                    letter.event_id.clone(),
                    letter.error.clone(),
                    letter.attempts,
                    letter.failed_at,
                    letter.payload.clone(),
                )
            };
            let stored = store.list(Some("orders"), 50).await.expect("listing");
            assert_eq!(
                listed.iter().map(same).collect::<Vec<_>>(),
                stored.iter().map(same).collect::<Vec<_>>(),
                "{name}: every field as stored"
            );
            let event_letter = listed
                .iter()
                .find(|l| l.event_id == Some(placed.id.to_string()))
                .expect("the event's dead letter");
            let garbage = listed
                .iter()
                .find(|l| l.event_id.is_none())
                .expect("the body that was no event");
            assert_eq!(garbage.payload, json!("garbage"), "{name}");

            assert_eq!(
                code(letters.replay(&customer, event_letter.id).await),
                ErrorCode::Forbidden,
                "{name}"
            );
            assert_eq!(
                code(letters.replay(&admin, garbage.id).await),
                ErrorCode::BadUserInput,
                "{name}: a body that was no event can only be discarded"
            );
            let depth = bus.depth("orders").await;
            letters.replay(&admin, event_letter.id).await.expect(name);
            assert_eq!(bus.depth("orders").await, depth + 1, "{name}: requeued");
            assert_eq!(
                code(letters.replay(&admin, event_letter.id).await),
                ErrorCode::NotFound,
                "{name}: replayed once"
            );
            assert_eq!(
                code(letters.discard(&customer, garbage.id).await),
                ErrorCode::Forbidden,
                "{name}"
            );
            letters.discard(&admin, garbage.id).await.expect(name);
            assert_eq!(
                code(letters.discard(&admin, garbage.id).await),
                ErrorCode::NotFound,
                "{name}: discarded once"
            );
            assert_eq!(
                code(letters.replay_all(&customer, None).await),
                ErrorCode::Forbidden,
                "{name}"
            );
            assert_eq!(
                letters
                    .replay_all(&admin, Some("orders"))
                    .await
                    .expect(name),
                0,
                "{name}: nothing left in orders"
            );
            assert_eq!(
                letters
                    .replay_all(&admin, Some("orders.audit"))
                    .await
                    .expect(name),
                1,
                "{name}: the named queue's"
            );
            assert!(
                letters.list(&admin, None, 50).await.expect(name).is_empty(),
                "{name}"
            );
        }
    })
    .await;
}

/// The code of an error expected.
fn code<T: std::fmt::Debug>(result: Result<T, ApiError>) -> ErrorCode {
    result.expect_err("an error").code()
}
