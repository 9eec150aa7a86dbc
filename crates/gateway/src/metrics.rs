//! Per-operation metrics, labelled by root field (a bounded set: the schema's own fields),
//! never by client-chosen operation names or aliases.

use std::time::Duration;

use async_graphql::parser::types::{
    ExecutableDocument, OperationDefinition, OperationType, Selection, SelectionSet,
};
use async_graphql::{Name, PathSegment, Response};

/// The root fields an operation asks for: (response key, field name).
#[derive(Debug, PartialEq)]
pub struct RootFields {
    kind: &'static str,
    fields: Vec<(Name, Name)>,
}

impl RootFields {
    pub fn of(doc: &ExecutableDocument, operation: &OperationDefinition) -> RootFields {
        let kind = match operation.ty {
            OperationType::Query => "Query",
            OperationType::Mutation => "Mutation",
            OperationType::Subscription => "Subscription",
        };
        let mut fields = Vec::new();
        collect(doc, &operation.selection_set.node, &mut fields);
        RootFields { kind, fields }
    }

    /// Counts each root field of an operation that ran (see [`RootFields::outcomes`]),
    /// with the operation's duration (root fields of a query run at once, a mutation's one
    /// after another).
    pub fn record(&self, response: &Response, took: Duration) {
        record(&self.outcomes(response), took);
    }

    /// Each root field of an operation that ran, with its outcome: `ok`, or the code of
    /// the first error under it. An operation refused before running (parse, validation:
    /// errors without a path) has none, nor does a field it skipped (`@skip`, `@include`).
    pub fn outcomes(&self, response: &Response) -> Vec<Outcome> {
        if response.errors.iter().any(|e| e.path.is_empty()) {
            return Vec::new();
        }
        let answered = |key: &Name| match &response.data {
            async_graphql::Value::Object(data) => data.contains_key(key),
            _ => false,
        };
        let mut outcomes = Vec::with_capacity(self.fields.len());
        for (key, field) in &self.fields {
            let error = response.errors.iter().find(
                |e| matches!(e.path.first(), Some(PathSegment::Field(f)) if f == key.as_str()),
            );
            if error.is_none() && !answered(key) {
                continue;
            }
            let outcome = error.map_or_else(
                || "ok".to_owned(),
                |e| {
                    e.extensions
                        .as_ref()
                        .and_then(|ext| ext.get("code"))
                        .map(|code| code.to_string().trim_matches('"').to_owned())
                        .unwrap_or_else(|| "error".to_owned())
                },
            );
            outcomes.push(Outcome {
                labels: [
                    ("type", self.kind.to_owned()),
                    ("field", field.to_string()),
                    ("outcome", outcome),
                ],
            });
        }
        outcomes
    }
}

/// How one root field of an operation ended, as its metrics are labelled.
#[derive(Debug, Clone)]
pub struct Outcome {
    labels: [(&'static str, String); 3],
}

/// Counts each outcome in `graphql_operations_total`, and the operation's duration.
pub fn record(outcomes: &[Outcome], took: Duration) {
    for Outcome { labels } in outcomes {
        metrics::counter!("graphql_operations_total", labels).increment(1);
        metrics::histogram!("graphql_operation_duration_seconds", &labels[..2])
            .record(took.as_secs_f64());
    }
}

/// The fields of a root selection, fragments taken where they are spread, each response
/// key once; introspection's own fields are left out. The shape limits have refused
/// unknown and cyclic fragments before this runs.
fn collect(doc: &ExecutableDocument, set: &SelectionSet, fields: &mut Vec<(Name, Name)>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                let name = &field.node.name.node;
                let key = field.node.response_key().node.clone();
                if !name.starts_with("__") && !fields.iter().any(|(k, _)| *k == key) {
                    fields.push((key, name.clone()));
                }
            }
            Selection::InlineFragment(inline) => {
                collect(doc, &inline.node.selection_set.node, fields)
            }
            Selection::FragmentSpread(spread) => {
                if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                    collect(doc, &fragment.node.selection_set.node, fields);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_fields_are_named_by_field_not_alias() {
        let doc = async_graphql::parser::parse_query(
            "mutation { a: markAllNotificationsAsRead ...F __typename } fragment F on Mutation { b: markAllNotificationsAsRead a: other }",
        )
        .unwrap();
        let (_, operation) = doc.operations.iter().next().unwrap();
        let roots = RootFields::of(&doc, &operation.node);
        assert_eq!(roots.kind, "Mutation");
        let fields: Vec<(String, String)> = roots
            .fields
            .iter()
            .map(|(k, f)| (k.to_string(), f.to_string()))
            .collect();
        assert_eq!(
            fields,
            [
                ("a".to_owned(), "markAllNotificationsAsRead".to_owned()),
                ("b".to_owned(), "markAllNotificationsAsRead".to_owned()),
            ]
        );
    }
}
