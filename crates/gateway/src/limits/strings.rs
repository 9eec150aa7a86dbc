//! No string a request hands to the services is longer than [`MAX_STRING_CHARS`]: every
//! domain field is far shorter (the longest, a product description, is 5,000), and an
//! overlong one is refused here, before any internal call, rather than failing a
//! service's transport.

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};
use async_graphql::{Name, Value, Variables};

pub const MAX_STRING_CHARS: usize = 10_000;

/// The first argument or variable holding an overlong string.
#[derive(Debug, PartialEq, Eq)]
pub struct Overlong {
    pub name: String,
    pub chars: usize,
}

impl std::fmt::Display for Overlong {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} holds a string of {} characters; at most {MAX_STRING_CHARS} are accepted",
            self.name, self.chars
        )
    }
}

pub fn check(doc: &ExecutableDocument, variables: &Variables) -> Result<(), Overlong> {
    for (name, value) in variables.iter() {
        if let Some(chars) = overlong_const(value) {
            return Err(Overlong {
                name: format!("variable ${name}"),
                chars,
            });
        }
    }
    for (_, operation) in doc.operations.iter() {
        for definition in &operation.node.variable_definitions {
            if let Some(chars) = definition
                .node
                .default_value
                .as_ref()
                .and_then(|v| overlong_const(&v.node))
            {
                return Err(Overlong {
                    name: format!("the default of ${}", definition.node.name.node),
                    chars,
                });
            }
        }
        selections(&operation.node.selection_set.node)?;
    }
    for fragment in doc.fragments.values() {
        selections(&fragment.node.selection_set.node)?;
    }
    Ok(())
}

/// Each argument once (fragments are checked where they are defined, not where spread).
fn selections(set: &SelectionSet) -> Result<(), Overlong> {
    for item in &set.items {
        let (arguments, directives, inner) = match &item.node {
            Selection::Field(field) => (
                &field.node.arguments[..],
                &field.node.directives,
                Some(&field.node.selection_set.node),
            ),
            Selection::InlineFragment(inline) => (
                &[][..],
                &inline.node.directives,
                Some(&inline.node.selection_set.node),
            ),
            Selection::FragmentSpread(spread) => (&[][..], &spread.node.directives, None),
        };
        let directive_arguments = directives.iter().flat_map(|d| d.node.arguments.iter());
        for (name, value) in arguments.iter().chain(directive_arguments) {
            if let Some(chars) = overlong(&value.node) {
                return Err(Overlong {
                    name: format!("argument {}", name.node),
                    chars,
                });
            }
        }
        if let Some(inner) = inner {
            selections(inner)?;
        }
    }
    Ok(())
}

fn too_long(s: &str) -> Option<usize> {
    // Bytes bound characters from above: most strings need no count.
    if s.len() <= MAX_STRING_CHARS {
        return None;
    }
    let chars = s.chars().count();
    (chars > MAX_STRING_CHARS).then_some(chars)
}

fn overlong(value: &async_graphql_value::Value) -> Option<usize> {
    use async_graphql_value::Value as V;
    match value {
        V::String(s) => too_long(s),
        V::List(items) => items.iter().find_map(overlong),
        V::Object(fields) => fields
            .iter()
            .find_map(|(name, v)| too_long(name.as_str()).or_else(|| overlong(v))),
        _ => None,
    }
}

fn overlong_const(value: &Value) -> Option<usize> {
    match value {
        Value::String(s) => too_long(s),
        Value::List(items) => items.iter().find_map(overlong_const),
        Value::Object(fields) => fields.iter().find_map(|(name, v): (&Name, &Value)| {
            too_long(name.as_str()).or_else(|| overlong_const(v))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_query(query: &str, variables: serde_json::Value) -> Result<(), Overlong> {
        let doc = async_graphql::parser::parse_query(query).unwrap();
        check(&doc, &Variables::from_json(variables))
    }

    #[test]
    fn overlong_literals_variables_and_defaults_are_named() {
        let long = "x".repeat(MAX_STRING_CHARS + 1);
        let err = check_query(
            &format!("{{ products(search: \"{long}\") {{ totalCount }} }}"),
            serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(err.name, "argument search");
        assert_eq!(err.chars, MAX_STRING_CHARS + 1);

        let err = check_query(
            "mutation($input: RegisterUserInput!) { registerUser(input: $input) { token } }",
            serde_json::json!({ "input": { "name": long, "email": "a@b.c", "password": "p" } }),
        )
        .unwrap_err();
        assert_eq!(err.name, "variable $input");

        let err = check_query(
            &format!("query($s: String = \"{long}\") {{ products(search: $s) {{ totalCount }} }}"),
            serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(err.name, "the default of $s");

        let err = check_query(
            &format!("{{ ...F }} fragment F on Query {{ products(input: [{{a: \"{long}\"}}]) {{ totalCount }} }}"),
            serde_json::json!({}),
        )
        .unwrap_err();
        assert_eq!(err.name, "argument input");
    }

    #[test]
    fn characters_not_bytes_are_counted() {
        let wide = "é".repeat(MAX_STRING_CHARS);
        assert_eq!(
            check_query(
                "query($s: String) { products(search: $s) { totalCount } }",
                serde_json::json!({ "s": wide })
            ),
            Ok(())
        );
    }
}
