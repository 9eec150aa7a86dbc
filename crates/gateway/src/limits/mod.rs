//! What a request may ask of the gateway, checked before anything recurses over it: its
//! text's bracket nesting before parsing, its shape (fragments measured, never expanded)
//! before validation, and what it could return (list sizes multiplied) before execution.
//! Every refusal is `BAD_USER_INPUT` and names its limit.

mod nesting;
mod shape;
mod strings;

use std::sync::Arc;

use async_graphql::parser::types::ExecutableDocument;
use async_graphql::{Request, Response, ServerError, ServerResult};
use herald_platform::Settings;

pub use shape::ShapeLimits;

/// Brackets (`{`, `[`, `(`) a query's text may nest. The parser recurses once per level,
/// and the deepest legitimate queries (graphql-js introspection, nested inputs) stay
/// well under 20.
pub const MAX_NESTING: usize = 64;
/// Nested selection sets, fragments and inline fragments (async-graphql walks this deep).
pub const MAX_HEIGHT: usize = 32;
/// Nested `fields`/`interfaces`/`possibleTypes`/`inputFields` in introspection, as in
/// graphql-js's `MaxIntrospectionDepthRule`.
pub const MAX_INTROSPECTION_LISTS: usize = 2;
/// Characters of an error message sent back: messages quote names and values from the
/// request, which may be long.
pub const MAX_ERROR_MESSAGE: usize = 300;
/// Directives on one field, fragment or operation.
pub const MAX_DIRECTIVES: usize = 16;
/// Query text from which parsing is moved off the async workers.
const BIG_QUERY: usize = 16 * 1024;
/// Fields at an operation's root (aliases included). They resolve concurrently, most of
/// them with a call to a service, so this bounds what one request runs at once.
pub const MAX_ROOT_FIELDS: usize = 64;

/// Cuts `message` to [`MAX_ERROR_MESSAGE`] characters, marking the cut.
pub fn clip(message: &mut String) {
    if let Some((end, _)) = message.char_indices().nth(MAX_ERROR_MESSAGE) {
        message.truncate(end);
        message.push('…');
    }
}

/// The cost of a list field: its children once per item it may return. Used by the
/// schema's `complexity` attributes with each list's size argument (or its largest size).
pub fn list_cost(items: i32, child_complexity: usize) -> usize {
    let items = usize::try_from(items).unwrap_or(0);
    1usize.saturating_add(items.saturating_mul(child_complexity))
}

/// The message async-graphql refuses a query over the schema's complexity limit with.
const TOO_COMPLEX: &str = "Query is too complex.";

/// Query texts up to this long are kept parsed once the schema accepted them.
const KEPT_QUERY: usize = 4 * 1024;
/// The text of all the queries kept, in bytes. A parsed query takes up to about a hundred
/// times its text (a field per two characters), so this keeps at most some 16 MiB; the
/// queries an app sends again and again are a few hundred bytes each.
const KEPT_TEXT: u64 = 128 * 1024;

/// A query that passed the checks, parsed: keep it ([`QueryLimits::keep`]) once the
/// schema accepted it too.
pub struct Parsed {
    text: Arc<str>,
    doc: ExecutableDocument,
}

/// The gateway's request limits, applied to every operation over HTTP and WebSocket alike
/// ([`crate::operations`]); what a query could return is limited by the schema itself
/// (`limit_complexity` with [`QueryLimits::budget`]), and its refusal explained here.
#[derive(Clone)]
pub struct QueryLimits {
    shape: ShapeLimits,
    budget: usize,
    /// Query texts that passed the checks and that the schema accepted, parsed: parsing
    /// was a tenth of a small query's cost. Strings are checked again with each request's
    /// variables.
    parsed: moka::sync::Cache<Arc<str>, Arc<ExecutableDocument>>,
}

impl QueryLimits {
    pub fn new(settings: &Settings) -> QueryLimits {
        QueryLimits {
            shape: ShapeLimits {
                max_fields: settings.max_query_complexity,
                max_height: MAX_HEIGHT,
                max_depth: settings.max_query_depth,
                max_introspection_lists: MAX_INTROSPECTION_LISTS,
                max_root_fields: MAX_ROOT_FIELDS,
            },
            budget: settings.max_query_complexity,
            parsed: moka::sync::Cache::builder()
                .weigher(|text: &Arc<str>, _| u32::try_from(text.len()).unwrap_or(u32::MAX))
                .max_capacity(KEPT_TEXT)
                .build(),
        }
    }

    /// Checks a request before the schema sees it; the parsed document stays on it. A
    /// query not kept yet and small enough to keep comes back parsed.
    pub fn check(&self, request: &mut Request) -> ServerResult<Option<Parsed>> {
        if let Some(doc) = self.parsed.get(request.query.as_str()) {
            request.set_parsed_query(doc.as_ref().clone());
            check_strings(request)?;
            return Ok(None);
        }
        // Parsing a large document takes milliseconds of one core: off the async workers,
        // so that other requests (health checks among them) keep being served meanwhile.
        let big = request.query.len() >= BIG_QUERY;
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if big && multi_thread {
            tokio::task::block_in_place(|| check_shape(request, &self.shape))?;
        } else {
            check_shape(request, &self.shape)?;
        }
        check_strings(request)?;
        if request.query.len() > KEPT_QUERY {
            return Ok(None);
        }
        Ok(Some(Parsed {
            text: Arc::from(request.query.as_str()),
            doc: request.parsed_query()?.clone(),
        }))
    }

    /// Keeps a parsed query the schema accepted.
    pub fn keep(&self, parsed: Parsed) {
        self.parsed.insert(parsed.text, Arc::new(parsed.doc));
    }

    /// Names the limit in the schema's own refusal, and clips every error message.
    pub fn explain(&self, response: &mut Response) {
        for error in &mut response.errors {
            if error.message == TOO_COMPLEX {
                error.message = format!(
                    "the query could return more than {} nodes (HERALD_MAX_QUERY_COMPLEXITY): \
                     ask for fewer items (first, limit) or fields",
                    self.budget
                );
            }
            clip(&mut error.message);
        }
    }
}

/// Nesting before parsing, then the parsed document's shape; the parsed document stays
/// on the request so it is parsed once.
fn check_shape(request: &mut Request, shape: &ShapeLimits) -> ServerResult<()> {
    if nesting::check(&request.query, MAX_NESTING).is_err() {
        return Err(ServerError::new(
            format!("the query nests brackets more than {MAX_NESTING} levels deep"),
            None,
        ));
    }
    let doc = request.parsed_query()?;
    shape::check(doc, shape).map_err(|refusal| ServerError::new(refusal.to_string(), None))
}

/// The strings of the parsed document and of the request's variables.
fn check_strings(request: &mut Request) -> ServerResult<()> {
    let variables = request.variables.clone();
    let doc = request.parsed_query()?;
    strings::check(doc, &variables).map_err(|overlong| ServerError::new(overlong.to_string(), None))
}

#[cfg(test)]
mod tests {
    use async_graphql::Variables;

    use super::*;

    fn request(query: &str, search: &str) -> Request {
        Request::new(query).variables(Variables::from_json(serde_json::json!({ "s": search })))
    }

    #[test]
    fn a_kept_query_still_has_each_request_s_strings_checked() {
        let limits = QueryLimits::new(&Settings::default());
        let query = "query($s: String) { products(search: $s) { totalCount } }";
        let parsed = limits.check(&mut request(query, "moka")).unwrap();
        limits.keep(parsed.expect("small enough to keep"));
        assert!(limits.parsed.get(query).is_some(), "kept");
        assert!(
            limits.check(&mut request(query, "moka")).unwrap().is_none(),
            "a kept query is not parsed again"
        );
        let long = "x".repeat(strings::MAX_STRING_CHARS + 1);
        let Err(refused) = limits.check(&mut request(query, &long)) else {
            panic!("an overlong variable passed");
        };
        assert!(
            refused.message.contains("characters"),
            "{}",
            refused.message
        );
        // A query refused for its shape is not kept.
        let deep = format!("{{ {}x{} }}", "a { ".repeat(40), " }".repeat(40));
        assert!(limits.check(&mut Request::new(deep.as_str())).is_err());
        assert!(limits.parsed.get(deep.as_str()).is_none());
    }
}
