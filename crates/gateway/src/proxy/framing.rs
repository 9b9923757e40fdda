//! Request framing checked on the raw HTTP/1.1 byte stream, below hyper.
//!
//! hyper's parser already refuses most request-smuggling tricks with 400 Bad Request and
//! closes the connection: two different `Content-Length` values, a final transfer coding
//! other than `chunked`, `Transfer-Encoding` in HTTP/1.0, obs-fold, control bytes in a
//! field, whitespace before the colon. One it accepts: `Content-Length` together with
//! `Transfer-Encoding: chunked`. RFC 9112 §6.1 lets a server either refuse that or frame
//! the body by `Transfer-Encoding` and close the connection afterwards; hyper does the
//! latter, and drops the `Content-Length` header before the service sees the request,
//! so the service cannot tell. A gateway should refuse it (nginx does): such a message
//! is almost always a probe for two HTTP implementations that disagree on where a body
//! ends, and the backend must never see it.
//!
//! [`FramingCheck`] wraps a client connection's reader and follows HTTP/1.1 message
//! framing over the bytes as they arrive: request heads, fixed-length bodies, chunked
//! bodies with their trailers. It buffers nothing and only looks at heads and chunk
//! lines; body data is skipped by length. When a request head has both headers, it
//! replaces the colon after the second one's name with a NUL byte before hyper sees it:
//! hyper's parser then refuses the head as it refuses any invalid header name (400,
//! connection closed), and nothing of the request reaches the service. (Not a byte of
//! the line ending: hyper only parses a head again once it sees the blank line end it.)
//!
//! It stops looking, and passes bytes through untouched, at the HTTP/2 preface, after a
//! refused head, and at anything it does not follow (a malformed chunk size, an
//! unparsable `Content-Length`): each of these is something hyper refuses itself or
//! that ends HTTP/1.1 on the connection, so failing open leaves hyper's own checks in
//! charge. A `CONNECT` or `Upgrade` request does *not* stop it: the connection only
//! stops being HTTP/1.1 once the server agrees (`101 Switching Protocols`), so an
//! upgrade request the gateway answers otherwise (the backend refused it, or the API
//! is not a WebSocket API) leaves the next request on the connection checked like any
//! other. (Before, the check switched itself off at the `Upgrade` header: a keep-alive
//! client could then smuggle a `Content-Length` + `Transfer-Encoding` request in
//! behind it.) What stops it is the request path itself, through [`SwitchOff`], at
//! the moment it answers a WebSocket handshake with a 101 (see
//! [`super::websocket`]): from then on the bytes are WebSocket frames and pass
//! untouched.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A client connection's byte stream with request framing checked on the way in; see
/// the module documentation. Writes pass through, except hyper's answer to a request
/// line refused for its length (see [`Scanner::request_line_too_long`]).
#[derive(Debug)]
pub struct FramingCheck<I> {
    inner: I,
    scanner: Scanner,
    status_rewrite: StatusRewrite,
    /// Set by the request path when the connection switches protocols.
    switch: Option<SwitchOff>,
}

/// Turns a connection's [`FramingCheck`] off for good, from the request path: set
/// right before the gateway answers `101 Switching Protocols`, after which the client's
/// bytes are another protocol's (WebSocket frames) and must pass untouched. Until it
/// is set, every request on the connection is checked. Cheap to clone; one per
/// connection.
#[derive(Clone, Debug, Default)]
pub struct SwitchOff(Arc<AtomicBool>);

impl SwitchOff {
    /// Switches the check off; the next read passes through.
    pub fn switch_off(&self) {
        self.0.store(true, Ordering::Release);
    }

    /// Whether [`switch_off`](Self::switch_off) was called.
    #[must_use]
    pub fn is_off(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }
}

/// hyper has no request-line limit of its own below 64 KiB, and answers a head it
/// refuses with a status line of its choosing; the scanner refuses an over-long request
/// line by making it invalid (hyper answers `400 Bad Request` and closes), and the
/// status line hyper writes then is replaced by `414 URI Too Long`.
#[derive(Debug, Default)]
enum StatusRewrite {
    /// Nothing to replace.
    #[default]
    Off,
    /// The next write starting with hyper's 400 status line is replaced.
    Armed,
    /// Writing the replacement: the bytes, how many went out, and how many of hyper's
    /// bytes to report as written once all have.
    Writing {
        bytes: Vec<u8>,
        written: usize,
        reported: usize,
    },
}

const HYPER_BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\n";
const URI_TOO_LONG: &[u8] = b"HTTP/1.1 414 URI Too Long\r\n";

impl<I> FramingCheck<I> {
    /// Wraps a freshly accepted connection (the first byte read must be the first byte
    /// the client sent). A request line longer than `max_request_line` bytes (method,
    /// target and version, without the line end) is answered `414 URI Too Long`.
    pub fn new(inner: I, max_request_line: usize) -> Self {
        Self {
            inner,
            scanner: Scanner::new(max_request_line),
            status_rewrite: StatusRewrite::Off,
            switch: None,
        }
    }

    /// Stops checking once `switch` is switched off (see [`SwitchOff`]).
    #[must_use]
    pub fn with_switch_off(mut self, switch: SwitchOff) -> Self {
        self.switch = Some(switch);
        self
    }
}

impl<I: AsyncRead + Unpin> AsyncRead for FramingCheck<I> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let before = buf.filled().len();
        ready!(Pin::new(&mut this.inner).poll_read(cx, buf))?;
        if this.scanner.is_on() && this.switch.as_ref().is_some_and(SwitchOff::is_off) {
            // The connection switched protocols: nothing more is HTTP/1.1.
            this.scanner.stop();
        }
        if this.scanner.is_on() {
            this.scanner.scan(&mut buf.filled_mut()[before..]);
            if this.scanner.request_line_too_long {
                this.status_rewrite = StatusRewrite::Armed;
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<I: AsyncWrite + Unpin> FramingCheck<I> {
    /// Writes `buf`, replacing hyper's 400 status line when armed to.
    fn poll_write_rewriting(
        &mut self,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        if matches!(self.status_rewrite, StatusRewrite::Armed) {
            self.status_rewrite = match buf.strip_prefix(HYPER_BAD_REQUEST) {
                Some(rest) => StatusRewrite::Writing {
                    bytes: [URI_TOO_LONG, rest].concat(),
                    written: 0,
                    reported: buf.len(),
                },
                None => StatusRewrite::Off,
            };
        }
        let StatusRewrite::Writing {
            bytes,
            written,
            reported,
        } = &mut self.status_rewrite
        else {
            return Pin::new(&mut self.inner).poll_write(cx, buf);
        };
        // hyper calls again with the same bytes after `Pending`; what it gave is
        // reported written only once all of the replacement is.
        while *written < bytes.len() {
            match ready!(Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]))? {
                0 => return Poll::Ready(Ok(0)),
                n => *written += n,
            }
        }
        let reported = *reported;
        self.status_rewrite = StatusRewrite::Off;
        Poll::Ready(Ok(reported))
    }
}

impl<I: AsyncWrite + Unpin> AsyncWrite for FramingCheck<I> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_rewriting(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if matches!(self.status_rewrite, StatusRewrite::Off) {
            return Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        }
        // Rare (one response per refused connection): one slice at a time.
        let first = bufs
            .iter()
            .find(|buf| !buf.is_empty())
            .map_or(&[][..], |b| &**b);
        self.poll_write_rewriting(cx, first)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// Longest header name kept: `transfer-encoding`.
const NAME_MAX: usize = 17;

/// Where the stream is, byte by byte; states follow hyper's chunked decoder.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    /// In a request head (or before one).
    Head,
    /// In a fixed-length body: bytes left.
    Body(u64),
    /// Before the first digit of a chunk size.
    ChunkStart,
    /// In a chunk size: its value so far.
    ChunkSize(u64),
    /// Whitespace after a chunk size.
    ChunkSizeSpace(u64),
    /// A chunk extension, up to its CR.
    ChunkExtension(u64),
    /// The LF ending a chunk-size line.
    ChunkSizeLf(u64),
    /// Chunk data: bytes left.
    ChunkData(u64),
    /// The CR after chunk data.
    ChunkDataCr,
    /// The LF after chunk data.
    ChunkDataLf,
    /// After the last chunk: a trailer line, or the CR of the final CRLF.
    TrailerStart,
    /// In a trailer line, up to its CR.
    Trailer,
    /// The LF ending a trailer line.
    TrailerLf,
    /// The LF ending the message.
    EndLf,
    /// Refusing an over-long request line: overwriting what follows with
    /// [`REFUSAL`], this many bytes of it written so far.
    Refusing(usize),
    /// Not looking any more: bytes pass through.
    Off,
}

/// What replaces the rest of an over-long request line: a NUL, which hyper's parser
/// refuses, then the end of a head. hyper only parses a head again once new bytes hold
/// a blank line, so without one it would wait for more and end with 431 at its buffer
/// limit instead.
const REFUSAL: &[u8] = b"\0\r\n\r\n";

/// The line of a request head being read.
#[derive(Debug, Default)]
struct Line {
    /// Bytes so far, excluding the LF.
    len: usize,
    /// The first byte (an empty line is `""` or `"\r"`).
    first: u8,
    /// The request line: its first bytes (enough for the HTTP/2 preface's `PRI `).
    start: [u8; 4],
    /// A header line: its name, while it fits and the colon is not reached.
    name: [u8; NAME_MAX],
    /// A header line: what its name turned out to be, once the colon is reached.
    field: Option<Field>,
    /// `Content-Length`: its value, parsed as it arrives.
    length: LengthParser,
}

impl Line {
    /// Whether the bytes up to the end of this line change nothing but its length: a
    /// request line once its first bytes are kept, or a header value other than
    /// `Content-Length`'s (the name decided the field at the colon).
    fn rest_is_opaque(&self, head_started: bool) -> bool {
        if head_started {
            matches!(self.field, Some(Field::Other | Field::TransferEncoding))
        } else {
            self.len >= self.start.len()
        }
    }
}

/// The header fields that matter for framing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Field {
    ContentLength,
    TransferEncoding,
    Other,
}

/// A `Content-Length` value: one number or a list of equal numbers (`5, 5`), as hyper
/// takes it, with optional whitespace around each.
#[derive(Debug, Default)]
struct LengthParser {
    /// The number being read.
    current: Option<u64>,
    /// Whitespace ended `current`; only a comma may follow.
    current_done: bool,
    /// The first complete number.
    value: Option<u64>,
    /// Not a valid value.
    invalid: bool,
}

impl LengthParser {
    fn byte(&mut self, byte: u8) {
        match byte {
            b'0'..=b'9' if !self.current_done => {
                self.current = self
                    .current
                    .unwrap_or(0)
                    .checked_mul(10)
                    .and_then(|n| n.checked_add(u64::from(byte - b'0')));
                self.invalid |= self.current.is_none();
            }
            b' ' | b'\t' => self.current_done = self.current.is_some(),
            b',' => self.end_element(),
            // The CR of the line ending; a bare one is hyper's to refuse.
            b'\r' => {}
            _ => self.invalid = true,
        }
    }

    fn end_element(&mut self) {
        match (self.current.take(), self.value) {
            (None, _) => self.invalid = true,
            (Some(n), None) => self.value = Some(n),
            (Some(n), Some(value)) => self.invalid |= n != value,
        }
        self.current_done = false;
    }

    /// The value, or `None` when it is not valid.
    fn finish(&mut self) -> Option<u64> {
        self.end_element();
        if self.invalid { None } else { self.value }
    }
}

/// What the request head being read declared so far.
#[derive(Debug, Default)]
struct Head {
    /// The request line has been read.
    started: bool,
    /// A `Content-Length` line was seen (valid or not).
    content_length_seen: bool,
    /// Its value; `None` when absent or invalid.
    content_length: Option<u64>,
    /// A `Content-Length` value was invalid or two disagreed: hyper refuses the head
    /// unless `Transfer-Encoding` makes it ignore them.
    content_length_invalid: bool,
    /// A `Transfer-Encoding` line was seen.
    transfer_encoding: bool,
}

/// The framing follower behind [`FramingCheck`].
#[derive(Debug)]
pub(crate) struct Scanner {
    state: State,
    line: Line,
    head: Head,
    /// Longest request line allowed (without its line end).
    max_request_line: usize,
    /// A request line was longer than `max_request_line`: a NUL was put in it (hyper
    /// refuses the head with 400 and closes) and the scanner is off.
    pub(crate) request_line_too_long: bool,
}

impl Scanner {
    pub(crate) fn new(max_request_line: usize) -> Self {
        Self {
            state: State::Head,
            line: Line::default(),
            head: Head::default(),
            max_request_line,
            request_line_too_long: false,
        }
    }

    /// Whether it still looks at the bytes.
    pub(crate) fn is_on(&self) -> bool {
        self.state != State::Off
    }

    /// Stops looking for good.
    pub(crate) fn stop(&mut self) {
        self.state = State::Off;
    }

    /// Follows `bytes`, the next ones read from the client, and neutralises a request
    /// head that has both `Content-Length` and `Transfer-Encoding` (see the module
    /// documentation).
    pub(crate) fn scan(&mut self, bytes: &mut [u8]) {
        let mut at = 0;
        while at < bytes.len() {
            let rest = bytes.len() - at;
            match self.state {
                State::Off => return,
                State::Refusing(written) => {
                    let taken = (REFUSAL.len() - written).min(rest);
                    bytes[at..at + taken].copy_from_slice(&REFUSAL[written..written + taken]);
                    self.state = if written + taken == REFUSAL.len() {
                        State::Off
                    } else {
                        State::Refusing(written + taken)
                    };
                    return;
                }
                State::Body(left) => {
                    let taken = skip(left, rest);
                    at += taken;
                    self.state = match left - taken as u64 {
                        0 => State::Head,
                        left => State::Body(left),
                    };
                }
                State::ChunkData(left) => {
                    let taken = skip(left, rest);
                    at += taken;
                    self.state = match left - taken as u64 {
                        0 => State::ChunkDataCr,
                        left => State::ChunkData(left),
                    };
                }
                State::Head => {
                    // Past what a line can tell (a request line beyond its first bytes,
                    // a value other than Content-Length's), only the line's end
                    // matters: jump to it instead of looking at every byte.
                    if self.line.rest_is_opaque(self.head.started) {
                        let end = bytes[at..].iter().position(|&b| b == b'\n');
                        let offset = end.unwrap_or(rest);
                        if !self.head.started
                            && self.line.len.saturating_add(offset) > self.max_request_line
                        {
                            let over = self.max_request_line.saturating_sub(self.line.len);
                            at += over;
                            self.refuse_request_line();
                            continue;
                        }
                        self.line.len = self.line.len.saturating_add(offset);
                        if end.is_none() {
                            return;
                        }
                        at += offset;
                    }
                    if !self.head.started
                        && bytes[at] != b'\n'
                        && self.line.len >= self.max_request_line
                    {
                        self.refuse_request_line();
                        continue;
                    }
                    self.head_byte(&mut bytes[at]);
                    at += 1;
                }
                _ => {
                    self.chunked_byte(bytes[at]);
                    at += 1;
                }
            }
        }
    }

    /// The next byte is the first one past the request-line limit: it and the ones after
    /// it become [`REFUSAL`], which makes hyper refuse the head (400, connection
    /// closed; [`FramingCheck`] turns the status into 414); then nothing more is looked
    /// at.
    fn refuse_request_line(&mut self) {
        self.request_line_too_long = true;
        self.state = State::Refusing(0);
    }

    fn head_byte(&mut self, byte: &mut u8) {
        if *byte == b'\n' {
            self.end_line();
            return;
        }
        let line = &mut self.line;
        if line.len == 0 {
            line.first = *byte;
        }
        if !self.head.started {
            if let Some(slot) = line.start.get_mut(line.len) {
                *slot = *byte;
            }
        } else {
            match line.field {
                None if *byte == b':' => {
                    let field = field(line.name.get(..line.len));
                    line.field = Some(field);
                    let head = &mut self.head;
                    match field {
                        Field::ContentLength => head.content_length_seen = true,
                        Field::TransferEncoding => head.transfer_encoding = true,
                        Field::Other => {}
                    }
                    if head.content_length_seen && head.transfer_encoding {
                        // A NUL for the colon: an invalid header name to hyper's parser,
                        // which answers 400 and closes the connection before any
                        // service sees the request.
                        *byte = 0;
                        self.state = State::Off;
                        return;
                    }
                }
                None => {
                    if let Some(slot) = line.name.get_mut(line.len) {
                        *slot = byte.to_ascii_lowercase();
                    }
                }
                Some(Field::ContentLength) => line.length.byte(*byte),
                Some(_) => {}
            }
        }
        line.len = line.len.saturating_add(1);
    }

    /// At the LF ending a head line.
    fn end_line(&mut self) {
        let mut line = std::mem::take(&mut self.line);
        let empty = line.len == 0 || (line.len == 1 && line.first == b'\r');
        if !self.head.started {
            // hyper skips empty lines before a request line.
            if !empty {
                self.head.started = true;
                let start = &line.start[..line.len.min(line.start.len())];
                if start.starts_with(b"PRI ") {
                    // The HTTP/2 preface: hyper hands the connection to HTTP/2.
                    self.state = State::Off;
                }
            }
            return;
        }
        if empty {
            self.end_head();
            return;
        }
        if line.field == Some(Field::ContentLength) {
            match (line.length.finish(), self.head.content_length) {
                (None, _) => self.head.content_length_invalid = true,
                (Some(n), None) => self.head.content_length = Some(n),
                (Some(n), Some(previous)) => self.head.content_length_invalid |= n != previous,
            }
        }
    }

    fn end_head(&mut self) {
        let head = std::mem::take(&mut self.head);
        self.state = if head.transfer_encoding {
            State::ChunkStart
        } else if head.content_length_invalid {
            State::Off
        } else {
            match head.content_length {
                None | Some(0) => State::Head,
                Some(length) => State::Body(length),
            }
        };
    }

    fn chunked_byte(&mut self, byte: u8) {
        if let Some(digit) = char::from(byte).to_digit(16).map(u64::from) {
            let size = match self.state {
                State::ChunkStart => Some(0),
                State::ChunkSize(size) => Some(size),
                _ => None,
            };
            if let Some(size) = size {
                self.state = size
                    .checked_mul(16)
                    .and_then(|size| size.checked_add(digit))
                    .map_or(State::Off, State::ChunkSize);
                return;
            }
        }
        self.state = match (self.state, byte) {
            (State::ChunkSize(size) | State::ChunkSizeSpace(size), b' ' | b'\t') => {
                State::ChunkSizeSpace(size)
            }
            (State::ChunkSize(size) | State::ChunkSizeSpace(size), b';') => {
                State::ChunkExtension(size)
            }
            (
                State::ChunkSize(size) | State::ChunkSizeSpace(size) | State::ChunkExtension(size),
                b'\r',
            ) => State::ChunkSizeLf(size),
            (State::ChunkExtension(_), b'\n') => State::Off,
            (State::ChunkExtension(size), _) => State::ChunkExtension(size),
            (State::ChunkSizeLf(0), b'\n') => State::TrailerStart,
            (State::ChunkSizeLf(size), b'\n') => State::ChunkData(size),
            (State::ChunkDataCr, b'\r') => State::ChunkDataLf,
            (State::ChunkDataLf, b'\n') => State::ChunkStart,
            (State::TrailerStart, b'\r') => State::EndLf,
            (State::Trailer, b'\r') => State::TrailerLf,
            (State::TrailerStart | State::Trailer, _) => State::Trailer,
            (State::TrailerLf, b'\n') => State::TrailerStart,
            (State::EndLf, b'\n') => State::Head,
            // Anything else is a chunked body hyper refuses too.
            _ => State::Off,
        };
    }
}

/// Bytes of a body to skip: `left`, at most the `available` ones.
fn skip(left: u64, available: usize) -> usize {
    usize::try_from(left).map_or(available, |left| left.min(available))
}

/// Which framing header a (lower-cased) name is; `None` when it was too long to keep.
fn field(name: Option<&[u8]>) -> Field {
    match name {
        Some(b"content-length") => Field::ContentLength,
        Some(b"transfer-encoding") => Field::TransferEncoding,
        _ => Field::Other,
    }
}

#[cfg(test)]
#[path = "framing_tests.rs"]
mod tests;
