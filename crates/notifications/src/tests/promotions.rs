//! One contract, two implementations: promotions called in process and promotions called
//! over HTTP (with a service credential) answer every operation alike, errors included.

use std::sync::Arc;
use std::time::Duration;

use chrono::Duration as Days;
use herald_events::{Preferences, Role};
use herald_platform::ErrorCode;
use herald_platform::auth::Claims;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use herald_platform::testing::serve_on_loopback;
use uuid::Uuid;

use super::TestService;
use crate::campaign::PromotionInput;
use crate::promotions::{PromotionsApi, PromotionsOverHttp, PromotionsQuery};

backend_tests!(both_implementations_keep_one_contract);

/// The service's campaigns directly, and the same service's routes on a loopback port.
async fn implementations(s: &TestService) -> Vec<(&'static str, Arc<dyn PromotionsApi>)> {
    let client = serve_on_loopback(
        s.router.clone(),
        &s.key.service_key,
        "gateway",
        "notifications",
    )
    .await;
    vec![
        ("in process", Arc::new(s.campaigns.clone())),
        ("over HTTP", Arc::new(PromotionsOverHttp::new(client))),
    ]
}

fn acting(s: &TestService, role: Role) -> Claims {
    s.key
        .verifier
        .verify(&s.key.user_token(Uuid::now_v7(), role))
        .unwrap()
}

fn input(title: &str, category: Option<&str>, send_in: Option<Days>) -> PromotionInput {
    PromotionInput {
        title: title.to_owned(),
        body: format!("{title}: 20 % off"),
        category: category.map(str::to_owned),
        send_at: send_in.map(|later| super::utc(super::START) + later),
    }
}

fn first(first: Option<i64>) -> PromotionsQuery {
    PromotionsQuery { first }
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let s = TestService::start(set).await;
    let ada = s
        .register_as("Ada", Role::Customer, Preferences::default())
        .await;
    for (how, promotions) in implementations(&s).await {
        let admin = acting(&s, Role::Admin);
        let customer = acting(&s, Role::Customer);

        // Scheduled for later, trimmed; listed newest first.
        let later = promotions
            .create_promotion(
                &admin,
                &input(" Spring sale ", Some("coffee"), Some(Days::days(2))),
            )
            .await
            .unwrap();
        assert_eq!(later.title, "Spring sale", "{how}");
        assert_eq!(later.category.as_deref(), Some("coffee"), "{how}");
        assert_eq!(later.status, "SCHEDULED", "{how}");
        assert_eq!(later.recipients, 0, "{how}");
        let listed = promotions.promotions(&admin, &first(None)).await.unwrap();
        assert_eq!(listed.first(), Some(&later), "{how}");

        // Due now: it starts sending at once, without the scheduler (to Ada, within her
        // daily cap of 3).
        let title = format!("Flash sale {how}");
        let now = promotions
            .create_promotion(&admin, &input(&title, None, None))
            .await
            .unwrap();
        let mut sent = None;
        for _ in 0..100 {
            let newest = promotions
                .promotions(&admin, &first(Some(1)))
                .await
                .unwrap();
            assert_eq!(newest.len(), 1, "{how}");
            assert_eq!(newest[0].id, now.id, "{how}");
            if newest[0].status == "SENT" {
                sent = Some(newest[0].clone());
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let sent = sent.unwrap_or_else(|| panic!("{how}: the promotion due now was not sent"));
        assert!(sent.recipients >= 1, "{how}: {sent:?}");
        assert!(
            s.titles_of(ada, "PROMOTION").await.contains(&title),
            "{how}"
        );

        // Admins only, whatever they ask.
        for error in [
            promotions
                .create_promotion(&customer, &input("Mine", None, None))
                .await
                .unwrap_err(),
            promotions
                .promotions(&customer, &first(None))
                .await
                .unwrap_err(),
        ] {
            assert_eq!(error.code(), ErrorCode::Forbidden, "{how}: {error}");
        }

        // Bad promotions and bad pages are BAD_USER_INPUT.
        for bad in [
            input("  ", None, None),
            input("Sale", Some(""), None),
            input("Sale", None, Some(Days::days(400))),
        ] {
            let error = promotions.create_promotion(&admin, &bad).await.unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
        }
        for bad in [0, -1, 101] {
            let error = promotions
                .promotions(&admin, &first(Some(bad)))
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {error}");
            assert_eq!(
                error.to_string(),
                "first must be between 1 and 100",
                "{how}"
            );
        }
    }
    s.finish().await;
}
