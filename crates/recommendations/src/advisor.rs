//! The advisor: records a user's activity, gathers the evidence for their recommendations
//! from storage, runs the pure [`recommender`](crate::recommender) over it and caches the
//! result per user until their next activity or order (or a short TTL).

use std::collections::HashSet;
use std::time::Duration;

use herald_platform::cache::Cache;
use herald_platform::db::{Database, now_micros};
use herald_platform::outbox::Outbox;
use herald_platform::{ApiError, ApiResult};
use uuid::Uuid;

use crate::activity::Activity;
use crate::recommender::{DAY_MICROS, Evidence, Profile, Recommendation, Signal, recommend};
use crate::store;

/// The most recommendations one request may ask for.
pub const MAX_LIMIT: usize = 50;
/// How far back orders count towards "often bought with".
const CO_PURCHASE_DAYS: i64 = 365;
/// Anchors and co-purchase rows looked at per user: recommendations stay fast however
/// long the history.
const MAX_ANCHORS: usize = 50;
const MAX_CO_PURCHASES: i64 = 5_000;
const POPULAR_PRODUCTS: i64 = 200;
const PRODUCTS_PER_TASTE: i64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AdvisorSettings {
    /// Popularity counts buyers within this many days.
    pub popularity_days: i64,
    pub cache_ttl: Duration,
}

impl Default for AdvisorSettings {
    fn default() -> Self {
        AdvisorSettings {
            popularity_days: 30,
            cache_ttl: Duration::from_secs(60),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Advisor {
    pub(crate) db: Database,
    cache: Cache,
    settings: AdvisorSettings,
    /// What the service announces (interests, digests) leaves through it.
    outbox: Outbox,
}

/// A cached list is filed under the user's generation and the catalog's: a change bumps
/// one of them, so a list computed before the change (and stored after it, by a request
/// that raced the change) is never read again.
fn cache_key(user_id: Uuid, user_generation: i64, catalog_generation: i64) -> String {
    format!("recommendations:{user_id}:{user_generation}:{catalog_generation}")
}

fn user_generation_key(user_id: Uuid) -> String {
    format!("recommendations:generation:{user_id}")
}

const CATALOG_GENERATION_KEY: &str = "recommendations:catalog-generation";
const GENERATION_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

impl Advisor {
    pub fn new(db: Database, cache: Cache, settings: AdvisorSettings) -> Advisor {
        Advisor {
            outbox: Outbox::new(db.clone()),
            db,
            cache,
            settings,
        }
    }

    pub fn db(&self) -> &Database {
        &self.db
    }

    pub fn outbox(&self) -> &Outbox {
        &self.outbox
    }

    /// Stores the signal (a product must be in the catalog) and forgets the user's cached
    /// recommendations.
    pub async fn record_activity(&self, user_id: Uuid, activity: &Activity) -> ApiResult<()> {
        let pool = self.db.pool();
        let signal = match activity {
            Activity::Product { kind, product_id } => {
                let product = store::find_product(pool, *product_id)
                    .await?
                    .ok_or_else(|| ApiError::not_found(format!("no product {product_id}")))?;
                Signal {
                    kind: *kind,
                    product_id: Some(product.id),
                    category: Some(product.category),
                    query: None,
                    at: now_micros(),
                }
            }
            Activity::Search { query } => Signal {
                kind: activity.kind(),
                product_id: None,
                category: store::searched_categories(pool, query)
                    .await?
                    .into_iter()
                    .next(),
                query: Some(query.clone()),
                at: now_micros(),
            },
        };
        let mut tx = self.db.begin().await?;
        store::record_signal(&mut tx, user_id, &signal).await?;
        if let Some(category) = &signal.category {
            store::note_interests(&mut tx, &self.outbox, &[(user_id, category.clone())]).await?;
        }
        self.outbox.commit(tx).await?;
        self.forget(user_id).await;
        Ok(())
    }

    /// Forgets the user's cached recommendations.
    pub async fn forget(&self, user_id: Uuid) {
        self.forget_all(&[user_id]).await;
    }

    /// Forgets every cached list: a product that can be recommended appeared (created, or
    /// back in stock). Sold-out products leave cached lists as they are read.
    pub async fn catalog_changed(&self) {
        self.cache
            .incr_existing_each(&[CATALOG_GENERATION_KEY.to_owned()])
            .await;
    }

    async fn generation(&self, key: &str) -> Option<i64> {
        self.cache.current_generation(key, GENERATION_TTL).await
    }

    /// Forgets the cached recommendations of each user at once. Only generations that
    /// exist move: a user without one has no list cached, and whoever creates it later
    /// computes after this change.
    pub async fn forget_all(&self, user_ids: &[Uuid]) {
        let keys: Vec<String> = user_ids.iter().copied().map(user_generation_key).collect();
        self.cache.incr_existing_each(&keys).await;
    }

    /// The user's best `limit` recommendations (at most [`MAX_LIMIT`]), cached.
    pub async fn recommendations(
        &self,
        user_id: Uuid,
        limit: usize,
    ) -> ApiResult<Vec<Recommendation>> {
        // Without generations (the cache is down) nothing is cached.
        let key = match (
            self.generation(&user_generation_key(user_id)).await,
            self.generation(CATALOG_GENERATION_KEY).await,
        ) {
            (Some(user), Some(catalog)) => Some(cache_key(user_id, user, catalog)),
            _ => None,
        };
        let cached = match &key {
            Some(key) => self.cache.get_json::<Vec<Recommendation>>(key).await,
            None => None,
        };
        let mut found = match cached {
            Some(cached) => cached,
            None => {
                let fresh = self.compute(user_id).await?;
                if let Some(key) = &key {
                    self.cache
                        .set_json(key, &fresh, self.settings.cache_ttl)
                        .await;
                }
                fresh
            }
        };
        // A cached list may be older than the last stock change: sold-out products leave it now.
        let ids: Vec<Uuid> = found.iter().map(|r| r.product_id).collect();
        let in_stock = store::in_stock(self.db.pool(), &ids).await?;
        found.retain(|r| in_stock.contains(&r.product_id));
        found.truncate(limit);
        Ok(found)
    }

    #[tracing::instrument(skip(self))]
    async fn compute(&self, user_id: Uuid) -> Result<Vec<Recommendation>, sqlx::Error> {
        let pool = self.db.pool();
        let now = now_micros();
        let profile = Profile {
            purchases: store::purchases_of(pool, user_id).await?,
            signals: store::signals_of(pool, user_id).await?,
            preferred_categories: store::preferred_categories_of(pool, user_id).await?,
        };
        let anchors: Vec<Uuid> = profile.anchors().into_iter().take(MAX_ANCHORS).collect();
        let co_purchases = store::co_purchases(
            pool,
            &anchors,
            now - CO_PURCHASE_DAYS * DAY_MICROS,
            MAX_CO_PURCHASES,
        )
        .await?;
        let popularity = store::popularity(
            pool,
            now - self.settings.popularity_days * DAY_MICROS,
            POPULAR_PRODUCTS,
        )
        .await?;

        let mut ids: HashSet<Uuid> = anchors.iter().copied().collect();
        ids.extend(co_purchases.iter().map(|c| c.other));
        ids.extend(popularity.keys().copied());
        let ids: Vec<Uuid> = ids.into_iter().collect();
        let mut tastes: Vec<String> = profile
            .purchases
            .iter()
            .map(|p| p.category.clone())
            .chain(profile.signals.iter().filter_map(|s| s.category.clone()))
            .chain(profile.preferred_categories.iter().cloned())
            .collect();
        tastes.sort();
        tastes.dedup();
        let catalog = store::catalog_for(pool, &ids, &tastes, PRODUCTS_PER_TASTE).await?;

        let evidence = Evidence {
            catalog: &catalog,
            profile: &profile,
            co_purchases: &co_purchases,
            popularity: &popularity,
            now,
        };
        Ok(recommend(&evidence, MAX_LIMIT))
    }
}
