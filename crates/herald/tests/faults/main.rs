//! Fault tests: the real servers misbehave under load and nothing is lost or duplicated.
//!
//! They restart shared servers, so they run in their own pass, one at a time, after the
//! rest of the suite (`cargo nextest run --workspace --all-features --profile faults`).

#![allow(clippy::unwrap_used)]

mod broker_restart;
mod consumer_crash;

fn main() -> std::process::ExitCode {
    herald_test_support::run(&[broker_restart::CASES, consumer_crash::CASES])
}
