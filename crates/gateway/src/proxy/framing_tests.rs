use super::*;

const MAX_LINE: usize = 16 * 1024;

/// Feeds `input` to a new scanner in reads of `split` bytes (as a socket may deliver
/// it); returns the bytes as hyper would see them, and the scanner.
fn scan_in_pieces(input: &[u8], split: usize) -> (Vec<u8>, Scanner) {
    let mut scanner = Scanner::new(MAX_LINE);
    let mut bytes = input.to_vec();
    for piece in bytes.chunks_mut(split) {
        scanner.scan(piece);
    }
    (bytes, scanner)
}

/// Every way of cutting `input` into reads of equal size.
fn for_every_split(input: &[u8], check: impl Fn(&[u8], &Scanner, usize)) {
    for split in 1..=input.len() {
        let (seen, scanner) = scan_in_pieces(input, split);
        check(&seen, &scanner, split);
    }
}

#[test]
fn pipelined_requests_pass_untouched_whatever_their_bodies_contain() {
    // Bodies that look like heads with both framing headers must not be mistaken for
    // heads: the scanner skips bodies by their length.
    let fake = "GET / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let input = format!(
        "\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n\
         POST /b HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n{fake}\
         POST /c HTTP/1.1\r\nHost: x\r\ntransfer-encoding: chunked\r\n\r\n\
         {length:x}; ext=1\r\n{fake}\r\n3 \t\r\nabc\r\n0\r\n\
         X-Trailer: Content-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n\
         GET /d HTTP/1.1\nHost: x\nContent-Length: 0, 0\n\n",
        length = fake.len(),
    );
    for_every_split(input.as_bytes(), |seen, scanner, split| {
        assert_eq!(seen, input.as_bytes(), "split {split}");
        assert!(scanner.is_on(), "split {split}");
        assert_eq!(scanner.state, State::Head, "split {split}");
    });
}

#[test]
fn content_length_with_transfer_encoding_is_neutralised_in_either_order() {
    for head in [
        "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "POST / HTTP/1.1\r\nHost: x\r\nTRANSFER-ENCODING: chunked\r\ncontent-length: 5\r\n\r\n",
        // An invalid length is still a length: hyper ignores it once it has seen
        // Transfer-Encoding.
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: five\r\n\r\n",
        "POST / HTTP/1.1\nContent-Length: 5\nTransfer-Encoding: chunked\n\n",
    ] {
        let input = format!("{head}5\r\nhello\r\n0\r\n\r\n");
        // The colon after the second framing header's name.
        let lower = head.to_ascii_lowercase();
        let later = lower
            .find("content-length:")
            .max(lower.find("transfer-encoding:"))
            .unwrap_or_default();
        let second = later + head[later..].find(':').unwrap_or_default();
        for_every_split(input.as_bytes(), |seen, scanner, split| {
            assert!(!scanner.is_on(), "{head:?} split {split}");
            let changed: Vec<usize> = (0..seen.len())
                .filter(|&at| seen[at] != input.as_bytes()[at])
                .collect();
            assert_eq!(changed, [second], "{head:?} split {split}");
            assert_eq!(seen[second], 0);
        });
    }
}

#[test]
fn a_conflict_in_a_later_request_is_found() {
    let input = "POST /a HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                 4\r\nabcd\r\n0\r\n\r\n\
                 POST /b HTTP/1.1\r\nContent-Length: 3\r\n\r\nxyz\
                 POST /c HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n";
    let at = input.rfind("Transfer-Encoding:").unwrap_or_default() + "Transfer-Encoding".len();
    for_every_split(input.as_bytes(), |seen, scanner, split| {
        assert!(!scanner.is_on(), "split {split}");
        assert_eq!(seen[at], 0, "split {split}");
        assert_eq!(&seen[..at], &input.as_bytes()[..at], "split {split}");
    });
}

#[test]
fn repeated_headers_of_one_kind_are_hypers_to_judge() {
    for input in [
        "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabcGET / HTTP/1.1\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    ] {
        let (seen, scanner) = scan_in_pieces(input.as_bytes(), input.len());
        assert_eq!(seen, input.as_bytes());
        assert_eq!(scanner.state, State::Head, "{input:?}");
    }
    // Different lengths: hyper answers 400 and closes; the scanner stops following.
    let input = "POST / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\nabcd";
    let (seen, scanner) = scan_in_pieces(input.as_bytes(), 5);
    assert_eq!(seen, input.as_bytes());
    assert!(!scanner.is_on());
}

#[test]
fn upgrade_and_connect_requests_do_not_stop_the_check() {
    // The gateway answers these like any other request (it serves connections without
    // hyper's upgrade support), so the connection stays HTTP/1.1 and what follows is
    // checked: a conflict behind an `Upgrade` request is neutralised.
    for input in [
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: upgrade\r\n\r\n",
        "GET / HTTP/1.1\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\nContent-Length: 3\r\n\r\nabc",
    ] {
        let mut then = input.as_bytes().to_vec();
        then.extend_from_slice(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        for_every_split(&then, |seen, scanner, split| {
            assert_ne!(seen, &then[..], "{input:?} split at {split}");
            assert_eq!(seen.len(), then.len());
            assert!(!scanner.is_on(), "{input:?}");
        });
    }
}

#[test]
fn it_stops_at_http2_and_what_hyper_refuses() {
    for input in [
        "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
        "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1;ext\nx",
        "POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n",
    ] {
        let mut then = input.as_bytes().to_vec();
        // What follows is not looked at, even a conflict.
        then.extend_from_slice(
            b"POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        );
        let (seen, scanner) = scan_in_pieces(&then, 3);
        assert_eq!(seen, then, "{input:?}");
        assert!(!scanner.is_on(), "{input:?}");
    }
}

#[test]
fn huge_lengths_do_not_overflow() {
    let input = "POST / HTTP/1.1\r\nContent-Length: 18446744073709551615\r\n\r\nabc";
    let (_, scanner) = scan_in_pieces(input.as_bytes(), 4);
    assert_eq!(scanner.state, State::Body(u64::MAX - 3));
    let input = "POST / HTTP/1.1\r\nContent-Length: 18446744073709551616\r\n\r\n";
    let (_, scanner) = scan_in_pieces(input.as_bytes(), 4);
    assert!(!scanner.is_on());
    let input = "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1ffffffffffffffff\r\n";
    let (_, scanner) = scan_in_pieces(input.as_bytes(), 4);
    assert!(!scanner.is_on());
}

#[test]
fn an_over_long_request_line_is_cut_with_a_nul_and_a_blank_line() {
    let line = format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100));
    let max = 50;
    for split in 1..=line.len() {
        let mut scanner = Scanner::new(max);
        let mut bytes = line.clone().into_bytes();
        for piece in bytes.chunks_mut(split) {
            scanner.scan(piece);
        }
        assert!(scanner.request_line_too_long, "split {split}");
        assert!(!scanner.is_on());
        assert_eq!(&bytes[..max], &line.as_bytes()[..max], "split {split}");
        assert_eq!(&bytes[max..max + REFUSAL.len()], REFUSAL, "split {split}");
        assert_eq!(
            &bytes[max + REFUSAL.len()..],
            &line.as_bytes()[max + REFUSAL.len()..]
        );
    }
    // At the limit exactly (the CR counts), the line passes.
    let line = format!("GET /{} HTTP/1.1\r\n\r\n", "a".repeat(10));
    let mut scanner = Scanner::new(line.find('\n').unwrap());
    let mut bytes = line.clone().into_bytes();
    scanner.scan(&mut bytes);
    assert!(!scanner.request_line_too_long);
    assert_eq!(bytes, line.as_bytes());
}

#[tokio::test]
async fn a_switched_off_check_passes_what_follows_untouched() {
    use tokio::io::AsyncReadExt as _;
    let handshake =
        "GET /chat HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n";
    // Bytes after the handshake that would be a conflicting head to the scanner: a
    // WebSocket frame may hold anything.
    let after = "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n";
    let input = format!("{handshake}{after}");
    for switched in [false, true] {
        let switch = SwitchOff::default();
        let mut check =
            FramingCheck::new(input.as_bytes(), MAX_LINE).with_switch_off(switch.clone());
        let mut head = vec![0; handshake.len()];
        check.read_exact(&mut head).await.unwrap();
        assert_eq!(head, handshake.as_bytes());
        if switched {
            // What the request path does as it answers 101.
            switch.switch_off();
        }
        let mut rest = Vec::new();
        check.read_to_end(&mut rest).await.unwrap();
        if switched {
            assert_eq!(rest, after.as_bytes(), "untouched once switched off");
            assert!(!check.scanner.is_on());
        } else {
            // Still HTTP/1.1: the conflicting head is neutralised (a NUL for a colon).
            assert_ne!(rest, after.as_bytes());
            assert!(rest.contains(&0), "{:?}", String::from_utf8_lossy(&rest));
        }
    }
}
