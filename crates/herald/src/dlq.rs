//! `herald dlq`: dead letters from the command line, straight from each consuming
//! service's storage (the same data the GraphQL `deadLetters` operations show).

use anyhow::Context;
use herald_platform::Settings;
use herald_platform::bus::{Bus, topology};
use herald_platform::db::Database;
use herald_platform::deadletters::DeadLetters;
use uuid::Uuid;

use crate::ServiceName;

/// Every service with storage consumes events, and so keeps dead letters.
async fn stores(settings: &Settings) -> anyhow::Result<Vec<(&'static str, DeadLetters, Database)>> {
    let mut stores = Vec::new();
    for service in ServiceName::ALL {
        let name = service.as_str();
        let Some(db) = service
            .descriptor()
            .open_database(settings)
            .await
            .with_context(|| format!("opening the {name} storage"))?
        else {
            continue;
        };
        stores.push((name, DeadLetters::new(db.clone()), db));
    }
    Ok(stores)
}

pub async fn list(settings: &Settings, queue: Option<&str>, first: i64) -> anyhow::Result<()> {
    let mut letters = Vec::new();
    for (_, store, db) in stores(settings).await? {
        letters.extend(store.list(queue, first).await?);
        db.close().await;
    }
    letters.sort_by_key(|letter| std::cmp::Reverse(letter.failed_at));
    letters.truncate(first.max(0) as usize);
    if letters.is_empty() {
        println!("no dead letters");
    }
    for letter in letters {
        println!(
            "{}  {}  {}  {} attempt(s)  {}\n    {}",
            letter.id,
            letter.failed_at.to_rfc3339(),
            letter.queue,
            letter.attempts,
            letter.event_type,
            letter.error
        );
    }
    Ok(())
}

pub async fn replay(
    settings: &Settings,
    id: Option<Uuid>,
    queue: Option<&str>,
) -> anyhow::Result<()> {
    let bus = Bus::connect(settings, &topology())
        .await
        .context("connecting the event bus")?;
    let mut total = 0;
    for (_, store, db) in stores(settings).await? {
        match id {
            Some(id) => {
                if store.replay(id, &bus).await? {
                    total += 1;
                }
            }
            None => total += store.replay_all(queue, &bus).await?,
        }
        db.close().await;
    }
    if let (Some(id), 0) = (id, total) {
        anyhow::bail!("no dead letter {id}");
    }
    println!("replayed {total}");
    Ok(())
}

pub async fn discard(settings: &Settings, id: Uuid) -> anyhow::Result<()> {
    let mut found = false;
    for (_, store, db) in stores(settings).await? {
        found |= store.discard(id).await?;
        db.close().await;
    }
    if !found {
        anyhow::bail!("no dead letter {id}");
    }
    println!("discarded {id}");
    Ok(())
}
