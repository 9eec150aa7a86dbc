//! Per-operation metrics, labelled by the root field (a bounded set: the schema's own
//! fields), never by client-chosen operation names.

use std::sync::Arc;
use std::time::Instant;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextResolve, ResolveInfo,
};
use async_graphql::{ServerResult, Value};

pub struct OperationMetrics;

impl ExtensionFactory for OperationMetrics {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(OperationMetricsExtension)
    }
}

struct OperationMetricsExtension;

#[async_trait::async_trait]
impl Extension for OperationMetricsExtension {
    async fn resolve(
        &self,
        ctx: &ExtensionContext<'_>,
        info: ResolveInfo<'_>,
        next: NextResolve<'_>,
    ) -> ServerResult<Option<Value>> {
        let is_root = info.path_node.parent.is_none() && !info.is_for_introspection;
        if !is_root {
            return next.run(ctx, info).await;
        }
        let field = info.name.to_owned();
        let kind = info.parent_type.to_owned();
        let started = Instant::now();
        let result = next.run(ctx, info).await;
        let outcome = match &result {
            Ok(_) => "ok".to_owned(),
            Err(e) => e
                .extensions
                .as_ref()
                .and_then(|ext| ext.get("code"))
                .map(|code| code.to_string().trim_matches('"').to_owned())
                .unwrap_or_else(|| "error".to_owned()),
        };
        let labels = [("type", kind), ("field", field), ("outcome", outcome)];
        metrics::counter!("graphql_operations_total", &labels).increment(1);
        metrics::histogram!("graphql_operation_duration_seconds", &labels[..2])
            .record(started.elapsed().as_secs_f64());
        result
    }
}
