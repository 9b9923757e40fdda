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

use crate::{CompileContext, NamedValues, Pipeline, PolicyDocument, PolicyError};

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
/// The first [`PolicyError`]: a document that does not parse or does not compile.
pub fn compile_configuration(
    config: &Configuration,
    origin: &str,
    mut sink: impl FnMut(PipelineKey, Pipeline),
) -> Result<(), PolicyError> {
    let named_values: NamedValues = config.named_values.iter().collect();
    let base = CompileContext::new(&named_values)
        .with_backends(&config.backends)
        .with_certificates(&config.certificates);

    let global = parse_scope(origin, "policy", config.policy.as_deref())?;
    let mut product_docs = Vec::with_capacity(config.products.len());
    for product in &config.products {
        let place = format!("products[{}].policy", product.id);
        product_docs.push(parse_scope(origin, &place, product.policy.as_deref())?);
    }

    for (api_index, api) in config.apis.iter().enumerate() {
        let api_place = format!("apis[{}]", api.id);
        let api_doc = parse_scope(
            origin,
            &format!("{api_place}.policy"),
            api.policy.as_deref(),
        )?;
        let products: Vec<usize> = config
            .products
            .iter()
            .enumerate()
            .filter(|(_, product)| product.apis.contains(&api.id))
            .map(|(index, _)| index)
            .collect();

        let preflight = crate::compile(
            &scopes(global.as_ref(), None, api_doc.as_ref(), None),
            &base.with_api(api),
        )?;
        sink(
            PipelineKey {
                api: api_index,
                operation: None,
                product: None,
            },
            preflight,
        );

        for (op_index, operation) in api.operations.iter().enumerate() {
            let place = format!("{api_place}.operations[{}].policy", operation.id);
            let op_doc = parse_scope(origin, &place, operation.policy.as_deref())?;
            let context = base.with_api(api).with_operation(operation);
            let key = |product| PipelineKey {
                api: api_index,
                operation: Some(op_index),
                product,
            };
            let pipeline = crate::compile(
                &scopes(global.as_ref(), None, api_doc.as_ref(), op_doc.as_ref()),
                &context,
            )?;
            sink(key(None), pipeline);
            for &product in &products {
                let Some(product_doc) = product_docs[product].as_ref() else {
                    continue;
                };
                let pipeline = crate::compile(
                    &scopes(
                        global.as_ref(),
                        Some(product_doc),
                        api_doc.as_ref(),
                        op_doc.as_ref(),
                    ),
                    &context,
                )?;
                sink(key(Some(product)), pipeline);
            }
        }
    }
    Ok(())
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

fn parse_scope(
    origin: &str,
    place: &str,
    xml: Option<&str>,
) -> Result<Option<PolicyDocument>, PolicyError> {
    xml.map(|xml| crate::parse(&format!("{origin}: {place}"), xml))
        .transpose()
}

#[cfg(test)]
#[path = "configuration_tests.rs"]
mod tests;
