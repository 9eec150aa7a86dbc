//! One conformance suite for the bus and cache backends: every scenario runs on the embedded
//! set and, when the servers are reachable, on RabbitMQ, PostgreSQL and Redis.

mod bulk;
mod bus_batches;
mod bus_delivery;
mod bus_failures;
mod cache;
mod dead_letters;
mod supervision;
mod support;
mod throughput;
