//! The page a double opt-in confirmation link opens.

use actix_web::{HttpRequest, HttpResponse, web};
use serde::Deserialize;

use crate::domain::confirmations::{self, Refused};
use crate::domain::{Channel, Origin};
use crate::server::AppState;
use crate::web::{client_ip, page, try_again};

/// Where confirmation links lead, under the server's public URL.
pub const PATH: &str = "/confirm";

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route(PATH, web::get().to(confirm));
}

#[derive(Deserialize)]
struct Query {
    #[serde(default)]
    t: String,
}

async fn confirm(
    state: web::Data<AppState>,
    req: HttpRequest,
    query: web::Query<Query>,
) -> HttpResponse {
    let signer = match state.link_signer().await {
        Ok(signer) => signer,
        Err(e) => return try_again("confirmation page", &e),
    };
    let ip = client_ip(&req, &state.settings)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let token = query.into_inner().t;
    let outcome = state
        .db
        .write(move |conn| {
            let origin = Origin::new(Channel::Web, ip);
            confirmations::follow(conn, &signer, &token, &origin)
        })
        .await;
    match outcome {
        Ok(Ok(confirmed)) => {
            let already = confirmed.iter().all(|c| c.already_confirmed);
            let text = if already {
                "Your subscription was already confirmed. Nothing more to do."
            } else {
                "Thank you: your subscription is confirmed."
            };
            page(
                actix_web::http::StatusCode::OK,
                "Subscription confirmed",
                text,
            )
        }
        Ok(Err(Refused::Forged)) => page(
            actix_web::http::StatusCode::BAD_REQUEST,
            "Link not valid",
            "This confirmation link is not valid. Please copy the whole link from the message.",
        ),
        Ok(Err(Refused::Expired)) => page(
            actix_web::http::StatusCode::GONE,
            "Link expired",
            "This confirmation link has expired. Please subscribe again to receive a new one.",
        ),
        Ok(Err(Refused::Unknown)) => page(
            actix_web::http::StatusCode::NOT_FOUND,
            "Nothing to confirm",
            "There is no subscription waiting for this link any more.",
        ),
        Err(e) => try_again("confirmation page", &e),
    }
}
