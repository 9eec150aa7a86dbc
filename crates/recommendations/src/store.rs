//! The recommendations service's tables: the product replica, preferred categories,
//! confirmed orders and their lines (purchases), and activity signals.

use std::collections::{HashMap, HashSet};

use herald_events::{CategoryInterest, Envelope, OrderLine, OrderSnapshot, ProductCreated};
use herald_platform::bulk::SqlType::{BigInt, Text};
use herald_platform::bulk::{JsonRows, ROWS_PER_STATEMENT, select_rows};
use herald_platform::db::{Backend, Tx};
use herald_platform::outbox::Outbox;
use sqlx::any::AnyRow;
use sqlx::{AnyPool, Row};
use uuid::Uuid;

use crate::recommender::{
    CatalogProduct, CoPurchase, Purchase, Signal, SignalKind, categories_named_in,
};

/// Signals kept per user; older ones are trimmed on insert.
pub const SIGNALS_PER_USER: i64 = 500;

fn decode_error(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

fn uuid_column(row: &AnyRow, column: &str) -> Result<Uuid, sqlx::Error> {
    let raw: String = row.try_get(column)?;
    raw.parse()
        .map_err(|e| decode_error(format!("{column} '{raw}': {e}")))
}

/// `$first, $first+1, …` for `n` bound values.
fn placeholders(first: usize, n: usize) -> String {
    (first..first + n)
        .map(|i| format!("${i}"))
        .collect::<Vec<_>>()
        .join(", ")
}

#[tracing::instrument(skip_all, fields(product_id = %created.product_id))]
pub async fn product_created(
    tx: &mut Tx,
    created: &ProductCreated,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO products (id, name, category, stock, stock_at) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (id) DO UPDATE SET name = excluded.name, category = excluded.category,
             stock = CASE WHEN products.stock_at <= excluded.stock_at
                          THEN excluded.stock ELSE products.stock END,
             stock_at = CASE WHEN products.stock_at <= excluded.stock_at
                             THEN excluded.stock_at ELSE products.stock_at END",
    )
    .bind(created.product_id.to_string())
    .bind(&created.name)
    .bind(&created.category)
    .bind(created.stock)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Keeps `stock` as of `at` unless a newer level is kept already. A product not created
/// yet gets a row without name and category, filled in by its `product.created`.
#[tracing::instrument(skip_all, fields(%product_id, stock))]
pub async fn stock_changed(
    tx: &mut Tx,
    product_id: Uuid,
    stock: i64,
    at: i64,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO products (id, name, category, stock, stock_at) VALUES ($1, '', '', $2, $3)
         ON CONFLICT (id) DO UPDATE SET stock = excluded.stock, stock_at = excluded.stock_at
         WHERE products.stock_at <= excluded.stock_at",
    )
    .bind(product_id.to_string())
    .bind(stock)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

#[tracing::instrument(skip_all, fields(%product_id))]
pub async fn product_renamed(tx: &mut Tx, product_id: Uuid, name: &str) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE products SET name = $1 WHERE id = $2 AND name <> ''")
        .bind(name)
        .bind(product_id.to_string())
        .execute(&mut **tx)
        .await?;
    Ok(())
}

fn product_from_row(row: &AnyRow) -> Result<CatalogProduct, sqlx::Error> {
    let stock: i64 = row.try_get("stock")?;
    Ok(CatalogProduct {
        id: uuid_column(row, "id")?,
        name: row.try_get("name")?,
        category: row.try_get("category")?,
        in_stock: stock > 0,
    })
}

/// A product of the replica, if its `product.created` was heard.
pub async fn find_product(pool: &AnyPool, id: Uuid) -> Result<Option<CatalogProduct>, sqlx::Error> {
    sqlx::query("SELECT id, name, category, stock FROM products WHERE id = $1 AND name <> ''")
        .bind(id.to_string())
        .fetch_optional(pool)
        .await?
        .map(|row| product_from_row(&row))
        .transpose()
}

/// Which of `ids` are known and in stock.
pub async fn in_stock(
    pool: &AnyPool,
    ids: &[Uuid],
) -> Result<std::collections::HashSet<Uuid>, sqlx::Error> {
    if ids.is_empty() {
        return Ok(Default::default());
    }
    let sql = format!(
        "SELECT id FROM products WHERE stock > 0 AND name <> '' AND id IN ({})",
        placeholders(1, ids.len())
    );
    let mut query = sqlx::query_scalar::<_, String>(sqlx::AssertSqlSafe(sql.as_str()));
    for id in ids {
        query = query.bind(id.to_string());
    }
    let rows = query.fetch_all(pool).await?;
    Ok(rows.iter().filter_map(|id| id.parse().ok()).collect())
}

/// The known products among `ids`, and the in-stock ones of `categories` (at most
/// `per_categories` of those).
pub async fn catalog_for(
    pool: &AnyPool,
    ids: &[Uuid],
    categories: &[String],
    per_categories: i64,
) -> Result<HashMap<Uuid, CatalogProduct>, sqlx::Error> {
    let mut catalog = HashMap::new();
    for chunk in ids.chunks(500) {
        let sql = format!(
            "SELECT id, name, category, stock FROM products WHERE name <> '' AND id IN ({})",
            placeholders(1, chunk.len())
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(pool).await? {
            let p = product_from_row(&row)?;
            catalog.insert(p.id, p);
        }
    }
    if !categories.is_empty() {
        let sql = format!(
            "SELECT id, name, category, stock FROM products
             WHERE name <> '' AND stock > 0 AND category IN ({}) ORDER BY id LIMIT ${}",
            placeholders(1, categories.len()),
            categories.len() + 1
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for c in categories {
            query = query.bind(c);
        }
        for row in query.bind(per_categories).fetch_all(pool).await? {
            let p = product_from_row(&row)?;
            catalog.insert(p.id, p);
        }
    }
    Ok(catalog)
}

/// The categories a search points at: those it names, else those of the products whose
/// names contain it (most such products first).
pub async fn searched_categories(pool: &AnyPool, query: &str) -> Result<Vec<String>, sqlx::Error> {
    let categories: Vec<String> =
        sqlx::query_scalar("SELECT DISTINCT category FROM products WHERE category <> ''")
            .fetch_all(pool)
            .await?;
    let mut named = categories_named_in(query, categories.iter().map(String::as_str));
    if named.is_empty() {
        let escaped = query
            .trim()
            .to_lowercase()
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        named = sqlx::query_scalar(
            "SELECT category FROM products WHERE name <> '' AND LOWER(name) LIKE $1 ESCAPE '\\'
             GROUP BY category ORDER BY COUNT(*) DESC, category LIMIT 3",
        )
        .bind(format!("%{escaped}%"))
        .fetch_all(pool)
        .await?;
    }
    Ok(named)
}

#[tracing::instrument(skip_all, fields(%user_id, kind = signal.kind.as_str()))]
pub async fn record_signal(tx: &mut Tx, user_id: Uuid, signal: &Signal) -> Result<(), sqlx::Error> {
    let user = user_id.to_string();
    sqlx::query(
        "INSERT INTO signals (id, user_id, kind, product_id, category, query, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(Uuid::now_v7().to_string())
    .bind(&user)
    .bind(signal.kind.as_str())
    .bind(signal.product_id.map(|id| id.to_string()))
    .bind(signal.category.clone())
    .bind(signal.query.clone())
    .bind(signal.at)
    .execute(&mut **tx)
    .await?;
    sqlx::query(
        "DELETE FROM signals WHERE user_id = $1 AND id NOT IN (
             SELECT id FROM signals WHERE user_id = $2
             ORDER BY created_at DESC, id DESC LIMIT $3)",
    )
    .bind(&user)
    .bind(&user)
    .bind(SIGNALS_PER_USER)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Keeps each user's preferred categories, where the given version is newer than the one
/// kept: (user, categories, preferences version), a statement per [`ROWS_PER_STATEMENT`].
#[tracing::instrument(skip_all, fields(users = preferred.len()))]
pub async fn set_preferred_categories(
    tx: &mut Tx,
    preferred: &[(Uuid, &[String], i64)],
) -> Result<(), sqlx::Error> {
    let sql = format!(
        "INSERT INTO preferred_categories (user_id, categories, version)
         {}
         ON CONFLICT (user_id) DO UPDATE SET categories = excluded.categories,
             version = excluded.version
         WHERE preferred_categories.version < excluded.version",
        select_rows(
            Backend::of(tx),
            1,
            &[("user_id", Text), ("categories", Text), ("version", BigInt)],
        )
    );
    for chunk in preferred.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for (user_id, categories, version) in chunk {
            let encoded = serde_json::to_string(categories).unwrap_or_else(|_| "[]".to_owned());
            rows.push(&(user_id, encoded, version))?;
        }
        sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(rows.finish())
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// [`order_confirmed`] for several orders, their orders and their lines each in a statement
/// per [`ROWS_PER_STATEMENT`] rows; the ids of the orders that were new.
#[tracing::instrument(skip_all, fields(orders = orders.len()))]
pub async fn orders_confirmed(
    tx: &mut Tx,
    orders: &[&OrderSnapshot],
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let backend = Backend::of(tx);
    let mut new = HashSet::with_capacity(orders.len());
    let insert_orders = format!(
        "INSERT INTO orders (order_id, user_id, state, placed_at) {}
         ON CONFLICT DO NOTHING RETURNING order_id",
        select_rows(
            backend,
            1,
            &[
                ("order_id", Text),
                ("user_id", Text),
                ("state", Text),
                ("placed_at", BigInt)
            ]
        )
    );
    for chunk in orders.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for order in chunk {
            rows.push(&(
                order.order_id,
                order.user_id,
                "CONFIRMED",
                order.placed_at.timestamp_micros(),
            ))?;
        }
        let inserted = sqlx::query(sqlx::AssertSqlSafe(insert_orders.as_str()))
            .bind(rows.finish())
            .fetch_all(&mut **tx)
            .await?;
        for row in inserted {
            new.insert(uuid_column(&row, "order_id")?);
        }
    }
    let lines: Vec<(&OrderSnapshot, &OrderLine)> = orders
        .iter()
        .filter(|order| new.contains(&order.order_id))
        .flat_map(|order| order.items.iter().map(move |line| (*order, line)))
        .collect();
    let insert_lines = format!(
        "INSERT INTO purchases
             (order_id, product_id, user_id, name, category, quantity, purchased_at)
         {} ON CONFLICT DO NOTHING",
        select_rows(
            backend,
            1,
            &[
                ("order_id", Text),
                ("product_id", Text),
                ("user_id", Text),
                ("name", Text),
                ("category", Text),
                ("quantity", BigInt),
                ("purchased_at", BigInt),
            ]
        )
    );
    for chunk in lines.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for (order, line) in chunk {
            rows.push(&(
                order.order_id,
                line.product_id,
                order.user_id,
                &line.product_name,
                &line.category,
                line.quantity,
                order.placed_at.timestamp_micros(),
            ))?;
        }
        sqlx::query(sqlx::AssertSqlSafe(insert_lines.as_str()))
            .bind(rows.finish())
            .execute(&mut **tx)
            .await?;
    }
    Ok(new)
}

/// Keeps a confirmed order's lines as purchases; false when the order was known already
/// (or cancelled before its confirmation arrived).
#[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
pub async fn order_confirmed(tx: &mut Tx, order: &OrderSnapshot) -> Result<bool, sqlx::Error> {
    let placed_at = order.placed_at.timestamp_micros();
    let inserted = sqlx::query(
        "INSERT INTO orders (order_id, user_id, state, placed_at) VALUES ($1, $2, 'CONFIRMED', $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(order.order_id.to_string())
    .bind(order.user_id.to_string())
    .bind(placed_at)
    .execute(&mut **tx)
    .await?;
    if inserted.rows_affected() == 0 {
        return Ok(false);
    }
    for line in &order.items {
        sqlx::query(
            "INSERT INTO purchases
                 (order_id, product_id, user_id, name, category, quantity, purchased_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(order.order_id.to_string())
        .bind(line.product_id.to_string())
        .bind(order.user_id.to_string())
        .bind(&line.product_name)
        .bind(&line.category)
        .bind(line.quantity)
        .bind(placed_at)
        .execute(&mut **tx)
        .await?;
    }
    Ok(true)
}

/// Forgets a cancelled order's purchases, and remembers the cancellation.
#[tracing::instrument(skip_all, fields(order_id = %order.order_id))]
pub async fn order_cancelled(tx: &mut Tx, order: &OrderSnapshot) -> Result<(), sqlx::Error> {
    let order_id = order.order_id.to_string();
    sqlx::query("DELETE FROM purchases WHERE order_id = $1")
        .bind(&order_id)
        .execute(&mut **tx)
        .await?;
    sqlx::query(
        "INSERT INTO orders (order_id, user_id, state, placed_at) VALUES ($1, $2, 'CANCELLED', $3)
         ON CONFLICT (order_id) DO UPDATE SET state = 'CANCELLED'",
    )
    .bind(&order_id)
    .bind(order.user_id.to_string())
    .bind(order.placed_at.timestamp_micros())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

pub async fn purchases_of(pool: &AnyPool, user_id: Uuid) -> Result<Vec<Purchase>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT product_id, name, category, purchased_at FROM purchases WHERE user_id = $1
         ORDER BY purchased_at DESC, product_id",
    )
    .bind(user_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            Ok(Purchase {
                product_id: uuid_column(row, "product_id")?,
                name: row.try_get("name")?,
                category: row.try_get("category")?,
                at: row.try_get("purchased_at")?,
            })
        })
        .collect()
}

pub async fn signals_of(pool: &AnyPool, user_id: Uuid) -> Result<Vec<Signal>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT kind, product_id, category, query, created_at FROM signals WHERE user_id = $1
         ORDER BY created_at DESC, id DESC",
    )
    .bind(user_id.to_string())
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let kind: String = row.try_get("kind")?;
            let product_id: Option<String> = row.try_get("product_id")?;
            Ok(Signal {
                kind: SignalKind::parse(&kind)
                    .ok_or_else(|| decode_error(format!("signal kind '{kind}'")))?,
                product_id: product_id
                    .map(|raw| raw.parse().map_err(|e| decode_error(format!("{raw}: {e}"))))
                    .transpose()?,
                category: row.try_get("category")?,
                query: row.try_get("query")?,
                at: row.try_get("created_at")?,
            })
        })
        .collect()
}

pub async fn preferred_categories_of(
    pool: &AnyPool,
    user_id: Uuid,
) -> Result<Vec<String>, sqlx::Error> {
    let encoded: Option<String> =
        sqlx::query_scalar("SELECT categories FROM preferred_categories WHERE user_id = $1")
            .bind(user_id.to_string())
            .fetch_optional(pool)
            .await?;
    encoded
        .map(|raw| serde_json::from_str(&raw).map_err(|e| decode_error(format!("categories: {e}"))))
        .transpose()
        .map(Option::unwrap_or_default)
}

/// The lines sharing an order since `since` with one of the `anchors`.
pub async fn co_purchases(
    pool: &AnyPool,
    anchors: &[Uuid],
    since: i64,
    limit: i64,
) -> Result<Vec<CoPurchase>, sqlx::Error> {
    if anchors.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!(
        "SELECT a.product_id AS anchor, b.product_id AS other, b.purchased_at AS at
         FROM purchases a JOIN purchases b
             ON b.order_id = a.order_id AND b.product_id <> a.product_id
         WHERE a.purchased_at >= $1 AND a.product_id IN ({})
         ORDER BY b.purchased_at DESC LIMIT ${}",
        placeholders(2, anchors.len()),
        anchors.len() + 2
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str())).bind(since);
    for id in anchors {
        query = query.bind(id.to_string());
    }
    let rows = query.bind(limit).fetch_all(pool).await?;
    rows.iter()
        .map(|row| {
            Ok(CoPurchase {
                anchor: uuid_column(row, "anchor")?,
                other: uuid_column(row, "other")?,
                at: row.try_get("at")?,
            })
        })
        .collect()
}

/// Distinct recent buyers of the most bought products since `since`.
pub async fn popularity(
    pool: &AnyPool,
    since: i64,
    limit: i64,
) -> Result<HashMap<Uuid, f64>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT product_id, COUNT(DISTINCT user_id) AS buyers FROM purchases
         WHERE purchased_at >= $1 GROUP BY product_id
         ORDER BY buyers DESC, product_id LIMIT $2",
    )
    .bind(since)
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter()
        .map(|row| {
            let buyers: i64 = row.try_get("buyers")?;
            Ok((uuid_column(row, "product_id")?, buyers as f64))
        })
        .collect()
}

/// Records that each user showed interest in each category and puts one
/// `recommendation.category_interest` in the outbox for each pair new to this service.
#[tracing::instrument(skip_all, fields(pairs = pairs.len()))]
pub async fn note_interests(
    tx: &mut Tx,
    outbox: &Outbox,
    pairs: &[(Uuid, String)],
) -> Result<(), sqlx::Error> {
    let mut pairs: Vec<(Uuid, String)> = pairs
        .iter()
        .filter(|(_, category)| !category.is_empty())
        .map(|(user, category)| (*user, category.to_lowercase()))
        .collect();
    pairs.sort();
    pairs.dedup();
    let sql = format!(
        "INSERT INTO interests (user_id, category) {} ON CONFLICT DO NOTHING
         RETURNING user_id, category",
        select_rows(Backend::of(tx), 1, &[("user_id", Text), ("category", Text)])
    );
    for chunk in pairs.chunks(ROWS_PER_STATEMENT) {
        let mut rows = JsonRows::new();
        for (user_id, category) in chunk {
            rows.push(&(user_id, category))?;
        }
        let inserted = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()))
            .bind(rows.finish())
            .fetch_all(&mut **tx)
            .await?;
        // Announced in the order of the pairs, whatever order the rows came back in.
        let mut new: Vec<(Uuid, String)> = inserted
            .iter()
            .map(|row| Ok((uuid_column(row, "user_id")?, row.try_get("category")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        new.sort();
        for (user_id, category) in new {
            let interest = CategoryInterest { user_id, category };
            outbox
                .add(
                    tx,
                    &Envelope::new(crate::SERVICE, Some(user_id.to_string()), &interest),
                )
                .await?;
        }
    }
    Ok(())
}
