//! What a request may ask of the gateway, checked before anything recurses over it: its
//! text's bracket nesting before parsing, its shape (fragments measured, never expanded)
//! before validation, and what it could return (list sizes multiplied) before execution.
//! Every refusal is `BAD_USER_INPUT` and names its limit.

mod nesting;
mod shape;
mod strings;

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextPrepareRequest, NextRequest, NextValidation,
};
use async_graphql::{Request, Response, ServerError, ServerResult, ValidationResult};
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

/// The gateway's request limits as a schema extension, so HTTP and WebSocket requests
/// pass the same checks.
pub struct QueryLimits {
    shape: ShapeLimits,
    budget: usize,
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
        }
    }
}

impl ExtensionFactory for QueryLimits {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryLimitsExtension {
            shape: self.shape,
            budget: self.budget,
        })
    }
}

struct QueryLimitsExtension {
    shape: ShapeLimits,
    budget: usize,
}

#[async_trait::async_trait]
impl Extension for QueryLimitsExtension {
    async fn request(&self, ctx: &ExtensionContext<'_>, next: NextRequest<'_>) -> Response {
        let mut response = next.run(ctx).await;
        for error in &mut response.errors {
            clip(&mut error.message);
        }
        response
    }

    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        // Parsing a large document takes milliseconds of one core: off the async workers,
        // so that other requests (health checks among them) keep being served meanwhile.
        let big = request.query.len() >= BIG_QUERY;
        let multi_thread = tokio::runtime::Handle::try_current()
            .is_ok_and(|h| h.runtime_flavor() == tokio::runtime::RuntimeFlavor::MultiThread);
        if big && multi_thread {
            tokio::task::block_in_place(|| check(&mut request, &self.shape))?;
        } else {
            check(&mut request, &self.shape)?;
        }
        next.run(ctx, request).await
    }

    async fn validation(
        &self,
        ctx: &ExtensionContext<'_>,
        next: NextValidation<'_>,
    ) -> Result<ValidationResult, Vec<ServerError>> {
        let result = next.run(ctx).await?;
        if result.complexity > self.budget {
            return Err(vec![ServerError::new(
                format!(
                    "the query could return up to {} nodes; the limit is {} \
                     (HERALD_MAX_QUERY_COMPLEXITY): ask for fewer items (first, limit) or fields",
                    result.complexity, self.budget
                ),
                None,
            )]);
        }
        Ok(result)
    }
}

/// Nesting before parsing, then the parsed document's shape and its strings; the parsed
/// document stays on the request so it is parsed once.
pub fn check(request: &mut Request, shape: &ShapeLimits) -> ServerResult<()> {
    if nesting::check(&request.query, MAX_NESTING).is_err() {
        return Err(ServerError::new(
            format!("the query nests brackets more than {MAX_NESTING} levels deep"),
            None,
        ));
    }
    let variables = request.variables.clone();
    let doc = request.parsed_query()?;
    shape::check(doc, shape).map_err(|refusal| ServerError::new(refusal.to_string(), None))?;
    strings::check(doc, &variables).map_err(|overlong| ServerError::new(overlong.to_string(), None))
}
