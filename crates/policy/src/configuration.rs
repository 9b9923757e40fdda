//! Every pipeline of a whole configuration, compiled in one pass.
//!
//! Both the gateway (which keeps the pipelines) and the control plane (which compiles a
//! configuration to reject a bad write before storing it) need the same walk: parse each
//! policy document once, then merge and compile global → product → API → operation for
//! every operation, once without a product and once per product (with a policy) that
//! contains the API, plus one API-level pipeline (global → API) that answers CORS
//! preflights no operation matches. Keeping the walk here keeps the two from drifting
//! apart: a configuration the control plane accepts is one the gateway can load.

use gatehouse_model::Configuration;

use crate::context::ExpressionCache;
use crate::{CompileContext, NamedValues, Pipeline, PolicyDocument, PolicyError, compile};

/// Which pipeline [`compile_configuration`] produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct PipelineKey {
    /// Index of the API in `Configuration::apis`.
    pub api: usize,
    /// Index of the operation in the API's `operations`; `None` for the API-level
    /// pipeline (global and API scopes only).
    pub operation: Option<usize>,
    /// Index of the product in `Configuration::products` whose policy is merged in;
    /// `None` when no product applies.
    pub product: Option<usize>,
}

/// Compiles every pipeline of `config`, handing each to `sink` as it is built.
///
/// `origin` names where the configuration came from (a file path); policy errors carry
/// it with the document's place (`apis[echo].operations[get].policy`), line and column.
/// Product pipelines are produced only for products that have a policy: without one,
/// the product-less pipeline is the same.
///
/// # Errors
///
/// The first [`PolicyError`] (see [`check_configuration`] for all of them): a document
/// that does not parse or does not compile.
pub fn compile_configuration(
    config: &Configuration,
    origin: &str,
    sink: impl FnMut(PipelineKey, Pipeline),
) -> Result<(), PolicyError> {
    let mut problems = walk(config, origin, sink);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.swap_remove(0))
    }
}

/// Every problem of every policy document of `config`, each once, in the order the
/// walk of [`compile_configuration`] meets them: `gatehouse validate`. Empty when the
/// configuration's policies all compile.
#[must_use]
pub fn check_configuration(config: &Configuration, origin: &str) -> Vec<PolicyError> {
    walk(config, origin, |_, _| {})
}

/// The walk of [`compile_configuration`], going on past problems (a document that does
/// not parse is left out of the pipelines that would use it).
fn walk(
    config: &Configuration,
    origin: &str,
    mut sink: impl FnMut(PipelineKey, Pipeline),
) -> Vec<PolicyError> {
    let mut problems: Vec<PolicyError> = Vec::new();
    let mut report = |found: Vec<PolicyError>| {
        for problem in found {
            if !problems.contains(&problem) {
                problems.push(problem);
            }
        }
    };
    let named_values: NamedValues = config.named_values.iter().collect();
    // Fragments are read once; each inclusion compiles their policies where it is.
    let fragments: Vec<(String, PolicyDocument)> = config
        .fragments
        .iter()
        .filter_map(|fragment| {
            let place = format!("{origin}: fragments[{}]", fragment.id);
            match crate::parse_all(&place, &fragment.value) {
                Ok(document) if document.is_fragment() => Some((fragment.id.clone(), document)),
                Ok(document) => {
                    report(vec![PolicyError::new(
                        &place,
                        document.position(),
                        Some("policies"),
                        crate::ErrorKind::Structure,
                        "a policy fragment's root must be <fragment>, holding the policies to include",
                    )]);
                    None
                }
                Err(found) => {
                    report(found);
                    None
                }
            }
        })
        .collect();
    let expressions = ExpressionCache::default();
    let base = CompileContext::new(&named_values)
        .with_expression_cache(&expressions)
        .with_backends(&config.backends)
        .with_certificates(&config.certificates)
        .with_fragments(&fragments);

    let mut parse = |place: &str, xml: Option<&str>| -> Option<PolicyDocument> {
        match xml.map(|xml| crate::parse_all(&format!("{origin}: {place}"), xml)) {
            Some(Ok(document)) => Some(document),
            Some(Err(found)) => {
                report(found);
                None
            }
            None => None,
        }
    };
    let global = parse("policy", config.policy.as_deref());
    let product_docs: Vec<Option<PolicyDocument>> = config
        .products
        .iter()
        .map(|product| {
            parse(
                &format!("products[{}].policy", product.id),
                product.policy.as_deref(),
            )
        })
        .collect();
    let mut documents = Vec::new();
    for api in &config.apis {
        let api_place = format!("apis[{}]", api.id);
        let api_doc = parse(&format!("{api_place}.policy"), api.policy.as_deref());
        let operations: Vec<Option<PolicyDocument>> = api
            .operations
            .iter()
            .map(|operation| {
                parse(
                    &format!("{api_place}.operations[{}].policy", operation.id),
                    operation.policy.as_deref(),
                )
            })
            .collect();
        documents.push((api_doc, operations));
    }

    // With no API, no pipeline would merge the global and product policies: compile
    // them on their own, so a bad one is refused now rather than by the first API.
    if config.apis.is_empty() {
        let alone = std::iter::once(scopes(global.as_ref(), None, None, None)).chain(
            product_docs
                .iter()
                .flatten()
                .map(|product| scopes(global.as_ref(), Some(product), None, None)),
        );
        for scopes in alone.filter(|scopes| !scopes.is_empty()) {
            if let Err(found) = compile::compile_all(&scopes, &base) {
                report(found);
            }
        }
    }

    for (api_index, (api, (api_doc, op_docs))) in config.apis.iter().zip(&documents).enumerate() {
        let products: Vec<usize> = config
            .products
            .iter()
            .enumerate()
            .filter(|(_, product)| product.apis.contains(&api.id))
            .map(|(index, _)| index)
            .collect();
        match compile::compile_all(
            &scopes(global.as_ref(), None, api_doc.as_ref(), None),
            &base.with_api(api),
        ) {
            Ok(preflight) => sink(
                PipelineKey {
                    api: api_index,
                    operation: None,
                    product: None,
                },
                preflight,
            ),
            Err(found) => report(found),
        }

        for (op_index, (operation, op_doc)) in api.operations.iter().zip(op_docs).enumerate() {
            let context = base.with_api(api).with_operation(operation);
            let key = |product| PipelineKey {
                api: api_index,
                operation: Some(op_index),
                product,
            };
            match compile::compile_all(
                &scopes(global.as_ref(), None, api_doc.as_ref(), op_doc.as_ref()),
                &context,
            ) {
                Ok(pipeline) => sink(key(None), pipeline),
                Err(found) => report(found),
            }
            for &product in &products {
                let Some(product_doc) = product_docs[product].as_ref() else {
                    continue;
                };
                match compile::compile_all(
                    &scopes(
                        global.as_ref(),
                        Some(product_doc),
                        api_doc.as_ref(),
                        op_doc.as_ref(),
                    ),
                    &context,
                ) {
                    Ok(pipeline) => sink(key(Some(product)), pipeline),
                    Err(found) => report(found),
                }
            }
        }
    }
    problems
}

/// The scopes of one pipeline, outermost first; absent ones skipped.
fn scopes<'d>(
    global: Option<&'d PolicyDocument>,
    product: Option<&'d PolicyDocument>,
    api: Option<&'d PolicyDocument>,
    operation: Option<&'d PolicyDocument>,
) -> Vec<&'d PolicyDocument> {
    [global, product, api, operation]
        .into_iter()
        .flatten()
        .collect()
}

#[cfg(test)]
#[path = "configuration_tests.rs"]
mod tests;
