//! Fields answered in the order the query asked for them (the GraphQL spec's "ordered
//! map", CollectFields order). async-graphql resolves a selection's fields concurrently
//! and keeps them in the order they finished, so `{ b: products … a: getUser … }` could
//! come back as `a`, `b`; this puts every object of the answer back in query order.

use async_graphql::indexmap::IndexMap;
use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value};

/// The response keys of a selection, in query order, each with the keys below it.
#[derive(Debug, Default, PartialEq)]
pub struct Plan {
    keys: IndexMap<Name, Plan>,
}

impl Plan {
    /// The plan of an operation's selection.
    pub fn of(doc: &ExecutableDocument, selection: &SelectionSet) -> Plan {
        let mut plan = Plan::default();
        plan.add(doc, selection);
        plan
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

    /// Reorders `value`'s objects after this plan, in place; an object already in order
    /// (most are) is only compared.
    pub fn apply(&self, value: &mut Value) {
        match value {
            Value::Object(object) => {
                // Keys the plan does not know (there should be none) keep their place at
                // the end.
                let rank = |key: &Name| self.keys.get_index_of(key).unwrap_or(usize::MAX);
                let ordered = object
                    .keys()
                    .zip(object.keys().skip(1))
                    .all(|(a, b)| rank(a) <= rank(b));
                if !ordered {
                    object.sort_by(|a, _, b, _| rank(a).cmp(&rank(b)));
                }
                for (key, inner) in object.iter_mut() {
                    if let Some(child) = self.keys.get(key)
                        && !child.keys.is_empty()
                    {
                        child.apply(inner);
                    }
                }
            }
            Value::List(items) => items.iter_mut().for_each(|item| self.apply(item)),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(query: &str) -> Plan {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        let (_, operation) = doc.operations.iter().next().unwrap();
        Plan::of(&doc, &operation.node.selection_set.node)
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
}
