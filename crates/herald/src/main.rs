use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use herald::{Application, ServiceName};
use herald_platform::Settings;
use herald_platform::config::ConfigError;
use serde::Serialize;

/// Herald: personalized notifications for e-commerce.
///
/// Settings come from defaults < the --config file < HERALD_* environment variables <
/// these flags. With no setting at all, Herald runs on embedded backends (SQLite files,
/// an in-process durable bus, an in-process cache) under ./herald-data.
#[derive(Parser)]
#[command(name = "herald", version, about, long_about)]
struct Cli {
    /// A TOML file with settings (keys as in HERALD_*, lowercased: data_dir = "...").
    #[arg(long, global = true, value_name = "FILE")]
    config: Option<PathBuf>,
    #[command(flatten)]
    overrides: Overrides,
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Serialize, Default)]
struct Overrides {
    /// Where embedded backends keep their files [env: HERALD_DATA_DIR].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    data_dir: Option<PathBuf>,
    /// The GraphQL gateway's address [env: HERALD_GATEWAY_ADDR].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    gateway_addr: Option<String>,
    /// postgres://… (unset: SQLite) [env: HERALD_DATABASE_URL].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    database_url: Option<String>,
    /// amqp://… (unset: in-process bus) [env: HERALD_AMQP_URL].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    amqp_url: Option<String>,
    /// redis://… (unset: in-process cache) [env: HERALD_REDIS_URL].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    redis_url: Option<String>,
    /// pretty or json [env: HERALD_LOG_FORMAT].
    #[arg(long, global = true)]
    #[serde(skip_serializing_if = "Option::is_none")]
    log_format: Option<String>,
}

#[derive(Subcommand)]
enum Command {
    /// Start services: all of them in one process when none is named, or only the named
    /// ones (each finds the others through HERALD_USERS_URL, HERALD_NOTIFICATIONS_URL, …).
    Serve {
        #[arg(value_enum)]
        services: Vec<ServiceName>,
    },
    /// Apply every service's database migrations and declare the bus topology, then exit.
    Migrate,
    /// Print the GraphQL schema (SDL) the gateway serves.
    Schema,
    /// Print a new token signing key for HERALD_SIGNING_KEY (base64 PKCS#8 Ed25519), or
    /// with --service a service key for HERALD_SERVICE_KEY (base64, 32 random bytes).
    Keygen {
        #[arg(long)]
        service: bool,
    },
    /// The recommender's offline evaluation.
    Recommend {
        #[command(subcommand)]
        action: RecommendAction,
    },
    /// Fill a running Herald with a shop (products, customers with preferences, orders)
    /// through its GraphQL API, as the admin of HERALD_ADMIN_EMAIL/HERALD_ADMIN_PASSWORD.
    Seed {
        #[arg(long, default_value_t = 100)]
        users: usize,
        /// Of the users, how many register with a password (and place the orders); the
        /// rest are imported through importUsers, a thousand a call. (A client may
        /// register 10 accounts an hour by default: HERALD_REGISTRATIONS_PER_CLIENT_PER_HOUR.)
        #[arg(long, default_value_t = 5)]
        registered: usize,
        #[arg(long, default_value_t = 40)]
        products: usize,
        #[arg(long, default_value_t = 200)]
        orders: usize,
        #[command(flatten)]
        admin: AdminArgs,
        /// Requests in flight at once.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
        /// The random generator's seed: the same seed makes the same shop.
        #[arg(long, default_value_t = 42)]
        seed: u64,
    },
    /// Bring data into a running Herald through its GraphQL API.
    Import {
        #[command(subcommand)]
        what: ImportWhat,
    },
    /// Dead letters: messages a consumer gave up on after its retries.
    Dlq {
        #[command(subcommand)]
        action: DlqAction,
    },
}

/// Where the CLI reaches a running Herald, and the admin it acts as.
#[derive(clap::Args)]
struct AdminArgs {
    /// The gateway [default: HERALD_PUBLIC_URL].
    #[arg(long)]
    url: Option<String>,
    /// [default: HERALD_ADMIN_EMAIL]
    #[arg(long)]
    admin_email: Option<String>,
    /// [default: HERALD_ADMIN_PASSWORD]
    #[arg(long)]
    admin_password: Option<String>,
}

impl AdminArgs {
    /// The admin, from the arguments or the settings; an error names what `doing` needs.
    fn resolve(self, settings: &Settings, doing: &str) -> anyhow::Result<herald::client::Admin> {
        match (
            self.admin_email.or(settings.admin_email.clone()),
            self.admin_password.or(settings.admin_password.clone()),
        ) {
            (Some(email), Some(password)) => Ok(herald::client::Admin {
                url: self.url.unwrap_or_else(|| settings.public_url.clone()),
                email,
                password,
            }),
            _ => anyhow::bail!(
                "{doing} needs an admin: set HERALD_ADMIN_EMAIL and HERALD_ADMIN_PASSWORD, or pass --admin-email and --admin-password"
            ),
        }
    }
}

#[derive(Subcommand)]
enum RecommendAction {
    /// Generate a shop with hidden tastes and bundles, hold out each user's last purchase,
    /// and compare the recommender with the popularity baseline (hit-rate@10, MRR).
    Eval {
        #[arg(long, default_value_t = 42)]
        seed: u64,
        #[arg(long, default_value_t = 2000)]
        users: usize,
        #[arg(long, default_value_t = 500)]
        products: usize,
    },
}

#[derive(Subcommand)]
enum ImportWhat {
    /// Import customers from FILE (CSV with a header: name, email and any of promotions,
    /// orderUpdates, recommendations, inventoryAlerts, categories and channels (both
    /// separated by ';'), timezone, quietHoursStart, quietHoursEnd; or NDJSON objects
    /// {"name", "email", "preferences"}), `-` for standard input, through importUsers as
    /// the admin of HERALD_ADMIN_EMAIL/HERALD_ADMIN_PASSWORD. Known emails are skipped;
    /// rejected rows are listed by line, and make the exit status 1.
    Users {
        file: String,
        /// [default: from the file's extension, else its first line]
        #[arg(long, value_enum)]
        format: Option<herald::import::Format>,
        /// Rows per importUsers call (1 to 1000).
        #[arg(long, default_value_t = herald::import::CHUNK_ROWS)]
        chunk: usize,
        #[command(flatten)]
        admin: AdminArgs,
    },
}

#[derive(Subcommand)]
enum DlqAction {
    /// List dead letters, newest first.
    List {
        /// Only this queue (e.g. notifications.critical).
        #[arg(long)]
        queue: Option<String>,
        #[arg(long, default_value_t = 50)]
        first: i64,
    },
    /// Deliver one dead letter (by id), or all of them (--all), to its queue once more.
    Replay {
        #[arg(required_unless_present = "all")]
        id: Option<uuid::Uuid>,
        #[arg(long, conflicts_with = "id")]
        all: bool,
        /// With --all: only this queue.
        #[arg(long, requires = "all")]
        queue: Option<String>,
    },
    /// Drop a dead letter for good.
    Discard { id: uuid::Uuid },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let settings = match Settings::load(cli.config.as_deref(), &cli.overrides) {
        Ok(settings) => settings,
        Err(e) => return fail(&e.to_string(), 2),
    };
    match cli.command {
        Command::Schema => {
            println!("{}", herald_gateway::sdl());
            return ExitCode::SUCCESS;
        }
        Command::Keygen { service: true } => {
            println!(
                "{}",
                herald_platform::auth::ServiceKey::generate().to_base64()
            );
            return ExitCode::SUCCESS;
        }
        Command::Keygen { service: false } => {
            return match herald_platform::auth::SigningKey::generate() {
                Ok(key) => {
                    println!("{}", key.to_base64());
                    ExitCode::SUCCESS
                }
                Err(e) => fail(&format!("{e:#}"), 1),
            };
        }
        Command::Recommend {
            action:
                RecommendAction::Eval {
                    seed,
                    users,
                    products,
                },
        } => {
            let config = herald_recommendations::EvalConfig {
                seed,
                users,
                products,
                ..Default::default()
            };
            println!("{}", herald_recommendations::evaluate(config).to_markdown());
            return ExitCode::SUCCESS;
        }
        Command::Serve { .. }
        | Command::Migrate
        | Command::Dlq { .. }
        | Command::Seed { .. }
        | Command::Import { .. } => {}
    }
    herald_platform::telemetry::init_logging(settings.log_format());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fail(&format!("cannot start the async runtime: {e}"), 1),
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Serve { services } => {
                let app = Application::build(settings, &services).await?;
                app.run_until_stopped().await
            }
            Command::Migrate => herald::migrate(&settings).await,
            Command::Dlq { action } => match action {
                DlqAction::List { queue, first } => {
                    herald::dlq::list(&settings, queue.as_deref(), first).await
                }
                DlqAction::Replay { id, queue, .. } => {
                    herald::dlq::replay(&settings, id, queue.as_deref()).await
                }
                DlqAction::Discard { id } => herald::dlq::discard(&settings, id).await,
            },
            Command::Seed {
                users,
                registered,
                products,
                orders,
                admin,
                concurrency,
                seed,
            } => {
                let report = herald::seed::seed(herald::seed::SeedOptions {
                    admin: admin.resolve(&settings, "seeding")?,
                    users,
                    registered,
                    products,
                    orders,
                    concurrency,
                    seed,
                })
                .await?;
                println!(
                    "{} users, {} products, {} orders ({} refused for want of stock)",
                    report.users, report.products, report.orders, report.refused
                );
                Ok(())
            }
            Command::Import {
                what:
                    ImportWhat::Users {
                        file,
                        format,
                        chunk,
                        admin,
                    },
            } => {
                let report = herald::import::import_users(herald::import::ImportOptions {
                    admin: admin.resolve(&settings, "importing")?,
                    file,
                    format,
                    chunk,
                })
                .await?;
                println!("{}", herald::import::summary(&report));
                if !report.rejected.is_empty() {
                    anyhow::bail!("{} rows were rejected", report.rejected.len());
                }
                Ok(())
            }
            Command::Schema | Command::Keygen { .. } | Command::Recommend { .. } => Ok(()),
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.chain().any(|c| c.is::<ConfigError>()) {
                2
            } else {
                1
            };
            fail(&format!("{e:#}"), code)
        }
    }
}

fn fail(message: &str, code: u8) -> ExitCode {
    eprintln!("error: {message}");
    ExitCode::from(code)
}
