//! Refresh tokens raced: a used one that comes back while its family's next refresh is
//! under way still signs out the whole family.

use herald_platform::backend_tests;
use herald_platform::testing::BackendSet;

use super::TestService;
use crate::accounts::{AccountsApi, LoginRequest, RegisterRequest};

backend_tests!(a_reused_token_revokes_the_family_even_during_its_next_refresh(threads = 4));

const ROUNDS: usize = 40;

async fn a_reused_token_revokes_the_family_even_during_its_next_refresh(set: BackendSet) {
    let s = TestService::start_with(set, |_| {}).await;
    let accounts = &s.accounts;
    let email = "ada@example.com";
    accounts
        .register(&RegisterRequest {
            name: "Ada".to_owned(),
            email: email.to_owned(),
            password: "correct horse".to_owned(),
            client: Some("laptop".to_owned()),
        })
        .await
        .unwrap();
    let sign_in = LoginRequest {
        email: email.to_owned(),
        password: "correct horse".to_owned(),
        client: Some("laptop".to_owned()),
    };
    for round in 0..ROUNDS {
        // A family: the first token used once (stolen meanwhile), the second current.
        let first = accounts.login(&sign_in).await.unwrap().refresh_token;
        let current = accounts.refresh(&first).await.unwrap().refresh_token;
        // The owner refreshes while the thief replays the used one.
        let (owner, thief) = tokio::join!(accounts.refresh(&current), accounts.refresh(&first));
        assert!(
            thief.is_err(),
            "round {round}: a used token was taken again"
        );
        // Whichever came first, nothing of the family may be refreshed any more.
        if let Ok(next) = owner {
            let after = accounts.refresh(&next.refresh_token).await;
            assert!(
                after.is_err(),
                "round {round}: a token issued during the revocation outlived its family"
            );
        }
        assert!(accounts.refresh(&current).await.is_err(), "round {round}");
    }
    s.finish().await;
}
