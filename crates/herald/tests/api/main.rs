//! Black-box tests: Herald spawned on free ports, driven through its public API, on both
//! backend sets (see `herald_test_support::backend_tests!`). Each module lists its tests in
//! `CASES`; a test whose servers or programs are missing is reported as skipped, or fails in
//! CI.

#![allow(clippy::unwrap_used)]

mod abuse;
mod boundary;
mod browser_admin;
mod browser_customer;
mod cli;
mod clients;
mod commerce;
mod deadletters;
mod deployment;
mod edge;
mod email;
mod graphql_errors;
mod hammering;
mod import;
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

fn main() -> std::process::ExitCode {
    herald_test_support::run(&[
        abuse::CASES,
        boundary::CASES,
        browser_admin::CASES,
        browser_customer::CASES,
        cli::CASES,
        clients::CASES,
        commerce::CASES,
        deadletters::CASES,
        deployment::CASES,
        edge::CASES,
        email::CASES,
        graphql_errors::CASES,
        hammering::CASES,
        import::CASES,
        lanes::CASES,
        live::CASES,
        metrics::CASES,
        notifications::CASES,
        operations::CASES,
        processes::CASES,
        recommendations::CASES,
        scheduler::CASES,
        seed::CASES,
        sessions::CASES,
        sockets::CASES,
        users::CASES,
    ])
}
