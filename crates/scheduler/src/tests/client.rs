//! One contract, two implementations: the scheduler called in process and the scheduler
//! called over HTTP (with a service credential) answer every operation alike, errors
//! included.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use chrono::Utc;
use herald_events::Role;
use herald_platform::ErrorCode;
use herald_platform::auth::Claims;
use herald_platform::backend_tests;
use herald_platform::http::{Readiness, service_router};
use herald_platform::outbox::Outbox;
use herald_platform::testing::serve_on_loopback;
use herald_platform::testing::{
    BackendSet, TestKey, drop_schema, isolated_settings, migrated_database,
};
use uuid::Uuid;

use crate::api::{SchedulerState, router};
use crate::client::{RunsQuery, SchedulerApi, SchedulerOverHttp};
use crate::{SERVICE, Scheduler, migrations, store};

backend_tests!(both_implementations_keep_one_contract);

/// The scheduler directly, and the same scheduler's routes on a loopback port.
async fn implementations(
    scheduler: &Scheduler,
    key: &TestKey,
) -> Vec<(&'static str, Arc<dyn SchedulerApi>)> {
    let state = SchedulerState {
        scheduler: scheduler.clone(),
        verifier: key.verifier.clone(),
    };
    let routes = service_router(SERVICE, router(state), Readiness::default());
    let client = serve_on_loopback(routes, &key.service_key, "gateway", SERVICE).await;
    vec![
        ("in process", Arc::new(scheduler.clone())),
        ("over HTTP", Arc::new(SchedulerOverHttp::new(client))),
    ]
}

fn acting(key: &TestKey, role: Role) -> Claims {
    key.verifier
        .verify(&key.user_token(Uuid::now_v7(), role))
        .unwrap()
}

fn first(first: Option<i64>) -> RunsQuery {
    RunsQuery { first }
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let dir = tempfile::tempdir().unwrap();
    let settings = isolated_settings(set, dir.path());
    let db = migrated_database(&settings, SERVICE, &migrations()).await;
    let hourly = "0 * * * *".parse().unwrap();
    store::sync_jobs(
        &db,
        &[("promotions", Some(hourly)), ("order-checks", None)],
        Utc::now(),
    )
    .await
    .unwrap();
    let scheduler = Scheduler {
        db: db.clone(),
        outbox: Outbox::new(db.clone()),
        runner: "contract".to_owned(),
    };
    let key = TestKey::generate(SERVICE);
    for (how, jobs) in implementations(&scheduler, &key).await {
        let admin = acting(&key, Role::Admin);
        let customer = acting(&key, Role::Customer);

        // Every job by name, a switched-off one without a schedule.
        let listed = jobs.jobs(&admin).await.unwrap();
        let names: Vec<&str> = listed.iter().map(|job| job.name.as_str()).collect();
        assert_eq!(names, ["order-checks", "promotions"], "{how}");
        assert!(!listed[0].enabled && listed[0].schedule.is_empty(), "{how}");
        assert!(
            listed[1].enabled && listed[1].next_run_at.is_some(),
            "{how}"
        );

        // Run by hand: running until its service answers, first among its runs.
        let run = jobs.run_job(&admin, "promotions").await.unwrap();
        let promotions = jobs.jobs(&admin).await.unwrap().remove(1);
        assert_eq!(promotions.last_outcome.as_deref(), Some("running"), "{how}");
        let runs = jobs.runs(&admin, "promotions", &first(None)).await.unwrap();
        assert_eq!(runs[0].id, run.run_id, "{how}");
        assert!(runs[0].manual, "{how}");
        let one = jobs
            .runs(&admin, "promotions", &first(Some(1)))
            .await
            .unwrap();
        assert_eq!(one, runs[..1], "{how}");

        // Unknown jobs (whatever their name) are NOT_FOUND; bad pages BAD_USER_INPUT.
        for name in ["nope", "no such/job?"] {
            let error = jobs.run_job(&admin, name).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
            let error = jobs.runs(&admin, name, &first(None)).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
        }
        for bad in [0, -1, 501] {
            let error = jobs
                .runs(&admin, "promotions", &first(Some(bad)))
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        }

        // Admins only.
        for error in [
            jobs.jobs(&customer).await.unwrap_err(),
            jobs.run_job(&customer, "promotions").await.unwrap_err(),
            jobs.runs(&customer, "promotions", &first(None))
                .await
                .unwrap_err(),
        ] {
            assert_eq!(error.code(), ErrorCode::Forbidden, "{how}: {error}");
        }
    }
    drop_schema(&db).await;
}
