//! Fake backends and helpers shared by Gatehouse tests.
//!
//! Everything here talks over real sockets on `127.0.0.1`, always on port 0, so tests
//! run in parallel without fixed ports:
//!
//! - [`EchoBackend`]: an HTTP/1.1 + h2c server answering a JSON [`Echo`] of each request,
//!   with per-request behaviours chosen by headers and paths (delay, status, streamed
//!   downloads) and counters of requests and connections for pooling tests.
//! - [`SilentBackend`]: accepts TCP connections and never answers (response timeouts).
//! - [`BlackholeListener`]: a listener whose connects never complete (connect timeouts).
//! - [`refused_addr`]: an address where nothing listens (connection refused).
//! - [`GatewayProcess`]: runs the real `gatehouse gateway` binary on a config written to
//!   a temporary directory, reads back its bound ports, captures its output, sends it
//!   signals and kills it on drop.
//! - [`pki::TestCa`]: throwaway CAs issuing server and client certificates (PEM).
//! - [`tls_client::TlsClient`]: a TLS client choosing SNI, suites, versions and a client
//!   certificate, reporting what the server presented.
//! - [`http_client`], [`h2c_client`], [`wait_for`], [`wait_for_async`],
//!   [`wait_for_metric`], [`metric_value`]: the client side.
//!
//! Every fake runs on its own thread with its own Tokio runtime, so it keeps serving
//! while a test blocks (in a `#[test]`, or in a `#[tokio::test]` that calls a blocking
//! helper such as [`GatewayProcess::wait_exit`]). Each one shuts down when dropped.
//!
//! This crate is for tests only: it panics on setup failures (with a message saying what
//! failed) instead of returning errors, because a failed setup is a failed test.

mod backend;
mod client;
mod gateway;
pub mod grpc;
pub mod h3_client;
pub mod kube_api;
pub mod pki;
pub mod postgres;
mod server_thread;
mod silent;
pub mod tls_backend;
pub mod tls_client;

pub use backend::{
    Echo, EchoBackend, EchoBackendBuilder, HEADER_BACKEND_NAME, HEADER_DELAY_MS, HEADER_MIRROR,
    HEADER_STATUS,
};
pub use client::{
    h2c_client, http_client, metric_value, wait_for, wait_for_async, wait_for_metric,
};
pub use gateway::{GatewayBuilder, GatewayProcess, Signal};
pub use silent::{BlackholeListener, SilentBackend, refused_addr};
