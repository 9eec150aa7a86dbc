//! The catalog and its watches.
//!
//! Stock only ever moves through single conditional statements (`stock = stock - $q
//! WHERE stock >= $q`), never read-modify-write, so concurrent orders cannot oversell.

use herald_platform::db::{Backend, Database, Tx, now_micros};
use uuid::Uuid;

use super::{PRODUCT_COLUMNS, Product, product_from_row};
use crate::domain::{NewProduct, PageRequest, ProductDetails, ProductFilter, fold};

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn insert_product(
    tx: &mut Tx,
    id: Uuid,
    new: &NewProduct,
) -> Result<Product, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "INSERT INTO products (id, name, description, category, price_cents, currency, stock,
            name_folded, description_folded, created_at, updated_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $10)
         RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(id.to_string())
    .bind(&new.name)
    .bind(&new.description)
    .bind(&new.category)
    .bind(new.price_cents)
    .bind(&new.currency)
    .bind(new.stock)
    .bind(fold(&new.name))
    .bind(fold(&new.description))
    .bind(now_micros())
    .fetch_one(&mut **tx)
    .await?;
    product_from_row(&row)
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn find_product<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    id: Uuid,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1"
    )))
    .bind(id.to_string())
    .fetch_optional(executor)
    .await?
    .as_ref()
    .map(product_from_row)
    .transpose()
}

/// Locks the product's row for a read-modify-write of its details or a stock level set
/// by hand (PostgreSQL row lock; SQLite serialises writers anyway).
#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn find_product_for_update(
    tx: &mut Tx,
    backend: Backend,
    id: Uuid,
) -> Result<Option<Product>, sqlx::Error> {
    let lock = match backend {
        Backend::Postgres => " FOR UPDATE",
        Backend::Sqlite => "",
    };
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {PRODUCT_COLUMNS} FROM products WHERE id = $1{lock}"
    )))
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(product_from_row)
    .transpose()
}

#[tracing::instrument(skip_all, fields(product_id = %id))]
pub async fn update_details(
    tx: &mut Tx,
    id: Uuid,
    details: &ProductDetails,
) -> Result<Product, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE products SET name = $1, description = $2, category = $3, price_cents = $4,
            name_folded = $5, description_folded = $6, updated_at = $7
         WHERE id = $8
         RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(&details.name)
    .bind(&details.description)
    .bind(&details.category)
    .bind(details.price_cents)
    .bind(fold(&details.name))
    .bind(fold(&details.description))
    .bind(now_micros())
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    product_from_row(&row)
}

/// Sets the stock level (a restock or a count); lock the row first to know the old level.
#[tracing::instrument(skip_all, fields(product_id = %id, stock))]
pub async fn set_stock(tx: &mut Tx, id: Uuid, stock: i64) -> Result<Product, sqlx::Error> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE products SET stock = $1, updated_at = $2 WHERE id = $3 RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(stock)
    .bind(now_micros())
    .bind(id.to_string())
    .fetch_one(&mut **tx)
    .await?;
    product_from_row(&row)
}

/// Takes `quantity` units if at least that many are in stock: the product afterwards, or
/// None (unknown product or not enough stock). The condition and the decrement are one
/// statement, so concurrent takers never see the same units.
#[tracing::instrument(skip_all, fields(product_id = %id, quantity))]
pub async fn take_stock(
    tx: &mut Tx,
    id: Uuid,
    quantity: i64,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE products SET stock = stock - $1, updated_at = $2
         WHERE id = $3 AND stock >= $1
         RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(quantity)
    .bind(now_micros())
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(product_from_row)
    .transpose()
}

/// Gives `quantity` units back: the product afterwards, or None if it is unknown.
#[tracing::instrument(skip_all, fields(product_id = %id, quantity))]
pub async fn return_stock(
    tx: &mut Tx,
    id: Uuid,
    quantity: i64,
) -> Result<Option<Product>, sqlx::Error> {
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "UPDATE products SET stock = stock + $1, updated_at = $2
         WHERE id = $3
         RETURNING {PRODUCT_COLUMNS}"
    )))
    .bind(quantity)
    .bind(now_micros())
    .bind(id.to_string())
    .fetch_optional(&mut **tx)
    .await?
    .as_ref()
    .map(product_from_row)
    .transpose()
}

/// The WHERE clause of a filter (and cursor), with its text parameters from `$1`.
fn conditions(filter: &ProductFilter, after: Option<Uuid>) -> (String, Vec<String>) {
    let mut clauses = Vec::new();
    let mut binds = Vec::new();
    if let Some(category) = &filter.category {
        binds.push(category.clone());
        clauses.push(format!("category = ${}", binds.len()));
    }
    if let Some(pattern) = &filter.search {
        binds.push(pattern.clone());
        let n = binds.len();
        clauses.push(format!(
            "(name_folded LIKE ${n} ESCAPE '\\' OR description_folded LIKE ${n} ESCAPE '\\')"
        ));
    }
    if let Some(after) = after {
        binds.push(after.to_string());
        clauses.push(format!("id > ${}", binds.len()));
    }
    if clauses.is_empty() {
        (String::new(), binds)
    } else {
        (format!(" WHERE {}", clauses.join(" AND ")), binds)
    }
}

/// One page of the catalog in creation order, with one extra product when more follow.
#[tracing::instrument(skip_all, fields(first = page.first))]
pub async fn list_products(tx: &mut Tx, page: &PageRequest) -> Result<Vec<Product>, sqlx::Error> {
    let (filter, binds) = conditions(&page.filter, page.after);
    let sql = format!(
        "SELECT {PRODUCT_COLUMNS} FROM products{filter} ORDER BY id LIMIT ${}",
        binds.len() + 1
    );
    let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
    for value in binds {
        query = query.bind(value);
    }
    query
        .bind(page.first + 1)
        .fetch_all(&mut **tx)
        .await?
        .iter()
        .map(product_from_row)
        .collect()
}

/// How many products match the filter, on every page.
#[tracing::instrument(skip_all)]
pub async fn count_products<'c>(
    executor: impl sqlx::Executor<'c, Database = sqlx::Any>,
    filter: &ProductFilter,
) -> Result<i64, sqlx::Error> {
    let (filter, binds) = conditions(filter, None);
    let sql = format!("SELECT COUNT(*) FROM products{filter}");
    let mut query = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.as_str()));
    for value in binds {
        query = query.bind(value);
    }
    query.fetch_one(executor).await
}

/// The products among `ids` that exist, in creation order.
#[tracing::instrument(skip_all, fields(ids = ids.len()))]
pub async fn products_by_ids(db: &Database, ids: &[Uuid]) -> Result<Vec<Product>, sqlx::Error> {
    let mut found = Vec::with_capacity(ids.len());
    for chunk in ids.chunks(500) {
        let placeholders = (1..=chunk.len())
            .map(|n| format!("${n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let sql = format!(
            "SELECT {PRODUCT_COLUMNS} FROM products WHERE id IN ({placeholders}) ORDER BY id"
        );
        let mut query = sqlx::query(sqlx::AssertSqlSafe(sql.as_str()));
        for id in chunk {
            query = query.bind(id.to_string());
        }
        for row in query.fetch_all(db.pool()).await? {
            found.push(product_from_row(&row)?);
        }
    }
    found.sort_by_key(|p| p.id);
    Ok(found)
}

/// Records that `user_id` watches the product; false if they already did.
#[tracing::instrument(skip_all, fields(product_id = %product_id, user_id = %user_id))]
pub async fn add_watch(tx: &mut Tx, product_id: Uuid, user_id: Uuid) -> Result<bool, sqlx::Error> {
    let added = sqlx::query(
        "INSERT INTO product_watches (product_id, user_id, created_at) VALUES ($1, $2, $3)
         ON CONFLICT DO NOTHING",
    )
    .bind(product_id.to_string())
    .bind(user_id.to_string())
    .bind(now_micros())
    .execute(&mut **tx)
    .await?;
    Ok(added.rows_affected() == 1)
}

/// The users watching a product, in the order they started.
#[tracing::instrument(skip_all, fields(product_id = %product_id))]
pub async fn watchers(db: &Database, product_id: Uuid) -> Result<Vec<Uuid>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT user_id FROM product_watches WHERE product_id = $1 ORDER BY created_at, user_id",
    )
    .bind(product_id.to_string())
    .fetch_all(db.pool())
    .await?;
    rows.iter()
        .map(|row| super::uuid_column(row, "user_id"))
        .collect()
}
