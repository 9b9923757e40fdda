//! Kubernetes Ingress for Gatehouse (seed 002: APIM's self-hosted gateway Ingress
//! support): `networking.k8s.io/v1` Ingress objects whose class is
//! `azure-api-management/gateway` (so an APIM user's manifests work unchanged) or
//! `gatehouse` become routes, certificates and host names.
//!
//! [`translate()`] is the pure half: it turns the Ingresses, Services and Secrets of a
//! cluster into a [`gatehouse_model::Configuration`] plus the problems of the objects it
//! had to leave out, with no I/O, so every rule is unit-tested without a cluster.
//! [`watch::run`] is the other: kube-rs watchers keep the three kinds in memory and each
//! change offers the translation to the gateway's `ConfigSink` (in hybrid mode, its
//! layer of the sources the gateway merges).

mod translate;
pub mod watch;

pub use translate::{
    APIM_CLASS, GATEHOUSE_CLASS, INGRESS_CLASSES, IngressProblem, ObjectRef, Translation, translate,
};
