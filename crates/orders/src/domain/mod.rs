//! The rules of orders, without I/O: what a valid order request is, how a reservation
//! prices it, which status may follow which, and who sees which order.

mod pricing;
mod request;
mod status;

use herald_platform::auth::Claims;
use uuid::Uuid;

pub use pricing::{PricedLine, PricedOrder, PricingError, ReservedLine, price_order};
pub use request::{LineInput, OrderRequest, PageSize, ProductLine, Quantity};
pub use status::{can_move, statuses_leading_to, transition_refused};

/// Whose orders a caller sees: admins every order, everyone else only their own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewer {
    Admin,
    Buyer(Uuid),
}

impl Viewer {
    pub fn of(claims: &Claims) -> Viewer {
        if claims.is_admin() {
            Viewer::Admin
        } else {
            Viewer::Buyer(claims.sub)
        }
    }
}
