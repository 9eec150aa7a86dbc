//! What a service is to the code that runs or looks after all of them (`herald serve`,
//! `migrate`, `dlq`, the tests' cleanup): its name, its storage and its metrics. Each
//! service crate describes itself once (`DESCRIPTOR`); the list of them lives in one place
//! (`herald::ServiceName`).

use crate::Settings;
use crate::db::{Database, Migrations};
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
    db.migrate(migrations).await?;
    crate::outbox::create_tables(db).await
}
