//! The binary's own behaviour: help, and bad settings stopping start-up with one clear line.

use std::process::{Command, Output};

use herald_test_support::backend_tests;

backend_tests!(
    blocking: help_explains_serve_and_migrate,
    bad_settings_name_the_setting_in_one_line,
    a_port_in_use_is_named,
    services_in_separate_processes_need_one_service_key,
    migrate_prepares_the_embedded_storage,
    keygen_makes_a_key_serve_accepts
);

fn herald(args: &[&str], env: &[(&str, &str)]) -> Output {
    let dir = tempfile::tempdir().unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_herald"));
    command.args(args).env("HERALD_DATA_DIR", dir.path());
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("running herald")
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn help_explains_serve_and_migrate() {
    let output = herald(&["--help"], &[]);
    assert!(output.status.success());
    let text = String::from_utf8_lossy(&output.stdout);
    for word in ["serve", "migrate", "HERALD_DATA_DIR", "--config"] {
        assert!(text.contains(word), "--help should mention {word}:\n{text}");
    }
}

fn bad_settings_name_the_setting_in_one_line() {
    let cases: &[(&[(&str, &str)], &str)] = &[
        (
            &[("HERALD_DATABASE_URL", "mysql://localhost/db")],
            "HERALD_DATABASE_URL",
        ),
        (&[("HERALD_AMQP_URL", "not a url")], "HERALD_AMQP_URL"),
        (
            &[("HERALD_REDIS_URL", "http://localhost")],
            "HERALD_REDIS_URL",
        ),
        (&[("HERALD_LOG_FORMAT", "xml")], "HERALD_LOG_FORMAT"),
        (&[("HERALD_GATEWAY_ADDR", "nowhere")], "HERALD_GATEWAY_ADDR"),
        (
            &[("HERALD_ADMIN_EMAIL", "admin@example.com")],
            "HERALD_ADMIN_PASSWORD",
        ),
    ];
    for (env, setting) in cases {
        let output = herald(&["serve"], env);
        let err = stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{setting}: {err}");
        assert_eq!(err.lines().count(), 1, "one line, no backtrace: {err}");
        assert!(
            err.starts_with("error: invalid ") && err.contains(setting),
            "{err}"
        );
    }
}

fn a_port_in_use_is_named() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let output = herald(
        &["serve", "gateway"],
        &[
            ("HERALD_GATEWAY_ADDR", addr.as_str()),
            ("HERALD_LOG_FORMAT", "json"),
            ("HERALD_SERVICE_KEY", &service_key()),
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    let last = err.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("error: invalid HERALD_GATEWAY_ADDR") && last.contains(&addr),
        "{err}"
    );
}

/// `herald keygen --service`'s output.
fn service_key() -> String {
    let output = herald(&["keygen", "--service"], &[]);
    assert!(output.status.success(), "{}", stderr(&output));
    String::from_utf8_lossy(&output.stdout).trim().to_owned()
}

fn services_in_separate_processes_need_one_service_key() {
    // Without a key, a process of some services cannot be trusted by the others.
    let output = herald(&["serve", "products"], &[("HERALD_LOG_FORMAT", "json")]);
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.lines()
            .last()
            .is_some_and(|l| l.starts_with("error: invalid HERALD_SERVICE_KEY")),
        "{err}"
    );
    // A key too short is named as well.
    let output = herald(
        &["serve", "products"],
        &[
            ("HERALD_SERVICE_KEY", "c2hvcnQ="),
            ("HERALD_LOG_FORMAT", "json"),
        ],
    );
    let err = stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{err}");
    assert!(
        err.contains("HERALD_SERVICE_KEY") && err.contains("at least 32"),
        "{err}"
    );
    assert_eq!(service_key().len(), 44);
}

fn migrate_prepares_the_embedded_storage() {
    let dir = tempfile::tempdir().unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_herald"))
        .args(["migrate", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    for file in ["users.sqlite", "notifications.sqlite", "bus.sqlite"] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
}

fn keygen_makes_a_key_serve_accepts() {
    let output = herald(&["keygen"], &[]);
    assert!(output.status.success());
    let key = String::from_utf8(output.stdout).unwrap();
    let bad = herald(&["serve"], &[("HERALD_SIGNING_KEY", "bm90IGEga2V5")]);
    assert_eq!(bad.status.code(), Some(2));
    assert!(
        stderr(&bad).contains("HERALD_SIGNING_KEY"),
        "{}",
        stderr(&bad)
    );
    assert!(key.trim().len() > 40);
}
