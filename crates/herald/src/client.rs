//! The CLI's way into a running Herald: its public GraphQL API over HTTP, as an admin
//! (`herald seed`, `herald import`).

use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};

/// Who the CLI acts as, and where: a gateway and an admin's credentials.
#[derive(Debug, Clone)]
pub struct Admin {
    /// The gateway, e.g. `http://localhost:4000`.
    pub url: String,
    pub email: String,
    pub password: String,
}

pub struct Client {
    http: reqwest::Client,
    endpoint: String,
}

impl Client {
    /// A client of the gateway at `url` (e.g. `http://localhost:4000`).
    pub fn new(url: &str) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()?,
            endpoint: format!("{}/graphql", url.trim_end_matches('/')),
        })
    }

    /// The `data` of a GraphQL call; an error names the operation and the server's code.
    pub async fn call(
        &self,
        token: Option<&str>,
        query: &str,
        variables: Value,
    ) -> anyhow::Result<Value> {
        let mut request = self
            .http
            .post(&self.endpoint)
            .json(&json!({ "query": query, "variables": variables }));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let body: Value = request
            .send()
            .await
            .with_context(|| format!("cannot reach {}", self.endpoint))?
            .json()
            .await
            .context("the gateway's answer is not JSON")?;
        if let Some(error) = body["errors"].get(0) {
            let extensions = &error["extensions"];
            return Err(GraphqlError {
                code: extensions["code"].as_str().unwrap_or("UNKNOWN").to_owned(),
                message: error["message"].as_str().unwrap_or_default().to_owned(),
                rows: extensions["rows"]
                    .as_array()
                    .map(|rows| {
                        rows.iter()
                            .filter_map(|row| {
                                let index = usize::try_from(row["index"].as_u64()?).ok()?;
                                Some((index, row["message"].as_str()?.to_owned()))
                            })
                            .collect()
                    })
                    .unwrap_or_default(),
                retry_after: extensions["retryAfter"].as_u64(),
            }
            .into());
        }
        Ok(body["data"].clone())
    }

    /// Signs in as an admin; the access token.
    pub async fn sign_in_admin(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let login = self
            .call(
                None,
                "mutation($i: LoginInput!) { loginUser(input: $i) { token user { role } } }",
                json!({ "i": { "email": email, "password": password } }),
            )
            .await
            .context("signing in as the admin")?;
        if login["loginUser"]["user"]["role"] != "ADMIN" {
            bail!("{email} is not an admin");
        }
        Ok(login["loginUser"]["token"]
            .as_str()
            .ok_or_else(|| anyhow!("no token in the login answer"))?
            .to_owned())
    }
}

/// An error the API answered with.
#[derive(Debug)]
pub struct GraphqlError {
    pub code: String,
    pub message: String,
    /// For a list refused whole: each wrong row's index and why.
    pub rows: Vec<(usize, String)>,
    /// For RATE_LIMITED: seconds to wait.
    pub retry_after: Option<u64>,
}

impl std::fmt::Display for GraphqlError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.message, self.code)
    }
}

impl std::error::Error for GraphqlError {}

/// A progress bar on stderr (hidden when stderr is not a terminal).
pub fn bar(total: usize, what: &'static str) -> ProgressBar {
    let bar = ProgressBar::new(total as u64);
    bar.set_style(
        ProgressStyle::with_template("{prefix:>9} [{bar:40}] {pos}/{len} {per_sec} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
    );
    bar.set_prefix(what);
    bar
}
