//! The endpoints, their request bodies, and how errors become responses.

use std::sync::Arc;
use std::time::Instant;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::AppState;
use crate::definition::{FeastType, FieldDef};
use crate::feature_store::json;
use crate::feature_store::{self, FeatureStore, Features, PushMode};
use crate::offline_store;

/// An error response: a status and `{"detail": "..."}`.
#[derive(Debug)]
pub(crate) struct ApiError {
    status: StatusCode,
    detail: String,
}

impl ApiError {
    fn new(status: StatusCode, detail: impl Into<String>) -> ApiError {
        ApiError {
            status,
            detail: detail.into(),
        }
    }

    fn bad_request(detail: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, detail)
    }

    fn internal(cause: impl std::fmt::Display) -> ApiError {
        tracing::error!(error = %cause, "request failed");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error (the server's log has the cause)",
        )
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::json!({ "detail": self.detail }).to_string();
        json_response(self.status, body.into_bytes())
    }
}

impl From<json::RequestError> for ApiError {
    fn from(e: json::RequestError) -> ApiError {
        ApiError::bad_request(e.to_string())
    }
}

impl From<feature_store::Error> for ApiError {
    fn from(e: feature_store::Error) -> ApiError {
        use crate::online_store::read::ReadError;
        use crate::registry::ResolveError as R;
        use feature_store::Error as E;
        match e {
            E::Resolve(R::BadReference(_)) => ApiError::bad_request(e.to_string()),
            E::Resolve(_) => ApiError::new(StatusCode::NOT_FOUND, e.to_string()),
            E::AmbiguousFeature { .. }
            | E::Frame { .. }
            | E::EntityRows(_)
            | E::Retrieval(_)
            | E::Read(ReadError::Lengths { .. } | ReadError::MissingJoinKey { .. })
            | E::Transform(_)
            | E::Output { .. }
            | E::AggregatedWrite { .. }
            | E::Offline(
                offline_store::Error::Columns { .. } | offline_store::Error::Frame { .. },
            ) => ApiError::bad_request(e.to_string()),
            E::Offline(offline_store::Error::Missing { .. }) => {
                ApiError::new(StatusCode::NOT_FOUND, e.to_string())
            }
            E::Online(ref o) | E::Read(ReadError::Store(ref o)) if o.is_transient() => {
                ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string())
            }
            other => ApiError::internal(other),
        }
    }
}

fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut r = Response::new(Body::from(body));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("application/json"),
    );
    r
}

/// A request body as `T`; malformed JSON or a wrong type is a 400 that says
/// what and where (the field's path, the line and column).
fn parse<T: DeserializeOwned>(body: &Bytes) -> Result<T, ApiError> {
    let first = body.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        let found = match serde_json::from_slice::<serde_json::Value>(body) {
            Err(e) => return Err(ApiError::bad_request(format!("invalid request body: {e}"))),
            Ok(serde_json::Value::Array(_)) => "an array",
            Ok(serde_json::Value::String(_)) => "a string",
            Ok(serde_json::Value::Number(_)) => "a number",
            Ok(serde_json::Value::Bool(_)) => "a boolean",
            Ok(_) => "null",
        };
        return Err(ApiError::bad_request(format!(
            "invalid request body: expected a JSON object, found {found}"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        ApiError::bad_request(if path == "." || path == "?" || path.is_empty() {
            format!("invalid request body: {inner}")
        } else {
            format!("invalid request body: {path}: {inner}")
        })
    })
}

/// Runs store work, whose calls block, on the blocking pool: the request
/// timeout applies, and a long call (a materialization) holds no worker.
async fn blocking<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&FeatureStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    let store = state.store.clone();
    tokio::task::spawn_blocking(move || work(&store))
        .await
        .map_err(ApiError::internal)?
}

/// Runs an online read. On an embedded store (SQLite) it takes
/// microseconds, so it runs right here, saving the hand-off to another
/// thread that is most of a read's latency; on a networked store (Redis,
/// which can hang) it goes to the blocking pool like the rest.
async fn read<T: Send + 'static>(
    state: &Arc<AppState>,
    work: impl FnOnce(&FeatureStore) -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if state.store.online_store().is_embedded() {
        return work(&state.store);
    }
    blocking(state, work).await
}

fn parse_ts(what: &str, s: &str) -> Result<DateTime<Utc>, ApiError> {
    crate::definition::time::parse_us(s)
        .and_then(DateTime::<Utc>::from_timestamp_micros)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "{what} `{s}` is not an ISO-8601 time such as 2025-01-01T00:00:00Z"
            ))
        })
}

#[derive(Debug, Deserialize)]
struct GetOnlineFeaturesRequest {
    #[serde(default)]
    features: Option<Vec<String>>,
    #[serde(default)]
    feature_service: Option<String>,
    entities: serde_json::Map<String, serde_json::Value>,
    #[serde(default)]
    full_feature_names: bool,
}

pub(crate) async fn get_online_features(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: GetOnlineFeaturesRequest = parse(&body)?;
    let body = read(&state, move |store| {
        let refs: Vec<&str>;
        let features = match (&req.features, &req.feature_service) {
            (Some(f), None) => {
                refs = f.iter().map(String::as_str).collect();
                Features::Refs(&refs)
            }
            (None, Some(s)) => Features::Service(s),
            (Some(_), Some(_)) => {
                return Err(ApiError::bad_request(
                    "give `features` or `feature_service`, not both",
                ));
            }
            (None, None) => {
                return Err(ApiError::bad_request(
                    "give `features` (a list of \"view:feature\") or `feature_service`",
                ));
            }
        };
        let rows = json::entity_rows(store, &req.entities)?;
        let response = store.get_online_features(&features, &rows, req.full_feature_names)?;
        serde_json::to_vec(&json::feast_json(&response)).map_err(ApiError::internal)
    })
    .await?;
    Ok(json_response(StatusCode::OK, body))
}

fn default_to() -> String {
    "online".to_owned()
}

#[derive(Debug, Deserialize)]
struct PushRequest {
    push_source_name: String,
    df: serde_json::Map<String, serde_json::Value>,
    #[serde(default = "default_to")]
    to: String,
}

pub(crate) async fn push(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: PushRequest = parse(&body)?;
    blocking(&state, move |store| {
        let mode: PushMode = req
            .to
            .parse()
            .map_err(|e: feature_store::UnknownPushMode| ApiError::bad_request(e.to_string()))?;
        let source = store.push_source(&req.push_source_name)?;
        let schema = source.offline_source().schema();
        let df = json::frame(&req.df, &schema)?;
        store.push(&req.push_source_name, &df, mode)?;
        Ok(())
    })
    .await?;
    Ok(json_response(StatusCode::OK, b"null".to_vec()))
}

#[derive(Debug, Deserialize)]
struct WriteRequest {
    feature_view_name: String,
    df: serde_json::Map<String, serde_json::Value>,
}

pub(crate) async fn write_to_online_store(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: WriteRequest = parse(&body)?;
    blocking(&state, move |store| {
        let view = store.view(&req.feature_view_name)?;
        let mut schema = view.output_schema();
        if let Some(created) = view.source.created_timestamp_field() {
            schema.push(FieldDef {
                name: created,
                dtype: FeastType::UnixTimestamp,
            });
        }
        let df = json::frame(&req.df, &schema)?;
        store.write_to_online_store(&req.feature_view_name, &df)?;
        Ok(())
    })
    .await?;
    Ok(json_response(StatusCode::OK, b"null".to_vec()))
}

#[derive(Debug, Deserialize)]
struct MaterializeRequest {
    start_ts: String,
    end_ts: String,
    #[serde(default)]
    feature_views: Option<Vec<String>>,
}

pub(crate) async fn materialize(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: MaterializeRequest = parse(&body)?;
    let (start, end) = (
        parse_ts("start_ts", &req.start_ts)?,
        parse_ts("end_ts", &req.end_ts)?,
    );
    blocking(&state, move |store| {
        store.materialize(start, end, view_names(&req.feature_views).as_deref())?;
        Ok(())
    })
    .await?;
    Ok(json_response(StatusCode::OK, b"null".to_vec()))
}

/// A request's `feature_views`, borrowed as the store takes them.
fn view_names(views: &Option<Vec<String>>) -> Option<Vec<&str>> {
    views
        .as_ref()
        .map(|v| v.iter().map(String::as_str).collect())
}

#[derive(Debug, Deserialize)]
struct MaterializeIncrementalRequest {
    end_ts: String,
    #[serde(default)]
    feature_views: Option<Vec<String>>,
}

pub(crate) async fn materialize_incremental(
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let req: MaterializeIncrementalRequest = parse(&body)?;
    let end = parse_ts("end_ts", &req.end_ts)?;
    blocking(&state, move |store| {
        store.materialize_incremental(end, view_names(&req.feature_views).as_deref())?;
        Ok(())
    })
    .await?;
    Ok(json_response(StatusCode::OK, b"null".to_vec()))
}

/// 200 while the online store answers, 503 when it does not.
pub(crate) async fn health(State(state): State<Arc<AppState>>) -> Result<Response, ApiError> {
    blocking(&state, |store| {
        store
            .online_store()
            .ping()
            .map_err(|e| ApiError::new(StatusCode::SERVICE_UNAVAILABLE, e.to_string()))
    })
    .await?;
    Ok(json_response(
        StatusCode::OK,
        br#"{"status":"ok"}"#.to_vec(),
    ))
}

pub(crate) async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    let mut r = Response::new(Body::from(state.metrics.render()));
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    r
}

pub(crate) async fn not_found(req: Request) -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        format!(
            "no endpoint {} {}; endpoints: POST /get-online-features, /push, /write-to-online-store, /materialize, /materialize-incremental; GET /health, /metrics",
            req.method(),
            req.uri().path()
        ),
    )
}

/// Times each request out and records it in the metrics.
pub(crate) async fn observe(
    State(state): State<Arc<AppState>>,
    req: Request,
    next: Next,
) -> Response {
    let route = super::metrics::route_label(req.uri().path());
    let started = Instant::now();
    let response = match tokio::time::timeout(state.request_timeout, next.run(req)).await {
        Ok(r) => r,
        Err(_) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            format!(
                "the request did not finish within {:?}",
                state.request_timeout
            ),
        )
        .into_response(),
    };
    let response = json_rejection(response).await;
    state
        .metrics
        .record(route, response.status().as_u16(), started.elapsed());
    response
}

/// axum's own rejections (a body over the limit, a wrong method) come as
/// plain text: give them the JSON shape of every other error.
async fn json_rejection(response: Response) -> Response {
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if is_json || !(response.status().is_client_error() || response.status().is_server_error()) {
        return response;
    }
    let status = response.status();
    let text = axum::body::to_bytes(response.into_body(), 64 * 1024)
        .await
        .unwrap_or_default();
    let mut detail = String::from_utf8_lossy(&text).trim().to_owned();
    if detail.is_empty() {
        detail = status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_owned();
    }
    ApiError::new(status, detail).into_response()
}
