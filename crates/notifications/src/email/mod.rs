//! The email channel: users who accept EMAIL get an email for each notification they would
//! get in-app. The decision queues a row in the email outbox in its own transaction
//! ([`store::queue_email`]); the [`worker::EmailWorker`] renders and sends it when due,
//! retries failures with backoff and dead-letters the last one.

pub mod render;
pub mod store;
pub mod worker;

use std::sync::Arc;

use tokio::sync::Notify;

/// Wakes the email worker when emails were queued, instead of waiting for its next poll.
#[derive(Clone, Debug, Default)]
pub struct EmailQueue {
    wake: Arc<Notify>,
}

impl EmailQueue {
    pub fn queued(&self) {
        self.wake.notify_one();
    }

    pub(crate) async fn wait(&self) {
        self.wake.notified().await;
    }
}
