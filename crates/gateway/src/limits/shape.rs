//! The shape of a parsed query, measured before any validation walks it: how many fields
//! it selects once its fragments are expanded, how deeply it nests, and how deeply its
//! introspection nests. Fragments are measured once each (never expanded), so a chain of
//! fragments that each spread the previous one twice costs its length, not 2^length.

use std::collections::{HashMap, HashSet};

use async_graphql::parser::types::{ExecutableDocument, Selection, SelectionSet};

/// Introspection fields that return lists of types' members; graphql-js refuses three
/// nested levels of them (`MaxIntrospectionDepthRule`), and so do we.
const INTROSPECTION_LISTS: [&str; 4] = ["fields", "interfaces", "possibleTypes", "inputFields"];

#[derive(Debug, Clone, Copy)]
pub struct ShapeLimits {
    /// Fields selected, fragments expanded.
    pub max_fields: usize,
    /// Nested selection sets, fragment spreads and inline fragments included (what
    /// async-graphql's own recursive checks walk).
    pub max_height: usize,
    /// Nested fields outside introspection.
    pub max_depth: usize,
    /// Nested `fields`/`interfaces`/`possibleTypes`/`inputFields` inside introspection.
    pub max_introspection_lists: usize,
    /// Fields at an operation's root, aliases and fragments included: each is resolved
    /// concurrently with the others, most by a call to a service.
    pub max_root_fields: usize,
}

/// Why a query's shape is refused; each names its limit.
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    FragmentCycle(String),
    UnknownFragment(String),
    TooManyRootFields { limit: usize },
    TooManyFields { limit: usize },
    TooTall { limit: usize },
    TooDeep { depth: usize, limit: usize },
    IntrospectionTooDeep { limit: usize },
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::FragmentCycle(name) => write!(f, "fragment {name} spreads itself"),
            Refusal::UnknownFragment(name) => write!(f, "unknown fragment \"{name}\""),
            Refusal::TooManyRootFields { limit } => write!(
                f,
                "the operation selects more than {limit} root fields (aliases and fragments \
                 included); send them as several requests"
            ),
            Refusal::TooManyFields { limit } => write!(
                f,
                "the query selects more than {limit} fields once its fragments are expanded \
                 (limit: HERALD_MAX_QUERY_COMPLEXITY)"
            ),
            Refusal::TooTall { limit } => write!(
                f,
                "the query nests selections and fragments more than {limit} levels deep"
            ),
            Refusal::TooDeep { depth, limit } => write!(
                f,
                "the query is nested {depth} fields deep; the limit is {limit} \
                 (HERALD_MAX_QUERY_DEPTH)"
            ),
            Refusal::IntrospectionTooDeep { limit } => write!(
                f,
                "introspection nests fields, interfaces, possibleTypes or inputFields more \
                 than {limit} levels deep"
            ),
        }
    }
}

/// Checks every operation of `doc` against `limits`; the work is linear in the document's
/// size (and, once the counts are known to be within the limits, in `max_fields`).
pub fn check(doc: &ExecutableDocument, limits: &ShapeLimits) -> Result<(), Refusal> {
    let fragments = measure_fragments(doc, limits)?;
    for (_, operation) in doc.operations.iter() {
        let size = measure(&operation.node.selection_set.node, &fragments, limits);
        if size.fields > limits.max_fields {
            return Err(Refusal::TooManyFields {
                limit: limits.max_fields,
            });
        }
        if size.height > limits.max_height {
            return Err(Refusal::TooTall {
                limit: limits.max_height,
            });
        }
        if size.root > limits.max_root_fields {
            return Err(Refusal::TooManyRootFields {
                limit: limits.max_root_fields,
            });
        }
    }
    // Counts are bounded now, so walking the expanded selections is too: every spread and
    // inline fragment leads to a field within `max_height` steps. The walk still counts
    // its steps, so no shape this measure misjudges can make it run long.
    let mut walk = Walk {
        doc,
        limits,
        deepest: 0,
        steps: limits
            .max_fields
            .saturating_mul(limits.max_height.saturating_add(1)),
    };
    for (_, operation) in doc.operations.iter() {
        walk.selections(&operation.node.selection_set.node, Mode::User, 0, 0)?;
    }
    if walk.deepest > limits.max_depth {
        return Err(Refusal::TooDeep {
            depth: walk.deepest,
            limit: limits.max_depth,
        });
    }
    Ok(())
}

/// A selection set's fields (fragments expanded), height, and fields at its own level
/// (through inline fragments and spreads).
#[derive(Debug, Clone, Copy, Default)]
struct Size {
    fields: usize,
    height: usize,
    root: usize,
}

/// A fragment spread in a selection set: which, how high up, and whether at the set's own
/// level.
struct Spread<'a> {
    name: &'a str,
    at: usize,
    root: bool,
}

/// What a selection set holds itself, with the fragments it spreads.
#[derive(Default)]
struct Local<'a> {
    fields: usize,
    height: usize,
    root: usize,
    spreads: Vec<Spread<'a>>,
}

/// `root`: `set`'s fields are at the level being counted (not inside another field).
fn local<'a>(set: &'a SelectionSet, level: usize, root: bool, out: &mut Local<'a>) {
    for item in &set.items {
        match &item.node {
            Selection::Field(field) => {
                out.fields += 1;
                out.root += usize::from(root);
                let inner = &field.node.selection_set.node;
                if !inner.items.is_empty() {
                    out.height = out.height.max(level + 1);
                    local(inner, level + 1, false, out);
                }
            }
            Selection::InlineFragment(inline) => {
                out.height = out.height.max(level + 1);
                local(&inline.node.selection_set.node, level + 1, root, out);
            }
            Selection::FragmentSpread(spread) => out.spreads.push(Spread {
                name: spread.node.fragment_name.node.as_str(),
                at: level + 1,
                root,
            }),
        }
    }
}

/// Combines a selection set's own size with the sizes of the fragments it spreads.
/// Counts saturate just past the limit, so sums stay small.
/// Every spread's fragment is measured already.
fn combine(own: &Local<'_>, fragments: &HashMap<&str, Size>, limits: &ShapeLimits) -> Size {
    let cap = limits.max_fields.saturating_add(1);
    let mut size = Size {
        fields: own.fields.min(cap),
        height: own.height,
        root: own.root.min(cap),
    };
    for spread in &own.spreads {
        if let Some(fragment) = fragments.get(spread.name) {
            size.fields = size.fields.saturating_add(fragment.fields).min(cap);
            size.height = size.height.max(spread.at + fragment.height);
            if spread.root {
                size.root = size.root.saturating_add(fragment.root).min(cap);
            }
        }
    }
    size
}

fn measure(set: &SelectionSet, fragments: &HashMap<&str, Size>, limits: &ShapeLimits) -> Size {
    let mut own = Local::default();
    local(set, 0, true, &mut own);
    combine(&own, fragments, limits)
}

/// Every fragment's size, each measured once, dependencies first, without recursing from
/// one fragment into another (a chain of thousands of fragments is only a long loop).
/// A spread of a fragment the document does not define is refused here: it would measure
/// as nothing while the walk below still follows the spreads around it.
fn measure_fragments<'a>(
    doc: &'a ExecutableDocument,
    limits: &ShapeLimits,
) -> Result<HashMap<&'a str, Size>, Refusal> {
    let locals: HashMap<&str, Local<'_>> = doc
        .fragments
        .iter()
        .map(|(name, fragment)| {
            let mut own = Local::default();
            local(&fragment.node.selection_set.node, 0, true, &mut own);
            (name.as_str(), own)
        })
        .collect();
    let operations = doc.operations.iter().map(|(_, op)| {
        let mut own = Local::default();
        local(&op.node.selection_set.node, 0, true, &mut own);
        own
    });
    for own in locals.values().chain(operations.collect::<Vec<_>>().iter()) {
        if let Some(unknown) = own.spreads.iter().find(|s| !locals.contains_key(s.name)) {
            return Err(Refusal::UnknownFragment(unknown.name.to_owned()));
        }
    }
    let mut sizes: HashMap<&str, Size> = HashMap::with_capacity(locals.len());
    let mut open: HashSet<&str> = HashSet::new();
    for start in locals.keys() {
        if sizes.contains_key(start) {
            continue;
        }
        // (fragment, how many of its spreads were looked at)
        let mut stack: Vec<(&str, usize)> = vec![(start, 0)];
        open.insert(start);
        while let Some(&(name, next)) = stack.last() {
            let own = &locals[name];
            match own.spreads.get(next).map(|s| s.name) {
                Some(spread) => {
                    if let Some(top) = stack.last_mut() {
                        top.1 += 1;
                    }
                    if sizes.contains_key(spread) {
                        continue;
                    }
                    if !open.insert(spread) {
                        return Err(Refusal::FragmentCycle(spread.to_owned()));
                    }
                    stack.push((spread, 0));
                }
                None => {
                    sizes.insert(name, combine(own, &sizes, limits));
                    open.remove(name);
                    stack.pop();
                }
            }
        }
    }
    Ok(sizes)
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    User,
    Introspection,
}

struct Walk<'a> {
    doc: &'a ExecutableDocument,
    limits: &'a ShapeLimits,
    deepest: usize,
    /// Selections left to visit.
    steps: usize,
}

impl Walk<'_> {
    fn selections(
        &mut self,
        set: &SelectionSet,
        mode: Mode,
        depth: usize,
        lists: usize,
    ) -> Result<(), Refusal> {
        for item in &set.items {
            self.steps = self.steps.checked_sub(1).ok_or(Refusal::TooManyFields {
                limit: self.limits.max_fields,
            })?;
            match &item.node {
                Selection::Field(field) => {
                    let name = field.node.name.node.as_str();
                    let inner = &field.node.selection_set.node;
                    match mode {
                        Mode::User if name == "__schema" || name == "__type" => {
                            self.selections(inner, Mode::Introspection, depth, 0)?;
                        }
                        Mode::User => {
                            self.deepest = self.deepest.max(depth + 1);
                            self.selections(inner, mode, depth + 1, lists)?;
                        }
                        Mode::Introspection if INTROSPECTION_LISTS.contains(&name) => {
                            if lists + 1 > self.limits.max_introspection_lists {
                                return Err(Refusal::IntrospectionTooDeep {
                                    limit: self.limits.max_introspection_lists,
                                });
                            }
                            self.selections(inner, mode, depth, lists + 1)?;
                        }
                        Mode::Introspection => self.selections(inner, mode, depth, lists)?,
                    }
                }
                Selection::InlineFragment(inline) => {
                    let on = inline
                        .node
                        .type_condition
                        .as_ref()
                        .map(|c| c.node.on.node.as_str());
                    let mode = mode_on(on, mode);
                    self.selections(&inline.node.selection_set.node, mode, depth, lists)?;
                }
                Selection::FragmentSpread(spread) => {
                    let Some(fragment) = self.doc.fragments.get(&spread.node.fragment_name.node)
                    else {
                        continue;
                    };
                    let mode = mode_on(
                        Some(fragment.node.type_condition.node.on.node.as_str()),
                        mode,
                    );
                    self.selections(&fragment.node.selection_set.node, mode, depth, lists)?;
                }
            }
        }
        Ok(())
    }
}

/// Selections on an introspection type (`__Type`, `__Field`, …) are introspection.
fn mode_on(type_condition: Option<&str>, mode: Mode) -> Mode {
    match type_condition {
        Some(on) if on.starts_with("__") => Mode::Introspection,
        _ => mode,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: ShapeLimits = ShapeLimits {
        max_fields: 1000,
        max_height: 32,
        max_depth: 12,
        max_introspection_lists: 2,
        max_root_fields: 64,
    };

    fn shape(query: &str) -> Result<(), Refusal> {
        check(&async_graphql::parser::parse_query(query).unwrap(), &LIMITS)
    }

    /// `F0 { __typename }`, then `Fi { ...F(i-1) ...F(i-1) }`: 2^n fields expanded.
    fn doubling_chain(n: usize) -> String {
        let mut query = format!("{{ ...F{n} }} fragment F0 on Query {{ __typename }}");
        for i in 1..=n {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{j} ...F{j} }}",
                j = i - 1
            ));
        }
        query
    }

    #[test]
    fn a_doubling_fragment_chain_is_refused_without_expanding_it() {
        let started = std::time::Instant::now();
        assert_eq!(
            shape(&doubling_chain(60)),
            Err(Refusal::TooManyFields { limit: 1000 })
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        // A short one is fine: 2^5 fields.
        assert_eq!(shape(&doubling_chain(5)), Ok(()));
    }

    #[test]
    fn a_long_fragment_chain_is_measured_without_recursing_through_it() {
        let n = 20_000;
        let mut query = format!("{{ ...F{n} }} fragment F0 on Query {{ __typename }}");
        for i in 1..=n {
            query.push_str(&format!(" fragment F{i} on Query {{ ...F{} }}", i - 1));
        }
        let doc = async_graphql::parser::parse_query(&query).unwrap();
        let limits = ShapeLimits {
            max_fields: 100_000,
            ..LIMITS
        };
        assert_eq!(check(&doc, &limits), Err(Refusal::TooTall { limit: 32 }));
    }

    /// A doubling chain whose every fragment also spreads one that does not exist: the
    /// unknown spread must not measure as nothing while the walk expands the rest.
    #[test]
    fn spreads_of_unknown_fragments_are_refused_before_any_walk() {
        let n = 24;
        let mut query = format!("{{ ...F{n} }} fragment F0 on Query {{ ...Nope }}");
        for i in 1..=n {
            query.push_str(&format!(
                " fragment F{i} on Query {{ ...F{j} ...F{j} ...Nope }}",
                j = i - 1
            ));
        }
        let started = std::time::Instant::now();
        assert_eq!(
            shape(&query),
            Err(Refusal::UnknownFragment("Nope".to_owned()))
        );
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
        assert_eq!(
            shape("{ a { ...Nope } }"),
            Err(Refusal::UnknownFragment("Nope".to_owned()))
        );
    }

    #[test]
    fn root_fields_are_counted_through_aliases_and_fragments() {
        let aliases = |n: usize| {
            let fields: Vec<String> = (0..n).map(|i| format!("a{i}: products {{ id }}")).collect();
            format!("{{ {} }}", fields.join(" "))
        };
        assert_eq!(shape(&aliases(64)), Ok(()));
        assert_eq!(
            shape(&aliases(65)),
            Err(Refusal::TooManyRootFields { limit: 64 })
        );
        // 5 × 2 × 8 = 80 root fields through fragments and an inline fragment.
        let eight: Vec<String> = (0..8).map(|i| format!("p{i}: products {{ id }}")).collect();
        let query = format!(
            "{{ ...A ...A ...A ...A ... on Query {{ ...A }} }} fragment A on Query {{ ...B ...B }} fragment B on Query {{ {} }}",
            eight.join(" ")
        );
        assert_eq!(shape(&query), Err(Refusal::TooManyRootFields { limit: 64 }));
        // Nested fields are not root fields.
        let nested: Vec<String> = (0..200).map(|i| format!("n{i}: id")).collect();
        assert_eq!(
            shape(&format!("{{ products {{ {} }} }}", nested.join(" "))),
            Ok(())
        );
    }

    #[test]
    fn cycles_are_refused() {
        let query =
            "{ ...A } fragment A on Query { ...B } fragment B on Query { getUser { id } ...A }";
        assert!(matches!(shape(query), Err(Refusal::FragmentCycle(_))));
        assert!(matches!(
            shape("{ ...A } fragment A on Query { ...A }"),
            Err(Refusal::FragmentCycle(_))
        ));
    }

    #[test]
    fn depth_counts_fields_through_fragments_but_not_introspection() {
        let deep = format!("{{ {} id {} }}", "a { ".repeat(12), "}".repeat(12));
        assert_eq!(
            shape(&deep),
            Err(Refusal::TooDeep {
                depth: 13,
                limit: 12
            })
        );
        let through_fragment = "{ a { ...F } } fragment F on A { b { c { d { e { f { g { h { i { j { k { l { m } } } } } } } } } } } }";
        assert_eq!(
            shape(through_fragment),
            Err(Refusal::TooDeep {
                depth: 13,
                limit: 12
            })
        );
        let introspection = format!(
            "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
            "ofType { ".repeat(9),
            "}".repeat(9)
        );
        assert_eq!(shape(&introspection), Ok(()));
    }

    #[test]
    fn introspection_lists_nest_at_most_twice() {
        assert_eq!(
            shape("{ __schema { types { fields { type { fields { name } } } } } }"),
            Ok(())
        );
        assert_eq!(
            shape(
                "{ __type(name: \"Query\") { fields { type { fields { type { interfaces { name } } } } } } }"
            ),
            Err(Refusal::IntrospectionTooDeep { limit: 2 })
        );
        assert_eq!(
            shape(
                "{ __schema { types { ...T } } } fragment T on __Type { fields { type { possibleTypes { inputFields { name } } } } }"
            ),
            Err(Refusal::IntrospectionTooDeep { limit: 2 })
        );
    }

    #[test]
    fn graphql_js_introspection_query_passes() {
        assert_eq!(shape(INTROSPECTION_QUERY), Ok(()));
    }

    /// graphql-js 16 `getIntrospectionQuery()` with its default options.
    const INTROSPECTION_QUERY: &str = r#"
    query IntrospectionQuery {
      __schema {
        queryType { name }
        mutationType { name }
        subscriptionType { name }
        types { ...FullType }
        directives { name description locations args { ...InputValue } }
      }
    }
    fragment FullType on __Type {
      kind name description
      fields(includeDeprecated: true) { name description args { ...InputValue } type { ...TypeRef } isDeprecated deprecationReason }
      inputFields { ...InputValue }
      interfaces { ...TypeRef }
      enumValues(includeDeprecated: true) { name description isDeprecated deprecationReason }
      possibleTypes { ...TypeRef }
    }
    fragment InputValue on __InputValue { name description type { ...TypeRef } defaultValue }
    fragment TypeRef on __Type {
      kind name
      ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name ofType { kind name } } } } } } } } } }
    }"#;
}
