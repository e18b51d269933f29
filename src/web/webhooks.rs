//! `POST /webhooks/bounces`: bounces and complaints reported by an e-mail
//! provider's callback, authenticated with the account's API key
//! (`Authorization: Bearer eb_…`). Shape (documented in the README):
//!
//! ```json
//! {"events": [{"id": "provider-event-id", "type": "hard_bounce",
//!              "return_path": "b12-…@bounces.example", "message_id": "<…>",
//!              "recipient": "user@example.com", "status": "5.1.1",
//!              "diagnostic": "550 user unknown"}]}
//! ```
//!
//! `type` is `hard_bounce`, `soft_bounce` or `complaint`; the delivery is found
//! by `return_path` (our VERP address) or else `message_id`. Each `id` is
//! applied once per account.

use actix_web::http::header::AUTHORIZATION;
use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::domain::bounces::{self, Finding, Kind};
use crate::domain::credentials;
use crate::intake::{self, Taken};
use crate::server::AppState;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/webhooks/bounces", web::post().to(bounces_webhook));
}

#[derive(Deserialize)]
struct Payload {
    events: Vec<Event>,
}

#[derive(Deserialize)]
struct Event {
    id: String,
    #[serde(rename = "type")]
    kind: EventKind,
    #[serde(default)]
    return_path: Option<String>,
    #[serde(default)]
    message_id: Option<String>,
    #[serde(default)]
    recipient: Option<String>,
    #[serde(default)]
    status: String,
    #[serde(default)]
    diagnostic: String,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "snake_case")]
enum EventKind {
    HardBounce,
    SoftBounce,
    Complaint,
}

fn error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(serde_json::json!({ "code": code, "message": message }))
}

async fn bounces_webhook(
    state: web::Data<AppState>,
    req: HttpRequest,
    body: web::Bytes,
) -> HttpResponse {
    use actix_web::http::StatusCode;
    let key = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("")
        .trim()
        .to_string();
    let payload: Payload = match serde_json::from_slice(&body) {
        Ok(payload) => payload,
        Err(e) => return error(StatusCode::BAD_REQUEST, "invalid_json", &e.to_string()),
    };
    let signer = match state.link_signer().await {
        Ok(signer) => signer,
        Err(e) => {
            log::error!("bounce webhook: {e}");
            return error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again later",
            );
        }
    };
    let outcome = state
        .db
        .write(move |conn| {
            let account = match credentials::authenticate_api_key(conn, &key) {
                Ok(credential) => credential.account_id,
                Err(crate::Error::Unauthenticated) => return Ok(None),
                Err(e) => return Err(e),
            };
            let mut counts = (0usize, 0usize, 0usize);
            for event in payload.events {
                let finding = Finding {
                    kind: match event.kind {
                        EventKind::HardBounce => Kind::Hard,
                        EventKind::SoftBounce => Kind::Soft,
                        EventKind::Complaint => Kind::Complaint,
                    },
                    delivery_id: event
                        .return_path
                        .as_deref()
                        .and_then(|address| bounces::delivery_of(&signer, address)),
                    message_id: event.message_id,
                    recipient: event.recipient,
                    status: event.status,
                    diagnostic: event.diagnostic,
                };
                let source = format!("webhook:{account}:{}", event.id);
                match intake::take_findings(conn, &source, Some(account), Some(&[finding]))? {
                    Taken::Applied { unmatched: 0, .. } => counts.0 += 1,
                    Taken::Applied { .. } | Taken::Unreadable => counts.2 += 1,
                    Taken::Repeated => counts.1 += 1,
                }
            }
            Ok(Some(counts))
        })
        .await;
    match outcome {
        Ok(Some((applied, repeated, unmatched))) => HttpResponse::Ok().json(serde_json::json!({
            "applied": applied, "repeated": repeated, "unmatched": unmatched
        })),
        Ok(None) => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "a valid API key is required",
        ),
        Err(e) => {
            log::error!("bounce webhook: {e}");
            error(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "try again later",
            )
        }
    }
}
