//! Reserving stock for an order, all lines or none, and giving it back exactly once.
//!
//! The order id is the idempotency key: a retried reservation returns the one made before
//! without touching stock, and only the release that moves a reservation from RESERVED
//! to RELEASED gives its units back.

use std::collections::HashMap;

use anyhow::anyhow;
use herald_events::StockChangeReason;
use herald_platform::auth::Claims;
use herald_platform::db::Tx;
use herald_platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::catalog::Catalog;
use crate::domain::{ReservationRequest, insufficient_stock, no_product};
use crate::stock::StockMove;
use crate::store::products;
use crate::store::reservations::{
    self, Reservation, ReservationState, ReservedLine, StoredReservation,
};

impl Catalog {
    /// Takes every line's units for the order, or none: the first line that cannot be
    /// served rolls everything back (INSUFFICIENT_STOCK naming the product, or NOT_FOUND).
    pub async fn reserve_stock(
        &self,
        request: &ReservationRequest,
        caller: &Claims,
    ) -> ApiResult<Reservation> {
        let order_id = request.order_id;
        let mut tx = self.db.begin().await?;
        if !reservations::claim_order(&mut tx, order_id, caller.sub).await? {
            let existing = reservations::find_reservation(&mut tx, order_id)
                .await?
                .ok_or_else(|| anyhow!("order {order_id} is claimed but has no reservation"))?;
            tx.rollback().await?;
            return replayed(existing, caller);
        }
        // Rows are locked in one order (sorted ids) so that concurrent orders sharing
        // products cannot deadlock on PostgreSQL.
        let mut sorted = request.lines.clone();
        sorted.sort_by_key(|(product_id, _)| *product_id);
        let mut lines = Vec::with_capacity(sorted.len());
        let mut moves = Vec::with_capacity(sorted.len());
        for (product_id, quantity) in sorted {
            let Some(product) = products::take_stock(&mut tx, product_id, quantity).await? else {
                let current = products::find_product(&mut *tx, product_id).await?;
                tx.rollback().await?;
                let (outcome, error) = match current {
                    None => ("unknown_product", no_product(product_id)),
                    Some(p) => ("insufficient_stock", insufficient_stock(&p.name, p.stock)),
                };
                metrics::counter!("stock_reservations_total", "outcome" => outcome).increment(1);
                return Err(error);
            };
            moves.push(StockMove {
                product_id,
                name: product.name.clone(),
                old: product.stock + quantity,
                new: product.stock,
                reason: StockChangeReason::Reserved,
                order_id: Some(order_id),
            });
            lines.push(ReservedLine {
                product_id,
                name: product.name,
                category: product.category,
                quantity,
                unit_price_cents: product.price_cents,
                currency: product.currency,
            });
        }
        let position: HashMap<Uuid, usize> = request
            .lines
            .iter()
            .enumerate()
            .map(|(i, (product_id, _))| (*product_id, i))
            .collect();
        lines.sort_by_key(|line| position.get(&line.product_id).copied());
        reservations::insert_lines(&mut tx, order_id, &lines).await?;
        for moved in &moves {
            self.announce(&mut tx, moved).await?;
        }
        self.outbox.commit(tx).await?;
        metrics::counter!("stock_reservations_total", "outcome" => "reserved").increment(1);
        Ok(Reservation {
            order_id,
            items: lines,
        })
    }

    /// Gives the order's units back; true only for the call that did. Only the buyer who
    /// reserved or an admin may release.
    pub async fn release_stock(&self, order_id: Uuid, caller: &Claims) -> ApiResult<bool> {
        let mut tx = self.db.begin().await?;
        let released = self.release_in(&mut tx, order_id, Some(caller)).await?;
        // Committed either way: a release before any reservation is recorded too.
        self.outbox.commit(tx).await?;
        Ok(released)
    }

    /// [`Catalog::release_stock`] inside the caller's transaction, which must commit it;
    /// without a caller (an event) nobody's permission is checked.
    pub(crate) async fn release_in(
        &self,
        tx: &mut Tx,
        order_id: Uuid,
        caller: Option<&Claims>,
    ) -> ApiResult<bool> {
        let released = reservations::mark_released(tx, order_id).await?
            || (!reservations::record_early_release(tx, order_id, caller.map(|c| c.sub))
                .await?
                // Not early after all: a reservation committed meanwhile (PostgreSQL).
                && reservations::mark_released(tx, order_id).await?);
        if !released {
            return Ok(false);
        }
        let reservation = reservations::find_reservation(tx, order_id)
            .await?
            .ok_or_else(|| anyhow!("order {order_id} was released but has no reservation"))?;
        if let Some(caller) = caller
            && !caller.is_admin()
            && reservation.user_id != Some(caller.sub)
        {
            return Err(ApiError::forbidden(
                "only the buyer or an admin can release an order's stock",
            ));
        }
        let mut lines = reservation.lines;
        lines.sort_by_key(|line| line.product_id);
        for line in lines {
            let Some(product) = products::return_stock(tx, line.product_id, line.quantity).await?
            else {
                tracing::warn!(%order_id, product_id = %line.product_id, "released units of a product that no longer exists");
                continue;
            };
            let moved = StockMove {
                product_id: line.product_id,
                name: product.name.clone(),
                old: product.stock - line.quantity,
                new: product.stock,
                reason: StockChangeReason::Released,
                order_id: Some(order_id),
            };
            self.announce(tx, &moved).await?;
        }
        metrics::counter!("stock_releases_total").increment(1);
        Ok(true)
    }
}

/// The answer to a reservation retried with an order id that has one already.
fn replayed(existing: StoredReservation, caller: &Claims) -> ApiResult<Reservation> {
    let order_id = existing.order_id;
    if existing.user_id.is_some_and(|u| u != caller.sub) && !caller.is_admin() {
        return Err(ApiError::conflict(format!(
            "order {order_id} has a reservation of another user"
        )));
    }
    if existing.state == ReservationState::Released {
        return Err(ApiError::conflict(format!(
            "the stock of order {order_id} was released; place a new order"
        )));
    }
    metrics::counter!("stock_reservations_total", "outcome" => "replayed").increment(1);
    Ok(Reservation {
        order_id,
        items: existing.lines,
    })
}
