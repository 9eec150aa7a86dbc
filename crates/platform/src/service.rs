//! What a service is to the code that runs or looks after all of them (`herald serve`,
//! `migrate`, `dlq`, the tests' cleanup): its name, its storage and its metrics. Each
//! service crate describes itself once (`DESCRIPTOR`); the list of them lives in one place
//! (`herald::ServiceName`).

use std::sync::Arc;

use anyhow::Context;
use axum::Router;
use axum::extract::FromRef;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::Settings;
use crate::auth::TokenVerifier;
use crate::bus::{Bus, ConsumerOptions, EventHandler};
use crate::cache::Cache;
use crate::db::{Database, Migrations};
use crate::deadletters::{self, DeadLetterAdmin, DeadLetters};
use crate::http::{BuiltService, ConnectionLimits, ErrorShape, Readiness, service_router};
use crate::outbox::Outbox;
use crate::telemetry::MetricDoc;

#[derive(Debug)]
pub struct ServiceDescriptor {
    pub name: &'static str,
    /// Its own tables (and so its outbox, inbox and dead letters), if it keeps any: every
    /// service but the gateway.
    pub migrations: Option<fn() -> Migrations>,
    /// The metric families it records, described on `/metrics`.
    pub metrics: &'static [MetricDoc],
}

impl ServiceDescriptor {
    /// Its storage, migrated; `None` for a service that keeps none.
    pub async fn open_database(&self, settings: &Settings) -> anyhow::Result<Option<Database>> {
        match self.migrations {
            Some(migrations) => Ok(Some(
                open_storage(settings, self.name, &migrations()).await?,
            )),
            None => Ok(None),
        }
    }

    /// The PostgreSQL schema its tables live in under `settings`, if it keeps any.
    pub fn schema(&self, settings: &Settings) -> Option<String> {
        self.migrations
            .map(|_| Database::schema_name(settings, self.name))
    }
}

/// The storage of service `name` as the settings say: connected, its migrations applied and
/// the tables every consuming and publishing service keeps (outbox, inbox, dead letters)
/// in place.
pub async fn open_storage(
    settings: &Settings,
    name: &str,
    migrations: &Migrations,
) -> anyhow::Result<Database> {
    let db = Database::connect(settings, name).await?;
    prepare_storage(&db, migrations).await?;
    Ok(db)
}

/// Brings `db` up to date: `migrations`, then the message tables. Running it again changes
/// nothing.
pub async fn prepare_storage(db: &Database, migrations: &Migrations) -> anyhow::Result<()> {
    // Migrations take a lock of their own (sqlx's).
    db.migrate(migrations).await?;
    // Replicas starting together on a new schema would race to create the message tables,
    // and PostgreSQL's CREATE TABLE IF NOT EXISTS fails the loser on a duplicate key of its
    // catalog: one process at a time creates them, holding a lock named after the schema
    // for as long as a transaction on a connection of its own (so a pool needs two).
    let lockable = db.pool().options().get_max_connections() > 1;
    let Some(schema) = db.schema().filter(|_| lockable) else {
        return crate::outbox::create_tables(db).await;
    };
    let mut lock = db.pool().begin().await.context("locking the schema")?;
    sqlx::query("SELECT 1 AS locked FROM pg_advisory_xact_lock(hashtext($1))")
        .bind(format!("herald storage {schema}"))
        .execute(&mut *lock)
        .await
        .context("locking the schema")?;
    crate::outbox::create_tables(db).await?;
    lock.commit().await.context("unlocking the schema")?;
    Ok(())
}

/// What every service with storage is made of, put together in one place: its database
/// (migrated, with the message tables), its outbox and the relay that publishes it, its
/// consumers (a message they give up on becomes a dead letter in that database), its
/// readiness, and the admins' dead-letter routes next to its API. A service's `build`
/// opens its parts, adds its consumers and tasks, and finishes them with its API.
pub struct ServiceParts {
    name: &'static str,
    pub db: Database,
    pub outbox: Outbox,
    bus: Bus,
    retries: ConsumerOptions,
    shutdown: CancellationToken,
    readiness: Readiness,
    tasks: Vec<JoinHandle<()>>,
}

impl ServiceParts {
    /// Opens the storage of `service` (which must keep some) on `bus`; its tasks stop
    /// with `shutdown`.
    pub async fn open(
        service: &ServiceDescriptor,
        settings: &Settings,
        bus: &Bus,
        shutdown: CancellationToken,
    ) -> anyhow::Result<ServiceParts> {
        let db = service
            .open_database(settings)
            .await?
            .with_context(|| format!("the {} service keeps no storage", service.name))?;
        Ok(ServiceParts {
            name: service.name,
            outbox: Outbox::new(db.clone()),
            readiness: Readiness::default()
                .database(&format!("{}_database", service.name), &db)
                .bus(bus),
            db,
            bus: bus.clone(),
            retries: ConsumerOptions::from_settings(settings),
            shutdown,
            tasks: Vec::new(),
        })
    }

    /// The service's dead letters (where its consumers put what they give up on).
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters::new(self.db.clone())
    }

    /// Cancelled when the service is to stop: for tasks of its own.
    pub fn shutdown(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// The retries of the settings (`HERALD_BUS_*`).
    pub fn retries(&self) -> ConsumerOptions {
        self.retries.clone()
    }

    /// Consumes `queue` with `handler`, retrying as the settings say.
    pub fn consume(&mut self, queue: &str, handler: Arc<dyn EventHandler>) {
        self.consume_with(queue, handler, self.retries.clone());
    }

    /// Consumes `queue` with `handler` on `options` of its own.
    pub fn consume_with(
        &mut self,
        queue: &str,
        handler: Arc<dyn EventHandler>,
        options: ConsumerOptions,
    ) {
        let consuming = self.bus.spawn_consumer(
            queue,
            handler,
            options,
            Arc::new(self.dead_letters()),
            self.shutdown.clone(),
        );
        self.tasks.push(consuming);
    }

    /// A task of the service's own, run until the shutdown.
    pub fn run(&mut self, task: JoinHandle<()>) {
        self.tasks.push(task);
    }

    /// The service is ready only while `cache` answers too.
    pub fn needs_cache(&mut self, cache: &Cache) {
        self.readiness = self.readiness.clone().cache(cache);
    }

    /// The service: `api` with the dead-letter routes (checked by `verifier`), its health,
    /// readiness and metrics, and its tasks with the outbox relay.
    pub fn finish<V>(mut self, api: Router, verifier: V) -> BuiltService
    where
        V: Clone + Send + Sync + 'static,
        TokenVerifier: FromRef<V>,
    {
        self.tasks.push(self.outbox.spawn_relay(
            self.bus.clone(),
            self.shutdown.clone(),
            self.name,
        ));
        let letters = DeadLetterAdmin::new(self.name, self.dead_letters(), self.bus.clone());
        BuiltService {
            name: self.name,
            router: service_router(
                self.name,
                api.merge(deadletters::router(letters.clone(), verifier)),
                self.readiness.clone(),
            ),
            error_shape: ErrorShape::default(),
            connections: ConnectionLimits::default(),
            readiness: self.readiness,
            dead_letters: Some(letters),
            tasks: self.tasks,
        }
    }
}
