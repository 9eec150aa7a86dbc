//! The `recommendation-digest` job: each user's top picks, at most once per digest period
//! and only when at least one pick is new since their last digest, as a
//! `recommendation.digest` event for the notifications service (whose decision function
//! applies the user's preferences, channels and quiet hours).

use std::collections::HashSet;

use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use herald_events::{Envelope, JOB_RECOMMENDATION_DIGEST, JobDue, Pick, RecommendationDigest};
use herald_platform::jobs::Job;
use herald_platform::outbox::Outbox;
use sqlx::Row;
use uuid::Uuid;

use crate::SERVICE;
use crate::advisor::Advisor;
use crate::store;

/// Users looked at per page.
const PAGE: i64 = 500;

pub struct DigestJob {
    pub advisor: Advisor,
    pub outbox: Outbox,
    pub period: Duration,
    /// Products named in a digest.
    pub picks: usize,
}

impl DigestJob {
    /// Sends the digests due at `now`; returns how many.
    pub async fn run_at(&self, now: DateTime<Utc>) -> anyhow::Result<usize> {
        let db = self.advisor.db();
        let cutoff = (now - self.period).timestamp_micros();
        let mut after = String::new();
        let mut sent = 0;
        loop {
            let rows = sqlx::query(
                "SELECT u.user_id, d.picks FROM preferred_categories u
                 LEFT JOIN digests d ON d.user_id = u.user_id
                 WHERE u.user_id > $1 AND (d.sent_at IS NULL OR d.sent_at <= $2)
                 ORDER BY u.user_id LIMIT $3",
            )
            .bind(&after)
            .bind(cutoff)
            .bind(PAGE)
            .fetch_all(db.pool())
            .await?;
            let Some(last) = rows.last() else {
                break;
            };
            after = last.try_get("user_id")?;
            for row in &rows {
                let user: String = row.try_get("user_id")?;
                let user_id: Uuid = user.parse()?;
                let previous: HashSet<Uuid> = row
                    .try_get::<Option<String>, _>("picks")?
                    .map(|p| serde_json::from_str(&p))
                    .transpose()?
                    .unwrap_or_default();
                let picks = self
                    .advisor
                    .recommendations(user_id, self.picks)
                    .await
                    .map_err(|e| anyhow::anyhow!("recommending for {user_id}: {e}"))?;
                if picks.iter().all(|p| previous.contains(&p.product_id)) {
                    continue;
                }
                let mut named = Vec::with_capacity(picks.len());
                for pick in picks {
                    if let Some(product) = store::find_product(db.pool(), pick.product_id).await? {
                        named.push(Pick {
                            product_id: pick.product_id,
                            name: product.name,
                            reason: pick.reason,
                        });
                    }
                }
                if named.is_empty() {
                    continue;
                }
                let ids: Vec<Uuid> = named.iter().map(|p| p.product_id).collect();
                let mut tx = db.begin().await?;
                sqlx::query(
                    "INSERT INTO digests (user_id, sent_at, picks) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id) DO UPDATE SET sent_at = excluded.sent_at, picks = excluded.picks",
                )
                .bind(&user)
                .bind(now.timestamp_micros())
                .bind(serde_json::to_string(&ids)?)
                .execute(&mut *tx)
                .await?;
                let digest = RecommendationDigest {
                    user_id,
                    picks: named,
                };
                self.outbox
                    .add(&mut tx, &Envelope::new(SERVICE, Some(user), &digest))
                    .await?;
                self.outbox.commit(tx).await?;
                sent += 1;
            }
        }
        Ok(sent)
    }
}

#[async_trait]
impl Job for DigestJob {
    fn name(&self) -> &'static str {
        JOB_RECOMMENDATION_DIGEST
    }

    async fn run(&self, _due: &JobDue) -> anyhow::Result<String> {
        let sent = self.run_at(Utc::now()).await?;
        Ok(format!("{sent} digests"))
    }
}
