//! The orders service's tables: orders and their lines.
//!
//! An order is inserted PLACED without prices before its stock is reserved; until the
//! reservation priced it (`total_cents IS NULL`) no reader shows it to anyone.

use chrono::{DateTime, Utc};
use herald_events::{OrderLine, OrderSnapshot, OrderStatus};
use herald_platform::db::{Database, Tx, now_micros, to_datetime};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use sqlx::any::AnyRow;
use uuid::Uuid;

use crate::domain::{PageSize, PricedOrder, ProductLine, Viewer};

/// An order as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Order {
    pub id: Uuid,
    pub user_id: Uuid,
    pub status: OrderStatus,
    pub items: Vec<OrderItem>,
    pub total_cents: i64,
    pub currency: String,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct OrderItem {
    pub product_id: Uuid,
    pub product_name: String,
    /// Travels in events (for recommendations and promotions), not in the API.
    #[serde(skip)]
    pub category: String,
    pub quantity: i64,
    pub unit_price_cents: i64,
}

impl Order {
    /// The order as events carry it.
    pub fn snapshot(&self) -> OrderSnapshot {
        OrderSnapshot {
            order_id: self.id,
            user_id: self.user_id,
            status: self.status,
            items: self
                .items
                .iter()
                .map(|item| OrderLine {
                    product_id: item.product_id,
                    product_name: item.product_name.clone(),
                    category: item.category.clone(),
                    quantity: item.quantity,
                    unit_price_cents: item.unit_price_cents,
                })
                .collect(),
            total_cents: self.total_cents,
            currency: self.currency.clone(),
            placed_at: self.created_at,
        }
    }
}

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn parse_uuid(raw: &str, what: &str) -> Result<Uuid, sqlx::Error> {
    raw.parse()
        .map_err(|e| decode_error(format!("{what} '{raw}': {e}")))
}

/// The columns of an order joined with its lines, one row per line.
const JOINED: &str = "o.id, o.user_id, o.status, o.total_cents, o.currency, o.created_at, \
     o.updated_at, l.product_id, l.product_name, l.category, l.quantity, l.unit_price_cents";

/// Which orders `viewer` sees: only priced ones, and a buyer only their own. `table` is
/// the qualifier of the orders table (`"o."` or `""`), `next` the number of the next
/// placeholder. Returns the filter and the user id to bind to it, if any.
fn visible_to(viewer: Viewer, table: &str, next: usize) -> (String, Option<String>) {
    match viewer {
        Viewer::Admin => (format!("{table}total_cents IS NOT NULL"), None),
        Viewer::Buyer(user_id) => (
            format!("{table}total_cents IS NOT NULL AND {table}user_id = ${next}"),
            Some(user_id.to_string()),
        ),
    }
}

/// Groups joined rows (ordered by order, then line) into orders.
fn orders_from_rows(rows: &[AnyRow]) -> Result<Vec<Order>, sqlx::Error> {
    let mut orders: Vec<Order> = Vec::new();
    for row in rows {
        let id = parse_uuid(&row.try_get::<String, _>("id")?, "order id")?;
        if orders.last().is_none_or(|order| order.id != id) {
            let status: String = row.try_get("status")?;
            orders.push(Order {
                id,
                user_id: parse_uuid(&row.try_get::<String, _>("user_id")?, "user id")?,
                status: OrderStatus::parse(&status)
                    .ok_or_else(|| decode_error(format!("unknown order status {status}")))?,
                items: Vec::new(),
                total_cents: row.try_get("total_cents")?,
                currency: row.try_get("currency")?,
                created_at: to_datetime(row.try_get("created_at")?),
                updated_at: to_datetime(row.try_get("updated_at")?),
            });
        }
        if let Some(order) = orders.last_mut() {
            order.items.push(OrderItem {
                product_id: parse_uuid(&row.try_get::<String, _>("product_id")?, "product id")?,
                product_name: row.try_get("product_name")?,
                category: row.try_get("category")?,
                quantity: row.try_get("quantity")?,
                unit_price_cents: row.try_get("unit_price_cents")?,
            });
        }
    }
    Ok(orders)
}

/// Inserts a PLACED order without prices: it waits for its stock reservation.
#[tracing::instrument(skip_all, fields(order_id = %id, user_id = %user_id))]
pub async fn insert_placed_order(
    tx: &mut Tx,
    id: Uuid,
    user_id: Uuid,
    lines: &[ProductLine],
) -> Result<(), sqlx::Error> {
    let now = now_micros();
    sqlx::query(
        "INSERT INTO orders (id, user_id, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $4)",
    )
    .bind(id.to_string())
    .bind(user_id.to_string())
    .bind(OrderStatus::Placed.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let values = (0..lines.len())
        .map(|i| format!("($1, ${}, ${}, ${})", 3 * i + 2, 3 * i + 3, 3 * i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO order_lines (order_id, line_no, product_id, quantity) VALUES {values}"
    );
    let mut insert = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id.to_string());
    for (line_no, line) in lines.iter().enumerate() {
        insert = insert
            .bind(line_no as i64)
            .bind(line.product_id.to_string())
            .bind(line.quantity.get());
    }
    insert.execute(&mut **tx).await?;
    Ok(())
}

/// Removes an order that was never priced (its reservation was refused). False if there
/// is no such order, or it was priced meanwhile.
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn delete_unpriced_order(db: &Database, id: Uuid) -> Result<bool, sqlx::Error> {
    let mut tx = db.begin().await?;
    sqlx::query(
        "DELETE FROM order_lines WHERE order_id IN
            (SELECT id FROM orders WHERE id = $1 AND total_cents IS NULL)",
    )
    .bind(id.to_string())
    .execute(&mut *tx)
    .await?;
    let deleted = sqlx::query("DELETE FROM orders WHERE id = $1 AND total_cents IS NULL")
        .bind(id.to_string())
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(deleted.rows_affected() == 1)
}

/// Prices a PLACED order from its reservation and confirms it; None if the order is not
/// waiting for its reservation (unknown, or priced already).
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn confirm_order(
    tx: &mut Tx,
    id: Uuid,
    priced: &PricedOrder,
) -> Result<Option<Order>, sqlx::Error> {
    let updated = sqlx::query(
        "UPDATE orders SET status = $1, total_cents = $2, currency = $3, updated_at = $4
         WHERE id = $5 AND status = $6 AND total_cents IS NULL",
    )
    .bind(OrderStatus::Confirmed.as_str())
    .bind(priced.total_cents)
    .bind(&priced.currency)
    .bind(now_micros())
    .bind(id.to_string())
    .bind(OrderStatus::Placed.as_str())
    .execute(&mut **tx)
    .await?;
    if updated.rows_affected() == 0 {
        return Ok(None);
    }
    for line in &priced.lines {
        let updated = sqlx::query(
            "UPDATE order_lines SET product_name = $1, category = $2, unit_price_cents = $3
             WHERE order_id = $4 AND product_id = $5",
        )
        .bind(&line.product_name)
        .bind(&line.category)
        .bind(line.unit_price_cents)
        .bind(id.to_string())
        .bind(line.product_id.to_string())
        .execute(&mut **tx)
        .await?;
        if updated.rows_affected() != 1 {
            return Err(decode_error(format!(
                "order {id} has no line for product {}",
                line.product_id
            )));
        }
    }
    find_order(&mut **tx, id, Viewer::Admin).await
}

/// The order if `viewer` may see it.
#[tracing::instrument(skip_all, fields(order_id = %id))]
pub async fn find_order<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    id: Uuid,
    viewer: Viewer,
) -> Result<Option<Order>, sqlx::Error> {
    let (visible, user) = visible_to(viewer, "o.", 2);
    let sql = format!(
        "SELECT {JOINED} FROM orders o JOIN order_lines l ON l.order_id = o.id
         WHERE o.id = $1 AND {visible} ORDER BY l.line_no"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(id.to_string());
    if let Some(user) = user {
        query = query.bind(user);
    }
    let rows = query.fetch_all(executor).await?;
    Ok(orders_from_rows(&rows)?.into_iter().next())
}

/// The buyer's newest orders, newest first.
#[tracing::instrument(skip_all, fields(user_id = %user_id))]
pub async fn list_orders(
    db: &Database,
    user_id: Uuid,
    first: PageSize,
) -> Result<Vec<Order>, sqlx::Error> {
    // One statement, so every order and its lines come from the same snapshot.
    let sql = format!(
        "SELECT {JOINED} FROM
            (SELECT * FROM orders WHERE user_id = $1 AND total_cents IS NOT NULL
             ORDER BY created_at DESC, id DESC LIMIT $2) o
         JOIN order_lines l ON l.order_id = o.id
         ORDER BY o.created_at DESC, o.id DESC, l.line_no"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(user_id.to_string())
        .bind(first.get())
        .fetch_all(db.pool())
        .await?;
    orders_from_rows(&rows)
}

/// Every buyer's newest orders, newest first, only those in `status` if given (for
/// admins). `orders_newest_first` and `orders_by_status_newest_first` serve both.
#[tracing::instrument(skip_all, fields(status = status.map(OrderStatus::as_str)))]
pub async fn list_all_orders(
    db: &Database,
    status: Option<OrderStatus>,
    first: PageSize,
) -> Result<Vec<Order>, sqlx::Error> {
    let (in_status, limit) = match status {
        Some(_) => ("AND status = $1", "$2"),
        None => ("", "$1"),
    };
    // One statement, so every order and its lines come from the same snapshot.
    let sql = format!(
        "SELECT {JOINED} FROM
            (SELECT * FROM orders WHERE total_cents IS NOT NULL {in_status}
             ORDER BY created_at DESC, id DESC LIMIT {limit}) o
         JOIN order_lines l ON l.order_id = o.id
         ORDER BY o.created_at DESC, o.id DESC, l.line_no"
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
    if let Some(status) = status {
        query = query.bind(status.as_str());
    }
    let rows = query.bind(first.get()).fetch_all(db.pool()).await?;
    orders_from_rows(&rows)
}

/// Moves an order `viewer` may see to `to`, only if it is in one of `from` now: of two
/// concurrent changes, at most one finds the status it expects. None if nothing changed.
#[tracing::instrument(skip_all, fields(order_id = %id, to = to.as_str()))]
pub async fn change_status(
    tx: &mut Tx,
    id: Uuid,
    from: &[OrderStatus],
    to: OrderStatus,
    viewer: Viewer,
) -> Result<Option<Order>, sqlx::Error> {
    if from.is_empty() {
        return Ok(None);
    }
    let expected = (0..from.len())
        .map(|i| format!("${}", i + 4))
        .collect::<Vec<_>>()
        .join(", ");
    let (visible, user) = visible_to(viewer, "", from.len() + 4);
    let sql = format!(
        "UPDATE orders SET status = $1, updated_at = $2
         WHERE id = $3 AND status IN ({expected}) AND {visible}"
    );
    let mut update = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
        .bind(to.as_str())
        .bind(now_micros())
        .bind(id.to_string());
    for status in from {
        update = update.bind(status.as_str());
    }
    if let Some(user) = user {
        update = update.bind(user);
    }
    if update.execute(&mut **tx).await?.rows_affected() == 0 {
        return Ok(None);
    }
    find_order(&mut **tx, id, Viewer::Admin).await
}
