//! Kubernetes Ingress for Gatehouse (seed 002: APIM's self-hosted gateway Ingress
//! support): `networking.k8s.io/v1` Ingress objects whose class is
//! `azure-api-management/gateway` (so an APIM user's manifests work unchanged) or
//! `gatehouse` become routes, certificates and host names.
//!
//! This crate holds the pure half: [`translate()`] turns the Ingresses, Services and
//! Secrets of a cluster into a [`gatehouse_model::Configuration`] plus the problems of
//! the objects it had to leave out. It does no I/O, so every rule is unit-tested
//! without a cluster. Not here yet: the kube-rs watcher that feeds it and hands the
//! result to the gateway's `ConfigSink`, and the hybrid mode with the control plane;
//! `k8s.ingress.enabled` is not accepted by the gateway until they exist.

mod translate;

pub use translate::{
    APIM_CLASS, GATEHOUSE_CLASS, INGRESS_CLASSES, IngressProblem, ObjectRef, Translation, translate,
};
