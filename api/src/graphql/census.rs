//! What a GraphQL document asks for, counted before async-graphql validates
//! or runs it: the selected operation's root fields (aliases and fragments
//! included), and every field of every operation and fragment once
//! fragments are expanded.
//!
//! Each fragment is walked once and its counts remembered, so the count is
//! linear in the document's size however often its fragments are spread (a
//! chain of fragments that each spread the next k times expands to k^n
//! fields: counting it must not take k^n steps, and neither may
//! validating it, so such a document is refused here, before validation).
//! A fragment cycle, or fragments nested deeper than [`MAX_NESTING`], is
//! refused rather than followed. Pure: no I/O.

use std::collections::HashMap;

use async_graphql::parser::types::{ExecutableDocument, OperationType, Selection, SelectionSet};

/// Deepest nesting of fragments (spreads and inline fragments) followed.
pub const MAX_NESTING: usize = 32;

/// Fields at the top of a selection set, and all fields below it, with
/// fragments expanded.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Counts {
    top: usize,
    total: usize,
}

impl Counts {
    fn add(self, other: Self) -> Self {
        Self {
            top: self.top.saturating_add(other.top),
            total: self.total.saturating_add(other.total),
        }
    }
}

/// The census of one document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Census {
    /// The selected operation's type, when the document has it.
    pub operation: Option<OperationType>,
    /// Root fields the selected operation selects.
    pub root_fields: usize,
    /// Fields of every operation and fragment definition, expanded.
    pub expanded_fields: usize,
}

/// Why a document is refused before it is validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A fragment spreads itself, directly or through others.
    Cycle(String),
    /// Fragments nest deeper than [`MAX_NESTING`].
    TooDeep,
}

/// Counts `document`; `operation` names the operation to run (the only one
/// when None).
pub fn census(document: &ExecutableDocument, operation: Option<&str>) -> Result<Census, Refusal> {
    let mut walker = Walker {
        document,
        known: HashMap::new(),
        visiting: Vec::new(),
    };
    let mut expanded = 0usize;
    let mut selected = None;
    for (name, definition) in document.operations.iter() {
        let counts = walker.set(&definition.node.selection_set.node, 0)?;
        expanded = expanded.saturating_add(counts.total);
        let chosen = match (operation, name) {
            (Some(wanted), Some(name)) => wanted == name.as_str(),
            (Some(_), None) => false,
            (None, _) => selected.is_none(),
        };
        if chosen {
            selected = Some((definition.node.ty, counts.top));
        }
    }
    for name in document.fragments.keys() {
        let counts = walker.fragment(name.as_str(), 0)?;
        expanded = expanded.saturating_add(counts.total);
    }
    Ok(Census {
        operation: selected.map(|(ty, _)| ty),
        root_fields: selected.map_or(0, |(_, top)| top),
        expanded_fields: expanded,
    })
}

struct Walker<'d> {
    document: &'d ExecutableDocument,
    /// Each fragment's counts, once walked.
    known: HashMap<&'d str, Counts>,
    /// The fragments being walked now (a spread of one of them is a cycle).
    visiting: Vec<&'d str>,
}

impl<'d> Walker<'d> {
    fn set(&mut self, set: &'d SelectionSet, depth: usize) -> Result<Counts, Refusal> {
        let mut counts = Counts::default();
        for item in &set.items {
            let more = match &item.node {
                Selection::Field(field) => {
                    let below = self.set(&field.node.selection_set.node, depth)?;
                    Counts {
                        top: 1,
                        total: below.total.saturating_add(1),
                    }
                }
                Selection::InlineFragment(inline) => {
                    self.set(&inline.node.selection_set.node, nested(depth)?)?
                }
                Selection::FragmentSpread(spread) => {
                    self.fragment(spread.node.fragment_name.node.as_str(), nested(depth)?)?
                }
            };
            counts = counts.add(more);
        }
        Ok(counts)
    }

    fn fragment(&mut self, name: &'d str, depth: usize) -> Result<Counts, Refusal> {
        if let Some(counts) = self.known.get(name) {
            return Ok(*counts);
        }
        if self.visiting.contains(&name) {
            return Err(Refusal::Cycle(name.to_string()));
        }
        // An unknown fragment counts nothing; validation names it.
        let Some(definition) = self.document.fragments.get(name) else {
            return Ok(Counts::default());
        };
        self.visiting.push(name);
        let counts = self.set(&definition.node.selection_set.node, depth);
        self.visiting.pop();
        let counts = counts?;
        self.known.insert(name, counts);
        Ok(counts)
    }
}

fn nested(depth: usize) -> Result<usize, Refusal> {
    if depth >= MAX_NESTING {
        return Err(Refusal::TooDeep);
    }
    Ok(depth + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn count(query: &str) -> Result<Census, Refusal> {
        let document = async_graphql::parser::parse_query(query).expect("parses");
        census(&document, None)
    }

    #[test]
    fn aliases_inline_fragments_and_spreads_all_count_as_root_fields() {
        let census = count(
            "mutation { a: x b: x ... { c: x ... { d: x } } ...F } fragment F on M { e: x f: x }",
        )
        .expect("counted");
        assert_eq!(census.operation, Some(OperationType::Mutation));
        assert_eq!(census.root_fields, 6);
    }

    #[test]
    fn a_fragment_spread_many_times_is_walked_once_and_counted_each_time() {
        // Each fragment spreads the next five times: 5^12 fields expanded.
        let mut query = String::from("{ ...F0 }");
        for i in 0..12 {
            let spreads = vec![format!("...F{}", i + 1); 5].join(" ");
            query.push_str(&format!(" fragment F{i} on Q {{ {spreads} }}"));
        }
        query.push_str(" fragment F12 on Q { x }");
        let started = std::time::Instant::now();
        let census = count(&query).expect("counted");
        assert!(census.root_fields >= 5usize.pow(12));
        assert!(census.expanded_fields >= 5usize.pow(12));
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn cycles_and_deep_nesting_are_refused_not_followed() {
        assert_eq!(
            count("{ ...A } fragment A on Q { ...B } fragment B on Q { ...A }"),
            Err(Refusal::Cycle("A".into()))
        );
        let mut query = String::from("{ ...F0 }");
        for i in 0..40 {
            query.push_str(&format!(" fragment F{i} on Q {{ ...F{} }}", i + 1));
        }
        query.push_str(" fragment F40 on Q { x }");
        assert_eq!(count(&query), Err(Refusal::TooDeep));
    }

    #[test]
    fn the_named_operation_is_the_one_counted() {
        let document =
            async_graphql::parser::parse_query("query A { x } mutation B { y z }").expect("parses");
        let census = census(&document, Some("B")).expect("counted");
        assert_eq!(
            (census.operation, census.root_fields, census.expanded_fields),
            (Some(OperationType::Mutation), 2, 3)
        );
    }
}
