//! Wiring: builds the requested services in one process, on the same library functions
//! whether it runs one service or all of them.

pub mod client;
pub mod dlq;
pub mod import;
pub mod seed;

/// Herald allocates many small, short-lived values per request (rows, JSON, GraphQL
/// values) from many threads; mimalloc serves those with less contention and
/// fragmentation than the system allocator (docs/benchmarks.md, "Read path").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use herald_platform::Settings;
use herald_platform::auth::{ServiceKey, TokenVerifier};
use herald_platform::bus::{Bus, topology};
use herald_platform::cache::Cache;
use herald_platform::deadletters::{DeadLetterAdmin, DeadLettersApi, DeadLettersOverHttp};
use herald_platform::http::{BuiltService, Readiness, ServiceClient, bind, serve};
use herald_platform::service::ServiceDescriptor;
use herald_products::client::StockApi;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

/// A service `herald serve` can run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum ServiceName {
    Users,
    Products,
    Orders,
    Recommendations,
    Notifications,
    Scheduler,
    Gateway,
}

impl ServiceName {
    pub const ALL: [ServiceName; 7] = [
        ServiceName::Users,
        ServiceName::Products,
        ServiceName::Orders,
        ServiceName::Recommendations,
        ServiceName::Notifications,
        ServiceName::Scheduler,
        ServiceName::Gateway,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ServiceName::Users => "users",
            ServiceName::Products => "products",
            ServiceName::Orders => "orders",
            ServiceName::Recommendations => "recommendations",
            ServiceName::Notifications => "notifications",
            ServiceName::Scheduler => "scheduler",
            ServiceName::Gateway => "gateway",
        }
    }

    /// What the service is: its storage and metrics.
    pub fn descriptor(self) -> &'static ServiceDescriptor {
        match self {
            ServiceName::Users => &herald_users::DESCRIPTOR,
            ServiceName::Products => &herald_products::DESCRIPTOR,
            ServiceName::Orders => &herald_orders::DESCRIPTOR,
            ServiceName::Recommendations => &herald_recommendations::DESCRIPTOR,
            ServiceName::Notifications => &herald_notifications::DESCRIPTOR,
            ServiceName::Scheduler => &herald_scheduler::DESCRIPTOR,
            ServiceName::Gateway => &herald_gateway::DESCRIPTOR,
        }
    }

    /// Where the other processes reach it.
    fn url(self, settings: &Settings) -> String {
        settings.service_url(self.as_str())
    }

    /// Whether it consumes events, and so keeps dead letters: every service with storage.
    fn consumes(self) -> bool {
        self.descriptor().migrations.is_some()
    }
}

/// What the services started so far in this process hand the next ones: the connections
/// they share, and their in-process clients.
struct Starting<'a> {
    settings: &'a Settings,
    bus: Bus,
    cache: Cache,
    service_key: ServiceKey,
    shutdown: CancellationToken,
    /// Checks users' tokens: the users service's own when it runs here, else fetched from
    /// its `/keys` when first needed.
    tokens: Option<TokenVerifier>,
    /// Products' stock, for orders to reserve with.
    stock: Option<Arc<dyn StockApi>>,
    /// What the gateway calls directly.
    gateway: herald_gateway::InProcess,
    /// What the services started need.
    readiness: Readiness,
    /// Their dead letters.
    dead_letters: Vec<DeadLetterAdmin>,
}

impl Starting<'_> {
    /// The token verifier `service` checks its callers with.
    async fn verifier(&mut self, service: &'static str) -> anyhow::Result<TokenVerifier> {
        let tokens = match self.tokens.take() {
            Some(tokens) => tokens,
            None => TokenVerifier::fetch(&self.settings.users_url(), Duration::from_secs(60))
                .await
                .context("fetching the users service's keys")?,
        };
        let verifier = tokens.for_service(&self.service_key, service);
        self.tokens = Some(tokens);
        Ok(verifier)
    }

    /// Every consuming service's dead letters: directly for those running here, over HTTP
    /// at their configured address for the others.
    fn all_dead_letters(&self) -> Vec<Arc<dyn DeadLettersApi>> {
        let credentials = self.service_key.credentials(herald_gateway::SERVICE);
        ServiceName::ALL
            .into_iter()
            .filter(|service| service.consumes())
            .map(|service| {
                let here = self
                    .dead_letters
                    .iter()
                    .find(|admin| admin.service() == service.as_str());
                match here {
                    Some(admin) => Arc::new(admin.clone()) as Arc<dyn DeadLettersApi>,
                    None => Arc::new(DeadLettersOverHttp::new(ServiceClient::new(
                        &credentials,
                        service.as_str(),
                        &service.url(self.settings),
                    ))),
                }
            })
            .collect()
    }
}

impl ServiceName {
    /// Builds the service in a process where `starting` holds what the services started
    /// before it offer, and adds its own in-process clients to it.
    async fn build(self, starting: &mut Starting<'_>) -> anyhow::Result<BuiltService> {
        let settings = starting.settings;
        let shutdown = starting.shutdown.clone();
        Ok(match self {
            ServiceName::Users => {
                let started = herald_users::build(
                    settings,
                    &starting.bus,
                    &starting.cache,
                    &starting.service_key,
                    shutdown,
                )
                .await?;
                starting.gateway.accounts = Some(Arc::new(started.accounts));
                starting.tokens = Some(started.tokens);
                started.service
            }
            ServiceName::Products => {
                let verifier = starting.verifier(herald_products::SERVICE).await?;
                let started =
                    herald_products::build(settings, &starting.bus, verifier, shutdown).await?;
                starting.stock = Some(Arc::new(started.catalog.clone()));
                starting.gateway.catalog = Some(Arc::new(started.catalog));
                started.service
            }
            ServiceName::Orders => {
                let verifier = starting.verifier(herald_orders::SERVICE).await?;
                let products = starting.stock.clone();
                let started =
                    herald_orders::build(settings, &starting.bus, verifier, products, shutdown)
                        .await?;
                starting.gateway.orders = Some(Arc::new(started.orders));
                started.service
            }
            ServiceName::Recommendations => {
                let verifier = starting.verifier(herald_recommendations::SERVICE).await?;
                let (bus, cache) = (&starting.bus, &starting.cache);
                let started =
                    herald_recommendations::build(settings, bus, cache, verifier, shutdown).await?;
                starting.gateway.recommendations = Some(Arc::new(started.recommendations));
                started.service
            }
            ServiceName::Notifications => {
                let verifier = starting.verifier(herald_notifications::SERVICE).await?;
                let (bus, cache) = (&starting.bus, &starting.cache);
                let started =
                    herald_notifications::build(settings, bus, cache, verifier, shutdown).await?;
                starting.gateway.inbox = Some(Arc::new(started.inbox));
                starting.gateway.promotions = Some(Arc::new(started.promotions));
                starting.gateway.unsubscribe_pages = Some(started.unsubscribe_pages);
                started.service
            }
            ServiceName::Scheduler => {
                let verifier = starting.verifier(herald_scheduler::SERVICE).await?;
                let started =
                    herald_scheduler::build(settings, &starting.bus, verifier, shutdown).await?;
                starting.gateway.scheduler = Some(Arc::new(started.scheduler));
                started.service
            }
            ServiceName::Gateway => {
                let verifier = starting.verifier(herald_gateway::SERVICE).await?;
                if settings.redis_url.is_none() && starting.gateway.inbox.is_none() {
                    tracing::warn!(
                        "without HERALD_REDIS_URL, live subscriptions hear only a \
                         notifications service in this process, and none runs here: they \
                         will stay silent"
                    );
                }
                let mut in_process = std::mem::take(&mut starting.gateway);
                in_process.dead_letters = starting.all_dead_letters();
                let readiness = starting
                    .readiness
                    .clone()
                    .bus(&starting.bus)
                    .cache(&starting.cache);
                herald_gateway::build(
                    settings,
                    verifier,
                    starting.service_key.credentials(herald_gateway::SERVICE),
                    in_process,
                    readiness,
                    &starting.cache,
                )
            }
        })
    }
}

/// How long in-flight work may take to finish after a stop signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(20);

/// Running services.
pub struct Application {
    addrs: BTreeMap<ServiceName, SocketAddr>,
    shutdown: CancellationToken,
    servers: Vec<JoinHandle<anyhow::Result<()>>>,
    tasks: Vec<JoinHandle<()>>,
}

impl Application {
    /// Binds, builds and starts `services` (all of them when empty).
    pub async fn build(
        mut settings: Settings,
        services: &[ServiceName],
    ) -> anyhow::Result<Application> {
        let mut wanted: Vec<ServiceName> = if services.is_empty() {
            ServiceName::ALL.to_vec()
        } else {
            services.to_vec()
        };
        wanted.sort();
        wanted.dedup();
        if settings.service_key.is_none() {
            if wanted.len() < ServiceName::ALL.len() {
                return Err(anyhow::Error::new(
                    herald_platform::config::ConfigError::new(
                        "service_key",
                        "must be set, the same in every process, when services run in separate \
                     processes (`herald keygen --service` prints one)",
                    ),
                ));
            }
            // Every service is here: a key of this process's own serves.
            settings.service_key = Some(ServiceKey::generate().to_base64());
        }

        // Bind first so that services started together find each other on the real ports.
        // All in one process, only the gateway listens (unless asked): the services call
        // each other directly.
        let all_here = wanted.len() == ServiceName::ALL.len();
        let mut listeners = BTreeMap::new();
        for service in &wanted {
            if all_here && !settings.service_ports && *service != ServiceName::Gateway {
                listeners.insert(*service, None);
                continue;
            }
            let (addr, setting) = settings.service_addr(service.as_str());
            let listener = bind(addr, &setting).await?;
            settings.listening(service.as_str(), listener.local_addr()?);
            listeners.insert(*service, Some(listener));
        }

        if let Some(endpoint) = &settings.otlp_endpoint {
            let name = match wanted.as_slice() {
                [one] => format!("herald-{}", one.as_str()),
                _ => "herald".to_owned(),
            };
            herald_platform::trace::otlp::export_to(endpoint, &name);
        }
        // Metrics recorded before the recorder exists are lost: install it first.
        herald_platform::telemetry::prometheus();
        herald_platform::telemetry::describe(herald_platform::telemetry::METRICS);
        for service in ServiceName::ALL {
            herald_platform::telemetry::describe(service.descriptor().metrics);
        }
        let shutdown = CancellationToken::new();
        let mut app = Application {
            addrs: BTreeMap::new(),
            shutdown: shutdown.clone(),
            servers: Vec::new(),
            tasks: Vec::new(),
        };
        match app.start(&settings, listeners).await {
            Ok(()) => Ok(app),
            Err(e) => {
                app.stop().await;
                Err(e)
            }
        }
    }

    async fn start(
        &mut self,
        settings: &Settings,
        listeners: BTreeMap<ServiceName, Option<TcpListener>>,
    ) -> anyhow::Result<()> {
        let mut starting = Starting {
            settings,
            bus: Bus::connect(settings, &topology())
                .await
                .context("connecting the event bus")?,
            cache: Cache::connect(settings)
                .await
                .context("connecting the cache")?,
            service_key: ServiceKey::from_base64(
                settings.service_key.as_deref().unwrap_or_default(),
            )
            .context("HERALD_SERVICE_KEY")?,
            shutdown: self.shutdown.clone(),
            tokens: None,
            stock: None,
            gateway: herald_gateway::InProcess::default(),
            readiness: Readiness::default(),
            dead_letters: Vec::new(),
        };
        // In the list's order: a service finds the ones it calls already started.
        for (service, listener) in listeners {
            let built = service
                .build(&mut starting)
                .await
                .with_context(|| format!("starting {}", service.as_str()))?;
            starting.readiness = starting.readiness.merge(built.readiness.clone());
            starting.dead_letters.extend(built.dead_letters.clone());
            self.launch(service, listener, built)?;
        }
        Ok(())
    }

    /// Runs a built service: its tasks, and its API on `listener` if it has a port (a
    /// service without one is called in process only).
    fn launch(
        &mut self,
        name: ServiceName,
        listener: Option<TcpListener>,
        built: BuiltService,
    ) -> anyhow::Result<()> {
        match listener {
            Some(listener) => {
                let addr = listener.local_addr()?;
                tracing::info!(service = name.as_str(), %addr, "listening");
                self.addrs.insert(name, addr);
                self.servers.push(tokio::spawn(serve(
                    listener,
                    built.router,
                    built.error_shape,
                    built.connections,
                    self.shutdown.clone(),
                )));
            }
            None => tracing::info!(service = name.as_str(), "running, called in process"),
        }
        self.tasks.extend(built.tasks);
        Ok(())
    }

    /// The address a service listens on, if it runs here with a port of its own.
    pub fn addr(&self, service: ServiceName) -> Option<SocketAddr> {
        self.addrs.get(&service).copied()
    }

    /// Cancelling this token stops the application gracefully.
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Runs until SIGINT/SIGTERM or the shutdown token, then stops gracefully.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let token = self.shutdown.clone();
        tokio::select! {
            _ = token.cancelled() => {}
            _ = stop_signal() => tracing::info!("stop signal received; finishing in-flight work"),
        }
        self.stop().await;
        Ok(())
    }

    async fn stop(self) {
        self.shutdown.cancel();
        let all = async {
            futures::future::join_all(self.servers).await;
            futures::future::join_all(self.tasks).await;
        };
        if tokio::time::timeout(SHUTDOWN_GRACE, all).await.is_err() {
            tracing::warn!("some work did not finish within {SHUTDOWN_GRACE:?}; stopping anyway");
        }
    }
}

async fn stop_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = term => {}
    }
}

/// Applies every service's migrations and declares the bus topology, then returns.
pub async fn migrate(settings: &Settings) -> anyhow::Result<()> {
    for service in ServiceName::ALL {
        let name = service.as_str();
        if let Some(db) = service
            .descriptor()
            .open_database(settings)
            .await
            .with_context(|| format!("migrating {name}"))?
        {
            db.close().await;
        }
    }
    Bus::connect(settings, &topology())
        .await
        .context("declaring the bus topology")?;
    Ok(())
}
