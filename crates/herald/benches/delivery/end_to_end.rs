//! Through Herald: recipients register, then order events go straight onto the bus, timed
//! from the first publish until every one is a stored ORDER_UPDATE, or an email in the sink.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::Context;
use herald_events::{Channel, Envelope, NOTIFICATIONS_CRITICAL};
use herald_platform::bus::{Bus, ConsumerOptions, topology};
use herald_platform::config::Settings;
use herald_platform::db::Database;
use herald_platform::smtp_sink::SmtpSink;
use herald_test_support::{BackendSet, TestApp};
use sqlx::any::AnyArguments;
use sqlx::query::QueryScalar;

use crate::report::{Kind, Measurement};
use crate::workload::{EMAIL_DOMAIN, Workload};

const PUBLISH_BATCH: usize = 1_000;
/// How often the database is counted; bounds the error of a measured time.
const POLL: Duration = Duration::from_millis(100);
/// The sink copies every message it holds to count them, so it is asked less often.
const SINK_POLL: Duration = Duration::from_millis(500);
/// A count that does not grow for this long is stuck (a retry waits 15 s by default).
const PATIENCE: Duration = Duration::from_secs(60);
/// How long to wait for the welcome emails before deciding none are sent.
const WELCOME_PATIENCE: Duration = Duration::from_secs(10);
const PROGRESS_EVERY: Duration = Duration::from_secs(5);

/// Order events to stored in-app notifications.
pub async fn in_app(set: BackendSet, workload: &Workload) -> anyhow::Result<Measurement> {
    let run = Run::start(set, workload, &[Channel::InApp], None).await?;
    let handlers = HandlerTime::now();
    let started = run.publish_orders(workload).await?;
    let stored = run.wait_until_stored(workload.events).await;
    let elapsed = started.elapsed();
    let handlers = handlers.since(elapsed);
    run.finish().await;
    stored?;
    Ok(Measurement::new(
        set,
        Kind::EndToEnd,
        "end to end: order.confirmed → ORDER_UPDATE stored",
        workload.events,
        elapsed,
    )
    .with_note(handlers))
}

/// Order events to emails received by an SMTP sink; None when this build sends no email.
pub async fn email(set: BackendSet, workload: &Workload) -> anyhow::Result<Option<Measurement>> {
    let sink = SmtpSink::start().await;
    let channels = [Channel::InApp, Channel::Email];
    let run = Run::start(set, workload, &channels, Some(sink.url())).await?;
    let emailed = run.time_emails(&sink, workload).await;
    run.finish().await;
    let Some((elapsed, stored)) = emailed? else {
        return Ok(None);
    };
    let measurement = Measurement::new(
        set,
        Kind::EndToEnd,
        "end to end: order.confirmed → email in the SMTP sink",
        workload.events,
        elapsed,
    );
    Ok(Some(measurement.with_note(format!(
        "the in-app ORDER_UPDATEs were all stored after {:.2} s",
        stored.as_secs_f64()
    ))))
}

/// A Herald whose notifications service knows the workload's recipients.
struct Run {
    app: TestApp,
    bus: Bus,
    notifications: Database,
}

impl Run {
    async fn start(
        set: BackendSet,
        workload: &Workload,
        channels: &[Channel],
        smtp_url: Option<String>,
    ) -> anyhow::Result<Run> {
        let app = TestApp::spawn_with(set, |settings| {
            crate::deployed_pools(settings);
            settings.smtp_url = smtp_url;
        })
        .await;
        let bus = Bus::connect(&app.settings, &topology()).await?;
        let notifications = Database::connect(&app.settings, "notifications").await?;
        let run = Run {
            app,
            bus,
            notifications,
        };
        run.register(workload, channels).await?;
        Ok(run)
    }

    async fn register(&self, workload: &Workload, channels: &[Channel]) -> anyhow::Result<()> {
        self.publish(&workload.registrations(channels)).await?;
        let known = || self.known_recipients();
        match wait_for_count("recipients", workload.users.len(), PATIENCE, POLL, known).await? {
            Progress::Reached => Ok(()),
            Progress::Stuck(known) => anyhow::bail!(
                "the notifications service knows {known} of {} recipients",
                workload.users.len()
            ),
        }
    }

    /// Publishes the workload's orders; returns when publishing began.
    async fn publish_orders(&self, workload: &Workload) -> anyhow::Result<Instant> {
        let orders = workload.orders();
        let started = Instant::now();
        self.publish(&orders).await?;
        eprintln!(
            "[{:?}] published {} order events in {:.2} s",
            self.app.set,
            orders.len(),
            started.elapsed().as_secs_f64()
        );
        Ok(started)
    }

    /// Publishes the orders and times them until `sink` received an email for each, and
    /// until their in-app notifications were stored; None when no email arrived at all.
    async fn time_emails(
        &self,
        sink: &SmtpSink,
        workload: &Workload,
    ) -> anyhow::Result<Option<(Duration, Duration)>> {
        // Welcome emails still arriving would be counted as order emails.
        let mailed = move || async move { Ok(sink.received().len()) };
        let welcomes = workload.users.len();
        wait_for_count("welcomes", welcomes, WELCOME_PATIENCE, SINK_POLL, mailed).await?;
        let before = sink.received().len();
        let started = self.publish_orders(workload).await?;
        self.wait_until_stored(workload.events).await?;
        let stored = started.elapsed();
        let emailed = move || async move { Ok(sink.received().len().saturating_sub(before)) };
        match wait_for_count("emails", workload.events, PATIENCE, SINK_POLL, emailed).await? {
            Progress::Reached => Ok(Some((started.elapsed(), stored))),
            Progress::Stuck(0) => Ok(None),
            Progress::Stuck(sent) => anyhow::bail!(
                "emails stuck at {sent} of {} for {PATIENCE:?}",
                workload.events
            ),
        }
    }

    async fn publish(&self, events: &[Envelope]) -> anyhow::Result<()> {
        for batch in events.chunks(PUBLISH_BATCH) {
            self.bus.publish(batch).await?;
        }
        Ok(())
    }

    async fn wait_until_stored(&self, events: usize) -> anyhow::Result<()> {
        let stored = || self.stored_order_updates();
        match wait_for_count("ORDER_UPDATEs stored", events, PATIENCE, POLL, stored).await? {
            Progress::Reached => Ok(()),
            Progress::Stuck(stored) => {
                anyhow::bail!("ORDER_UPDATEs stuck at {stored} of {events} for {PATIENCE:?}")
            }
        }
    }

    /// The workload's recipients the notifications service knows.
    async fn known_recipients(&self) -> anyhow::Result<usize> {
        let query = sqlx::query_scalar("SELECT COUNT(*) FROM recipients WHERE email LIKE $1")
            .bind(format!("%@{EMAIL_DOMAIN}"));
        self.count(query).await
    }

    async fn stored_order_updates(&self) -> anyhow::Result<usize> {
        let query =
            sqlx::query_scalar("SELECT COUNT(*) FROM notifications WHERE type = 'ORDER_UPDATE'");
        self.count(query).await
    }

    async fn count<'q>(
        &self,
        query: QueryScalar<'q, sqlx::Any, i64, AnyArguments>,
    ) -> anyhow::Result<usize> {
        let count = query
            .fetch_one(self.notifications.pool())
            .await
            .context("counting in the notifications database")?;
        Ok(usize::try_from(count)?)
    }

    async fn finish(self) {
        self.notifications.close().await;
        drop(self.bus);
        self.app.cleanup().await;
    }
}

/// The notifications consumer's handler time on the critical lane so far, from the
/// process's metrics (`bus_handler_duration_seconds`).
struct HandlerTime {
    seconds: f64,
    handled: f64,
}

impl HandlerTime {
    fn now() -> HandlerTime {
        let metrics = herald_platform::telemetry::prometheus().render();
        let total = |series: &str| -> f64 {
            let prefix = format!("bus_handler_duration_seconds_{series}{{");
            let lane = format!("queue=\"{NOTIFICATIONS_CRITICAL}\"");
            metrics
                .lines()
                .filter(|line| line.starts_with(&prefix) && line.contains(&lane))
                .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
                .sum()
        };
        HandlerTime {
            seconds: total("sum"),
            handled: total("count"),
        }
    }

    /// Since `self`, `elapsed` ago: how long a handler took on average, and how many ran at
    /// once.
    fn since(self, elapsed: Duration) -> String {
        let now = HandlerTime::now();
        let seconds = now.seconds - self.seconds;
        let handled = (now.handled - self.handled).max(1.0);
        format!(
            "a handler took {:.1} ms on average, {:.1} ran at once (the lane allows {})",
            seconds / handled * 1000.0,
            seconds / elapsed.as_secs_f64(),
            ConsumerOptions::batched_from_settings(&Settings::default()).concurrency,
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Progress {
    Reached,
    /// The count did not grow for the patience given; it stopped here.
    Stuck(usize),
}

/// Polls `count` every `poll` until it reaches `target`, or until it did not grow for
/// `patience`; tells how far it got every few seconds.
async fn wait_for_count<F, Fut>(
    what: &str,
    target: usize,
    patience: Duration,
    poll: Duration,
    mut count: F,
) -> anyhow::Result<Progress>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = anyhow::Result<usize>>,
{
    let (mut last, mut grew_at, mut told_at) = (0, Instant::now(), Instant::now());
    loop {
        let now = count().await?;
        if now >= target {
            return Ok(Progress::Reached);
        }
        if now > last {
            (last, grew_at) = (now, Instant::now());
        } else if grew_at.elapsed() >= patience {
            return Ok(Progress::Stuck(now));
        }
        if told_at.elapsed() >= PROGRESS_EVERY {
            eprintln!("  {what}: {now} of {target}");
            told_at = Instant::now();
        }
        tokio::time::sleep(poll).await;
    }
}
