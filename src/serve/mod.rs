//! `stratbox serve`: the HTTP/JSON service. A router over one [`State`]; handlers stay thin
//! and call the library ([`crate::batch`], [`Sandbox`]).
//!
//! | endpoint | body | response |
//! |---|---|---|
//! | `POST /v1/run` | one request (`stratbox schema request`) | its outcome |
//! | `POST /v1/check` | one request | `{id, status, route, violations, policy}`; runs nothing |
//! | `POST /v1/batch` | JSON Lines requests | JSON Lines outcomes, streamed as runs finish |
//! | `GET /v1/health` | | `{"status": "ok"}` (no token needed) |
//! | `GET /metrics` | | Prometheus text (OpenMetrics) |
//!
//! Limits: the server's profile is the ceiling (a request may name a built-in profile no
//! looser than it, [`crate::Policy::within`], and set `limits` no looser than its own,
//! [`crate::policy::RequestLimits::within`]); a request body is bounded by that profile's
//! source and input limits ([`max_line_bytes`]); `path` and `input_path` are refused
//! unless a files root was given, and then only what resolves inside it; at most
//! `max_in_flight` runs at once and `max_queued` waiting, past which `429` with
//! `Retry-After` (`503` once shutting down).

mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, Request as HttpRequest, State as AxumState};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use futures_util::stream::{self, StreamExt as _};
use serde::Serialize;
use subtle::ConstantTimeEq as _;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::batch::{LineSplitter, Parsed, ResolveError, Resolved, Resolver, max_line_bytes};
use crate::outcome::{Outcome, Status};
use crate::route::Route;
use crate::sandbox::Sandbox;
use crate::validate::Violation;

pub use metrics::Metrics;

/// Where `serve` listens when no address is given.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8750";

/// Seconds a client is told to wait (`Retry-After`) when the server is full.
pub const RETRY_AFTER_SECONDS: u32 = 1;

/// Why the server cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// A non-loopback address without a token.
    #[error(
        "listening on {0}, which is not a loopback address, needs a bearer token: \
         pass --token-file FILE"
    )]
    TokenRequired(SocketAddr),
    /// The token is empty.
    #[error("the token is empty")]
    EmptyToken,
}

/// How the server is set up (beyond its sandbox and resolver).
#[derive(Debug, Clone)]
pub struct ServeSettings {
    /// The bearer token every request but `/v1/health` must carry; required for a
    /// non-loopback address ([`ServeSettings::check`]).
    pub token: Option<String>,
    /// Runs at once.
    pub max_in_flight: usize,
    /// Requests waiting for a run slot; past this, `429`.
    pub max_queued: usize,
    /// After SIGTERM/SIGINT: how long in-flight runs may go on before they are cancelled.
    pub grace: Duration,
}

impl ServeSettings {
    /// Checks that a server on `listen` may start with these settings.
    pub fn check(&self, listen: &SocketAddr) -> Result<(), ServeError> {
        match &self.token {
            Some(token) if token.is_empty() => Err(ServeError::EmptyToken),
            Some(_) => Ok(()),
            None if listen.ip().is_loopback() => Ok(()),
            None => Err(ServeError::TokenRequired(*listen)),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub struct State {
    sandbox: Arc<Sandbox>,
    resolver: Arc<Resolver>,
    token: Option<String>,
    /// One permit per run at once.
    slots: Arc<Semaphore>,
    /// Requests admitted (running or waiting for a slot).
    admitted: AtomicUsize,
    max_admitted: usize,
    max_in_flight: usize,
    max_line: usize,
    shutting_down: AtomicBool,
    metrics: Metrics,
}

impl State {
    /// The shared state of a server.
    pub fn new(sandbox: Arc<Sandbox>, resolver: Resolver, settings: &ServeSettings) -> Self {
        let in_flight = settings.max_in_flight.max(1);
        Self {
            sandbox,
            max_line: max_line_bytes(resolver.default_policy()),
            resolver: Arc::new(resolver),
            token: settings.token.clone(),
            slots: Arc::new(Semaphore::new(in_flight)),
            admitted: AtomicUsize::new(0),
            max_admitted: in_flight + settings.max_queued,
            max_in_flight: in_flight,
            shutting_down: AtomicBool::new(false),
            metrics: Metrics::new(),
        }
    }

    /// From now on, new requests get `503`.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::SeqCst);
    }

    /// Admits a request or says why not (`429` full, `503` shutting down).
    fn admit(self: &Arc<Self>) -> Result<Admitted, Box<Response>> {
        if self.shutting_down.load(Ordering::SeqCst) {
            return Err(Box::new(busy(
                StatusCode::SERVICE_UNAVAILABLE,
                "the server is shutting down",
            )));
        }
        let before = self.admitted.fetch_add(1, Ordering::SeqCst);
        if before >= self.max_admitted {
            self.admitted.fetch_sub(1, Ordering::SeqCst);
            self.metrics.refused();
            return Err(Box::new(busy(
                StatusCode::TOO_MANY_REQUESTS,
                "the server is at its limit of runs and waiting requests",
            )));
        }
        self.metrics.set_queue(self.queue_depth());
        Ok(Admitted {
            state: Arc::clone(self),
        })
    }

    fn queue_depth(&self) -> usize {
        let running = self.max_in_flight - self.slots.available_permits();
        self.admitted.load(Ordering::SeqCst).saturating_sub(running)
    }

    /// Waits for a run slot.
    async fn slot(&self) -> OwnedSemaphorePermit {
        // The semaphore is never closed, so acquiring only waits.
        let permit = Arc::clone(&self.slots)
            .acquire_owned()
            .await
            .unwrap_or_else(|_| unreachable!("the run semaphore is never closed"));
        self.metrics.set_queue(self.queue_depth());
        permit
    }

    /// Runs one parsed request in a slot, with its log line and metrics.
    async fn run(self: Arc<Self>, parsed: Parsed, line: Option<u64>) -> Outcome {
        let _slot = self.slot().await;
        let _running = self.metrics.running();
        let outcome = self.resolver.run(&self.sandbox, parsed, line).await;
        self.record(&outcome);
        outcome
    }

    fn record(&self, outcome: &Outcome) {
        self.metrics.observe(outcome);
        tracing::info!(
            id = outcome.id.as_deref().unwrap_or("-"),
            backend = outcome.backend.map_or("-", |b| b.as_str()),
            status = outcome.status.as_str(),
            reason = outcome.reason.map_or("-", |r| r.as_str()),
            wall_ms = outcome.usage.wall_ms,
            "run"
        );
    }
}

/// A request counted against the queue bound until it is dropped.
struct Admitted {
    state: Arc<State>,
}

impl Drop for Admitted {
    fn drop(&mut self) {
        self.state.admitted.fetch_sub(1, Ordering::SeqCst);
        self.state.metrics.set_queue(self.state.queue_depth());
    }
}

/// `429`/`503` with `Retry-After` and a JSON message.
fn busy(status: StatusCode, message: &str) -> Response {
    let mut response =
        (status, json_body(&serde_json::json!({ "error": message }))).into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

fn json_body(value: &impl Serialize) -> Response {
    match serde_json::to_vec(value) {
        Ok(bytes) => ([(header::CONTENT_TYPE, "application/json")], bytes).into_response(),
        Err(err) => (StatusCode::INTERNAL_SERVER_ERROR, err.to_string()).into_response(),
    }
}

/// The service's routes over `state`.
pub fn router(state: Arc<State>) -> Router {
    let body_limit = state.max_line;
    let protected = Router::new()
        .route(
            "/v1/run",
            post(run).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/v1/check",
            post(check).layer(DefaultBodyLimit::max(body_limit)),
        )
        // Read line by line, each line bounded: the body as a whole is not.
        .route("/v1/batch", post(batch).layer(DefaultBodyLimit::disable()))
        .route("/metrics", get(metrics))
        .route_layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authorize,
        ));
    Router::new()
        .route("/v1/health", get(health))
        .merge(protected)
        .with_state(state)
}

/// Refuses a request without the bearer token (when the server has one), comparing in
/// constant time.
async fn authorize(
    AxumState(state): AxumState<Arc<State>>,
    request: HttpRequest,
    next: Next,
) -> Response {
    let Some(token) = &state.token else {
        return next.run(request).await;
    };
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.as_bytes().strip_prefix(b"Bearer "))
        .unwrap_or_default();
    if bool::from(given.ct_eq(token.as_bytes())) {
        return next.run(request).await;
    }
    let mut response = (
        StatusCode::UNAUTHORIZED,
        json_body(&serde_json::json!({ "error": "a bearer token is required" })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
    response
}

async fn health() -> Response {
    json_body(&serde_json::json!({ "status": "ok" }))
}

async fn metrics(AxumState(state): AxumState<Arc<State>>) -> Response {
    state.metrics.set_queue(state.queue_depth());
    if let Some(pool) = state.sandbox.container_pool_status() {
        state.metrics.set_pool(&pool);
    }
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
        .into_response()
}

/// The HTTP status of a request that could not be resolved: refusals of host files and
/// of profiles above the ceiling are `403`, other mistakes `400`.
fn refusal_status(err: &ResolveError) -> StatusCode {
    match err {
        ResolveError::FilesRefused { .. }
        | ResolveError::OutsideRoot { .. }
        | ResolveError::ProfilePath(_)
        | ResolveError::AboveCeiling(_)
        | ResolveError::LimitAboveCeiling(_) => StatusCode::FORBIDDEN,
        ResolveError::Request(_)
        | ResolveError::Read { .. }
        | ResolveError::InputTooLarge { .. }
        | ResolveError::Profile(_) => StatusCode::BAD_REQUEST,
    }
}

/// The `invalid` outcome of a request and its HTTP status.
fn invalid(state: &State, status: StatusCode, id: Option<String>, message: String) -> Response {
    let outcome = Outcome::invalid(&state.resolver.default_policy().name, message).with_id(id);
    state.record(&outcome);
    (status, json_body(&outcome)).into_response()
}

/// Reads and resolves the one request of a body (files read, profile checked), so that a
/// refusal gets its own HTTP status; `Err` is the response that refuses it.
fn resolve_body(state: &State, body: &[u8]) -> Result<Resolved, Box<Response>> {
    let request = match Parsed::from_bytes(body) {
        Parsed::Request(request) => request,
        Parsed::Invalid { id, message } => {
            return Err(Box::new(invalid(
                state,
                StatusCode::BAD_REQUEST,
                id,
                message,
            )));
        }
    };
    let id = request.id.clone();
    state.resolver.resolve(request).map_err(|err| {
        let status = refusal_status(&err);
        Box::new(invalid(state, status, id, crate::sandbox::chain(&err)))
    })
}

async fn run(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    let _admitted = match state.admit() {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let resolved = match resolve_body(&state, &body) {
        Ok(resolved) => resolved,
        Err(response) => return *response,
    };
    let _slot = state.slot().await;
    let _running = state.metrics.running();
    let outcome = state.resolver.run_resolved(&state.sandbox, &resolved).await;
    state.record(&outcome);
    json_body(&outcome)
}

/// The verdict of `POST /v1/check`, the same shape as `stratbox check --json`.
#[derive(Debug, Serialize)]
struct CheckOutcome {
    id: Option<String>,
    /// `ok` (it would run) or `rejected`.
    status: Status,
    route: Option<Route>,
    violations: Vec<Violation>,
    policy: String,
}

async fn check(AxumState(state): AxumState<Arc<State>>, body: Bytes) -> Response {
    let _admitted = match state.admit() {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let resolved = match resolve_body(&state, &body) {
        Ok(resolved) => resolved,
        Err(response) => return *response,
    };
    let (route, violations) = match state.sandbox.check(&resolved.request(), &resolved.policy) {
        Ok(route) => (Some(route), Vec::new()),
        Err(violations) => (None, violations),
    };
    json_body(&CheckOutcome {
        id: resolved.id.clone(),
        status: if violations.is_empty() {
            Status::Ok
        } else {
            Status::Rejected
        },
        route,
        violations,
        policy: resolved.policy.name.clone(),
    })
}

/// JSON Lines in, JSON Lines out as runs finish. The body is read as the runs take
/// requests, so neither side is held whole.
async fn batch(AxumState(state): AxumState<Arc<State>>, body: Body) -> Response {
    let admitted = match state.admit() {
        Ok(admitted) => admitted,
        Err(response) => return *response,
    };
    let max_line = state.max_line;
    let reader = BodyLines {
        body: body.into_data_stream(),
        splitter: Some(LineSplitter::new(max_line)),
        ready: std::collections::VecDeque::new(),
    };
    let lines = stream::unfold(reader, |mut reader| async move {
        reader.next().await.map(|line| (line, reader))
    });
    let runs_state = Arc::clone(&state);
    let outcomes = lines
        .map(move |line| {
            let state = Arc::clone(&runs_state);
            let parsed = Parsed::from_line(&line, max_line);
            tokio::spawn(state.run(parsed, Some(line.number())))
        })
        .buffer_unordered(state.max_in_flight)
        .map(move |joined| {
            // The admission is held until the last outcome is sent.
            let _held = &admitted;
            let outcome = joined.unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()));
            let mut bytes = serde_json::to_vec(&outcome).unwrap_or_default();
            bytes.push(b'\n');
            Ok::<_, std::convert::Infallible>(Bytes::from(bytes))
        });
    let mut headers = HeaderMap::new();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/jsonl"),
    );
    (headers, Body::from_stream(outcomes)).into_response()
}

/// Lines of a request body, read chunk by chunk.
struct BodyLines {
    body: axum::body::BodyDataStream,
    splitter: Option<LineSplitter>,
    ready: std::collections::VecDeque<crate::batch::Line>,
}

impl BodyLines {
    async fn next(&mut self) -> Option<crate::batch::Line> {
        loop {
            if let Some(line) = self.ready.pop_front() {
                return Some(line);
            }
            let splitter = self.splitter.as_mut()?;
            match self.body.next().await {
                Some(Ok(chunk)) => {
                    let mut lines = Vec::new();
                    splitter.push(&chunk, &mut lines);
                    self.ready.extend(lines);
                }
                // A body cut off mid-way ends the batch where it was cut.
                Some(Err(_)) | None => {
                    let last = self.splitter.take().and_then(LineSplitter::finish);
                    self.ready.extend(last);
                }
            }
        }
    }
}

/// Serves on `listener` until `shutdown` resolves; then refuses new requests with `503`,
/// lets in-flight requests finish for `grace`, and returns. Runs still going after that are
/// cancelled when the caller drops the runtime (each removes its container as it drops).
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: Arc<State>,
    grace: Duration,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let app = router(Arc::clone(&state));
    let mut stopped_server = stopped.clone();
    let server = tokio::spawn(
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped_server.wait_for(|stop| *stop).await;
            })
            .into_future(),
    );
    shutdown.await;
    state.begin_shutdown();
    tracing::info!(grace_ms = grace.as_millis() as u64, "shutting down");
    let _ = stop.send(true);
    drop(stopped);
    match tokio::time::timeout(grace, server).await {
        Ok(Ok(served)) => served,
        Ok(Err(join)) => Err(std::io::Error::other(join)),
        Err(_elapsed) => {
            tracing::info!("grace period over: cancelling the runs still going");
            Ok(())
        }
    }
}
