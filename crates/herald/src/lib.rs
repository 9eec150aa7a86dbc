//! Wiring: builds the requested services in one process, on the same library functions
//! whether it runs one service or all of them.

pub mod dlq;
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
        match self {
            ServiceName::Users => settings.users_url(),
            ServiceName::Products => settings.products_url(),
            ServiceName::Orders => settings.orders_url(),
            ServiceName::Recommendations => settings.recommendations_url(),
            ServiceName::Notifications => settings.notifications_url(),
            ServiceName::Scheduler => settings.scheduler_url(),
            ServiceName::Gateway => format!("http://{}", settings.gateway_addr),
        }
    }

    /// Whether it consumes events, and so keeps dead letters: every service with storage.
    fn consumes(self) -> bool {
        self.descriptor().migrations.is_some()
    }

    fn addr_setting(self, settings: &Settings) -> (SocketAddr, &'static str) {
        match self {
            ServiceName::Users => (settings.users_addr, "users_addr"),
            ServiceName::Products => (settings.products_addr, "products_addr"),
            ServiceName::Orders => (settings.orders_addr, "orders_addr"),
            ServiceName::Recommendations => (settings.recommendations_addr, "recommendations_addr"),
            ServiceName::Notifications => (settings.notifications_addr, "notifications_addr"),
            ServiceName::Scheduler => (settings.scheduler_addr, "scheduler_addr"),
            ServiceName::Gateway => (settings.gateway_addr, "gateway_addr"),
        }
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
    /// The dead letters of the services launched so far, for the gateway to manage directly.
    dead_letters: Vec<DeadLetterAdmin>,
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
            let (addr, setting) = service.addr_setting(&settings);
            let listener = bind(addr, setting).await?;
            let local = listener.local_addr()?;
            match service {
                ServiceName::Users if settings.users_url.is_none() => {
                    settings.users_url = Some(format!("http://{local}"));
                }
                ServiceName::Notifications if settings.notifications_url.is_none() => {
                    settings.notifications_url = Some(format!("http://{local}"));
                }
                ServiceName::Products if settings.products_url.is_none() => {
                    settings.products_url = Some(format!("http://{local}"));
                }
                ServiceName::Orders if settings.orders_url.is_none() => {
                    settings.orders_url = Some(format!("http://{local}"));
                }
                ServiceName::Recommendations if settings.recommendations_url.is_none() => {
                    settings.recommendations_url = Some(format!("http://{local}"));
                }
                ServiceName::Scheduler if settings.scheduler_url.is_none() => {
                    settings.scheduler_url = Some(format!("http://{local}"));
                }
                _ => {}
            }
            listeners.insert(*service, Some(listener));
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
            dead_letters: Vec::new(),
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
        mut listeners: BTreeMap<ServiceName, Option<TcpListener>>,
    ) -> anyhow::Result<()> {
        let bus = Bus::connect(settings, &topology())
            .await
            .context("connecting the event bus")?;
        let cache = Cache::connect(settings)
            .await
            .context("connecting the cache")?;
        let mut readiness = Readiness::default();
        let service_key =
            ServiceKey::from_base64(settings.service_key.as_deref().unwrap_or_default())
                .context("HERALD_SERVICE_KEY")?;

        // Services the gateway calls in process rather than over HTTP.
        let mut in_process = herald_gateway::InProcess::default();
        // Checks users' tokens: from the users service itself when it runs here.
        let mut tokens = None;
        if let Some(listener) = listeners.remove(&ServiceName::Users) {
            let started =
                herald_users::build(settings, &bus, &cache, &service_key, self.shutdown.clone())
                    .await
                    .context("starting users")?;
            in_process.accounts = Some(std::sync::Arc::new(started.accounts));
            tokens = Some(started.tokens.clone());
            readiness = readiness.merge(started.service.readiness.clone());
            self.launch(ServiceName::Users, listener, started.service)?;
        }
        if listeners.is_empty() {
            return Ok(());
        }
        let verifier = match tokens {
            Some(tokens) => tokens,
            None => TokenVerifier::fetch(&settings.users_url(), Duration::from_secs(60)).await?,
        };
        let verifier = |service: &'static str| verifier.for_service(&service_key, service);
        // The products service in this process, which orders and the gateway call directly.
        let mut catalog: Option<std::sync::Arc<dyn herald_products::client::CatalogApi>> = None;
        if let Some(listener) = listeners.remove(&ServiceName::Products) {
            let started = herald_products::build(
                settings,
                &bus,
                verifier(herald_products::SERVICE),
                self.shutdown.clone(),
            )
            .await
            .context("starting products")?;
            catalog = Some(std::sync::Arc::new(started.catalog));
            readiness = readiness.merge(started.service.readiness.clone());
            self.launch(ServiceName::Products, listener, started.service)?;
        }
        if let Some(listener) = listeners.remove(&ServiceName::Orders) {
            let started = herald_orders::build(
                settings,
                &bus,
                verifier(herald_orders::SERVICE),
                catalog.clone(),
                self.shutdown.clone(),
            )
            .await
            .context("starting orders")?;
            in_process.orders = Some(std::sync::Arc::new(started.orders));
            readiness = readiness.merge(started.service.readiness.clone());
            self.launch(ServiceName::Orders, listener, started.service)?;
        }
        if let Some(listener) = listeners.remove(&ServiceName::Recommendations) {
            let started = herald_recommendations::build(
                settings,
                &bus,
                &cache,
                verifier(herald_recommendations::SERVICE),
                self.shutdown.clone(),
            )
            .await
            .context("starting recommendations")?;
            in_process.recommendations = Some(std::sync::Arc::new(started.recommendations));
            readiness = readiness.merge(started.service.readiness.clone());
            self.launch(ServiceName::Recommendations, listener, started.service)?;
        }
        in_process.catalog = catalog;
        if let Some(listener) = listeners.remove(&ServiceName::Notifications) {
            let started = herald_notifications::build(
                settings,
                &bus,
                &cache,
                verifier(herald_notifications::SERVICE),
                self.shutdown.clone(),
            )
            .await
            .context("starting notifications")?;
            in_process.inbox = Some(std::sync::Arc::new(started.inbox));
            in_process.unsubscribe_pages = Some(started.unsubscribe_pages);
            in_process.promotions = Some(std::sync::Arc::new(started.promotions));
            readiness = readiness.merge(started.service.readiness.clone());
            self.launch(ServiceName::Notifications, listener, started.service)?;
        }
        if let Some(listener) = listeners.remove(&ServiceName::Scheduler) {
            let started = herald_scheduler::build(
                settings,
                &bus,
                verifier(herald_scheduler::SERVICE),
                self.shutdown.clone(),
            )
            .await
            .context("starting the scheduler")?;
            in_process.scheduler = Some(std::sync::Arc::new(started.scheduler));
            readiness = readiness.merge(started.service.readiness.clone());
            self.launch(ServiceName::Scheduler, listener, started.service)?;
        }
        if let Some(listener) = listeners.remove(&ServiceName::Gateway) {
            if settings.redis_url.is_none() && in_process.inbox.is_none() {
                tracing::warn!(
                    "without HERALD_REDIS_URL, live subscriptions hear only a notifications \
                     service in this process, and none runs here: they will stay silent"
                );
            }
            let readiness = readiness.bus(&bus).cache(&cache);
            in_process.dead_letters = self.dead_letters(settings, &service_key);
            let built = herald_gateway::build(
                settings,
                verifier(herald_gateway::SERVICE),
                service_key.credentials(herald_gateway::SERVICE),
                in_process,
                readiness,
                &cache,
            );
            self.launch(ServiceName::Gateway, listener, built)?;
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
        self.dead_letters.extend(built.dead_letters);
        Ok(())
    }

    /// Every consuming service's dead letters: directly for those running here, over HTTP
    /// at their configured address for the others.
    fn dead_letters(
        &self,
        settings: &Settings,
        service_key: &ServiceKey,
    ) -> Vec<Arc<dyn DeadLettersApi>> {
        let credentials = service_key.credentials(herald_gateway::SERVICE);
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
                        &service.url(settings),
                    ))),
                }
            })
            .collect()
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
