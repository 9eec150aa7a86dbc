//! The promotion audiences the database keeps agree with the campaign's rule counted from
//! scratch, through registrations, imports, preference changes (in order, late, repeated)
//! and interests.

use std::collections::{HashMap, HashSet};

use herald_events::{CategoryInterest, Envelope, Preferences, UserRegistered, UsersImported};
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use uuid::Uuid;

use super::{TestService, preferences_updated, registered};
use crate::recipients::recipient_from_row;

backend_tests!(kept_audiences_match_the_campaign_rule_through_every_change);

const CATEGORIES: [&str; 4] = ["tea", "coffee", "books", "garden"];

/// A small deterministic generator, so a failure can be replayed.
struct Dice(u64);

impl Dice {
    fn roll(&mut self, sides: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % sides
    }

    fn preferences(&mut self) -> Preferences {
        let mut categories = Vec::new();
        for category in CATEGORIES {
            if self.roll(3) == 0 {
                // Spelled as users may have stored them before they were normalised.
                categories.push(if self.roll(4) == 0 {
                    category.to_uppercase()
                } else {
                    category.to_owned()
                });
            }
        }
        Preferences {
            promotions: self.roll(4) != 0,
            categories,
            ..Preferences::default()
        }
    }
}

/// The campaign's rule, counted from every recipient and interest.
async fn counted(s: &TestService) -> HashMap<String, i64> {
    let recipients: Vec<_> = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {} FROM recipients",
        crate::recipients::columns_of("recipients")
    )))
    .fetch_all(s.db.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| recipient_from_row(row).unwrap())
    .collect();
    let interests: Vec<(String, String)> =
        sqlx::query_as("SELECT category, user_id FROM category_interests")
            .fetch_all(s.db.pool())
            .await
            .unwrap();
    let interested: HashSet<(String, Uuid)> = interests
        .into_iter()
        .map(|(category, user)| (category, user.parse().unwrap()))
        .collect();
    let mut counts = HashMap::new();
    for category in std::iter::once("").chain(CATEGORIES) {
        let reached = recipients
            .iter()
            .filter(|r| r.preferences.promotions)
            .filter(|r| {
                category.is_empty()
                    || interested.contains(&(category.to_owned(), r.user_id))
                    || r.preferences
                        .categories
                        .iter()
                        .any(|own| own.to_lowercase() == category)
            })
            .count();
        counts.insert(category.to_owned(), reached as i64);
    }
    counts
}

async fn kept(s: &TestService) -> HashMap<String, i64> {
    let mut counts = HashMap::new();
    for category in std::iter::once("").chain(CATEGORIES) {
        let asked = (!category.is_empty()).then_some(category);
        counts.insert(
            category.to_owned(),
            s.campaigns.audience(asked).await.unwrap(),
        );
    }
    counts
}

async fn kept_audiences_match_the_campaign_rule_through_every_change(set: BackendSet) {
    let s = TestService::start(set).await;
    let mut dice = Dice(7);
    let mut users: Vec<(Uuid, i64)> = Vec::new();
    for step in 0..60 {
        let event = match dice.roll(6) {
            // A registration.
            0 => {
                let user = Uuid::now_v7();
                users.push((user, 1));
                registered(user, &format!("User{step}"), dice.preferences(), 1)
            }
            // An import of a few.
            1 => {
                let batch: Vec<UserRegistered> = (0..1 + dice.roll(5))
                    .map(|i| {
                        let user = Uuid::now_v7();
                        users.push((user, 1));
                        UserRegistered {
                            user_id: user,
                            name: format!("Imported {step}-{i}"),
                            email: format!("i{step}-{i}@example.com"),
                            role: herald_events::Role::Customer,
                            preferences: dice.preferences(),
                            preferences_version: 1,
                        }
                    })
                    .collect();
                Envelope::new("users", None, &UsersImported { users: batch })
            }
            // A change of preferences: newer, or one that arrives late (older).
            2 | 3 if !users.is_empty() => {
                let pick = dice.roll(users.len() as u64) as usize;
                let (user, version) = &mut users[pick];
                let late = dice.roll(4) == 0;
                if !late {
                    *version += 1;
                }
                preferences_updated(*user, dice.preferences(), if late { 1 } else { *version })
            }
            // Preferences of someone not registered yet (they overtook the registration).
            4 => {
                let user = Uuid::now_v7();
                users.push((user, 2));
                preferences_updated(user, dice.preferences(), 2)
            }
            // An interest.
            _ if !users.is_empty() => {
                let pick = dice.roll(users.len() as u64) as usize;
                let interest = CategoryInterest {
                    user_id: users[pick].0,
                    category: CATEGORIES[dice.roll(4) as usize].to_owned(),
                };
                Envelope::new("recommendations", None, &interest)
            }
            _ => continue,
        };
        s.handle(&event).await.unwrap();
        // Delivered twice: the second changes nothing.
        if dice.roll(5) == 0 {
            s.handle(&event).await.unwrap();
        }
        assert_eq!(
            kept(&s).await,
            counted(&s).await,
            "{set:?}: after step {step}"
        );
    }
    assert!(kept(&s).await[""] > 5, "the test reached people");
    s.finish().await;
}
