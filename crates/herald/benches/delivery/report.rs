//! The figures of one run: a Markdown table with each end-to-end rate as a ratio of the
//! slower raw limit of its backend set, the machine it ran on, and the results section of
//! docs/benchmarks.md rewritten from them.

use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use herald_test_support::BackendSet;

/// Where the run's results go in docs/benchmarks.md (everything between is replaced).
const BEGIN: &str = "<!-- delivery bench results: begin -->";
const END: &str = "<!-- delivery bench results: end -->";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// A backend's own ceiling, measured without Herald: the baseline of the ratios.
    Limit,
    /// A part of the path measured alone, to tell where the time goes.
    Part,
    /// Through Herald, from the order event to its notification.
    EndToEnd,
}

#[derive(Debug, Clone)]
pub struct Measurement {
    pub backend: BackendSet,
    pub name: String,
    pub kind: Kind,
    pub count: usize,
    pub elapsed: Duration,
    /// What else was seen while measuring.
    pub note: Option<String>,
}

impl Measurement {
    pub fn new(
        backend: BackendSet,
        kind: Kind,
        name: impl Into<String>,
        count: usize,
        elapsed: Duration,
    ) -> Measurement {
        Measurement {
            backend,
            name: name.into(),
            kind,
            count,
            elapsed,
            note: None,
        }
    }

    pub fn with_note(self, note: String) -> Measurement {
        Measurement {
            note: Some(note),
            ..self
        }
    }

    pub fn per_second(&self) -> f64 {
        self.count as f64 / self.elapsed.as_secs_f64().max(f64::EPSILON)
    }
}

/// Everything one run measured, with what it could not measure and why.
#[derive(Debug, Default)]
pub struct Report {
    pub measurements: Vec<Measurement>,
    pub notes: Vec<String>,
}

impl Report {
    /// The slower raw limit of `backend`, the baseline of its end-to-end ratios.
    fn baseline(&self, backend: BackendSet) -> Option<&Measurement> {
        self.measurements
            .iter()
            .filter(|m| m.backend == backend && m.kind == Kind::Limit)
            .min_by(|a, b| a.per_second().total_cmp(&b.per_second()))
    }

    fn ratio_cell(&self, measurement: &Measurement) -> String {
        let Some(baseline) = self.baseline(measurement.backend) else {
            return String::new();
        };
        if std::ptr::eq(measurement, baseline) {
            return "baseline".to_owned();
        }
        match measurement.kind {
            Kind::EndToEnd => {
                let ratio = measurement.per_second() / baseline.per_second();
                // Two decimals, or three below 0.1 so that a small ratio is not shown as 0.
                let decimals = if ratio < 0.1 { 3 } else { 2 };
                format!("**{ratio:.decimals$}**")
            }
            Kind::Limit | Kind::Part => String::new(),
        }
    }

    /// The results as a Markdown table, then the notes.
    pub fn table(&self) -> String {
        let mut out = String::from(
            "| backend | measurement | count | seconds | per second | end to end ÷ slower limit |\n\
             |---|---|--:|--:|--:|--:|\n",
        );
        for m in &self.measurements {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {} | {} |",
                backend_name(m.backend),
                m.name,
                thousands(m.count as f64),
                m.elapsed.as_secs_f64(),
                thousands(m.per_second()),
                self.ratio_cell(m),
            );
        }
        let seen = self.measurements.iter().filter_map(|m| {
            let note = m.note.as_ref()?;
            Some(format!("{} {}: {note}", backend_name(m.backend), m.name))
        });
        for note in seen.chain(self.notes.iter().cloned()) {
            let _ = write!(out, "\n- {note}");
        }
        out
    }

    /// The results section of docs/benchmarks.md: when, where, how, and the table.
    pub fn section(&self, command: &str) -> String {
        format!(
            "Measured {date} on {machine}, Herald at {revision}, with `{command}`.\n\n{table}\n",
            date = chrono::Utc::now().format("%Y-%m-%d %H:%M UTC"),
            machine = machine(),
            revision = revision(),
            table = self.table(),
        )
    }
}

pub fn backend_name(backend: BackendSet) -> &'static str {
    match backend {
        BackendSet::Embedded => "embedded",
        BackendSet::Real => "real",
        BackendSet::Kafka => "kafka",
    }
}

/// 12345.6 → "12,346".
pub fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value.max(0.0));
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

/// Cores, CPU, memory and compiler, as far as this machine tells.
fn machine() -> String {
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cpu = field(&cpuinfo, "model name").unwrap_or_else(|| "an unknown CPU".to_owned());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let memory = field(&meminfo, "MemTotal")
        .and_then(|kb| kb.trim_end_matches(" kB").trim().parse::<f64>().ok())
        .map_or_else(
            || "unknown memory".to_owned(),
            |kb| format!("{:.0} GiB", kb / 1024.0 / 1024.0),
        );
    let rustc = std::process::Command::new("rustc")
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map_or_else(|| "an unknown rustc".to_owned(), |v| v.trim().to_owned());
    format!("{cores} cores ({cpu}), {memory}, {rustc}")
}

/// The commit measured, and whether the tree had changes beyond it.
fn revision() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .ok()
            .filter(|out| out.status.success())
            .and_then(|out| String::from_utf8(out.stdout).ok())
    };
    let Some(commit) = git(&["rev-parse", "--short", "HEAD"]) else {
        return "an unknown commit".to_owned();
    };
    let dirty = git(&["status", "--porcelain"]).is_some_and(|changes| !changes.trim().is_empty());
    let changes = if dirty {
        " with uncommitted changes"
    } else {
        ""
    };
    format!("`{}`{changes}", commit.trim())
}

/// The value of the first `name: value` line of a /proc file.
fn field(text: &str, name: &str) -> Option<String> {
    text.lines()
        .filter_map(|line| line.split_once(':'))
        .find(|(key, _)| key.trim() == name)
        .map(|(_, value)| value.trim().to_owned())
}

/// Replaces the results section of the document at `path` with `section`.
pub fn update_doc(path: &Path, section: &str) -> anyhow::Result<()> {
    let doc =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let (head, rest) = doc
        .split_once(BEGIN)
        .with_context(|| format!("{} has no line {BEGIN}", path.display()))?;
    let (_, tail) = rest
        .split_once(END)
        .with_context(|| format!("{} has no line {END}", path.display()))?;
    let updated = format!("{head}{BEGIN}\n{section}{END}{tail}");
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
