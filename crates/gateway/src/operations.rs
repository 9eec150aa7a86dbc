//! Every GraphQL operation, over HTTP or a WebSocket, goes through [`Operations`]: the
//! request limits before the schema sees it; then the schema (parsing once, validation
//! with its complexity limit, execution); then the answer put in query order, its errors
//! explained, coded and clipped, and the operation counted. A signed-in user's query over
//! HTTP whose answer depends only on their inbox is kept ([`crate::kept`]) and answered
//! again without running while the inbox is unchanged.
//!
//! These steps run around the schema, not as async-graphql extensions: with any extension
//! installed, every field of every answer (every node of a page) goes through the
//! extension chain, which cost a fifth of the CPU of an inbox page (docs/benchmarks.md,
//! "Read path").

use std::time::Instant;

use async_graphql::parser::types::{ExecutableDocument, OperationDefinition};
use async_graphql::{Request, Response, ServerResult};
use axum::body::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;

use crate::context::RequestAuth;
use crate::error::ensure_codes;
use crate::kept::{KeptAnswers, ReadVersions};
use crate::limits::{Parsed, QueryLimits};
use crate::metrics::{Outcome, RootFields};
use crate::ordering::Plan;
use crate::schema::HeraldSchema;

/// The schema with what every operation goes through.
#[derive(Clone)]
pub struct Operations {
    schema: HeraldSchema,
    limits: QueryLimits,
    kept: KeptAnswers,
}

/// An operation's answer: as the schema gave it, or already serialized (kept).
pub enum Answer {
    Response(Response),
    Json(Bytes),
}

/// What is known of an operation before it runs.
#[derive(Default)]
struct Prepared {
    plan: Option<Plan>,
    roots: Option<RootFields>,
    /// The parsed query, to keep if the schema accepts it.
    parsed: Option<Parsed>,
}

impl Operations {
    pub fn new(schema: HeraldSchema, limits: QueryLimits, kept: KeptAnswers) -> Operations {
        Operations {
            schema,
            limits,
            kept,
        }
    }

    /// One query or mutation, for a caller with these credentials (also in the request's
    /// data): from the kept answers when it can be.
    pub async fn answer(&self, request: Request, auth: &RequestAuth) -> Answer {
        let Some(claims) = auth.claims() else {
            return Answer::Response(self.execute(request).await);
        };
        let Some(key) = self.kept.key(&request, claims) else {
            return Answer::Response(self.execute(request).await);
        };
        let started = Instant::now();
        if let Some(kept) = self.kept.get(&key, claims).await {
            crate::metrics::record(&kept.outcomes, started.elapsed());
            return Answer::Json(kept.json);
        }
        let versions = ReadVersions::default();
        let (response, outcomes) = self.run(request.data(versions.clone())).await;
        match self.kept.keep(key, &versions, &response, outcomes) {
            Some(json) => Answer::Json(json),
            None => Answer::Response(response),
        }
    }

    /// One query or mutation.
    pub async fn execute(&self, request: Request) -> Response {
        self.run(request).await.0
    }

    /// One query or mutation, and how each of its root fields ended (counted already).
    async fn run(&self, mut request: Request) -> (Response, Vec<Outcome>) {
        let mut prepared = match self.prepare(&mut request) {
            Ok(prepared) => prepared,
            Err(refused) => return (self.refused(refused), Vec::new()),
        };
        let started = Instant::now();
        let mut response = self.schema.execute(request).await;
        let outcomes = match &prepared.roots {
            Some(roots) => roots.outcomes(&response),
            None => Vec::new(),
        };
        crate::metrics::record(&outcomes, started.elapsed());
        self.finish(&mut prepared, &mut response);
        (response, outcomes)
    }

    /// A subscription's answers (or a query's one answer) as a stream.
    pub fn execute_stream(&self, mut request: Request) -> BoxStream<'static, Response> {
        let mut prepared = match self.prepare(&mut request) {
            Ok(prepared) => prepared,
            Err(refused) => {
                return futures::stream::once(std::future::ready(self.refused(refused))).boxed();
            }
        };
        let this = self.clone();
        // Each answer is counted with the time since the one before (for a subscription,
        // since it started or since its last event).
        let mut since = Instant::now();
        self.schema
            .execute_stream(request)
            .map(move |mut response| {
                if let Some(roots) = &prepared.roots {
                    roots.record(&response, since.elapsed());
                }
                since = Instant::now();
                this.finish(&mut prepared, &mut response);
                response
            })
            .boxed()
    }

    fn prepare(&self, request: &mut Request) -> ServerResult<Prepared> {
        let parsed = self.limits.check(request)?;
        let name = request.operation_name.clone();
        let doc = request.parsed_query()?;
        // An operation that does not exist is reported by the schema.
        let Some(operation) = chosen(doc, name.as_deref()) else {
            return Ok(Prepared::default());
        };
        Ok(Prepared {
            plan: Some(Plan::of(doc, &operation.selection_set.node)),
            roots: Some(RootFields::of(doc, operation)),
            parsed,
        })
    }

    fn refused(&self, refused: async_graphql::ServerError) -> Response {
        let mut response = Response::from_errors(vec![refused]);
        self.finish(&mut Prepared::default(), &mut response);
        response
    }

    fn finish(&self, prepared: &mut Prepared, response: &mut Response) {
        if let Some(plan) = &prepared.plan {
            plan.apply(&mut response.data);
        }
        // Errors without a path: the schema refused the operation before running it.
        let accepted = response.errors.iter().all(|e| !e.path.is_empty());
        if let Some(parsed) = prepared.parsed.take()
            && accepted
        {
            self.limits.keep(parsed);
        }
        self.limits.explain(response);
        ensure_codes(response);
    }
}

/// The operation a request runs: the one it names, or its only one (of several unnamed,
/// any: the schema refuses the request).
fn chosen<'d>(doc: &'d ExecutableDocument, name: Option<&str>) -> Option<&'d OperationDefinition> {
    let (_, operation) = match name {
        Some(name) => doc
            .operations
            .iter()
            .find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
        None => doc.operations.iter().next(),
    }?;
    Some(&operation.node)
}

#[cfg(test)]
mod tests {
    use async_graphql::parser::types::Selection;

    use super::*;

    #[test]
    fn the_named_operation_is_the_one_run() {
        let doc = async_graphql::parser::parse_query("query A { x y } query B { y x }").unwrap();
        let first = |op: &OperationDefinition| match &op.selection_set.node.items[0].node {
            Selection::Field(field) => field.node.name.node.to_string(),
            _ => unreachable!(),
        };
        assert_eq!(chosen(&doc, Some("B")).map(first).as_deref(), Some("y"));
        assert!(chosen(&doc, Some("C")).is_none());
        let only = async_graphql::parser::parse_query("{ y x }").unwrap();
        assert_eq!(chosen(&only, None).map(first).as_deref(), Some("y"));
    }
}
