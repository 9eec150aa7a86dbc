//! Black-box tests: Herald spawned on free ports, driven through its public API, on both
//! backend sets (see `herald_test_support::backend_tests!`).

#![allow(clippy::unwrap_used)]

mod abuse;
mod boundary;
mod cli;
mod clients;
mod commerce;
mod deadletters;
mod edge;
mod email;
mod graphql_errors;
mod hammering;
mod lanes;
mod live;
mod metrics;
mod notifications;
mod operations;
mod processes;
mod recommendations;
mod scheduler;
mod seed;
mod sessions;
mod sockets;
mod users;
