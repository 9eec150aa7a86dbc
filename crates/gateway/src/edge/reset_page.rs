//! `/reset-password`: the page a password reset link opens. It asks for the new password
//! and sets it through the users service, answering in words either way. The token rides
//! in the address, so the page is never cached, framed or sent on as a referrer.

use std::sync::Arc;

use axum::extract::rejection::QueryRejection;
use axum::extract::{FromRequest, Query, Request, State};
use axum::http::StatusCode;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use herald_platform::http::page::{escape, small_page};
use herald_users::accounts::AccountsApi;
use herald_users::domain::Password;
use herald_users::resets::NewPassword;
use serde::Deserialize;

use super::Edge;

#[derive(Clone)]
struct ResetPages {
    accounts: Arc<dyn AccountsApi>,
    edge: Arc<Edge>,
}

#[derive(Deserialize)]
struct Link {
    #[serde(default)]
    token: String,
}

#[derive(Deserialize)]
struct Submitted {
    #[serde(default)]
    token: String,
    #[serde(default)]
    password: String,
}

pub fn router(accounts: Arc<dyn AccountsApi>, edge: Arc<Edge>) -> Router {
    Router::new()
        .route("/reset-password", get(form).post(submit))
        .with_state(ResetPages { accounts, edge })
}

async fn form(link: Result<Query<Link>, QueryRejection>) -> Response {
    let token = link.map(|Query(link)| link.token).unwrap_or_default();
    if token.is_empty() {
        return small_page(
            StatusCode::BAD_REQUEST,
            "This link is incomplete",
            "<p>Open the link from the email exactly as it came, or \
             <a href=\"/#/forgot-password\">ask for a new one</a>.</p>",
        );
    }
    small_page(
        StatusCode::OK,
        "Set a new password",
        &format!(
            "<form method=\"post\" action=\"/reset-password\">\
             <input type=\"hidden\" name=\"token\" value=\"{}\">\
             <div class=\"field\"><label for=\"password\">New password</label>\
             <input id=\"password\" name=\"password\" type=\"password\" required \
             minlength=\"{}\" autocomplete=\"new-password\" aria-describedby=\"password-hint\" \
             autofocus><p id=\"password-hint\" class=\"muted small\">At least {} characters.</p></div>\
             <button type=\"submit\">Set password</button></form>",
            escape(&token),
            Password::MIN_CHARS,
            Password::MIN_CHARS
        ),
    )
}

async fn submit(State(pages): State<ResetPages>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let client = pages.edge.client(&parts).to_string();
    let request = Request::from_parts(parts, body);
    let Ok(Form(submitted)) = Form::<Submitted>::from_request(request, &()).await else {
        return small_page(
            StatusCode::BAD_REQUEST,
            "Nothing was sent",
            "<p>Send the form on the page the link opened.</p>",
        );
    };
    let asked = NewPassword {
        token: submitted.token,
        password: submitted.password,
        client: Some(client),
    };
    match pages.accounts.reset_password(&asked).await {
        Ok(_) => small_page(
            StatusCode::OK,
            "Your password is set",
            "<p>Every device that was signed in to your account is signed out. Sign in with \
             your new password.</p><p><a class=\"button\" href=\"/#/sign-in\">Sign in</a></p>",
        ),
        Err(e) => {
            let body = e.body();
            small_page(
                body.code.status(),
                "The password was not set",
                &format!(
                    "<p class=\"error\">{}</p><p><a href=\"/#/forgot-password\">Ask for a new link</a></p>",
                    escape(&body.message)
                ),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_token_from_the_address_cannot_write_into_the_page() {
        let link = Link {
            token: "\"><script>alert(1)</script>".to_owned(),
        };
        let response = form(Ok(Query(link))).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(
            response.headers()[axum::http::header::X_FRAME_OPTIONS],
            "DENY"
        );
        let body = axum::body::to_bytes(response.into_body(), 64 * 1024)
            .await
            .unwrap();
        let html = String::from_utf8(body.to_vec()).unwrap();
        assert!(!html.contains("<script>"), "{html}");
        assert!(html.contains("value=\"&quot;&gt;&lt;script&gt;"), "{html}");
    }
}
