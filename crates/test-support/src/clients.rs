//! Clients nobody here wrote, driven from the tests: the npm `graphql-ws` client,
//! graphql-js introspection and GraphiQL in Debian's Chromium (through `playwright-core`).
//! Their scripts live in `crates/test-support/js`; the first test that needs them installs
//! them there (`npm ci`, pinned by the lock file). Without Node.js or Chromium these tests
//! are skipped with a message, except under `CI=true`, where they fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

/// Where Debian installs Chromium.
pub const CHROMIUM: &str = "/usr/bin/chromium";

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true")
}

/// Skips (None) outside CI, fails in CI.
fn missing(what: &str) -> Option<PathBuf> {
    if in_ci() {
        panic!("CI=true but {what}: the client tests must run in CI");
    }
    eprintln!("skipping: {what}");
    None
}

/// The scripts' folder with their packages installed, or None (skipped) without npm.
pub fn scripts() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("js");
    let installed = dir.join("node_modules/.package-lock.json");
    if installed.exists() {
        return Some(dir);
    }
    if std::process::Command::new("npm")
        .arg("--version")
        .output()
        .is_err()
    {
        return missing("npm is not installed");
    }
    // One test installs; the others (other processes) wait for it.
    let lock = dir.join(".installing");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if installed.exists() {
            return Some(dir);
        }
        match std::fs::create_dir(&lock) {
            Ok(()) => break,
            Err(_) if stale(&lock) => {
                let _ = std::fs::remove_dir(&lock);
            }
            Err(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(200)),
            Err(e) => panic!(
                "waiting for another test's npm ci in {}: {e}",
                dir.display()
            ),
        }
    }
    let status = std::process::Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--loglevel=error"])
        .current_dir(&dir)
        .status();
    let _ = std::fs::remove_dir(&lock);
    match status {
        Ok(status) if status.success() => Some(dir),
        Ok(status) => panic!("npm ci in {} failed: {status}", dir.display()),
        Err(e) => panic!("running npm ci in {}: {e}", dir.display()),
    }
}

/// A lock left by an install that died.
fn stale(lock: &Path) -> bool {
    std::fs::metadata(lock)
        .and_then(|m| m.modified())
        .ok()
        .and_then(|modified| SystemTime::now().duration_since(modified).ok())
        .is_some_and(|age| age > Duration::from_secs(300))
}

/// Debian's Chromium, or None (skipped) where it is not installed.
pub fn chromium() -> Option<PathBuf> {
    let path = PathBuf::from(CHROMIUM);
    if path.exists() {
        Some(path)
    } else {
        missing("Chromium is not installed (apt-get install chromium)")
    }
}

/// A running script that prints one JSON event per line.
pub struct Script {
    child: Child,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Script {
    /// Runs `node {name}` with `options` as its one argument; None when skipped.
    pub fn start(name: &str, options: &Value) -> Option<Script> {
        let dir = scripts()?;
        let mut child = Command::new("node")
            .arg(dir.join(name))
            .arg(options.to_string())
            .current_dir(&dir)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        Some(Script {
            child,
            lines: BufReader::new(stdout).lines(),
        })
    }

    /// The next event, or a panic after `wait`.
    pub async fn next_event(&mut self, wait: Duration) -> Value {
        let line = tokio::time::timeout(wait, self.lines.next_line())
            .await
            .unwrap_or_else(|_| panic!("no event from the script within {wait:?}"))
            .expect("reading the script's output")
            .expect("the script ended before its next event");
        serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("not JSON from the script: {line}: {e}"))
    }

    /// Every event until the script exits.
    pub async fn rest(mut self, wait: Duration) -> Vec<Value> {
        let mut events = Vec::new();
        let deadline = tokio::time::Instant::now() + wait;
        while let Ok(Ok(Some(line))) =
            tokio::time::timeout_at(deadline, self.lines.next_line()).await
        {
            events.push(serde_json::from_str(&line).unwrap_or(Value::String(line)));
        }
        let _ = self.child.kill().await;
        events
    }
}
