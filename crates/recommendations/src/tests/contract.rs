//! One contract, two implementations: recommendations called in process and called over
//! HTTP (with a service credential) answer every operation alike, errors included.

use std::sync::Arc;

use herald_events::Role;
use herald_platform::ErrorCode;
use herald_platform::auth::Claims;
use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;
use herald_platform::testing::serve_on_loopback;
use uuid::Uuid;

use super::TestService;
use crate::activity::ActivityInput;
use crate::recommendations::{RecommendationsApi, RecommendationsOverHttp};

backend_tests!(both_implementations_keep_one_contract);

/// The service's recommendations directly, and the same service's routes on a loopback
/// port.
async fn implementations(s: &TestService) -> Vec<(&'static str, Arc<dyn RecommendationsApi>)> {
    let client = serve_on_loopback(
        s.router.clone(),
        &s.key.service_key,
        "gateway",
        "recommendations",
    )
    .await;
    vec![
        ("in process", Arc::new(s.recommendations.clone())),
        ("over HTTP", Arc::new(RecommendationsOverHttp::new(client))),
    ]
}

fn acting(s: &TestService, user: Uuid) -> Claims {
    s.key.claims(user, Role::Customer)
}

fn activity(kind: &str, product_id: Option<String>, query: Option<&str>) -> ActivityInput {
    ActivityInput {
        kind: Some(kind.to_owned()),
        product_id,
        query: query.map(str::to_owned),
    }
}

async fn both_implementations_keep_one_contract(set: BackendSet) {
    let s = TestService::start(set).await;
    let beans = s.add_product("Espresso Beans", "coffee", 10).await;
    let frother = s.add_product("Milk Frother", "coffee", 10).await;
    let grinder = s.add_product("Burr Grinder", "coffee", 10).await;
    let mat = s.add_product("Yoga Mat", "sport", 10).await;
    for _ in 0..3 {
        s.buy(Uuid::now_v7(), &[&beans, &frother]).await;
    }
    s.buy(Uuid::now_v7(), &[&mat]).await;
    let mut answers = Vec::new();
    for (how, recommendations) in implementations(&s).await {
        let ada = Uuid::now_v7();
        let me = acting(&s, ada);
        s.buy(ada, &[&beans]).await;

        // Signals of known products and well-formed searches are recorded.
        for kind in ["VIEW", "CART", "WISHLIST"] {
            recommendations
                .record_activity(&me, &activity(kind, Some(grinder.id.to_string()), None))
                .await
                .unwrap();
        }
        recommendations
            .record_activity(&me, &activity("SEARCH", None, Some(" grinder ")))
            .await
            .unwrap();
        // A product the catalog does not have is NOT_FOUND; a malformed signal
        // BAD_USER_INPUT.
        let unknown = Uuid::now_v7();
        let error = recommendations
            .record_activity(&me, &activity("VIEW", Some(unknown.to_string()), None))
            .await
            .unwrap_err();
        assert_eq!(error.code(), ErrorCode::NotFound, "{how}: {error}");
        assert_eq!(error.to_string(), format!("no product {unknown}"), "{how}");
        for bad in [
            ActivityInput::default(),
            activity("PURCHASE", Some(beans.id.to_string()), None),
            activity("VIEW", None, None),
            activity("VIEW", Some("espresso".to_owned()), None),
            activity("SEARCH", None, Some("  ")),
            activity("SEARCH", Some(beans.id.to_string()), Some("coffee")),
        ] {
            let error = recommendations
                .record_activity(&me, &bad)
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {bad:?}");
        }

        // The picks, with their reasons: bought with what the user bought, then their taste.
        let picks = recommendations.recommendations(&me, Some(3)).await.unwrap();
        let picks: Vec<(Uuid, String)> = picks
            .into_iter()
            .map(|r| (r.product_id, r.reason))
            .collect();
        assert_eq!(
            picks,
            vec![
                (frother.id, "Often bought with Espresso Beans".to_owned()),
                (grinder.id, "Because you like coffee".to_owned()),
                (mat.id, "Popular right now".to_owned()),
            ],
            "{how}"
        );
        answers.push(picks);
        let all = recommendations.recommendations(&me, None).await.unwrap();
        assert!(all.len() <= crate::recommendations::DEFAULT_LIMIT, "{how}");
        assert!(
            recommendations.recommendations(&me, Some(50)).await.is_ok(),
            "{how}"
        );
        for bad in [0, 51, -1] {
            let error = recommendations
                .recommendations(&me, Some(bad))
                .await
                .unwrap_err();
            assert_eq!(error.code(), ErrorCode::BadUserInput, "{how}: {bad}");
            assert_eq!(error.to_string(), "limit must be 1 to 50", "{how}");
        }
        // Someone new gets what is popular, nothing of Ada's.
        let stranger = acting(&s, Uuid::now_v7());
        let theirs = recommendations
            .recommendations(&stranger, None)
            .await
            .unwrap();
        assert!(
            theirs.iter().all(|r| r.reason == "Popular right now"),
            "{how}: {theirs:?}"
        );
    }
    assert_eq!(answers[0], answers[1]);
    s.finish().await;
}
