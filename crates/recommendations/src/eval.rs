//! Offline evaluation: a generated shop with hidden structure (favourite categories,
//! bundles bought together, power-law popularity), each user's last purchase held out,
//! and how often the recommender and the popularity baseline find it in their top k.
//! Pure and deterministic for a seed.

use std::collections::{HashMap, HashSet};

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::recommender::{
    CatalogProduct, CoPurchase, DAY_MICROS, Evidence, Profile, Purchase, Recommendation, Signal,
    SignalKind, popular, recommend,
};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalConfig {
    pub seed: u64,
    pub users: usize,
    pub products: usize,
    pub categories: usize,
    /// Groups of 2–4 products of one category bought together.
    pub bundles: usize,
    /// Orders per user, at least one.
    pub max_orders: usize,
    /// The history spans this many days, ending now.
    pub days: i64,
    pub popularity_window_days: i64,
    /// Recommendations looked at per user (the k of hit-rate@k).
    pub k: usize,
}

impl Default for EvalConfig {
    fn default() -> Self {
        EvalConfig {
            seed: 42,
            users: 2_000,
            products: 500,
            categories: 10,
            bundles: 80,
            max_orders: 6,
            days: 180,
            popularity_window_days: 30,
            k: 10,
        }
    }
}

/// How well one ranker found the held-out purchases.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RankerScore {
    /// Share of users whose held-out purchase is in the top k.
    pub hit_rate: f64,
    /// Mean reciprocal rank of the held-out purchase (0 when not in the top k).
    pub mrr: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct EvalReport {
    pub config: EvalConfig,
    /// Users with a purchase to hold out.
    pub users_evaluated: usize,
    pub recommender: RankerScore,
    pub popularity: RankerScore,
}

impl EvalReport {
    /// The recommender's hit-rate over the baseline's.
    pub fn lift(&self) -> f64 {
        if self.popularity.hit_rate > 0.0 {
            self.recommender.hit_rate / self.popularity.hit_rate
        } else {
            f64::INFINITY
        }
    }

    pub fn to_markdown(&self) -> String {
        let c = &self.config;
        let k = c.k;
        format!(
            "Shop: {} users, {} products in {} categories, {} bundles, seed {}; \
             {} users evaluated (last purchase held out).\n\n\
             | ranker | hit-rate@{k} | MRR@{k} |\n\
             |---|---:|---:|\n\
             | recommender | {:.3} | {:.3} |\n\
             | popularity (last {} days) | {:.3} | {:.3} |\n\n\
             Lift (hit-rate): {:.2}×\n",
            c.users,
            c.products,
            c.categories,
            c.bundles,
            c.seed,
            self.users_evaluated,
            self.recommender.hit_rate,
            self.recommender.mrr,
            c.popularity_window_days,
            self.popularity.hit_rate,
            self.popularity.mrr,
            self.lift(),
        )
    }
}

/// SplitMix64: small, fast and the same on every platform, so a seed means one shop.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Uniform in `lo..=hi`.
    fn between(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// An index drawn with the given cumulative weights.
    fn weighted(&mut self, cumulative: &[f64]) -> usize {
        let total = cumulative.last().copied().unwrap_or(0.0);
        let x = self.unit() * total;
        cumulative
            .partition_point(|c| *c <= x)
            .min(cumulative.len() - 1)
    }
}

fn cumulative(weights: impl Iterator<Item = f64>) -> Vec<f64> {
    weights
        .scan(0.0, |sum, w| {
            *sum += w;
            Some(*sum)
        })
        .collect()
}

struct Order {
    user: usize,
    products: Vec<usize>,
    at: i64,
}

/// The generated shop: product `i` is in category `i % categories`, its popularity falls
/// with `i / categories` (a power law within every category).
struct Shop {
    catalog: HashMap<Uuid, CatalogProduct>,
    orders: Vec<Order>,
    views: Vec<Vec<Signal>>,
    favourites: Vec<Vec<usize>>,
}

fn product_id(i: usize) -> Uuid {
    Uuid::from_u128(i as u128 + 1)
}

fn category_name(c: usize) -> String {
    format!("category {c}")
}

fn generate(config: &EvalConfig) -> Shop {
    let mut rng = Rng(config.seed);
    let categories = config.categories.max(1);
    let catalog: HashMap<Uuid, CatalogProduct> = (0..config.products)
        .map(|i| {
            let p = CatalogProduct {
                id: product_id(i),
                name: format!("Product {i}"),
                category: category_name(i % categories),
                in_stock: true,
            };
            (p.id, p)
        })
        .collect();
    let weight = |i: usize| 1.0 / ((i / categories) as f64 + 1.0).powf(1.1);
    let in_category: Vec<Vec<usize>> = (0..categories)
        .map(|c| (c..config.products).step_by(categories).collect())
        .collect();
    let category_cumulative: Vec<Vec<f64>> = in_category
        .iter()
        .map(|ps| cumulative(ps.iter().map(|i| weight(*i))))
        .collect();
    let all_cumulative = cumulative((0..config.products).map(weight));
    let bundles: Vec<(usize, Vec<usize>)> = (0..config.bundles)
        .map(|_| {
            let c = rng.between(0, categories - 1);
            let size = rng.between(2, 4).min(in_category[c].len());
            let mut members = Vec::new();
            while members.len() < size {
                let p = in_category[c][rng.between(0, in_category[c].len() - 1)];
                if !members.contains(&p) {
                    members.push(p);
                }
            }
            (c, members)
        })
        .collect();

    let now = config.days * DAY_MICROS;
    let mut orders = Vec::new();
    let mut views = Vec::new();
    let mut favourites = Vec::new();
    for user in 0..config.users {
        let mut favs = vec![rng.between(0, categories - 1)];
        if rng.chance(0.5) {
            let second = rng.between(0, categories - 1);
            if second != favs[0] {
                favs.push(second);
            }
        }
        let mut bought: HashSet<usize> = HashSet::new();
        let mut times: Vec<i64> = (0..rng.between(1, config.max_orders.max(1)))
            .map(|_| (rng.unit() * now as f64) as i64)
            .collect();
        times.sort_unstable();
        for at in times {
            let fav = favs[rng.between(0, favs.len() - 1)];
            let fav_bundles: Vec<&Vec<usize>> = bundles
                .iter()
                .filter(|(c, _)| *c == fav)
                .map(|(_, m)| m)
                .collect();
            let mut products = Vec::new();
            if !fav_bundles.is_empty() && rng.chance(0.4) {
                let bundle = fav_bundles[rng.between(0, fav_bundles.len() - 1)];
                products.extend(bundle.iter().copied().filter(|p| !bought.contains(p)));
            } else {
                for _ in 0..rng.between(1, 2) {
                    let p = if rng.chance(0.8) {
                        in_category[fav][rng.weighted(&category_cumulative[fav])]
                    } else {
                        rng.weighted(&all_cumulative)
                    };
                    if !bought.contains(&p) && !products.contains(&p) {
                        products.push(p);
                    }
                }
            }
            if products.is_empty() {
                continue;
            }
            bought.extend(products.iter().copied());
            orders.push(Order { user, products, at });
        }
        let user_views = (0..rng.between(2, 8))
            .map(|_| {
                let fav = favs[rng.between(0, favs.len() - 1)];
                let p = in_category[fav][rng.weighted(&category_cumulative[fav])];
                Signal {
                    kind: SignalKind::View,
                    product_id: Some(product_id(p)),
                    category: Some(category_name(fav)),
                    query: None,
                    at: (rng.unit() * now as f64) as i64,
                }
            })
            .collect();
        views.push(user_views);
        favourites.push(favs);
    }
    Shop {
        catalog,
        orders,
        views,
        favourites,
    }
}

/// Generates the shop, holds out each user's last purchase, and scores both rankers.
pub fn evaluate(config: EvalConfig) -> EvalReport {
    let shop = generate(&config);
    let now = config.days * DAY_MICROS;

    // The last line of each user's last order is held out of everything the rankers see.
    let mut held_out: HashMap<usize, usize> = HashMap::new();
    let mut last_order: HashMap<usize, usize> = HashMap::new();
    for (i, order) in shop.orders.iter().enumerate() {
        last_order.insert(order.user, i);
    }
    let mut training: Vec<Order> = Vec::with_capacity(shop.orders.len());
    for (i, order) in shop.orders.iter().enumerate() {
        let mut products = order.products.clone();
        if last_order.get(&order.user) == Some(&i)
            && let Some(last) = products.pop()
        {
            held_out.insert(order.user, last);
        }
        if !products.is_empty() {
            training.push(Order {
                user: order.user,
                products,
                at: order.at,
            });
        }
    }

    let since = now - config.popularity_window_days * DAY_MICROS;
    let mut buyers: HashMap<Uuid, HashSet<usize>> = HashMap::new();
    let mut orders_with: HashMap<usize, Vec<usize>> = HashMap::new();
    let mut history: Vec<Vec<Purchase>> = vec![Vec::new(); config.users];
    for (i, order) in training.iter().enumerate() {
        for p in &order.products {
            orders_with.entry(*p).or_default().push(i);
            if order.at >= since {
                buyers.entry(product_id(*p)).or_default().insert(order.user);
            }
            let product = &shop.catalog[&product_id(*p)];
            history[order.user].push(Purchase {
                product_id: product.id,
                name: product.name.clone(),
                category: product.category.clone(),
                at: order.at,
            });
        }
    }
    let popularity: HashMap<Uuid, f64> = buyers
        .into_iter()
        .map(|(id, users)| (id, users.len() as f64))
        .collect();

    let mut users: Vec<usize> = held_out.keys().copied().collect();
    users.sort_unstable();
    let mut recommender = Tally::default();
    let mut baseline = Tally::default();
    for user in &users {
        let profile = Profile {
            purchases: std::mem::take(&mut history[*user]),
            signals: shop.views[*user].clone(),
            preferred_categories: shop.favourites[*user]
                .iter()
                .take(1)
                .map(|c| category_name(*c))
                .collect(),
        };
        let mut co_purchases: Vec<CoPurchase> = Vec::new();
        for anchor in profile.anchors().into_iter().take(50) {
            let index = anchor.as_u128() as usize - 1;
            for o in orders_with.get(&index).into_iter().flatten() {
                let order = &training[*o];
                co_purchases.extend(order.products.iter().map(|other| CoPurchase {
                    anchor,
                    other: product_id(*other),
                    at: order.at,
                }));
            }
        }
        let evidence = Evidence {
            catalog: &shop.catalog,
            profile: &profile,
            co_purchases: &co_purchases,
            popularity: &popularity,
            now,
        };
        let target = product_id(held_out[user]);
        recommender.add(&recommend(&evidence, config.k), target);
        baseline.add(&popular(&evidence, config.k), target);
    }
    EvalReport {
        users_evaluated: users.len(),
        recommender: recommender.score(users.len()),
        popularity: baseline.score(users.len()),
        config,
    }
}

#[derive(Default)]
struct Tally {
    hits: usize,
    reciprocal_ranks: f64,
}

impl Tally {
    fn add(&mut self, ranked: &[Recommendation], target: Uuid) {
        if let Some(rank) = ranked.iter().position(|r| r.product_id == target) {
            self.hits += 1;
            self.reciprocal_ranks += 1.0 / (rank + 1) as f64;
        }
    }

    fn score(&self, users: usize) -> RankerScore {
        let users = users.max(1) as f64;
        RankerScore {
            hit_rate: self.hits as f64 / users,
            mrr: self.reciprocal_ranks / users,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_recommender_clearly_beats_popularity_on_the_default_shop() {
        let report = evaluate(EvalConfig::default());
        println!("{}", report.to_markdown());
        assert!(report.users_evaluated > 1_500, "{report:?}");
        assert!(
            report.lift() >= 1.5,
            "hit-rate@10 only {:.2}× popularity's:\n{}",
            report.lift(),
            report.to_markdown()
        );
        assert!(report.recommender.mrr > report.popularity.mrr);
    }

    #[test]
    fn a_seed_means_one_report() {
        let small = EvalConfig {
            users: 200,
            seed: 7,
            ..EvalConfig::default()
        };
        assert_eq!(evaluate(small.clone()), evaluate(small.clone()));
        let other = evaluate(EvalConfig { seed: 8, ..small });
        assert!(other.users_evaluated > 0);
        assert!(other.to_markdown().contains("| recommender |"));
    }
}
