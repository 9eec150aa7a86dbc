//! The outbox relay's report: how long the oldest event not yet published has waited.

use std::time::Duration;

use herald_platform::backend_tests;
use herald_platform::bus::QueueSpec;
use herald_platform::outbox::Outbox;
use herald_platform::testing::BackendSet;

use crate::support::{event, on_bus};

backend_tests!(
every bus: the_outbox_says_how_old_its_oldest_unpublished_event_is);

async fn the_outbox_says_how_old_its_oldest_unpublished_event_is(set: BackendSet) {
    on_bus(set, async |bus| {
        bus.declare(&[QueueSpec::new("relayed", &["order.*"])])
            .await;
        let db = bus.database().await;
        let outbox = Outbox::new(db.clone());
        assert_eq!(outbox.oldest_age().await.unwrap(), Duration::ZERO);

        let mut tx = db.begin().await.unwrap();
        outbox.add(&mut tx, &event("order.placed")).await.unwrap();
        outbox.commit(tx).await.unwrap();
        // Time passes while the bus is not asked to take it.
        tokio::time::sleep(Duration::from_millis(50)).await;
        let waited = outbox.oldest_age().await.unwrap();
        assert!(waited >= Duration::from_millis(50), "{waited:?}");

        assert_eq!(outbox.relay_batch(&bus.bus()).await.unwrap(), 1);
        assert_eq!(outbox.oldest_age().await.unwrap(), Duration::ZERO);
        assert_eq!(bus.depth("relayed").await, 1);
    })
    .await;
}
