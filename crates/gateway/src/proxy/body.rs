//! Body types of the proxy: the request body streamed to the backend and the response
//! body streamed to the client. Neither buffers: frames pass through as they arrive.
//!
//! The client's body comes from hyper (HTTP/1.1, HTTP/2) or from an h3 request stream
//! (HTTP/3): [`ClientBody`] is an enum of the two, not a trait object, so the TCP
//! protocols pay one predictable branch per frame and nothing else (no allocation, no
//! dynamic call); the HTTP/3 variant is boxed so the enum stays the size of `Incoming`.

use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::{Buf as _, Bytes};
use futures_util::task::AtomicWaker;
use http_body::{Body, Frame, SizeHint};
use hyper::body::Incoming;
use prometheus_client::metrics::counter::Counter;
use tokio::time::{Instant, Sleep};

/// Boxed error of body streams.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// The client sent more body bytes than `max_request_body_bytes` allows.
#[derive(Debug, thiserror::Error)]
#[error("request body exceeds the limit of {limit} bytes")]
pub struct BodyTooLarge {
    /// The limit, in bytes.
    pub limit: u64,
}

/// The client sent nothing more of its request body for `body_read_timeout`.
#[derive(Debug, thiserror::Error)]
#[error("the client sent no request body data for {timeout:?}")]
pub struct BodyReadTimeout {
    /// The timeout that expired.
    pub timeout: Duration,
}

/// Reading the client's request body failed: bad chunked framing, or the connection
/// closed before the body's end. Wraps the transport's error so the gateway can tell it
/// from a backend failure (400, not 502).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct ClientBodyError(pub BoxError);

/// How long the gateway waits for each piece of a client's request body, and what
/// counts the expiries.
#[derive(Clone, Debug)]
pub struct BodyTimeout {
    /// The longest pause between two frames (and before the first one).
    pub timeout: Duration,
    /// Bumped once per expired body (`gatehouse_client_timeouts_total{phase="body"}`).
    pub expired: Counter,
}

/// The receiving half of an HTTP/3 request stream.
pub type H3RecvStream = h3::server::RequestStream<h3_quinn::RecvStream, Bytes>;

/// A client's request body, as its transport delivers it.
pub enum ClientBody {
    /// HTTP/1.1 or HTTP/2: hyper's body, moved in as it is.
    Hyper(Incoming),
    /// HTTP/3: the request stream's DATA frames, then its trailers.
    Http3(Box<H3RequestBody>),
}

impl std::fmt::Debug for ClientBody {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Hyper(inner) => f.debug_tuple("Hyper").field(inner).finish(),
            Self::Http3(_) => f.write_str("Http3"),
        }
    }
}

impl From<Incoming> for ClientBody {
    #[inline]
    fn from(inner: Incoming) -> Self {
        Self::Hyper(inner)
    }
}

impl Body for ClientBody {
    type Data = Bytes;
    type Error = BoxError;

    #[inline]
    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        // Both variants are `Unpin`.
        match self.get_mut() {
            Self::Hyper(inner) => match Pin::new(inner).poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(Box::new(e)))),
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            Self::Http3(inner) => inner.poll_frame(cx),
        }
    }

    #[inline]
    fn is_end_stream(&self) -> bool {
        match self {
            Self::Hyper(inner) => inner.is_end_stream(),
            Self::Http3(inner) => inner.is_end_stream(),
        }
    }

    #[inline]
    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Hyper(inner) => inner.size_hint(),
            Self::Http3(inner) => inner.size_hint(),
        }
    }
}

/// An HTTP/3 request body: the DATA frames of the request stream, then its trailers.
pub struct H3RequestBody {
    stream: H3RecvStream,
    /// What the look at the stream in [`H3RequestBody::new`] found, not yet returned.
    pending: Option<Result<Frame<Bytes>, BoxError>>,
    state: H3BodyState,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum H3BodyState {
    Data,
    Trailers,
    Done,
}

impl H3RequestBody {
    /// Wraps a request stream's receiving half. Whatever the stream already holds is
    /// looked at once, without waiting: a request whose stream ended with its head
    /// (a GET, say) then says so (`is_end_stream`), and is forwarded without a body,
    /// as hyper's HTTP/2 body does for a HEADERS frame with END_STREAM.
    #[must_use]
    pub fn new(stream: H3RecvStream) -> Self {
        let mut body = Self {
            stream,
            pending: None,
            state: H3BodyState::Data,
        };
        let mut cx = Context::from_waker(std::task::Waker::noop());
        if let Poll::Ready(Some(first)) = body.poll_stream(&mut cx) {
            body.pending = Some(first);
        }
        body
    }

    fn poll_stream(
        &mut self,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        loop {
            match self.state {
                H3BodyState::Data => match self.stream.poll_recv_data(cx) {
                    Poll::Pending => return Poll::Pending,
                    Poll::Ready(Ok(Some(mut data))) => {
                        let data = data.copy_to_bytes(data.remaining());
                        return Poll::Ready(Some(Ok(Frame::data(data))));
                    }
                    Poll::Ready(Ok(None)) => self.state = H3BodyState::Trailers,
                    Poll::Ready(Err(error)) => {
                        self.state = H3BodyState::Done;
                        return Poll::Ready(Some(Err(Box::new(error))));
                    }
                },
                H3BodyState::Trailers => {
                    let polled = match self.stream.poll_recv_trailers(cx) {
                        Poll::Pending => return Poll::Pending,
                        Poll::Ready(polled) => polled,
                    };
                    self.state = H3BodyState::Done;
                    return Poll::Ready(match polled {
                        Ok(Some(trailers)) => Some(Ok(Frame::trailers(trailers))),
                        Ok(None) => None,
                        Err(error) => Some(Err(Box::new(error))),
                    });
                }
                H3BodyState::Done => return Poll::Ready(None),
            }
        }
    }

    fn poll_frame(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(pending) = self.pending.take() {
            return Poll::Ready(Some(pending));
        }
        self.poll_stream(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.pending.is_none() && self.state == H3BodyState::Done
    }

    fn size_hint(&self) -> SizeHint {
        if self.is_end_stream() {
            SizeHint::with_exact(0)
        } else {
            SizeHint::default()
        }
    }
}

impl Drop for H3RequestBody {
    fn drop(&mut self) {
        // Not read to its end (the gateway answered early, a 413 say): ask the client to
        // stop sending, with HTTP/3's "no error" (RFC 9114, section 4.1) rather than the
        // transport's bare 0 quinn would send.
        if self.state != H3BodyState::Done {
            self.stream.stop_sending(h3::error::Code::H3_NO_ERROR);
        }
    }
}

pin_project_lite::pin_project! {
    /// The client's request body on its way to the backend, counted, limited and timed
    /// as it streams.
    // pin_project_lite cannot document variant fields; see `RequestBody::client`.
    #[allow(missing_docs)]
    #[project = RequestBodyProj]
    pub enum RequestBody {
        /// Streamed from the client: `inner`, limited to `limit` bytes, counted into
        /// `received`, failed when `idle` fires before the next frame.
        Client {
            #[pin]
            inner: ClientBody,
            limit: Option<u64>,
            received: Arc<AtomicU64>,
            // One timer per body, made the first time the client keeps the gateway
            // waiting (a body that arrives with its head never needs one) and re-armed
            // each time it does again: frames that follow each other cost nothing, and
            // nothing is allocated per frame. Boxed because the backend client wants
            // an `Unpin` body.
            idle: Option<Pin<Box<Sleep>>>,
            timeout: BodyTimeout,
            timer: TimerState,
        },
        /// No body.
        Empty,
        /// A body the gateway read whole first (`forward-request
        /// buffer-request-body`); `None` once sent.
        Buffered { data: Option<Bytes> },
        /// `inner`, held back until the backend answers `100 Continue` (or answers
        /// finally), or `timeout` after it was first asked for (`forward-request
        /// continue-timeout`).
        AwaitingContinue {
            inner: Pin<Box<RequestBody>>,
            gate: ContinueGate,
        },
    }
}

/// Opens a body held back for `100 Continue`: the backend client's interim-response
/// callback opens it on `100`, the proxy once the final response head arrives.
#[derive(Debug, Default)]
pub struct ContinueSignal {
    open: AtomicBool,
    waker: AtomicWaker,
}

impl ContinueSignal {
    /// Lets the body go (idempotent).
    pub fn open(&self) {
        // Release pairs with the Acquire in `ContinueGate::poll_open`.
        self.open.store(true, Ordering::Release);
        self.waker.wake();
    }
}

/// The waiting side of a [`ContinueSignal`], inside [`RequestBody::AwaitingContinue`].
#[derive(Debug)]
pub struct ContinueGate {
    signal: Arc<ContinueSignal>,
    timeout: Duration,
    // Armed when the backend client first asks for the body, i.e. once the request
    // head is written: connecting is not counted.
    timer: Option<Pin<Box<Sleep>>>,
    open: bool,
}

impl ContinueGate {
    fn poll_open(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        if self.open {
            return Poll::Ready(());
        }
        self.signal.waker.register(cx.waker());
        let timeout = self.timeout;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline(timeout))));
        if self.signal.open.load(Ordering::Acquire) || timer.as_mut().poll(cx).is_ready() {
            self.open = true;
            self.timer = None;
            return Poll::Ready(());
        }
        Poll::Pending
    }
}

/// Where the body's idle timer is. It only runs while the gateway waits on the client:
/// time spent connecting to the backend, or while the backend is slow to take the body,
/// is not counted against the client.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimerState {
    /// Not waiting: the last poll returned a frame (or there was none yet).
    Idle,
    /// The last poll found nothing: waiting for the client since the timer was armed.
    Waiting,
    /// Fired (and counted) once; the body only fails from here on.
    Expired,
}

impl RequestBody {
    /// Holds `self` back until `signal` opens or `timeout` passes after the backend
    /// client first asks for it.
    #[must_use]
    pub fn await_continue(self, signal: Arc<ContinueSignal>, timeout: Duration) -> Self {
        Self::AwaitingContinue {
            inner: Box::pin(self),
            gate: ContinueGate {
                signal,
                timeout,
                timer: None,
                open: false,
            },
        }
    }

    /// Wraps the client's body. `received` is shared with the access-log guard.
    #[must_use]
    pub fn client(
        inner: ClientBody,
        limit: Option<u64>,
        received: Arc<AtomicU64>,
        timeout: BodyTimeout,
    ) -> Self {
        Self::Client {
            inner,
            limit,
            received,
            idle: None,
            timeout,
            timer: TimerState::Idle,
        }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match self.project() {
            RequestBodyProj::Client {
                inner,
                limit,
                received,
                idle,
                timeout,
                timer,
            } => {
                let timed_out = || {
                    Poll::Ready(Some(Err(BoxError::from(BodyReadTimeout {
                        timeout: timeout.timeout,
                    }))))
                };
                if *timer == TimerState::Expired {
                    return timed_out();
                }
                match inner.poll_frame(cx) {
                    Poll::Ready(Some(Ok(frame))) => {
                        if let Some(data) = frame.data_ref() {
                            let len = data.len() as u64;
                            // Relaxed: only the access-log guard reads this, after the
                            // exchange ends.
                            let total = received.fetch_add(len, Ordering::Relaxed) + len;
                            if let Some(limit) = *limit
                                && total > limit
                            {
                                return Poll::Ready(Some(Err(Box::new(BodyTooLarge { limit }))));
                            }
                        }
                        *timer = TimerState::Idle;
                        Poll::Ready(Some(Ok(frame)))
                    }
                    Poll::Ready(Some(Err(e))) => {
                        Poll::Ready(Some(Err(Box::new(ClientBodyError(e)))))
                    }
                    Poll::Ready(None) => Poll::Ready(None),
                    Poll::Pending => {
                        let until = || deadline(timeout.timeout);
                        let idle = match (idle, *timer) {
                            (Some(idle), TimerState::Waiting) => idle,
                            (Some(idle), _) => {
                                idle.as_mut().reset(until());
                                idle
                            }
                            (idle @ None, _) => {
                                idle.insert(Box::pin(tokio::time::sleep_until(until())))
                            }
                        };
                        *timer = TimerState::Waiting;
                        if idle.as_mut().poll(cx).is_pending() {
                            return Poll::Pending;
                        }
                        *timer = TimerState::Expired;
                        timeout.expired.inc();
                        timed_out()
                    }
                }
            }
            RequestBodyProj::Empty => Poll::Ready(None),
            RequestBodyProj::Buffered { data } => Poll::Ready(
                data.take()
                    .filter(|d| !d.is_empty())
                    .map(|d| Ok(Frame::data(d))),
            ),
            RequestBodyProj::AwaitingContinue { inner, gate } => {
                std::task::ready!(gate.poll_open(cx));
                inner.as_mut().poll_frame(cx)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match self {
            Self::Client { inner, .. } => inner.is_end_stream(),
            Self::Empty => true,
            Self::Buffered { data } => data.as_ref().is_none_or(Bytes::is_empty),
            Self::AwaitingContinue { inner, .. } => inner.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match self {
            Self::Client { inner, .. } => inner.size_hint(),
            Self::Empty => SizeHint::with_exact(0),
            Self::Buffered { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
            Self::AwaitingContinue { inner, .. } => inner.size_hint(),
        }
    }
}

/// `timeout` from now; a timeout too large for the clock is a year (never, in practice).
fn deadline(timeout: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(timeout)
        .unwrap_or_else(|| now + Duration::from_secs(365 * 24 * 3600))
}

/// How a response body ended.
#[derive(Clone, Copy, Debug)]
pub struct BodyEnd {
    /// What went to the client.
    pub bytes_sent: u64,
    /// False when the stream was cut short.
    pub complete: bool,
    /// `grpc-status` from the backend's trailers, when they had one.
    pub grpc_status: Option<u32>,
}

/// Called once when a response body has been sent completely, failed, or was dropped
/// (client went away). Carries the access log and metrics of the exchange.
pub trait OnBodyEnd: Send + 'static {
    /// See [`BodyEnd`].
    fn on_end(self: Box<Self>, end: BodyEnd);
}

pin_project_lite::pin_project! {
    /// The response body sent to the client.
    pub struct ResponseBody {
        #[pin]
        kind: ResponseKind,
        sent: u64,
        grpc_status: Option<u32>,
        on_end: Option<Box<dyn OnBodyEnd>>,
    }

    impl PinnedDrop for ResponseBody {
        fn drop(this: Pin<&mut Self>) {
            let this = this.project();
            if let Some(on_end) = this.on_end.take() {
                // Dropped without `poll_frame` returning `None`: complete only if nothing
                // was left to send (hyper need not poll a body that says it has ended).
                let complete = match this.kind.project() {
                    ResponseKindProj::Backend { inner } => inner.is_end_stream(),
                    ResponseKindProj::Coalesced { inner } => inner.is_end_stream(),
                    ResponseKindProj::Full { data } => data.is_none(),
                };
                on_end.on_end(BodyEnd {
                    bytes_sent: *this.sent,
                    complete,
                    grpc_status: *this.grpc_status,
                });
            }
        }
    }
}

pin_project_lite::pin_project! {
    #[project = ResponseKindProj]
    enum ResponseKind {
        Backend { #[pin] inner: Incoming },
        Coalesced { #[pin] inner: Coalesce<Incoming> },
        Full { data: Option<Bytes> },
    }
}

impl ResponseBody {
    /// Streams the backend's body.
    #[must_use]
    pub fn backend(inner: Incoming) -> Self {
        Self {
            kind: ResponseKind::Backend { inner },
            sent: 0,
            grpc_status: None,
            on_end: None,
        }
    }

    /// The backend's body with its chunks collected up to [`COALESCE_BYTES`] before
    /// each is sent (`forward-request buffer-response="true"`).
    #[must_use]
    pub fn backend_coalesced(inner: Incoming) -> Self {
        Self {
            kind: ResponseKind::Coalesced {
                inner: Coalesce::new(inner),
            },
            sent: 0,
            grpc_status: None,
            on_end: None,
        }
    }

    /// A body produced by the gateway.
    #[must_use]
    pub fn full(data: Bytes) -> Self {
        Self {
            kind: ResponseKind::Full {
                data: (!data.is_empty()).then_some(data),
            },
            sent: 0,
            grpc_status: None,
            on_end: None,
        }
    }

    /// An empty body.
    #[must_use]
    pub fn empty() -> Self {
        Self::full(Bytes::new())
    }

    /// Attaches the end-of-exchange hook.
    #[must_use]
    pub fn with_on_end(mut self, on_end: Box<dyn OnBodyEnd>) -> Self {
        self.on_end = Some(on_end);
        self
    }
}

impl Body for ResponseBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = self.project();
        let polled = match this.kind.project() {
            ResponseKindProj::Backend { inner } => match inner.poll_frame(cx) {
                Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(BoxError::from(e)))),
                Poll::Ready(Some(Ok(frame))) => Poll::Ready(Some(Ok(frame))),
                Poll::Ready(None) => Poll::Ready(None),
                Poll::Pending => Poll::Pending,
            },
            ResponseKindProj::Coalesced { inner } => inner.poll_frame(cx),
            ResponseKindProj::Full { data } => Poll::Ready(data.take().map(|d| Ok(Frame::data(d)))),
        };
        let end = |complete| BodyEnd {
            bytes_sent: *this.sent,
            complete,
            grpc_status: *this.grpc_status,
        };
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    *this.sent += data.len() as u64;
                } else if let Some(trailers) = frame.trailers_ref() {
                    *this.grpc_status = super::grpc::status(trailers);
                }
            }
            Poll::Ready(None) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end.on_end(end(true));
                }
            }
            Poll::Ready(Some(Err(_))) => {
                if let Some(on_end) = this.on_end.take() {
                    on_end.on_end(end(false));
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            ResponseKind::Backend { inner } => inner.is_end_stream(),
            ResponseKind::Coalesced { inner } => inner.is_end_stream(),
            ResponseKind::Full { data } => data.is_none(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            ResponseKind::Backend { inner } => inner.size_hint(),
            ResponseKind::Coalesced { inner } => inner.size_hint(),
            ResponseKind::Full { data } => {
                SizeHint::with_exact(data.as_ref().map_or(0, |d| d.len() as u64))
            }
        }
    }
}

/// Why [`collect_at_most`] gave no body.
#[derive(Debug)]
pub enum CollectError {
    /// The body is longer than the limit.
    TooLarge,
    /// The body failed (its own error, boxed).
    Failed(BoxError),
}

/// Reads `body` whole, at most `limit` bytes: what the gateway buffers for policies,
/// `buffer-request-body` and `send-request` responses.
///
/// # Errors
///
/// [`CollectError::TooLarge`] past `limit`, [`CollectError::Failed`] with the body's
/// error.
pub async fn collect_at_most<B>(body: B, limit: u64) -> Result<Bytes, CollectError>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    use http_body_util::BodyExt as _;
    let limited = http_body_util::Limited::new(body, usize::try_from(limit).unwrap_or(usize::MAX));
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(error) if error.is::<http_body_util::LengthLimitError>() => Err(CollectError::TooLarge),
        Err(error) => Err(CollectError::Failed(error)),
    }
}

/// How much [`Coalesce`] collects before it sends: APIM's 8 KB.
pub const COALESCE_BYTES: usize = 8 * 1024;

pin_project_lite::pin_project! {
    /// A body whose data frames are collected until [`COALESCE_BYTES`] are there (or
    /// the body ends, or trailers come) and then sent as one: `buffer-response="true"`.
    /// Holds at most [`COALESCE_BYTES`] plus one frame.
    pub struct Coalesce<B> {
        #[pin]
        inner: B,
        collected: bytes::BytesMut,
        // Trailers (or an error) that came after collected data: sent next.
        held: Option<Result<Frame<Bytes>, BoxError>>,
        ended: bool,
    }
}

impl<B> Coalesce<B> {
    /// Collects `inner`'s frames.
    pub fn new(inner: B) -> Self {
        Self {
            inner,
            collected: bytes::BytesMut::new(),
            held: None,
            ended: false,
        }
    }
}

impl<B> Body for Coalesce<B>
where
    B: Body<Data = Bytes>,
    B::Error: Into<BoxError>,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let mut this = self.project();
        if let Some(held) = this.held.take() {
            return Poll::Ready(Some(held));
        }
        loop {
            if *this.ended {
                return Poll::Ready(
                    (!this.collected.is_empty())
                        .then(|| Ok(Frame::data(this.collected.split().freeze()))),
                );
            }
            match this.inner.as_mut().poll_frame(cx) {
                Poll::Ready(Some(Ok(frame))) => match frame.into_data() {
                    Ok(data) => {
                        this.collected.extend_from_slice(&data);
                        if this.collected.len() >= COALESCE_BYTES {
                            return Poll::Ready(Some(Ok(Frame::data(
                                this.collected.split().freeze(),
                            ))));
                        }
                    }
                    // Trailers: what was collected goes first.
                    Err(frame) => {
                        if this.collected.is_empty() {
                            return Poll::Ready(Some(Ok(frame)));
                        }
                        *this.held = Some(Ok(frame));
                        return Poll::Ready(Some(Ok(Frame::data(this.collected.split().freeze()))));
                    }
                },
                Poll::Ready(Some(Err(error))) => {
                    *this.ended = true;
                    let error = error.into();
                    if this.collected.is_empty() {
                        return Poll::Ready(Some(Err(error)));
                    }
                    *this.held = Some(Err(error));
                    return Poll::Ready(Some(Ok(Frame::data(this.collected.split().freeze()))));
                }
                Poll::Ready(None) => *this.ended = true,
                // Waiting for more: nothing is sent before 8 KiB or the end, as APIM.
                Poll::Pending => return Poll::Pending,
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none()
            && self.collected.is_empty()
            && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        let mut hint = self.inner.size_hint();
        let extra = self.collected.len() as u64;
        hint.set_lower(hint.lower().saturating_add(extra));
        if let Some(upper) = hint.upper() {
            hint.set_upper(upper.saturating_add(extra));
        }
        hint
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The frames `Coalesce` makes of data frames of `sizes` (then trailers).
    fn coalesced(sizes: &[usize], trailers: bool) -> Vec<Result<usize, &'static str>> {
        use http_body_util::BodyExt as _;
        let mut frames: Vec<Result<Frame<Bytes>, std::convert::Infallible>> = sizes
            .iter()
            .map(|&size| Ok(Frame::data(Bytes::from(vec![b'x'; size]))))
            .collect();
        if trailers {
            frames.push(Ok(Frame::trailers(http::HeaderMap::new())));
        }
        let body = Coalesce::new(http_body_util::StreamBody::new(futures_util::stream::iter(
            frames,
        )));
        let mut body = std::pin::pin!(body);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        runtime.block_on(async {
            let mut out = Vec::new();
            while let Some(frame) = body.frame().await {
                let frame = frame.unwrap();
                out.push(match frame.into_data() {
                    Ok(data) => Ok(data.len()),
                    Err(_) => Err("trailers"),
                });
            }
            out
        })
    }

    #[test]
    fn small_chunks_go_out_in_8_kib_pieces_and_the_rest_at_the_end() {
        assert_eq!(
            coalesced(&[100; 200], false),
            [Ok(8200), Ok(8200), Ok(3600)]
        );
        assert_eq!(
            coalesced(&[20_000], false),
            [Ok(20_000)],
            "a large chunk as it is"
        );
        assert_eq!(coalesced(&[10, 10], true), [Ok(20), Err("trailers")]);
        assert_eq!(coalesced(&[], true), [Err("trailers")]);
        assert_eq!(coalesced(&[], false), Vec::<Result<usize, &str>>::new());
    }

    #[test]
    fn the_http3_variant_costs_the_tcp_protocols_no_space() {
        // Boxed, the HTTP/3 stream leaves `ClientBody` (and so `RequestBody`, moved
        // into every backend request) the size hyper's body alone had.
        assert_eq!(
            std::mem::size_of::<ClientBody>(),
            std::mem::size_of::<Incoming>()
        );
    }
}
