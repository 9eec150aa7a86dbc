//! The recommendations service's tests over real storage (`src/tests`), each on the embedded backends
//! and on the real servers: skipped when the servers are down, failing then in CI.

fn main() -> std::process::ExitCode {
    herald_platform::testing::harness::run(herald_recommendations::tests::CASES)
}
