//! The served schema keeps the public contract (`docs/contract.graphql`, a copy of
//! `shared/contract/schema.graphql`): every type, field, argument and enum value the
//! contract fixes is served with the same type and default, except the operations that
//! later work will add, listed in `NOT_YET_SERVED`. When one of them lands, this test
//! fails until it is taken off the list.

use std::collections::BTreeMap;

use async_graphql::parser::parse_schema;
use async_graphql::parser::types::{TypeKind, TypeSystemDefinition};

const NOT_YET_SERVED: &[&str] = &[];

/// `Type.field(arg)` → its type and default, for everything a schema defines.
fn members(sdl: &str) -> BTreeMap<String, String> {
    let doc = parse_schema(sdl).expect("valid SDL");
    let mut out = BTreeMap::new();
    for def in doc.definitions {
        let TypeSystemDefinition::Type(ty) = def else {
            continue;
        };
        let name = ty.node.name.node.to_string();
        out.insert(name.clone(), "type".to_owned());
        match &ty.node.kind {
            TypeKind::Object(object) => {
                for field in &object.fields {
                    let field_name = format!("{name}.{}", field.node.name.node);
                    out.insert(field_name.clone(), field.node.ty.node.to_string());
                    for arg in &field.node.arguments {
                        let default = arg.node.default_value.as_ref().map(|d| d.node.to_string());
                        out.insert(
                            format!("{field_name}({})", arg.node.name.node),
                            format!("{} = {default:?}", arg.node.ty.node),
                        );
                    }
                }
            }
            TypeKind::InputObject(input) => {
                for field in &input.fields {
                    let default = field
                        .node
                        .default_value
                        .as_ref()
                        .map(|d| d.node.to_string());
                    out.insert(
                        format!("{name}.{}", field.node.name.node),
                        format!("{} = {default:?}", field.node.ty.node),
                    );
                }
            }
            TypeKind::Enum(e) => {
                for value in &e.values {
                    out.insert(
                        format!("{name}.{}", value.node.value.node),
                        "value".to_owned(),
                    );
                }
            }
            _ => {}
        }
    }
    out
}

fn pending(key: &str) -> bool {
    NOT_YET_SERVED.iter().any(|p| {
        key == *p || key.starts_with(&format!("{p}.")) || key.starts_with(&format!("{p}("))
    })
}

#[test]
fn served_schema_keeps_the_contract() {
    let contract = members(include_str!("../../../docs/contract.graphql"));
    let served = members(&herald_gateway::sdl());
    let mut problems = Vec::new();
    for (key, expected) in &contract {
        match served.get(key) {
            Some(actual) if actual == expected => {}
            Some(actual) => problems.push(format!("{key}: contract {expected}, served {actual}")),
            None if pending(key) => {}
            None => problems.push(format!("{key}: missing")),
        }
    }
    for p in NOT_YET_SERVED {
        if served.contains_key(*p) {
            problems.push(format!("{p} is served now: take it off NOT_YET_SERVED"));
        }
    }
    assert!(
        problems.is_empty(),
        "contract differences:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_vendored_contract_matches_shared_when_present() {
    let shared = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/contract/schema.graphql");
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(
            text,
            include_str!("../../../docs/contract.graphql"),
            "refresh docs/contract.graphql"
        );
    }
}
