//! Merging scopes: global → product → API → operation.
//!
//! For each section, from the outermost scope in:
//!
//! - a scope without the section inherits the merged section of its parent whole;
//! - a scope with the section replaces it, and its `<base/>` (at most one, checked when
//!   reading) is where the parent's merged section goes;
//! - a section without `<base/>` drops the parent's policies.
//!
//! Missing scopes are simply left out of the list given to [`crate::compile`].

use crate::document::{Policy, PolicyDocument, PolicyNode, SectionKind};

/// The policies of one section after merging `scopes` (outermost first).
pub(crate) fn merge<'d>(scopes: &[&'d PolicyDocument], section: SectionKind) -> Vec<&'d Policy> {
    let mut merged: Vec<&'d Policy> = Vec::new();
    for document in scopes {
        let Some(own) = document.section(section) else {
            continue;
        };
        let mut next = Vec::with_capacity(own.nodes().len() + merged.len());
        for node in own.nodes() {
            match node {
                PolicyNode::Base(_) => next.extend(merged.iter().copied()),
                PolicyNode::Policy(policy) => next.push(policy),
            }
        }
        merged = next;
    }
    merged
}

#[cfg(test)]
#[path = "merge_tests.rs"]
mod tests;
