//! The lab's fault-injection API (JSON over HTTP on loopback):
//! `GET /` the topology, `GET /faults`, `POST /faults` (a [`FaultSpec`]), `DELETE /faults`
//! (clear all), `DELETE /faults/{id}`.

use std::sync::Arc;

use axum::extract::rejection::JsonRejection;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get};
use axum::{Json, Router};
use serde_json::json;

use super::Shared;
use super::fault::{Fault, FaultSpec};
use super::topology::{HOSTS, REGIONS, RESOLVERS, Topology, VENDORS};

pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(topology))
        .route("/faults", get(list).post(add).delete(clear))
        .route("/faults/{id}", delete(remove))
        .with_state(shared)
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({ "error": message.into() }))).into_response()
}

async fn topology(State(shared): State<Arc<Shared>>) -> Json<serde_json::Value> {
    let t = &shared.topology;
    let regions: Vec<_> = REGIONS
        .iter()
        .map(|(region, _, subnet)| {
            let edges: serde_json::Map<String, serde_json::Value> = VENDORS
                .iter()
                .map(|(v, _)| (v.to_string(), json!(Topology::edges(v, region))))
                .collect();
            let resolvers: serde_json::Map<String, serde_json::Value> = RESOLVERS
                .iter()
                .map(|r| (r.to_string(), json!(format!("{}:{}", Topology::resolver_ip(region, r).expect("known"), t.dns_port))))
                .collect();
            json!({
                "name": region,
                "client_subnet": subnet,
                "resolvers": resolvers,
                "edges": edges,
                "control_target": format!("{}:{}", Topology::control_ip(region).expect("known"), t.edge_port),
            })
        })
        .collect();
    let hosts: Vec<_> = HOSTS
        .iter()
        .map(|(d, v, role)| json!({ "domain": d, "vendor": v, "role": role, "cname": t.cname_of(d) }))
        .collect();
    Json(json!({
        "edge_port": t.edge_port,
        "dns_port": t.dns_port,
        "vendors": VENDORS.map(|v| v.0),
        "hosts": hosts,
        "regions": regions,
    }))
}

async fn list(State(shared): State<Arc<Shared>>) -> Json<Vec<Fault>> {
    Json(shared.faults.list())
}

async fn add(
    State(shared): State<Arc<Shared>>,
    body: Result<Json<FaultSpec>, JsonRejection>,
) -> Response {
    let spec = match body {
        Ok(Json(spec)) => spec,
        Err(rejection) => return error(rejection.status(), rejection.body_text()),
    };
    match shared.faults.add(spec.clone()) {
        Ok(id) => (StatusCode::CREATED, Json(Fault { id, spec })).into_response(),
        Err(why) => error(StatusCode::UNPROCESSABLE_ENTITY, why),
    }
}

async fn clear(State(shared): State<Arc<Shared>>) -> StatusCode {
    shared.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove(State(shared): State<Arc<Shared>>, Path(id): Path<u64>) -> Response {
    if shared.faults.remove(id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        error(StatusCode::NOT_FOUND, format!("no fault with id {id}"))
    }
}
