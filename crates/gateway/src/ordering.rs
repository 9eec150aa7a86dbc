//! Fields answered in the order the query asked for them (the GraphQL spec's "ordered
//! map", CollectFields order). async-graphql resolves a selection's fields concurrently
//! and keeps them in the order they finished, so `{ b: products … a: getUser … }` could
//! come back as `a`, `b`; this puts every object of the answer back in query order.

use std::sync::Arc;

use async_graphql::extensions::{
    Extension, ExtensionContext, ExtensionFactory, NextExecute, NextPrepareRequest,
};
use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Request, Response, ServerResult, Value};

/// The response keys of a selection, in query order, each with the keys below it.
#[derive(Debug, Default, PartialEq)]
struct Plan {
    keys: IndexMap<Name, Plan>,
}

impl Plan {
    /// The plan of the operation a request runs, or None when it names none that exists
    /// (execution reports that).
    fn of(doc: &ExecutableDocument, operation: Option<&str>) -> Option<Plan> {
        let operation = match operation {
            Some(name) => doc
                .operations
                .iter()
                .find(|(n, _)| n.is_some_and(|n| n.as_str() == name)),
            None => doc.operations.iter().next(),
        }?;
        let mut plan = Plan::default();
        plan.add(doc, &operation.1.node.selection_set.node);
        Some(plan)
    }

    /// Adds a selection set's keys; fragments are taken where they are spread, fields with
    /// one response key merge their selections (as execution does). Shape limits have
    /// bounded the expanded size and the fragment depth before this runs.
    fn add(&mut self, doc: &ExecutableDocument, set: &SelectionSet) {
        for item in &set.items {
            match &item.node {
                Selection::Field(field) => {
                    let key = field.node.response_key().node.clone();
                    let child = self.keys.entry(key).or_default();
                    child.add(doc, &field.node.selection_set.node);
                }
                Selection::InlineFragment(inline) => self.add(doc, &inline.node.selection_set.node),
                Selection::FragmentSpread(spread) => {
                    if let Some(fragment) = doc.fragments.get(&spread.node.fragment_name.node) {
                        self.add(doc, &fragment.node.selection_set.node);
                    }
                }
            }
        }
    }

    /// Reorders `value`'s objects after this plan.
    fn apply(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                let mut ordered = IndexMap::with_capacity(object.len());
                for (key, child) in &self.keys {
                    if let Some(mut inner) = object.swap_remove(key) {
                        if !child.keys.is_empty() {
                            child.apply(&mut inner);
                        }
                        ordered.insert(key.clone(), inner);
                    }
                }
                // Nothing should be left; if something is, it keeps its place at the end.
                ordered.extend(object.drain(..));
                *object = ordered;
            }
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item)),
            _ => {}
        }
    }
}

/// The extension that puts answers in query order.
pub struct QueryOrder;

impl ExtensionFactory for QueryOrder {
    fn create(&self) -> Arc<dyn Extension> {
        Arc::new(QueryOrder)
    }
}

#[async_trait::async_trait]
impl Extension for QueryOrder {
    async fn prepare_request(
        &self,
        ctx: &ExtensionContext<'_>,
        mut request: Request,
        next: NextPrepareRequest<'_>,
    ) -> ServerResult<Request> {
        let operation = request.operation_name.clone();
        let plan = Plan::of(request.parsed_query()?, operation.as_deref());
        if let Some(plan) = plan {
            request.data.insert(Arc::new(plan));
        }
        next.run(ctx, request).await
    }

    async fn execute(
        &self,
        ctx: &ExtensionContext<'_>,
        operation_name: Option<&str>,
        next: NextExecute<'_>,
    ) -> Response {
        let mut response = next.run(ctx, operation_name).await;
        if let Some(plan) = ctx.data_opt::<Arc<Plan>>() {
            plan.apply(&mut response.data);
        }
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str) -> Plan {
        Plan::of(&async_graphql::parser::parse_query(query).unwrap(), None).unwrap()
    }

    #[test]
    fn objects_and_lists_follow_the_query() {
        let plan = plan(
            "{ b: products { nodes { name id } } ...F a: __typename } fragment F on Query { c: getUser { id } b: products { totalCount } }",
        );
        let mut answer = Value::from_json(serde_json::json!({
            "a": "Query",
            "c": { "id": "1" },
            "b": { "totalCount": 2, "nodes": [{ "id": "1", "name": "x" }, { "id": "2", "name": "y" }] },
        }))
        .unwrap();
        plan.apply(&mut answer);
        assert_eq!(
            serde_json::to_string(&answer).unwrap(),
            r#"{"b":{"nodes":[{"name":"x","id":"1"},{"name":"y","id":"2"}],"totalCount":2},"c":{"id":"1"},"a":"Query"}"#
        );
    }

    #[test]
    fn the_named_operation_is_the_one_ordered() {
        let doc = async_graphql::parser::parse_query("query A { x y } query B { y x }").unwrap();
        let keys = |p: Plan| p.keys.keys().map(|k| k.to_string()).collect::<Vec<_>>();
        assert_eq!(keys(Plan::of(&doc, Some("B")).unwrap()), ["y", "x"]);
        assert!(Plan::of(&doc, Some("C")).is_none());
    }
}
