//! The `order-checks` job: orders that stopped moving.
//!
//! - PLACED or CONFIRMED for longer than `order_stuck_after_hours` (an unpriced PLACED
//!   order is a checkout whose reservation never completed): reported to admins in one
//!   `order.stuck`, each order once per status.
//! - SHIPPED for longer than `order_delivery_window_hours`: one `order.delivery_late` per
//!   order, which tells its buyer it is still on its way.
//!
//! `order_alerts` remembers what was reported, in the transaction that puts the events in
//! the outbox, so a retried or repeated run reports nothing twice.

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use herald_events::{
    Envelope, JOB_ORDER_CHECKS, JobDue, OrderDeliveryLate, OrderStatus, OrdersStuck, StuckOrder,
};
use herald_platform::db::{Database, Tx, to_datetime};
use herald_platform::jobs::Job;
use herald_platform::outbox::Outbox;
use sqlx::Row;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::Viewer;
use crate::store::find_order;

/// Orders looked at per run and kind; the next run takes the rest.
const BATCH: i64 = 500;

pub struct OrderChecks {
    pub db: Database,
    pub outbox: Outbox,
    pub stuck_after: Duration,
    pub delivery_window: Duration,
}

/// Claims the alert; false when it was reported before.
async fn first_alert(
    tx: &mut Tx,
    order_id: &str,
    kind: &str,
    status: &str,
    now: DateTime<Utc>,
) -> Result<bool, sqlx::Error> {
    let inserted = sqlx::query(
        "INSERT INTO order_alerts (order_id, kind, status, reported_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id)
    .bind(kind)
    .bind(status)
    .bind(now.timestamp_micros())
    .execute(&mut **tx)
    .await?;
    Ok(inserted.rows_affected() == 1)
}

impl OrderChecks {
    /// Reports what is stuck and late now; returns (stuck, late) counts reported.
    pub async fn run_at(&self, now: DateTime<Utc>) -> anyhow::Result<(usize, usize)> {
        let mut tx = self.db.begin().await?;
        let rows = sqlx::query(
            "SELECT o.id, o.user_id, o.status, o.total_cents, o.updated_at FROM orders o
             WHERE o.status IN ($1, $2) AND o.updated_at < $3
               AND NOT EXISTS (SELECT 1 FROM order_alerts a
                               WHERE a.order_id = o.id AND a.kind = 'STUCK' AND a.status = o.status)
             ORDER BY o.updated_at LIMIT $4",
        )
        .bind(OrderStatus::Placed.as_str())
        .bind(OrderStatus::Confirmed.as_str())
        .bind((now - self.stuck_after).timestamp_micros())
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?;
        let mut stuck = Vec::new();
        for row in &rows {
            let id: String = row.try_get("id")?;
            let status: String = row.try_get("status")?;
            if !first_alert(&mut tx, &id, "STUCK", &status, now).await? {
                continue;
            }
            let user: String = row.try_get("user_id")?;
            stuck.push(StuckOrder {
                order_id: id.parse()?,
                user_id: user.parse()?,
                status: OrderStatus::parse(&status)
                    .ok_or_else(|| anyhow::anyhow!("unknown order status {status}"))?,
                since: to_datetime(row.try_get("updated_at")?),
                priced: row.try_get::<Option<i64>, _>("total_cents")?.is_some(),
            });
        }
        if !stuck.is_empty() {
            let event = OrdersStuck {
                orders: stuck.clone(),
                threshold_hours: self.stuck_after.num_hours(),
            };
            self.outbox
                .add(&mut tx, &Envelope::new(SERVICE, None, &event))
                .await?;
        }

        let late: Vec<String> = sqlx::query(
            "SELECT o.id FROM orders o
             WHERE o.status = $1 AND o.updated_at < $2
               AND NOT EXISTS (SELECT 1 FROM order_alerts a
                               WHERE a.order_id = o.id AND a.kind = 'DELIVERY_LATE')
             ORDER BY o.updated_at LIMIT $3",
        )
        .bind(OrderStatus::Shipped.as_str())
        .bind((now - self.delivery_window).timestamp_micros())
        .bind(BATCH)
        .fetch_all(&mut *tx)
        .await?
        .iter()
        .map(|row| row.try_get("id"))
        .collect::<Result<_, _>>()?;
        let mut reported_late = 0;
        for id in late {
            if !first_alert(
                &mut tx,
                &id,
                "DELIVERY_LATE",
                OrderStatus::Shipped.as_str(),
                now,
            )
            .await?
            {
                continue;
            }
            let order_id: Uuid = id.parse()?;
            let Some(order) = find_order(&mut *tx, order_id, Viewer::Admin).await? else {
                continue;
            };
            let snapshot = order.snapshot();
            let subject = Some(snapshot.user_id.to_string());
            self.outbox
                .add(
                    &mut tx,
                    &Envelope::new(SERVICE, subject, &OrderDeliveryLate(snapshot)),
                )
                .await?;
            reported_late += 1;
        }
        self.outbox.commit(tx).await?;
        Ok((stuck.len(), reported_late))
    }
}

#[async_trait]
impl Job for OrderChecks {
    fn name(&self) -> &'static str {
        JOB_ORDER_CHECKS
    }

    async fn run(&self, _due: &JobDue) -> anyhow::Result<String> {
        let (stuck, late) = self.run_at(Utc::now()).await?;
        Ok(format!(
            "{stuck} stuck orders reported, {late} late deliveries"
        ))
    }
}
