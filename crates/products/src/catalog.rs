//! Changes to the catalog, each written in one transaction with the events it announces.

use herald_events::{Envelope, PriceChanged, ProductCreated, ProductWatched, StockChangeReason};
use herald_platform::ApiResult;
use herald_platform::db::{Backend, Database, Tx};
use herald_platform::outbox::Outbox;
use uuid::Uuid;

use crate::SERVICE;
use crate::domain::{NewProduct, ProductPatch, no_product};
use crate::stock::StockMove;
use crate::store::Product;
use crate::store::products;

/// The catalog and its stock: what the API, the consumer and the tests act through.
#[derive(Clone, Debug)]
pub struct Catalog {
    pub(crate) db: Database,
    pub(crate) outbox: Outbox,
    /// Stock at or below this (and above zero) is low.
    pub(crate) low_stock_threshold: i64,
}

impl Catalog {
    pub fn new(db: Database, outbox: Outbox, low_stock_threshold: i64) -> Catalog {
        Catalog {
            db,
            outbox,
            low_stock_threshold,
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    /// Adds a product and announces it (`product.created`).
    pub async fn create_product(&self, new: &NewProduct) -> ApiResult<Product> {
        let mut tx = self.db.begin().await?;
        let product = products::insert_product(&mut tx, Uuid::now_v7(), new).await?;
        let created = ProductCreated {
            product_id: product.id,
            name: product.name.clone(),
            category: product.category.clone(),
            price_cents: product.price_cents,
            currency: product.currency.clone(),
            stock: product.stock,
        };
        self.outbox
            .add(&mut tx, &Envelope::new(SERVICE, None, &created))
            .await?;
        self.outbox.commit(tx).await?;
        metrics::counter!("products_created_total").increment(1);
        Ok(product)
    }

    /// Changes a product's details; a new price is announced (`product.price_changed`).
    pub async fn update_product(&self, id: Uuid, patch: &ProductPatch) -> ApiResult<Product> {
        patch.validate()?;
        let mut tx = self.db.begin().await?;
        let current = self.locked(&mut tx, id).await?;
        let details = patch.apply(&current.details())?;
        if details == current.details() {
            tx.rollback().await?;
            return Ok(current);
        }
        let product = products::update_details(&mut tx, id, &details).await?;
        if product.price_cents != current.price_cents {
            let changed = PriceChanged {
                product_id: id,
                name: product.name.clone(),
                currency: product.currency.clone(),
                old_price_cents: current.price_cents,
                new_price_cents: product.price_cents,
            };
            self.outbox
                .add(&mut tx, &Envelope::new(SERVICE, None, &changed))
                .await?;
        }
        self.outbox.commit(tx).await?;
        Ok(product)
    }

    /// Sets the stock level by hand (a restock or a count), announcing the change and the
    /// thresholds it crossed.
    pub async fn set_stock(&self, id: Uuid, stock: i64) -> ApiResult<Product> {
        let stock = crate::domain::stock(stock)?;
        let mut tx = self.db.begin().await?;
        let current = self.locked(&mut tx, id).await?;
        if current.stock == stock {
            tx.rollback().await?;
            return Ok(current);
        }
        let product = products::set_stock(&mut tx, id, stock).await?;
        let moved = StockMove {
            product_id: id,
            name: product.name.clone(),
            old: current.stock,
            new: product.stock,
            reason: StockChangeReason::Restock,
            order_id: None,
        };
        self.announce(&mut tx, &moved).await?;
        self.outbox.commit(tx).await?;
        Ok(product)
    }

    /// Lets `user_id` hear of the product's return to stock and price drops. True the
    /// first time, which alone is announced (`product.watched`).
    pub async fn watch_product(&self, product_id: Uuid, user_id: Uuid) -> ApiResult<bool> {
        let mut tx = self.db.begin().await?;
        if products::find_product(&mut *tx, product_id)
            .await?
            .is_none()
        {
            return Err(no_product(product_id));
        }
        let first = products::add_watch(&mut tx, product_id, user_id).await?;
        if first {
            let watched = ProductWatched {
                product_id,
                user_id,
            };
            self.outbox
                .add(
                    &mut tx,
                    &Envelope::new(SERVICE, Some(user_id.to_string()), &watched),
                )
                .await?;
            self.outbox.commit(tx).await?;
        } else {
            tx.rollback().await?;
        }
        Ok(first)
    }

    /// The product, locked for this transaction; NOT_FOUND if there is none.
    async fn locked(&self, tx: &mut Tx, id: Uuid) -> ApiResult<Product> {
        products::find_product_for_update(tx, self.db.backend(), id)
            .await?
            .ok_or_else(|| no_product(id))
    }

    /// Adds the events of a stock movement to the transaction's outbox.
    pub(crate) async fn announce(&self, tx: &mut Tx, moved: &StockMove) -> ApiResult<()> {
        for event in moved.events(self.low_stock_threshold) {
            self.outbox.add(tx, &event).await?;
        }
        Ok(())
    }
}

/// A read-only transaction whose statements all see one snapshot, so a page and its total
/// agree. On SQLite a deferred transaction reads from one snapshot without taking the
/// write lock that [`Database::begin`] takes.
pub async fn begin_snapshot(db: &Database) -> Result<Tx, sqlx::Error> {
    match db.backend() {
        Backend::Sqlite => db.pool().begin().await,
        Backend::Postgres => {
            let mut tx = db.begin().await?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await?;
            Ok(tx)
        }
    }
}
