//! Replicas of a service that start together on a new schema each prepare its storage (the
//! message tables), and none fails for the other doing the same.

use herald_platform::backend_tests;
use herald_platform::db::{Database, Migrations};
use herald_platform::testing::{drop_schema, real_backends, unique_prefix};
use sqlx::migrate::Migrator;

backend_tests!(real only: replicas_prepare_a_new_schema_at_once);

async fn replicas_prepare_a_new_schema_at_once() {
    let real = real_backends().expect("real backends");
    let none = Migrations {
        sqlite: Migrator::DEFAULT,
        postgres: Migrator::DEFAULT,
    };
    // The race is lost now and then: a few new schemas, three replicas each.
    for _ in 0..8 {
        let schema = format!("{}_replicas", unique_prefix());
        let mut replicas = Vec::new();
        for _ in 0..3 {
            replicas.push(
                Database::connect_postgres(&real.database_url, &schema, 4)
                    .await
                    .expect("connecting"),
            );
        }
        let prepared = futures::future::join_all(
            replicas
                .iter()
                .map(|db| herald_platform::service::prepare_storage(db, &none)),
        )
        .await;
        let (first, others) = replicas.split_first().unwrap();
        for db in others {
            db.close().await;
        }
        drop_schema(first).await;
        for result in prepared {
            result.expect("each replica prepares the schema");
        }
    }
}
