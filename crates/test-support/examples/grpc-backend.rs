//! The tests' gRPC backend ([`gatehouse_test_support::grpc::GrpcBackend`]) as a
//! program, for `bench/grpc.sh`: prints its `http://127.0.0.1:PORT` URL on stdout and
//! serves until stdin closes or the process is signalled.

use std::io::{Read, Write};

use gatehouse_test_support::grpc::GrpcBackend;

fn main() {
    let backend = GrpcBackend::start();
    let mut stdout = std::io::stdout();
    if writeln!(stdout, "{}", backend.url())
        .and_then(|()| stdout.flush())
        .is_err()
    {
        return;
    }
    // Runs until stdin reaches its end (the bench holds it open) or a signal ends us.
    let _ = std::io::stdin().read_to_end(&mut Vec::new());
}
