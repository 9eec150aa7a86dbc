//! A Kafka-protocol broker of one test's own: tansu on a free port, its data in a SQLite
//! file of the test's, so that the test can stop it and start it again with nothing lost.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use herald_platform::testing::harness::{Need, program_missing};

/// tansu, built with its `libsql` feature (`.ci/kafka` builds it and puts it on `PATH`).
pub const TANSU: Need = Need {
    name: "tansu",
    missing: || program_missing("tansu"),
};

pub struct OwnBroker {
    dir: tempfile::TempDir,
    port: u16,
    child: Option<Child>,
}

impl OwnBroker {
    /// Starts a broker and waits until it takes connections.
    pub async fn start() -> OwnBroker {
        let dir = tempfile::tempdir().expect("a directory for the broker's data");
        let port = crate::cluster::free_port();
        let mut broker = OwnBroker {
            dir,
            port,
            child: None,
        };
        broker.start_again().await;
        broker
    }

    /// `host:port` for `HERALD_KAFKA_BROKERS`.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn log(&self) -> PathBuf {
        self.dir.path().join("broker.log")
    }

    /// Kills the broker (SIGKILL: whatever it had not written is gone, as in a crash).
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the broker on its port and data; waits until it takes connections.
    pub async fn start_again(&mut self) {
        assert!(self.child.is_none(), "the broker is running");
        let listener = format!("tcp://127.0.0.1:{}", self.port);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log())
            .expect("the broker's log file");
        let child = Command::new("tansu")
            .current_dir(self.dir.path())
            .args(["broker", "--listener-url", &listener])
            .args(["--advertised-listener-url", &listener])
            .args(["--storage-engine", "sqlite://tansu.db"])
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while tokio::net::TcpStream::connect(("127.0.0.1", self.port))
            .await
            .is_err()
        {
            assert!(
                Instant::now() < deadline,
                "tansu did not take connections within 30 s: {}",
                std::fs::read_to_string(self.log()).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for OwnBroker {
    fn drop(&mut self) {
        self.kill();
    }
}
