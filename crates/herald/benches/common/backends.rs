//! Which backend sets a benchmark runs on (`--backend embedded|real|kafka|both|all`).

use clap::ValueEnum;
use herald_test_support::BackendSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backends {
    Embedded,
    Real,
    /// The real servers with Kafka as the bus.
    Kafka,
    /// Embedded and real.
    Both,
    /// Embedded, real and Kafka.
    All,
}

impl Backends {
    /// The sets to run, embedded first.
    pub fn sets(self) -> Vec<BackendSet> {
        match self {
            Backends::Embedded => vec![BackendSet::Embedded],
            Backends::Real => vec![BackendSet::Real],
            Backends::Kafka => vec![BackendSet::Kafka],
            Backends::Both => vec![BackendSet::Embedded, BackendSet::Real],
            Backends::All => vec![BackendSet::Embedded, BackendSet::Real, BackendSet::Kafka],
        }
    }
}
