//! `/healthz` (the process runs) and `/readyz` (it can serve).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Serialize;

/// Whether this instance can serve, and what it says about itself.
#[derive(Clone)]
pub struct Readiness(Arc<ReadinessInner>);

struct ReadinessInner {
    instance: String,
    mode: &'static str,
    ready: AtomicBool,
}

impl Readiness {
    /// Readiness of instance `instance` in `mode` (`memory` or `redis`).
    pub fn new(instance: impl Into<String>, mode: &'static str, ready: bool) -> Self {
        Self(Arc::new(ReadinessInner { instance: instance.into(), mode, ready: AtomicBool::new(ready) }))
    }

    /// Marks the instance ready or not (for example while Redis is unreachable).
    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::Relaxed);
    }

    /// True if the instance can serve.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::Relaxed)
    }
}

/// 200 while the process runs.
pub async fn healthz() -> &'static str {
    "ok"
}

#[derive(Serialize)]
struct ReadyBody<'a> {
    status: &'static str,
    mode: &'static str,
    instance: &'a str,
}

/// 200 when the instance can serve, 503 otherwise; the body says which mode
/// and which instance answered.
pub async fn readyz(State(readiness): State<Readiness>) -> (StatusCode, Json<serde_json::Value>) {
    let ready = readiness.is_ready();
    let body = ReadyBody {
        status: if ready { "ready" } else { "unavailable" },
        mode: readiness.0.mode,
        instance: &readiness.0.instance,
    };
    let status = if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, Json(serde_json::to_value(body).unwrap_or_default()))
}
