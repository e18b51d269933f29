//! Public web pages (confirmation links; tracking and unsubscribe later) and
//! what every HTTP-facing module needs to know about a request: who sent it and
//! at which URL the server was reached.

pub mod confirm;
pub mod tracking;
pub mod unsubscribe;
pub mod webhooks;

use std::net::IpAddr;

use actix_web::http::StatusCode;
use actix_web::web::{Bytes, BytesMut, Payload};
use actix_web::{HttpRequest, HttpResponse};
use futures_util::StreamExt;

use crate::config::Settings;

/// The caller's address: the TCP peer, or, when the peer is a trusted proxy,
/// the last address its `X-Forwarded-For` names (the one the proxy saw).
pub fn client_ip(req: &HttpRequest, settings: &Settings) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip();
    if !settings.trusted_proxies.contains(&peer) {
        return Some(peer);
    }
    req.headers()
        .get("x-forwarded-for")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.rsplit(',').next())
        .and_then(|last| last.trim().parse().ok())
        .or(Some(peer))
}

/// `scheme://host[:port]` the server is reached at: the configured public URL,
/// else what the request says (its Host header and scheme).
pub fn base_url(req: &HttpRequest, settings: &Settings) -> String {
    match &settings.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => {
            let info = req.connection_info();
            format!("{}://{}", info.scheme(), info.host())
        }
    }
}

/// The request body, read up to `limit` bytes. A larger body is refused as soon
/// as the limit is passed, without reading (or buffering) the rest, so a
/// protocol can answer with its own error instead of the server's 413.
pub async fn read_body(mut payload: Payload, limit: usize) -> Result<Bytes, BodyError> {
    let mut body = BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|_| BodyError::Broken)?;
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge(limit));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum BodyError {
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("the request body could not be read")]
    Broken,
}

/// A small HTML page for people (confirmation and unsubscribe links). `extra`
/// is markup placed after the text (a form), already escaped.
pub fn page_with(status: StatusCode, title: &str, text: &str, extra: &str) -> HttpResponse {
    use crate::xml::writer::escape;
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header(("Cache-Control", "no-store"))
        .body(format!(
            "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\"><meta name=\"robots\" content=\"noindex\">\
             <title>{title}</title></head><body><h1>{title}</h1><p>{text}</p>{extra}</body></html>\n",
            title = escape(title),
            text = escape(text),
        ))
}

pub fn page(status: StatusCode, title: &str, text: &str) -> HttpResponse {
    page_with(status, title, text, "")
}

/// Our own failure, told to a person following a link: logged (with what
/// failed), answered with a 503 page that asks them to try again.
pub fn try_again(what: &str, error: &crate::Error) -> HttpResponse {
    log::error!("{what}: {error}");
    page(
        StatusCode::SERVICE_UNAVAILABLE,
        "Please try again",
        "We could not handle this just now. Please try the link again in a few minutes.",
    )
}
