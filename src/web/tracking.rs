//! Open pixels (`/t/o/{token}`) and click redirects (`/t/c/{token}`). A click
//! redirects only where its signed token says, which is a URL we wrote into that
//! message: there is no way to make us redirect anywhere else.

use actix_web::http::header::{CACHE_CONTROL, LOCATION, USER_AGENT};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, web};

use crate::domain::now;
use crate::domain::tracking::{self, Activity, Hit, PendingHit};
use crate::server::AppState;
use crate::web::{client_ip, page, try_again};

/// Path prefixes of tracked links, for the sender to build them.
pub const OPEN_PATH: &str = "/t/o/";
pub const CLICK_PATH: &str = "/t/c/";

/// The smallest transparent GIF.
const PIXEL: &[u8] = &[
    0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x01, 0x00, 0x01, 0x00, 0x80, 0x00, 0x00, 0x00, 0x00, 0x00,
    0xff, 0xff, 0xff, 0x21, 0xf9, 0x04, 0x01, 0x00, 0x00, 0x00, 0x00, 0x2c, 0x00, 0x00, 0x00, 0x00,
    0x01, 0x00, 0x01, 0x00, 0x00, 0x02, 0x02, 0x44, 0x01, 0x00, 0x3b,
];

pub fn configure(cfg: &mut web::ServiceConfig) {
    // Static prefixes and the token read from the rest of the path, as for the
    // frontend pages (decision 65): a `{token}` segment is matched by a regex
    // and copied out on every hit.
    cfg.service(web::scope("/t/o").default_service(web::to(open)))
        .service(web::scope("/t/c").default_service(web::to(click)));
}

/// The token of a tracking link: the one segment after the prefix, asked for
/// with GET or HEAD. Anything else gets the status the resources answered
/// before: 405 for another method, 404 for another path.
fn token(req: &HttpRequest) -> Result<&str, StatusCode> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return Err(StatusCode::METHOD_NOT_ALLOWED);
    }
    req.match_info()
        .unprocessed()
        .strip_prefix('/')
        .filter(|token| !token.is_empty() && !token.contains('/'))
        .ok_or(StatusCode::NOT_FOUND)
}

fn hit(req: &HttpRequest, state: &AppState) -> Hit {
    Hit {
        ip: client_ip(req, &state.settings).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        head: req.method() == Method::HEAD,
    }
}

/// The pixel is always served, whatever the token: a broken image helps no one.
async fn open(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let token = match token(&req) {
        Ok(token) => token,
        Err(status) => return HttpResponse::new(status),
    };
    let token = token.trim_end_matches(".gif");
    let hit = hit(&req, &state);
    match state.link_signer().await {
        Ok(signer) => {
            if let Some(delivery_id) = tracking::open_target(&signer, token) {
                record(
                    &state,
                    PendingHit {
                        delivery_id,
                        activity: Activity::Open,
                        url: None,
                        hit,
                        at: now(),
                    },
                )
                .await;
            }
        }
        Err(e) => log::error!("open not recorded: {e}"),
    }
    HttpResponse::Ok()
        .content_type("image/gif")
        .insert_header((
            CACHE_CONTROL,
            "no-store, no-cache, must-revalidate, private",
        ))
        .body(PIXEL)
}

/// A genuine link redirects even when recording the click fails: the reader
/// must get where the link says.
async fn click(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let token = match token(&req) {
        Ok(token) => token,
        Err(status) => return HttpResponse::new(status),
    };
    let hit = hit(&req, &state);
    let signer = match state.link_signer().await {
        Ok(signer) => signer,
        Err(e) => return try_again("click not recorded", &e),
    };
    let Some((delivery_id, url)) = tracking::click_target(&signer, token) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "This link is not valid. Please use the link from the message itself.",
        );
    };
    record(
        &state,
        PendingHit {
            delivery_id,
            activity: Activity::Click,
            url: Some(url.clone()),
            hit,
            at: now(),
        },
    )
    .await;
    HttpResponse::Found()
        .insert_header((LOCATION, url))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

/// Hands a hit to the journal, which applies it shortly (decision 57). A hit
/// that cannot be taken in is logged; the reader still gets the pixel or the
/// link's destination.
async fn record(state: &AppState, hit: PendingHit) {
    match state.hit_journal() {
        Some(journal) => {
            if let Err(e) = journal.append(&hit).await {
                log::error!("hit not recorded: {e}");
            }
        }
        None => log::error!("hit not recorded: no hit journal"),
    }
}
