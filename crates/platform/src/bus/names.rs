//! What the brokers call things: every name a bus gives a queue and what goes with it
//! starts with the bus prefix (`HERALD_BUS_PREFIX`), so that several Herald installations
//! (or tests) share one broker.

#[derive(Debug, Clone)]
pub(crate) struct Names {
    pub prefix: String,
}

impl Names {
    pub fn new(prefix: &str) -> Names {
        Names {
            prefix: prefix.to_owned(),
        }
    }

    /// A queue: RabbitMQ's queue, Kafka's topic and the consumer group that reads it.
    pub fn queue(&self, name: &str) -> String {
        format!("{}.{name}", self.prefix)
    }

    /// Where a message waits after its `level`-th failed attempt.
    pub fn retry_level(&self, name: &str, level: u32) -> String {
        format!("{}.{name}.retry.{level}", self.prefix)
    }

    /// RabbitMQ: the topic exchange every event is published to.
    pub fn exchange(&self) -> String {
        format!("{}.events", self.prefix)
    }

    /// RabbitMQ: the single delay queue of earlier releases (deleted with the topology).
    pub fn legacy_retry_queue(&self, name: &str) -> String {
        format!("{}.{name}.retry", self.prefix)
    }

    /// Kafka: the compacted topic of every queue's bindings.
    pub fn bindings(&self) -> String {
        format!("{}.bindings", self.prefix)
    }
}
