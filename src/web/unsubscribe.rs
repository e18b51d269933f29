//! `/unsubscribe/{token}`: the link in every message (a page that asks, then a
//! POST from its button) and RFC 8058 one-click unsubscribes (a POST with
//! `List-Unsubscribe=One-Click`, sent by mailbox providers without a person
//! looking at any page). A GET never unsubscribes: link scanners fetch every URL
//! in a message.

use actix_web::http::StatusCode;
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::optout::{self, Outcome, Via};
use crate::domain::{Channel, Origin};
use crate::protocols::form::Form;
use crate::server::AppState;
use crate::web::{client_ip, page, page_with, try_again};
use crate::xml::writer::escape;

/// Where unsubscribe links lead (followed by the token), under the server's
/// public URL.
pub const PATH: &str = "/unsubscribe/";

pub fn configure(cfg: &mut web::ServiceConfig) {
    let route = format!("{PATH}{{token}}");
    cfg.route(&route, web::get().to(ask))
        .route(&route, web::post().to(unsubscribe));
}

async fn ask(state: web::Data<AppState>, token: web::Path<String>) -> HttpResponse {
    let signer = match state.link_signer().await {
        Ok(signer) => signer,
        Err(e) => return try_again("unsubscribe page", &e),
    };
    let token = token.into_inner();
    let lookup = {
        let token = token.clone();
        state
            .db
            .run(move |conn| optout::describe(conn, &signer, &token))
            .await
    };
    match lookup {
        Ok(Some(list_name)) => {
            let what = if list_name.is_empty() {
                "Do you want to stop receiving our messages?".to_string()
            } else {
                format!("Do you want to unsubscribe from {list_name}?")
            };
            let form = format!(
                "<form method=\"post\" action=\"{PATH}{}\"><input type=\"hidden\" name=\"confirm\" value=\"yes\"><button type=\"submit\">Unsubscribe</button></form>",
                escape(&token)
            );
            page_with(StatusCode::OK, "Unsubscribe", &what, &form)
        }
        Ok(None) => invalid(),
        Err(e) => try_again("unsubscribe page", &e),
    }
}

async fn unsubscribe(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
    body: Bytes,
) -> HttpResponse {
    let signer = match state.link_signer().await {
        Ok(signer) => signer,
        Err(e) => return try_again("unsubscribe page", &e),
    };
    let form = Form::parse("", &body, "");
    let via = if form.get("List-Unsubscribe") == Some("One-Click") {
        Via::OneClick
    } else {
        Via::Link
    };
    let ip = client_ip(&req, &state.settings)
        .map(|ip| ip.to_string())
        .unwrap_or_default();
    let token = token.into_inner();
    let outcome = state
        .db
        .write(move |conn| {
            optout::apply(conn, &signer, &token, via, &Origin::new(Channel::Web, ip))
        })
        .await;
    match (outcome, via) {
        (Ok(Outcome::Invalid), _) => invalid(),
        // A mailbox provider reads only the status.
        (Ok(_), Via::OneClick) => HttpResponse::Ok()
            .content_type("text/plain; charset=utf-8")
            .body("unsubscribed\n"),
        (Ok(Outcome::Unsubscribed { list_name }), Via::Link) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!("You will receive no more messages from {list_name}."),
        ),
        (Ok(Outcome::AlreadyOut { list_name }), Via::Link) => page(
            StatusCode::OK,
            "Unsubscribed",
            &format!("You were already unsubscribed from {list_name}."),
        ),
        (Ok(Outcome::OptedOutEverywhere { .. }), Via::Link) => page(
            StatusCode::OK,
            "Unsubscribed",
            "You will receive no more messages from us.",
        ),
        (Err(e), _) => try_again("unsubscribe page", &e),
    }
}

fn invalid() -> HttpResponse {
    page(
        StatusCode::BAD_REQUEST,
        "Link not valid",
        "This unsubscribe link is not valid. Please use the link from the message itself.",
    )
}
