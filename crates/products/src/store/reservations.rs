//! Stock reservations, one per order id: the order id is the idempotency key of both
//! reserving and releasing.

use herald_platform::db::{Tx, now_micros};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use super::{decode_error, uuid_column};

/// One reserved line, priced as the catalog stood at reservation time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReservedLine {
    pub product_id: Uuid,
    pub name: String,
    pub category: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
    pub currency: String,
}

/// What `POST /reservations` answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Reservation {
    pub order_id: Uuid,
    pub items: Vec<ReservedLine>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReservationState {
    /// The units are held for the order.
    Reserved,
    /// Given back (or released before anything was reserved).
    Released,
}

impl ReservationState {
    pub fn as_str(self) -> &'static str {
        match self {
            ReservationState::Reserved => "RESERVED",
            ReservationState::Released => "RELEASED",
        }
    }

    pub fn parse(raw: &str) -> Option<ReservationState> {
        [ReservationState::Reserved, ReservationState::Released]
            .into_iter()
            .find(|s| s.as_str() == raw)
    }
}

/// A reservation as stored, with who made it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredReservation {
    pub order_id: Uuid,
    pub user_id: Option<Uuid>,
    pub state: ReservationState,
    /// In the order the request listed them.
    pub lines: Vec<ReservedLine>,
}

/// Claims `order_id` for a new reservation; false if the order already has one (or a
/// release). On PostgreSQL a concurrent claim of the same order waits for this
/// transaction to end, so one order id never reserves twice.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn claim_order(tx: &mut Tx, order_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let claimed = sqlx::query(
        "INSERT INTO reservations (order_id, user_id, state, created_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id.to_string())
    .bind(user_id.to_string())
    .bind(ReservationState::Reserved.as_str())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(claimed.rows_affected() == 1)
}

#[tracing::instrument(skip_all, fields(order_id = %order_id, lines = lines.len()))]
pub async fn insert_lines(
    tx: &mut Tx,
    order_id: Uuid,
    lines: &[ReservedLine],
) -> Result<(), sqlx::Error> {
    for (position, line) in lines.iter().enumerate() {
        sqlx::query(
            "INSERT INTO reservation_lines
                (order_id, product_id, position, name, category, quantity, unit_price_cents, currency)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(order_id.to_string())
        .bind(line.product_id.to_string())
        .bind(position as i64)
        .bind(&line.name)
        .bind(&line.category)
        .bind(line.quantity)
        .bind(line.unit_price_cents)
        .bind(&line.currency)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn find_reservation(
    tx: &mut Tx,
    order_id: Uuid,
) -> Result<Option<StoredReservation>, sqlx::Error> {
    let Some(row) = sqlx::query("SELECT user_id, state FROM reservations WHERE order_id = $1")
        .bind(order_id.to_string())
        .fetch_optional(&mut **tx)
        .await?
    else {
        return Ok(None);
    };
    let user_id: Option<String> = row.try_get("user_id")?;
    let state: String = row.try_get("state")?;
    let lines = sqlx::query(
        "SELECT product_id, name, category, quantity, unit_price_cents, currency
         FROM reservation_lines WHERE order_id = $1 ORDER BY position",
    )
    .bind(order_id.to_string())
    .fetch_all(&mut **tx)
    .await?
    .iter()
    .map(|row| {
        Ok(ReservedLine {
            product_id: uuid_column(row, "product_id")?,
            name: row.try_get("name")?,
            category: row.try_get("category")?,
            quantity: row.try_get("quantity")?,
            unit_price_cents: row.try_get("unit_price_cents")?,
            currency: row.try_get("currency")?,
        })
    })
    .collect::<Result<Vec<_>, sqlx::Error>>()?;
    Ok(Some(StoredReservation {
        order_id,
        user_id: user_id
            .map(|u| u.parse())
            .transpose()
            .map_err(|e| decode_error(format!("reservation user id: {e}")))?,
        state: ReservationState::parse(&state)
            .ok_or_else(|| decode_error(format!("unknown reservation state {state}")))?,
        lines,
    }))
}

/// Moves the order's reservation from RESERVED to RELEASED; false if it has none or it
/// was released already. Only the transaction that moves it gives the stock back.
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn mark_released(tx: &mut Tx, order_id: Uuid) -> Result<bool, sqlx::Error> {
    let moved = sqlx::query(
        "UPDATE reservations SET state = $1, released_at = $2 WHERE order_id = $3 AND state = $4",
    )
    .bind(ReservationState::Released.as_str())
    .bind(now_micros())
    .bind(order_id.to_string())
    .bind(ReservationState::Reserved.as_str())
    .execute(&mut **tx)
    .await?;
    Ok(moved.rows_affected() == 1)
}

/// Records the release of an order that has no reservation, so that a reservation
/// arriving late (a retried or slow call) finds the order released and takes nothing.
/// False if the order has a reservation after all (it committed meanwhile).
#[tracing::instrument(skip_all, fields(order_id = %order_id))]
pub async fn record_early_release(
    tx: &mut Tx,
    order_id: Uuid,
    user_id: Option<Uuid>,
) -> Result<bool, sqlx::Error> {
    let now = now_micros();
    let recorded = sqlx::query(
        "INSERT INTO reservations (order_id, user_id, state, created_at, released_at)
         VALUES ($1, $2, $3, $4, $4)
         ON CONFLICT DO NOTHING",
    )
    .bind(order_id.to_string())
    .bind(user_id.map(|u| u.to_string()))
    .bind(ReservationState::Released.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(recorded.rows_affected() == 1)
}
