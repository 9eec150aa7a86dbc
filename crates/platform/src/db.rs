//! Storage: one pool per service, SQLite by default, PostgreSQL when a URL is set.
//!
//! Queries are runtime-checked through `sqlx::Any` with `$N` placeholders, which both
//! engines accept, so one store function serves both backends. Types stay portable:
//! TEXT for ids and JSON, BIGINT for integers and timestamps (unix microseconds). Flags
//! are BOOLEAN on PostgreSQL and `INTEGER CHECK (x IN (0, 1))` on SQLite, because the Any
//! driver cannot decode SQLite's BOOLEAN columns; read them through an integer.

use std::path::Path;
use std::time::Duration;

use anyhow::Context;
use sqlx::any::{AnyPoolOptions, install_default_drivers};
use sqlx::migrate::Migrator;
use sqlx::{AnyPool, AssertSqlSafe, Executor};

use crate::config::Settings;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The engine behind a connection of the `Any` driver.
    pub fn of(conn: &sqlx::AnyConnection) -> Backend {
        if conn.backend_name() == "PostgreSQL" {
            Backend::Postgres
        } else {
            Backend::Sqlite
        }
    }
}

pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// A service's connection pool and which engine is behind it.
#[derive(Clone, Debug)]
pub struct Database {
    pool: AnyPool,
    backend: Backend,
    /// The PostgreSQL schema this service owns (None on SQLite).
    schema: Option<String>,
}

/// Both migration sets of a service; the one matching the backend is applied.
pub struct Migrations {
    pub sqlite: Migrator,
    pub postgres: Migrator,
}

/// A pooled connection idle for longer than this is pinged before it is handed out.
const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// sqlx pings every connection it hands out by default, besides the ping it sends on every
/// connection it takes back: a second round trip per statement (to PostgreSQL, or to
/// SQLite's worker thread) in the request's path. A connection in steady use is known to
/// work; one that sat idle (across a database restart, say) is pinged first, and closed if
/// that fails. A connection cut while in steady use fails its next statement instead (as
/// any statement in flight when the database goes away does), and sqlx drops it then.
fn checked_when_idle(options: AnyPoolOptions) -> AnyPoolOptions {
    options
        .test_before_acquire(false)
        .before_acquire(|conn, meta| {
            Box::pin(async move {
                if meta.idle_for < PING_AFTER_IDLE {
                    return Ok(true);
                }
                sqlx::Connection::ping(conn).await.map(|()| true)
            })
        })
}

impl Database {
    /// The PostgreSQL schema of `service`'s tables.
    pub fn schema_name(settings: &Settings, service: &str) -> String {
        format!("{}{}", settings.database_schema_prefix, service)
    }

    /// Connects the storage of `service` as the settings say.
    pub async fn connect(settings: &Settings, service: &str) -> anyhow::Result<Database> {
        match settings.database_url_for(service) {
            Some(url) => {
                let schema = Self::schema_name(settings, service);
                Self::connect_postgres(url, &schema, settings.database_max_connections).await
            }
            None => {
                let path = settings.data_dir.join(format!("{service}.sqlite"));
                Self::connect_sqlite(&path, 8).await
            }
        }
    }

    pub async fn connect_sqlite(path: &Path, max_connections: u32) -> anyhow::Result<Database> {
        install_default_drivers();
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("creating data directory {}", dir.display()))?;
        }
        let url = format!("sqlite://{}?mode=rwc", path.display());
        let pool = checked_when_idle(AnyPoolOptions::new())
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|conn, _| {
                Box::pin(async move {
                    // WAL lets readers run beside the writer; NORMAL stays durable across
                    // process crashes, which is what the outbox and the bus rely on.
                    conn.execute("PRAGMA journal_mode = WAL").await?;
                    conn.execute("PRAGMA synchronous = NORMAL").await?;
                    conn.execute("PRAGMA busy_timeout = 10000").await?;
                    Ok(())
                })
            })
            .connect(&url)
            .await
            .with_context(|| format!("opening SQLite database {}", path.display()))?;
        Ok(Database {
            pool,
            backend: Backend::Sqlite,
            schema: None,
        })
    }

    pub async fn connect_postgres(
        url: &str,
        schema: &str,
        max_connections: u32,
    ) -> anyhow::Result<Database> {
        install_default_drivers();
        // Create the schema on a plain connection first, then pin every pooled connection to it.
        {
            let bootstrap = AnyPoolOptions::new()
                .max_connections(1)
                .acquire_timeout(Duration::from_secs(10))
                .connect(url)
                .await
                .context("connecting to PostgreSQL (HERALD_DATABASE_URL)")?;
            let create = format!("CREATE SCHEMA IF NOT EXISTS \"{schema}\"");
            if let Err(e) = bootstrap.execute(AssertSqlSafe(create)).await {
                // Two processes creating the same schema at once: the loser sees a unique violation.
                let exists: Option<(String,)> = sqlx::query_as(
                    "SELECT schema_name::text FROM information_schema.schemata WHERE schema_name = $1",
                )
                .bind(schema)
                .fetch_optional(&bootstrap)
                .await?;
                if exists.is_none() {
                    return Err(e).context("creating schema");
                }
            }
            bootstrap.close().await;
        }
        let mut parsed = url::Url::parse(url).context("parsing HERALD_DATABASE_URL")?;
        parsed
            .query_pairs_mut()
            .append_pair("options", &format!("-c search_path={schema}"));
        let pool = checked_when_idle(AnyPoolOptions::new())
            .max_connections(max_connections)
            .acquire_timeout(Duration::from_secs(30))
            .connect(parsed.as_str())
            .await
            .context("connecting to PostgreSQL (HERALD_DATABASE_URL)")?;
        Ok(Database {
            pool,
            backend: Backend::Postgres,
            schema: Some(schema.to_owned()),
        })
    }

    /// Applies the service's migrations.
    pub async fn migrate(&self, migrations: &Migrations) -> anyhow::Result<()> {
        let migrator = match self.backend {
            Backend::Sqlite => &migrations.sqlite,
            Backend::Postgres => &migrations.postgres,
        };
        migrator
            .run(&self.pool)
            .await
            .context("applying migrations")
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    pub fn schema(&self) -> Option<&str> {
        self.schema.as_deref()
    }

    /// Begins a transaction. On SQLite it takes the write lock up front (`IMMEDIATE`): a
    /// transaction that read first could not upgrade once another writer committed.
    pub async fn begin(&self) -> Result<Tx, sqlx::Error> {
        match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await,
            Backend::Postgres => self.pool.begin().await,
        }
    }

    /// Reachability, for `/ready`.
    pub async fn ping(&self) -> bool {
        sqlx::query("SELECT 1").execute(&self.pool).await.is_ok()
    }

    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Current time as stored: unix microseconds.
pub fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

pub fn to_datetime(micros: i64) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default()
}

/// Whether an error is a unique-constraint violation on the named constraint or index
/// (SQLite names the columns instead, so `sqlite_columns` is matched there).
pub fn is_unique_violation(err: &sqlx::Error, constraint: &str, sqlite_columns: &str) -> bool {
    match err {
        sqlx::Error::Database(db) => {
            if !matches!(db.kind(), sqlx::error::ErrorKind::UniqueViolation) {
                return false;
            }
            db.constraint() == Some(constraint) || db.message().contains(sqlite_columns)
        }
        _ => false,
    }
}
