//! What the orders use cases (checkout, the status lifecycle) work with: the service's
//! storage, its outbox, and the stock the products service holds. The HTTP API
//! ([`crate::api`]) calls them with it; they know nothing of HTTP.

use herald_platform::db::Database;
use herald_platform::outbox::Outbox;

use crate::inventory::Inventory;

#[derive(Clone)]
pub struct Orders {
    pub db: Database,
    pub outbox: Outbox,
    pub inventory: Inventory,
}
