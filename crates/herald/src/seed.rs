//! `herald seed`: fills a running Herald with a shop, through its public GraphQL API (the
//! services' own code paths: accounts are hashed, orders reserve stock, every event
//! flows), with a progress bar per step.
//!
//! The shop has structure, so that recommendations and campaigns have something to work
//! on: each user has one or two favourite categories (stated in their preferences, and
//! where most of their orders go), some switch promotions off, some accept email, some
//! keep quiet hours.

use std::time::Instant;

use anyhow::{Context, bail};
use futures::{StreamExt, TryStreamExt, stream};

use crate::client::{Admin, Client, GraphqlError, bar};
use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{RngExt, SeedableRng};
use serde_json::{Value, json};

const CATEGORIES: [(&str, &[&str]); 8] = [
    (
        "coffee",
        &[
            "Espresso Beans",
            "Burr Grinder",
            "Moka Pot",
            "Milk Frother",
            "Pour-Over Kettle",
        ],
    ),
    (
        "tea",
        &["Sencha", "Earl Grey", "Matcha Whisk", "Teapot", "Oolong"],
    ),
    (
        "kitchen",
        &[
            "Chef Knife",
            "Cutting Board",
            "Cast Iron Pan",
            "Mixing Bowls",
            "Apron",
        ],
    ),
    (
        "books",
        &["Cookbook", "Travel Guide", "Novel", "Field Notes", "Atlas"],
    ),
    (
        "garden",
        &[
            "Pruning Shears",
            "Watering Can",
            "Seed Kit",
            "Planter",
            "Gloves",
        ],
    ),
    (
        "toys",
        &[
            "Puzzle",
            "Building Blocks",
            "Kite",
            "Board Game",
            "Plush Bear",
        ],
    ),
    (
        "outdoor",
        &[
            "Tent",
            "Headlamp",
            "Water Bottle",
            "Trail Map",
            "Camp Stove",
        ],
    ),
    (
        "audio",
        &[
            "Headphones",
            "Speaker",
            "Turntable",
            "Microphone",
            "Cable Set",
        ],
    ),
];
const TIMEZONES: [&str; 4] = ["UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo"];

pub struct SeedOptions {
    pub admin: Admin,
    pub users: usize,
    /// Of the users, how many register with a password (and place the orders); the rest
    /// are imported.
    pub registered: usize,
    pub products: usize,
    pub orders: usize,
    /// Requests in flight at once.
    pub concurrency: usize,
    pub seed: u64,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeedReport {
    pub users: usize,
    pub products: usize,
    pub orders: usize,
    /// Orders refused for want of stock (the shop ran out).
    pub refused: usize,
}

struct Shopper {
    token: String,
    tastes: Vec<usize>,
}

/// Creates `products` products, `users` customers with preferences, then `orders` orders.
pub async fn seed(options: SeedOptions) -> anyhow::Result<SeedReport> {
    if options.concurrency == 0 {
        bail!("--concurrency must be at least 1");
    }
    if options.orders > 0
        && (options.users == 0 || options.registered == 0 || options.products == 0)
    {
        bail!("orders need at least one registered user and one product");
    }
    let client = Client::new(&options.admin.url)?;
    let admin = client
        .sign_in_admin(&options.admin.email, &options.admin.password)
        .await?;
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(options.seed);
    let run: u32 = rng.random();

    // Products, spread over the categories.
    let progress = bar(options.products, "products");
    let specs: Vec<(usize, String, i64)> = (0..options.products)
        .map(|i| {
            let category = i % CATEGORIES.len();
            let names = CATEGORIES[category].1;
            let name = format!("{} {}", names[(i / CATEGORIES.len()) % names.len()], i + 1);
            (category, name, rng.random_range(5..200) * 100 + 99)
        })
        .collect();
    let stock = (options.orders as i64 * 3 / options.products.max(1) as i64 + 50).min(1_000_000);
    let products: Vec<(usize, String)> = stream::iter(specs)
        .map(|(category, name, price)| {
            let client = &client;
            let admin = &admin;
            let progress = &progress;
            async move {
                let created = client
                    .call(
                        Some(admin),
                        "mutation($i: ProductInput!) { createProduct(input: $i) { id } }",
                        json!({ "i": { "name": name, "category": CATEGORIES[category].0,
                                       "priceCents": price, "stock": stock } }),
                    )
                    .await
                    .with_context(|| format!("creating product {name}"))?;
                progress.inc(1);
                let id = created["createProduct"]["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                anyhow::Ok((category, id))
            }
        })
        .buffer_unordered(options.concurrency)
        .try_collect()
        .await?;
    progress.finish();
    let mut by_category: Vec<Vec<String>> = vec![Vec::new(); CATEGORIES.len()];
    for (category, id) in products {
        by_category[category].push(id);
    }

    // Customers and their preferences.
    let progress = bar(options.users, "users");
    let profiles: Vec<(usize, Vec<usize>, Value)> = (0..options.users)
        .map(|i| {
            let mut tastes = vec![rng.random_range(0..CATEGORIES.len())];
            if rng.random_bool(0.4) {
                tastes.push(rng.random_range(0..CATEGORIES.len()));
                tastes.dedup();
            }
            let quiet = rng.random_bool(0.2);
            let preferences = json!({
                "promotions": rng.random_bool(0.8),
                "categories": tastes.iter().map(|t| CATEGORIES[*t].0).collect::<Vec<_>>(),
                "channels": if rng.random_bool(0.2) { json!(["IN_APP", "EMAIL"]) } else { json!(["IN_APP"]) },
                "timezone": TIMEZONES[rng.random_range(0..TIMEZONES.len())],
                "quietHoursStart": if quiet { json!("22:00") } else { Value::Null },
                "quietHoursEnd": if quiet { json!("07:00") } else { Value::Null },
            });
            (i, tastes, preferences)
        })
        .collect();
    // A few register with a password (to sign in by hand, and to place the orders); the
    // rest are imported a thousand at a time, as a shop brings its customer base in.
    let mut profiles = profiles;
    let imported = profiles.split_off(options.registered.min(profiles.len()));
    let name = |i: usize| format!("Shopper {}", i + 1);
    let email = |i: usize| format!("seed-{run:08x}-{i}@example.com");
    for chunk in imported.chunks(crate::import::CHUNK_ROWS) {
        let users: Vec<Value> = chunk
            .iter()
            .map(|(i, _, preferences)| {
                json!({ "name": name(*i), "email": email(*i), "preferences": preferences })
            })
            .collect();
        client
            .call(
                Some(&admin),
                "mutation($i: ImportUsersInput!) { importUsers(input: $i) { created } }",
                json!({ "i": { "users": users } }),
            )
            .await
            .context("importing customers")?;
        progress.inc(chunk.len() as u64);
    }
    let shoppers: Vec<Shopper> = stream::iter(profiles)
        .map(|(i, tastes, preferences)| {
            let client = &client;
            let progress = &progress;
            async move {
                let email = email(i);
                let registered = client
                    .call(
                        None,
                        "mutation($i: RegisterUserInput!) { registerUser(input: $i) { token } }",
                        json!({ "i": { "name": name(i), "email": email,
                                       "password": format!("seeded-{run:08x}") } }),
                    )
                    .await
                    .with_context(|| format!("registering {email}"))?;
                let token = registered["registerUser"]["token"].as_str().unwrap_or_default().to_owned();
                client
                    .call(
                        Some(&token),
                        "mutation($i: PreferencesInput!) { updateUserPreferences(input: $i) { id } }",
                        json!({ "i": preferences }),
                    )
                    .await
                    .with_context(|| format!("setting the preferences of {email}"))?;
                progress.inc(1);
                anyhow::Ok(Shopper { token, tastes })
            }
        })
        .buffer_unordered(options.concurrency)
        .try_collect()
        .await?;
    progress.finish();

    // Orders: mostly from the buyer's favourite categories.
    let progress = bar(options.orders, "orders");
    let baskets: Vec<(usize, Vec<String>)> = (0..options.orders)
        .map(|_| {
            let buyer = rng.random_range(0..shoppers.len());
            let lines = rng.random_range(1..=3);
            let mut items: Vec<String> = Vec::new();
            for _ in 0..lines {
                let category = if rng.random_bool(0.8) {
                    *shoppers[buyer].tastes.choose(&mut rng).unwrap_or(&0)
                } else {
                    rng.random_range(0..CATEGORIES.len())
                };
                if let Some(id) = by_category[category].choose(&mut rng)
                    && !items.contains(id)
                {
                    items.push(id.clone());
                }
            }
            if items.is_empty() {
                items.extend(by_category.iter().flatten().next().cloned());
            }
            (buyer, items)
        })
        .collect();
    let refused: Vec<bool> = stream::iter(baskets)
        .map(|(buyer, items)| {
            let client = &client;
            let progress = &progress;
            let token = &shoppers[buyer].token;
            async move {
                let lines: Vec<Value> = items
                    .iter()
                    .map(|id| json!({ "productId": id, "quantity": 1 }))
                    .collect();
                let placed = client
                    .call(
                        Some(token),
                        "mutation($i: PlaceOrderInput!) { placeOrder(input: $i) { id } }",
                        json!({ "i": { "items": lines } }),
                    )
                    .await;
                progress.inc(1);
                match placed {
                    Ok(_) => Ok(false),
                    Err(e)
                        if e.downcast_ref::<GraphqlError>()
                            .is_some_and(|g| g.code == "INSUFFICIENT_STOCK") =>
                    {
                        Ok(true)
                    }
                    Err(e) => Err(e.context("placing an order")),
                }
            }
        })
        .buffer_unordered(options.concurrency)
        .try_collect()
        .await?;
    progress.finish();
    let refused = refused.iter().filter(|r| **r).count();
    let report = SeedReport {
        users: shoppers.len() + imported.len(),
        products: by_category.iter().map(Vec::len).sum(),
        orders: options.orders - refused,
        refused,
    };
    eprintln!("seeded in {:.1} s", started.elapsed().as_secs_f64());
    Ok(report)
}
