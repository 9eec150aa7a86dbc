//! Four clients send the edge's attacks as fast as they are answered for 30 s; meanwhile
//! `/health` keeps answering in under 100 ms. It runs in the one-at-a-time pass (profile
//! `faults`): latency is only worth measuring on a machine the rest of the suite is not
//! loading.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use herald_test_support::{BackendSet, TestApp, backend_tests};
use serde_json::json;

use crate::edge::hostile_queries;

backend_tests!(every bus: health_answers_quickly_while_four_clients_attack);

const ATTACKERS: usize = 4;
const ATTACK: Duration = Duration::from_secs(30);
const HEALTHY: Duration = Duration::from_millis(100);

async fn health_answers_quickly_while_four_clients_attack(set: BackendSet) {
    let app = TestApp::spawn(set).await;
    let gateway = app.gateway.clone();
    // Bodies over the limit are refused before they are read, and the connection with
    // them: those are no work for the gateway, and no answer a client could wait for.
    let mut bodies: Vec<String> = hostile_queries()
        .into_iter()
        .map(|(_, query)| json!({ "query": query }).to_string())
        .filter(|body| body.len() <= app.settings.max_body_bytes)
        .collect();
    let aliases: String = (0..600)
        .map(|i| format!("p{i}: products(first: 100) {{ totalCount }} "))
        .collect();
    bodies.push(json!({ "query": format!("{{ {aliases} }}") }).to_string());
    let bodies = Arc::new(bodies);

    // The attackers and the prober run on threads and runtimes of their own, so that
    // what is measured is the gateway, not the test's scheduling.
    let stop = Arc::new(AtomicBool::new(false));
    let sent = Arc::new(AtomicU64::new(0));
    let attackers: Vec<_> = (0..ATTACKERS)
        .map(|n| {
            let (gateway, bodies, stop, sent) =
                (gateway.clone(), bodies.clone(), stop.clone(), sent.clone());
            std::thread::spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap();
                runtime.block_on(async move {
                    let http = reqwest::Client::new();
                    let mut i = n;
                    while !stop.load(Ordering::Relaxed) {
                        let body = bodies[i % bodies.len()].clone();
                        i += 1;
                        let answer = http
                            .post(format!("{gateway}/graphql"))
                            .header("content-type", "application/json")
                            .body(body)
                            .send()
                            .await
                            .expect("the gateway stays up");
                        assert!(answer.status().as_u16() < 500, "{}", answer.status());
                        sent.fetch_add(1, Ordering::Relaxed);
                    }
                });
            })
        })
        .collect();

    let prober = {
        let gateway = gateway.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            runtime.block_on(async move {
                let http = reqwest::Client::new();
                let started = Instant::now();
                let mut slowest = Duration::ZERO;
                let mut probes = 0;
                while started.elapsed() < ATTACK {
                    let asked = Instant::now();
                    let answer = http
                        .get(format!("{gateway}/health"))
                        .timeout(Duration::from_secs(5))
                        .send()
                        .await
                        .expect("/health answers");
                    assert_eq!(answer.status(), 200);
                    slowest = slowest.max(asked.elapsed());
                    probes += 1;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                (slowest, probes)
            })
        })
    };
    let (slowest, probes) = tokio::task::spawn_blocking(move || prober.join().unwrap())
        .await
        .unwrap();
    stop.store(true, Ordering::Relaxed);
    for attacker in attackers {
        tokio::task::spawn_blocking(move || attacker.join().unwrap())
            .await
            .unwrap();
    }
    let sent = sent.load(Ordering::Relaxed);
    eprintln!("[{set:?}] {sent} attacks answered; /health: {probes} probes, slowest {slowest:?}");
    assert!(sent > 100, "[{set:?}] only {sent} attacks were answered");
    assert!(
        slowest < HEALTHY,
        "[{set:?}] /health took {slowest:?} at worst while {ATTACKERS} clients attacked"
    );
    app.cleanup().await;
}
