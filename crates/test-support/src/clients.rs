//! Clients nobody here wrote, driven from the tests: the npm `graphql-ws` client,
//! graphql-js introspection and GraphiQL in Debian's Chromium (through `playwright-core`).
//! Their scripts live in `crates/test-support/js`; the first test that needs them installs
//! them there (`npm ci`, pinned by the lock file). The tests that drive them need [`NODE`]
//! (and [`CHROMIUM`]): without them they are skipped, except in CI, where they fail.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant, SystemTime};

use herald_platform::testing::harness::{Need, program_missing};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// Where Debian installs Chromium.
pub const CHROMIUM_PATH: &str = "/usr/bin/chromium";

/// Node.js, and npm to install the scripts' packages unless they are.
pub const NODE: Need = Need {
    name: "Node.js",
    missing: node_missing,
};

/// Debian's Chromium.
pub const CHROMIUM: Need = Need {
    name: "Chromium",
    missing: chromium_missing,
};

fn node_missing() -> Option<String> {
    program_missing("node").or_else(|| {
        if installed(&scripts_dir()) {
            None
        } else {
            program_missing("npm")
        }
    })
}

fn chromium_missing() -> Option<String> {
    (!Path::new(CHROMIUM_PATH).exists())
        .then(|| "Chromium is not installed (apt-get install chromium)".to_owned())
}

fn scripts_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("js")
}

fn installed(dir: &Path) -> bool {
    dir.join("node_modules/.package-lock.json").exists()
}

/// The scripts' folder with their packages installed (by `npm ci` if need be).
pub fn scripts() -> PathBuf {
    let dir = scripts_dir();
    if installed(&dir) {
        return dir;
    }
    // One test installs; the others (other processes) wait for it.
    let lock = dir.join(".installing");
    let deadline = Instant::now() + Duration::from_secs(300);
    loop {
        if installed(&dir) {
            return dir;
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
        Ok(status) if status.success() => dir,
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

/// Debian's Chromium (a test that calls this needs [`CHROMIUM`]).
pub fn chromium() -> PathBuf {
    let path = PathBuf::from(CHROMIUM_PATH);
    assert!(
        path.exists(),
        "Chromium is not installed at {CHROMIUM_PATH}"
    );
    path
}

/// A running script that prints one JSON event per line (and may wait for a line from the
/// test, [`Script::say`]).
pub struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Lines<BufReader<ChildStdout>>,
}

impl Script {
    /// Runs `node {name}` with `options` as its one argument (a test that calls this needs
    /// [`NODE`]).
    pub fn start(name: &str, options: &Value) -> Script {
        let dir = scripts();
        let mut child = Command::new("node")
            .arg(dir.join(name))
            .arg(options.to_string())
            .current_dir(&dir)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting node {name}: {e}"));
        let stdout = child.stdout.take().expect("piped stdout");
        let stdin = child.stdin.take();
        Script {
            child,
            stdin,
            lines: BufReader::new(stdout).lines(),
        }
    }

    /// Tells the script `line` (on its stdin): the test did what the script waits for.
    pub async fn say(&mut self, line: &str) {
        let stdin = self.stdin.as_mut().expect("the script's stdin");
        stdin
            .write_all(format!("{line}\n").as_bytes())
            .await
            .expect("writing to the script");
        stdin.flush().await.expect("writing to the script");
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
