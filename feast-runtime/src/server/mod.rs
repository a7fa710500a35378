//! `serve`: an HTTP server with the endpoints and JSON of Feast's feature
//! server, so Feast's clients can call it unchanged.
//!
//! | endpoint | body |
//! |---|---|
//! | `POST /get-online-features` | `{"features": [...] \| "feature_service": "...", "entities": {key: [values]}, "full_feature_names": false}` |
//! | `POST /push` | `{"push_source_name": "...", "df": {column: [values]}, "to": "online" \| "offline" \| "online_and_offline"}` |
//! | `POST /write-to-online-store` | `{"feature_view_name": "...", "df": {column: [values]}}` |
//! | `POST /materialize` | `{"start_ts": "...", "end_ts": "...", "feature_views": [...]}` |
//! | `POST /materialize-incremental` | `{"end_ts": "...", "feature_views": [...]}` |
//! | `GET /health`, `GET /metrics` | |
//!
//! The online response is Feast's column-major JSON, entity columns first
//! and features in request order (Feast's order varies from run to run).
//! Errors are JSON `{"detail": "..."}` naming the problem: 400 for malformed
//! JSON, wrong types or bad values, 404 for an unknown view, feature,
//! service or push source, 413 for a body over the limit, 503 when the
//! online store cannot be reached or a request runs out of time, 500 (with
//! the cause logged) for anything else.
//!
//! Connections are served by hyper directly (not `axum::serve`) so that the
//! server can cap them and time out slow clients: a connection over the cap
//! gets a 503 and is closed; one that sends nothing, or not a whole request
//! head, within the header timeout is closed.

mod handlers;
mod metrics;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;

use crate::feature_store::FeatureStore;
pub use metrics::Metrics;

/// How the server runs.
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// Concurrent connections; one more gets a 503 and is closed.
    pub max_connections: usize,
    /// Larger request bodies get a 413.
    pub body_limit_bytes: usize,
    /// A request still running after this gets a 503.
    pub request_timeout: Duration,
    /// A connection must send a whole request head within this.
    pub header_read_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_connections: 1024,
            body_limit_bytes: 2 << 20,
            request_timeout: Duration::from_secs(10),
            header_read_timeout: Duration::from_secs(5),
        }
    }
}

/// What every handler shares.
#[derive(Debug)]
pub(crate) struct AppState {
    pub(crate) store: Arc<FeatureStore>,
    pub(crate) metrics: Metrics,
    pub(crate) request_timeout: Duration,
}

/// The routes, on `store`.
pub fn router(store: Arc<FeatureStore>, opts: &ServerOptions) -> Router {
    let state = Arc::new(AppState {
        store,
        metrics: Metrics::default(),
        request_timeout: opts.request_timeout,
    });
    Router::new()
        .route("/get-online-features", post(handlers::get_online_features))
        .route("/push", post(handlers::push))
        .route(
            "/write-to-online-store",
            post(handlers::write_to_online_store),
        )
        .route("/materialize", post(handlers::materialize))
        .route(
            "/materialize-incremental",
            post(handlers::materialize_incremental),
        )
        .route("/health", get(handlers::health))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::not_found)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            handlers::observe,
        ))
        .layer(DefaultBodyLimit::max(opts.body_limit_bytes))
        .with_state(state)
}

/// Serves `store` on `listener` until `shutdown` resolves; then stops
/// accepting and gives open connections up to five seconds to finish.
pub async fn serve(
    listener: TcpListener,
    store: Arc<FeatureStore>,
    opts: ServerOptions,
    shutdown: impl std::future::Future<Output = ()>,
) -> std::io::Result<()> {
    let app = router(store, &opts);
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            a = listener.accept() => a,
            () = &mut shutdown => break,
        };
        let (stream, peer) = match accepted {
            Ok(a) => a,
            Err(e) => {
                // Out of file descriptors, say: back off rather than spin.
                tracing::warn!(error = %e, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        match slots.clone().try_acquire_owned() {
            Ok(permit) => {
                let app = app.clone();
                let header_timeout = opts.header_read_timeout;
                tokio::spawn(async move {
                    serve_connection(stream, peer, app, header_timeout).await;
                    drop(permit);
                });
            }
            Err(_) => {
                tokio::spawn(refuse(stream));
            }
        }
    }
    let all = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
    let _ = tokio::time::timeout(Duration::from_secs(5), slots.acquire_many(all)).await;
    Ok(())
}

async fn serve_connection(
    stream: TcpStream,
    peer: SocketAddr,
    app: Router,
    header_timeout: Duration,
) {
    // hyper's header timer starts with the first byte: a client that sends
    // nothing is timed out here.
    let mut first = [0u8; 1];
    match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
        Ok(Ok(n)) if n > 0 => {}
        _ => return,
    }
    let service = hyper_util::service::TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(header_timeout)
        .serve_connection(hyper_util::rt::TokioIo::new(stream), service);
    if let Err(e) = conn.await {
        tracing::debug!(%peer, error = %e, "connection ended with an error");
    }
}

/// Over the connection cap: a 503 and close.
async fn refuse(mut stream: TcpStream) {
    let body = r#"{"detail":"too many connections; try again"}"#;
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tokio::time::timeout(Duration::from_secs(1), async {
        let _ = stream.write_all(response.as_bytes()).await;
        let _ = stream.shutdown().await;
    })
    .await;
}
