//! The recommender: pure scoring over in-memory evidence, so it is fast, deterministic
//! and testable without storage. Three explainable components, each with its reason:
//! item-to-item co-occurrence in orders ("Often bought with …"), the user's category
//! affinity ("Because you like …") and recent popularity ("Popular right now").

use std::collections::{BTreeMap, HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Unix microseconds in a day; every time here is unix microseconds.
pub const DAY_MICROS: i64 = 86_400_000_000;

/// A kind of activity signal the user sends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SignalKind {
    View,
    Cart,
    Wishlist,
    Search,
}

impl SignalKind {
    pub const ALL: [SignalKind; 4] = [
        SignalKind::View,
        SignalKind::Cart,
        SignalKind::Wishlist,
        SignalKind::Search,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            SignalKind::View => "VIEW",
            SignalKind::Cart => "CART",
            SignalKind::Wishlist => "WISHLIST",
            SignalKind::Search => "SEARCH",
        }
    }

    pub fn parse(name: &str) -> Option<SignalKind> {
        SignalKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// How much the signal says about the user's taste in the product's category
    /// (a purchase says [`PURCHASE_AFFINITY`]).
    fn affinity(self) -> f64 {
        match self {
            SignalKind::Cart => 3.0,
            SignalKind::Wishlist => 2.0,
            SignalKind::View => 1.0,
            SignalKind::Search => 0.5,
        }
    }

    /// How strongly the product anchors "bought with" suggestions (a purchase: 1).
    fn anchor(self) -> f64 {
        match self {
            SignalKind::Cart => 0.6,
            SignalKind::Wishlist => 0.5,
            SignalKind::View => 0.3,
            SignalKind::Search => 0.0,
        }
    }
}

const PURCHASE_AFFINITY: f64 = 5.0;
/// What a preferred category from the user's settings is worth, next to the signals.
const PREFERRED_AFFINITY: f64 = 2.0;

/// A product as the recommender knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CatalogProduct {
    pub id: Uuid,
    pub name: String,
    pub category: String,
    pub in_stock: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Purchase {
    pub product_id: Uuid,
    pub name: String,
    pub category: String,
    pub at: i64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Signal {
    pub kind: SignalKind,
    pub product_id: Option<Uuid>,
    pub category: Option<String>,
    pub query: Option<String>,
    pub at: i64,
}

/// What one user did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Profile {
    pub purchases: Vec<Purchase>,
    pub signals: Vec<Signal>,
    pub preferred_categories: Vec<String>,
}

impl Profile {
    /// The products the user's history points at, strongest first: they anchor the
    /// co-occurrence lookup.
    pub fn anchors(&self) -> Vec<Uuid> {
        let mut anchors: Vec<(Uuid, f64)> = self.anchor_weights().into_iter().collect();
        anchors.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
        anchors.into_iter().map(|(id, _)| id).collect()
    }

    /// How strongly each product of the history anchors "bought with" suggestions.
    fn anchor_weights(&self) -> HashMap<Uuid, f64> {
        let mut weights: HashMap<Uuid, f64> = HashMap::new();
        for p in &self.purchases {
            weights.insert(p.product_id, 1.0);
        }
        for s in &self.signals {
            if let Some(id) = s.product_id {
                let w = weights.entry(id).or_default();
                *w = w.max(s.kind.anchor());
            }
        }
        weights.retain(|_, w| *w > 0.0);
        weights
    }
}

/// An order had both `anchor` and `other`, placed at `at`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CoPurchase {
    pub anchor: Uuid,
    pub other: Uuid,
    pub at: i64,
}

/// Everything one recommendation is computed from.
#[derive(Debug, Clone, Copy)]
pub struct Evidence<'a> {
    pub catalog: &'a HashMap<Uuid, CatalogProduct>,
    pub profile: &'a Profile,
    pub co_purchases: &'a [CoPurchase],
    /// Recent buyers per product (the popularity window is the caller's).
    pub popularity: &'a HashMap<Uuid, f64>,
    pub now: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recommendation {
    pub product_id: Uuid,
    pub score: f64,
    pub reason: String,
}

/// How the components weigh against each other.
const CO_WEIGHT: f64 = 1.0;
const CATEGORY_WEIGHT: f64 = 0.6;
const POPULARITY_WEIGHT: f64 = 0.1;
/// A co-purchase or a signal counts half after this long.
const HALF_LIFE_DAYS: f64 = 60.0;

fn decay(now: i64, at: i64) -> f64 {
    let age_days = (now - at).max(0) as f64 / DAY_MICROS as f64;
    0.5_f64.powf(age_days / HALF_LIFE_DAYS)
}

/// The best `limit` products for the user, never one they bought, one out of stock or
/// one unknown to the catalog, each once, with why.
pub fn recommend(evidence: &Evidence, limit: usize) -> Vec<Recommendation> {
    let bought: HashSet<Uuid> = evidence
        .profile
        .purchases
        .iter()
        .map(|p| p.product_id)
        .collect();
    let eligible =
        |id: &Uuid| !bought.contains(id) && evidence.catalog.get(id).is_some_and(|p| p.in_stock);

    let co = co_occurrence(evidence, &eligible);
    let affinity = category_affinity(evidence);
    let max_popularity = evidence
        .popularity
        .values()
        .copied()
        .fold(0.0_f64, f64::max);
    let category_peak = category_peaks(evidence);

    let mut candidates: HashSet<Uuid> = co.keys().copied().collect();
    candidates.extend(
        evidence
            .popularity
            .keys()
            .copied()
            .filter(|id| eligible(id)),
    );
    if !affinity.is_empty() {
        candidates.extend(
            evidence
                .catalog
                .values()
                .filter(|p| affinity.contains_key(&p.category) && eligible(&p.id))
                .map(|p| p.id),
        );
    }

    let mut scored: Vec<Recommendation> = candidates
        .into_iter()
        .filter_map(|id| {
            let product = evidence.catalog.get(&id)?;
            let popularity = evidence.popularity.get(&id).copied().unwrap_or(0.0);
            let bought_with = co.get(&id).map(|c| (c.score * CO_WEIGHT, c.anchor));
            let liked = affinity.get(&product.category).map(|share| {
                let peak = category_peak.get(&product.category).copied().unwrap_or(0.0);
                let within = if peak > 0.0 { popularity / peak } else { 0.0 };
                share * (0.3 + 0.7 * within) * CATEGORY_WEIGHT
            });
            let popular = if max_popularity > 0.0 {
                popularity / max_popularity * POPULARITY_WEIGHT
            } else {
                0.0
            };
            let co_part = bought_with.map_or(0.0, |(s, _)| s);
            let category_part = liked.unwrap_or(0.0);
            let score = co_part + category_part + popular;
            if score <= 0.0 {
                return None;
            }
            let reason = match bought_with {
                Some((s, anchor)) if s >= category_part && s >= popular => {
                    format!("Often bought with {}", name_of(evidence, anchor))
                }
                _ if category_part >= popular && category_part > 0.0 => {
                    format!("Because you like {}", product.category)
                }
                _ => "Popular right now".to_owned(),
            };
            Some(Recommendation {
                product_id: id,
                score,
                reason,
            })
        })
        .collect();
    rank(&mut scored, limit);
    scored
}

/// The most popular products the user has not bought and can buy: the fallback for new
/// users, and the baseline the recommender is measured against.
pub fn popular(evidence: &Evidence, limit: usize) -> Vec<Recommendation> {
    let bought: HashSet<Uuid> = evidence
        .profile
        .purchases
        .iter()
        .map(|p| p.product_id)
        .collect();
    let mut scored: Vec<Recommendation> = evidence
        .popularity
        .iter()
        .filter(|(id, score)| {
            **score > 0.0
                && !bought.contains(id)
                && evidence.catalog.get(id).is_some_and(|p| p.in_stock)
        })
        .map(|(id, score)| Recommendation {
            product_id: *id,
            score: *score,
            reason: "Popular right now".to_owned(),
        })
        .collect();
    rank(&mut scored, limit);
    scored
}

fn rank(scored: &mut Vec<Recommendation>, limit: usize) {
    scored.sort_by(|a, b| {
        b.score
            .total_cmp(&a.score)
            .then(a.product_id.cmp(&b.product_id))
    });
    scored.truncate(limit);
    for r in scored.iter_mut() {
        r.score = (r.score * 10_000.0).round() / 10_000.0;
    }
}

fn name_of(evidence: &Evidence, id: Uuid) -> String {
    evidence
        .catalog
        .get(&id)
        .map(|p| p.name.clone())
        .or_else(|| {
            evidence
                .profile
                .purchases
                .iter()
                .find(|p| p.product_id == id)
                .map(|p| p.name.clone())
        })
        .unwrap_or_else(|| "your picks".to_owned())
}

struct BoughtWith {
    /// In [0, 1]: the strongest candidate has 1.
    score: f64,
    /// The product of the user's history that contributed most, and how much.
    anchor: Uuid,
    strongest: f64,
}

/// Co-occurrence from orders, weighted by the anchor's strength in the user's history and
/// by recency, damped by the candidate's own popularity (so that bundles, not bestsellers,
/// surface here).
fn co_occurrence(
    evidence: &Evidence,
    eligible: &dyn Fn(&Uuid) -> bool,
) -> HashMap<Uuid, BoughtWith> {
    let anchor_weight = evidence.profile.anchor_weights();
    let mut per_pair: HashMap<(Uuid, Uuid), f64> = HashMap::new();
    for c in evidence.co_purchases {
        let Some(weight) = anchor_weight.get(&c.anchor) else {
            continue;
        };
        if c.anchor == c.other || !eligible(&c.other) {
            continue;
        }
        *per_pair.entry((c.other, c.anchor)).or_default() += weight * decay(evidence.now, c.at);
    }
    let mut pairs: Vec<((Uuid, Uuid), f64)> = per_pair.into_iter().collect();
    pairs.sort_by_key(|pair| pair.0);
    let mut scores: HashMap<Uuid, BoughtWith> = HashMap::new();
    for ((other, anchor), raw) in pairs {
        let damp = 1.0
            + evidence
                .popularity
                .get(&other)
                .copied()
                .unwrap_or(0.0)
                .ln_1p();
        let contribution = raw / damp;
        let entry = scores.entry(other).or_insert(BoughtWith {
            score: 0.0,
            anchor,
            strongest: 0.0,
        });
        entry.score += contribution;
        // Pairs come in anchor order, so a tie names the smaller id.
        if contribution > entry.strongest {
            entry.anchor = anchor;
            entry.strongest = contribution;
        }
    }
    let max = scores.values().map(|b| b.score).fold(0.0_f64, f64::max);
    if max > 0.0 {
        for b in scores.values_mut() {
            b.score /= max;
        }
    }
    scores
}

/// The user's taste per category, as shares summing to one: purchases, then cart,
/// wishlist, views and searches, recent ones counting more, plus preferred categories.
fn category_affinity(evidence: &Evidence) -> BTreeMap<String, f64> {
    let mut raw: BTreeMap<String, f64> = BTreeMap::new();
    let now = evidence.now;
    for p in &evidence.profile.purchases {
        *raw.entry(p.category.clone()).or_default() += PURCHASE_AFFINITY * decay(now, p.at);
    }
    for s in &evidence.profile.signals {
        let weight = s.kind.affinity() * decay(now, s.at);
        let category = s.category.clone().or_else(|| {
            s.product_id
                .and_then(|id| evidence.catalog.get(&id))
                .map(|p| p.category.clone())
        });
        match (category, &s.query) {
            (Some(category), _) => *raw.entry(category).or_default() += weight,
            (None, Some(query)) => {
                let matched = searched_categories(evidence.catalog, query);
                let share = weight / matched.len().max(1) as f64;
                for category in matched {
                    *raw.entry(category).or_default() += share;
                }
            }
            (None, None) => {}
        }
    }
    for category in &evidence.profile.preferred_categories {
        *raw.entry(category.clone()).or_default() += PREFERRED_AFFINITY;
    }
    raw.retain(|category, w| *w > 0.0 && !category.is_empty());
    let total: f64 = raw.values().sum();
    for w in raw.values_mut() {
        *w /= total;
    }
    raw
}

/// The categories a search points at: those named in the query, else those of the
/// products whose names contain it.
pub fn searched_categories(catalog: &HashMap<Uuid, CatalogProduct>, query: &str) -> Vec<String> {
    let mut named = categories_named_in(query, catalog.values().map(|p| p.category.as_str()));
    if named.is_empty() {
        let query = query.trim().to_lowercase();
        named = catalog
            .values()
            .filter(|p| !query.is_empty() && p.name.to_lowercase().contains(&query))
            .map(|p| p.category.clone())
            .collect();
    }
    named.sort();
    named.dedup();
    named
}

/// The categories among `categories` that a search query names (or is part of), sorted.
pub fn categories_named_in<'a>(
    query: &str,
    categories: impl IntoIterator<Item = &'a str>,
) -> Vec<String> {
    let query = query.trim().to_lowercase();
    if query.is_empty() {
        return Vec::new();
    }
    let mut named: Vec<String> = categories
        .into_iter()
        .filter(|c| {
            let c = c.to_lowercase();
            !c.is_empty() && (query.contains(&c) || c.contains(&query))
        })
        .map(str::to_owned)
        .collect();
    named.sort();
    named.dedup();
    named
}

/// The most popular product's popularity in each category.
fn category_peaks(evidence: &Evidence) -> HashMap<String, f64> {
    let mut peaks: HashMap<String, f64> = HashMap::new();
    for (id, popularity) in evidence.popularity {
        if let Some(p) = evidence.catalog.get(id) {
            let peak = peaks.entry(p.category.clone()).or_default();
            *peak = peak.max(*popularity);
        }
    }
    peaks
}

#[cfg(test)]
mod tests {
    use super::*;

    fn product(n: u128, name: &str, category: &str, in_stock: bool) -> CatalogProduct {
        CatalogProduct {
            id: Uuid::from_u128(n),
            name: name.to_owned(),
            category: category.to_owned(),
            in_stock,
        }
    }

    struct Shop {
        catalog: HashMap<Uuid, CatalogProduct>,
        popularity: HashMap<Uuid, f64>,
    }

    fn shop() -> Shop {
        let products = [
            product(1, "Espresso Beans", "coffee", true),
            product(2, "Burr Grinder", "coffee", true),
            product(3, "Milk Frother", "coffee", true),
            product(4, "Moka Pot", "coffee", false),
            product(5, "Green Tea", "tea", true),
            product(6, "Teapot", "tea", true),
            product(7, "Yoga Mat", "sport", true),
        ];
        let popularity = [(1, 5.0), (2, 1.0), (4, 9.0), (5, 2.0), (6, 1.0), (7, 10.0)]
            .into_iter()
            .map(|(n, p)| (Uuid::from_u128(n), p))
            .collect();
        Shop {
            catalog: products.into_iter().map(|p| (p.id, p)).collect(),
            popularity,
        }
    }

    fn beans_buyer() -> Profile {
        Profile {
            purchases: vec![Purchase {
                product_id: Uuid::from_u128(1),
                name: "Espresso Beans".to_owned(),
                category: "coffee".to_owned(),
                at: 10 * DAY_MICROS,
            }],
            signals: vec![Signal {
                kind: SignalKind::View,
                product_id: Some(Uuid::from_u128(2)),
                category: None,
                query: None,
                at: 11 * DAY_MICROS,
            }],
            preferred_categories: Vec::new(),
        }
    }

    #[test]
    fn a_coffee_buyer_hears_of_what_goes_with_it_and_why() {
        let shop = shop();
        let profile = beans_buyer();
        let co = [
            CoPurchase {
                anchor: Uuid::from_u128(1),
                other: Uuid::from_u128(3),
                at: 9 * DAY_MICROS,
            },
            CoPurchase {
                anchor: Uuid::from_u128(1),
                other: Uuid::from_u128(4),
                at: 9 * DAY_MICROS,
            },
        ];
        let evidence = Evidence {
            catalog: &shop.catalog,
            profile: &profile,
            co_purchases: &co,
            popularity: &shop.popularity,
            now: 12 * DAY_MICROS,
        };
        let got = recommend(&evidence, 10);
        let ids: Vec<u128> = got.iter().map(|r| r.product_id.as_u128()).collect();
        assert_eq!(ids[0], 3, "{got:?}");
        assert_eq!(got[0].reason, "Often bought with Espresso Beans");
        assert_eq!(ids[1], 2, "{got:?}");
        assert_eq!(got[1].reason, "Because you like coffee");
        assert!(!ids.contains(&1), "bought: {got:?}");
        assert!(!ids.contains(&4), "out of stock: {got:?}");
        let unique: HashSet<_> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len());
        assert!(got.windows(2).all(|w| w[0].score >= w[1].score));
        assert!(got.iter().any(|r| r.reason == "Popular right now"));
    }

    #[test]
    fn a_new_user_gets_what_is_popular_and_in_stock() {
        let shop = shop();
        let profile = Profile::default();
        let evidence = Evidence {
            catalog: &shop.catalog,
            profile: &profile,
            co_purchases: &[],
            popularity: &shop.popularity,
            now: 0,
        };
        let got = recommend(&evidence, 3);
        let ids: Vec<u128> = got.iter().map(|r| r.product_id.as_u128()).collect();
        assert_eq!(ids, vec![7, 1, 5]);
        assert!(got.iter().all(|r| r.reason == "Popular right now"));
        let baseline: Vec<u128> = popular(&evidence, 3)
            .iter()
            .map(|r| r.product_id.as_u128())
            .collect();
        assert_eq!(baseline, ids);
    }

    #[test]
    fn preferred_categories_and_searches_count_as_taste() {
        let shop = shop();
        let profile = Profile {
            signals: vec![Signal {
                kind: SignalKind::Search,
                product_id: None,
                category: None,
                query: Some("teapot".to_owned()),
                at: 0,
            }],
            preferred_categories: vec!["tea".to_owned()],
            ..Profile::default()
        };
        let evidence = Evidence {
            catalog: &shop.catalog,
            profile: &profile,
            co_purchases: &[],
            popularity: &shop.popularity,
            now: 0,
        };
        let got = recommend(&evidence, 2);
        let ids: Vec<u128> = got.iter().map(|r| r.product_id.as_u128()).collect();
        assert_eq!(ids, vec![5, 6]);
        assert!(got.iter().all(|r| r.reason == "Because you like tea"));
        assert_eq!(searched_categories(&shop.catalog, "Tea"), vec!["tea"]);
        assert_eq!(
            searched_categories(&shop.catalog, "frother"),
            vec!["coffee"]
        );
    }
}
