//! gRPC through the gateway: tonic's client → gateway (h2c) → tonic's server (h2c),
//! unary and bidirectional streaming, statuses and trailers, deadlines.

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::StreamExt;
use gatehouse_test_support::grpc::{self, GrpcBackend};

use crate::common::*;

/// A gateway with API `test.Echo` (gRPC paths are `/package.Service/Method`) forwarding
/// to `backend`, open (no subscription).
fn gateway(backend: &GrpcBackend, policy: Option<&str>) -> GatewayProcess {
    let policy = policy.map_or_else(String::new, |p| {
        format!("    policy: |\n{}\n", indent(p, 6))
    });
    let yaml = format!(
        "apis:\n  - id: echo\n    path: test.Echo\n    serviceUrl: {}/test.Echo\n    subscriptionRequired: false\n{policy}    operations:\n{ANY_OPERATION}",
        backend.url()
    );
    start(&yaml)
}

#[tokio::test]
async fn unary_calls_pass_through_with_their_status() {
    let backend = GrpcBackend::start();
    let gateway = gateway(&backend, None);
    let mut client = grpc::grpc_client(&gateway.http_url());
    let answer = grpc::unary(
        &mut client,
        tonic::Request::new(Bytes::from_static(b"hello")),
    )
    .await
    .unwrap();
    assert_eq!(answer, "hello");
    // A status other than OK arrives in the trailers, with its message.
    let status = grpc::unary(
        &mut client,
        tonic::Request::new(Bytes::from_static(b"fail")),
    )
    .await
    .unwrap_err();
    assert_eq!(status.code(), tonic::Code::NotFound);
    assert_eq!(status.message(), "no such thing");
    // The backend got `te: trailers` (gRPC servers may insist on it).
    let names = header_names(&gateway).await;
    assert!(names.contains(&"te".to_owned()), "{names:?}");
    assert_eq!(backend.calls(), 3);
    // The access log has each call's grpc-status.
    assert!(
        gateway.wait_for_output(r#""grpcStatus":5"#, WAIT),
        "{:?}",
        gateway.stdout_lines()
    );
    assert!(gateway.output_contains(r#""grpcStatus":0"#));
}

#[tokio::test]
async fn bidirectional_streams_interleave() {
    let backend = GrpcBackend::start();
    let gateway = gateway(&backend, None);
    let mut client = grpc::grpc_client(&gateway.http_url());
    // Each message is sent only after the previous answer arrived: a proxy that
    // buffered either direction would stall here.
    let (sender, receiver) = tokio::sync::mpsc::channel::<Bytes>(1);
    let requests = tokio_stream_from(receiver);
    let mut answers = grpc::stream(&mut client, requests).await.unwrap();
    for index in 0..100 {
        let message = Bytes::from(format!("message {index}"));
        sender.send(message.clone()).await.unwrap();
        let answer = tokio::time::timeout(WAIT, answers.next())
            .await
            .expect("an answer before the next message")
            .unwrap()
            .unwrap();
        assert_eq!(answer, message);
    }
    drop(sender);
    assert!(answers.next().await.is_none(), "the stream ends with OK");
    assert!(gateway.wait_for_output(r#""grpcStatus":0"#, WAIT));
}

#[tokio::test]
async fn grpc_timeout_bounds_the_wait_for_the_backend() {
    let backend = GrpcBackend::start();
    let gateway = gateway(&backend, None);
    let mut client = grpc::grpc_client(&gateway.http_url());
    let mut request = tonic::Request::new(Bytes::from_static(b"sleep:5000"));
    request.set_timeout(Duration::from_millis(300));
    let started = Instant::now();
    let status = grpc::unary(&mut client, request).await.unwrap_err();
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "the gateway waited {:?} for a call with a 300 ms deadline",
        started.elapsed()
    );
    // The gateway's own answer is a gRPC status, not a JSON body.
    assert_eq!(status.code(), tonic::Code::DeadlineExceeded, "{status:?}");
    assert_eq!(
        status.message(),
        "The backend service did not respond in time."
    );
    assert!(gateway.wait_for_output(r#""errorReason":"backend_timeout""#, WAIT));
}

#[tokio::test]
async fn policies_run_on_grpc_calls() {
    let backend = GrpcBackend::start();
    let policy = r#"<policies><inbound><base/><set-header name="x-from-gateway" exists-action="override"><value>1</value></set-header></inbound></policies>"#;
    let gateway = gateway(&backend, Some(policy));
    let names = header_names(&gateway).await;
    assert!(names.contains(&"x-from-gateway".to_owned()), "{names:?}");
}

/// The names of the headers the backend received with a unary call through `gateway`
/// (the backend's `headers` message).
async fn header_names(gateway: &GatewayProcess) -> Vec<String> {
    let mut client = grpc::grpc_client(&gateway.http_url());
    let names = grpc::unary(
        &mut client,
        tonic::Request::new(Bytes::from_static(b"headers")),
    )
    .await
    .unwrap();
    String::from_utf8_lossy(&names)
        .split(',')
        .map(str::to_owned)
        .collect()
}

/// A stream of what `receiver` receives.
fn tokio_stream_from(
    receiver: tokio::sync::mpsc::Receiver<Bytes>,
) -> impl futures_util::Stream<Item = Bytes> + Send + 'static {
    futures_util::stream::unfold(receiver, |mut receiver| async move {
        receiver.recv().await.map(|message| (message, receiver))
    })
}

#[tokio::test]
async fn the_gateways_own_answers_are_grpc_statuses() {
    let backend = GrpcBackend::start();
    let yaml = format!(
        "apis:\n  - id: echo\n    path: test.Echo\n    serviceUrl: {}/test.Echo\n    operations:\n{ANY_OPERATION}  - id: down\n    path: down.Echo\n    serviceUrl: http://{}\n    subscriptionRequired: false\n    operations:\n{ANY_OPERATION}",
        backend.url(),
        refused_addr()
    );
    let gateway = start(&yaml);
    let mut client = grpc::grpc_client(&gateway.http_url());
    // No subscription key: UNAUTHENTICATED with APIM's message.
    let status = grpc::unary(&mut client, tonic::Request::new(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    assert!(
        status.message().contains("missing subscription key"),
        "{status:?}"
    );
    assert_eq!(backend.calls(), 0);
    assert!(gateway.wait_for_output(r#""grpcStatus":16"#, WAIT));
    // No such API: UNIMPLEMENTED; backend down: UNAVAILABLE.
    let mut client = grpc::grpc_client(&format!("{}/nowhere", gateway.http_url()));
    let status = grpc::unary(&mut client, tonic::Request::new(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unimplemented, "{status:?}");
    let mut client = grpc::grpc_client(&format!("{}/down.Echo", gateway.http_url()));
    let status = grpc::unary(&mut client, tonic::Request::new(Bytes::from_static(b"x")))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::Unavailable, "{status:?}");
}
