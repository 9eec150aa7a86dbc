//! Which backend sets a benchmark runs on (`--backend embedded|real|both`).

use clap::ValueEnum;
use herald_test_support::BackendSet;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Backends {
    Embedded,
    Real,
    Both,
}

impl Backends {
    /// The sets to run, embedded first.
    pub fn sets(self) -> Vec<BackendSet> {
        match self {
            Backends::Embedded => vec![BackendSet::Embedded],
            Backends::Real => vec![BackendSet::Real],
            Backends::Both => vec![BackendSet::Embedded, BackendSet::Real],
        }
    }
}
