//! Open pixels (`/t/o/{token}`) and click redirects (`/t/c/{token}`). A click
//! redirects only where its signed token says, which is a URL we wrote into that
//! message: there is no way to make us redirect anywhere else.

use std::collections::HashMap;
use std::thread::ThreadId;

use actix_web::http::StatusCode;
use actix_web::http::header::{CACHE_CONTROL, LOCATION, USER_AGENT};
use actix_web::{HttpRequest, HttpResponse, web};

use tokio::sync::{mpsc, oneshot};

use crate::db::Db;
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
    cfg.route("/t/o/{token}", web::get().to(open))
        .route("/t/o/{token}", web::head().to(open))
        .route("/t/c/{token}", web::get().to(click))
        .route("/t/c/{token}", web::head().to(click));
}

fn hit(req: &HttpRequest, state: &AppState) -> Hit {
    Hit {
        ip: client_ip(req, &state.settings).map(|ip| ip.to_string()),
        user_agent: req
            .headers()
            .get(USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string),
        head: req.method() == actix_web::http::Method::HEAD,
    }
}

/// The pixel is always served, whatever the token: a broken image helps no one.
async fn open(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let hit = hit(&req, &state);
    let token = token.into_inner();
    let token = token.trim_end_matches(".gif");
    match state.link_signer().await {
        Ok(signer) => {
            if let Some(delivery_id) = tracking::open_target(&signer, token) {
                state
                    .tracker()
                    .record(PendingHit {
                        delivery_id,
                        activity: Activity::Open,
                        url: None,
                        hit,
                        at: now(),
                    })
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
async fn click(
    state: web::Data<AppState>,
    req: HttpRequest,
    token: web::Path<String>,
) -> HttpResponse {
    let hit = hit(&req, &state);
    let signer = match state.link_signer().await {
        Ok(signer) => signer,
        Err(e) => return try_again("click not recorded", &e),
    };
    let Some((delivery_id, url)) = tracking::click_target(&signer, &token) else {
        return page(
            StatusCode::BAD_REQUEST,
            "Link not valid",
            "This link is not valid. Please use the link from the message itself.",
        );
    };
    state
        .tracker()
        .record(PendingHit {
            delivery_id,
            activity: Activity::Click,
            url: Some(url.clone()),
            hit,
            at: now(),
        })
        .await;
    HttpResponse::Found()
        .insert_header((LOCATION, url))
        .insert_header((CACHE_CONTROL, "no-store"))
        .finish()
}

/// Hits waiting for the recorder thread, each with a way to tell its request
/// when it is stored and the thread that request runs on.
type Queued = (PendingHit, oneshot::Sender<Done>, ThreadId);

/// What a waiting request is told once its batch is written: whether it was
/// stored, and (for one request per thread) the other waiting requests of the
/// batch on its thread, which it then tells.
struct Done {
    stored: bool,
    siblings: Vec<oneshot::Sender<Done>>,
}

/// Records hits in batches on a thread of its own: while one batch is being
/// written, the next collects, so a busy server writes thousands of hits per
/// transaction and a quiet one writes each hit at once. Requests wait for
/// their batch to be committed, so an answered hit is a stored hit.
///
/// Waking a request from the recorder thread costs a system call on that
/// thread and wakes its HTTP worker thread once per request; so the recorder
/// wakes one request per worker thread and batch, and that request wakes the
/// others of its thread, which costs no system call. (Wherever a request
/// runs, it is told exactly once: only how cheaply depends on the threads.)
pub struct Tracker {
    queue: mpsc::Sender<Queued>,
}

/// Most hits written in one transaction.
const MAX_BATCH: usize = 4096;
/// Attempts at writing a batch before its hits are given up (and logged).
const ATTEMPTS: u32 = 3;

impl Tracker {
    pub fn start(db: Db) -> Tracker {
        let (queue, mut waiting) = mpsc::channel::<Queued>(MAX_BATCH * 4);
        let spawned = std::thread::Builder::new()
            .name("tracking".into())
            .spawn(move || {
                while let Some(first) = waiting.blocking_recv() {
                    let mut batch = vec![first];
                    while batch.len() < MAX_BATCH {
                        match waiting.try_recv() {
                            Ok(next) => batch.push(next),
                            Err(_) => break,
                        }
                    }
                    let mut hits = Vec::with_capacity(batch.len());
                    let mut by_thread: HashMap<ThreadId, Vec<oneshot::Sender<Done>>> =
                        HashMap::new();
                    for (hit, done, thread) in batch {
                        hits.push(hit);
                        by_thread.entry(thread).or_default().push(done);
                    }
                    let stored = write_batch(&db, &hits);
                    for waiters in by_thread.into_values() {
                        tell(stored, waiters);
                    }
                }
            });
        if let Err(e) = spawned {
            log::error!("tracking recorder not started: {e}");
        }
        Tracker { queue }
    }

    /// Queues a hit and waits until it is stored; false if it could not be.
    pub async fn record(&self, hit: PendingHit) -> bool {
        let (done, stored) = oneshot::channel();
        let thread = std::thread::current().id();
        if self.queue.send((hit, done, thread)).await.is_err() {
            log::error!("tracking recorder is gone; hit not recorded");
            return false;
        }
        match stored.await {
            Ok(Done { stored, siblings }) => {
                for sibling in siblings {
                    let _ = sibling.send(Done {
                        stored,
                        siblings: Vec::new(),
                    });
                }
                stored
            }
            // The recorder or the request that was to tell this one is gone.
            Err(_) => false,
        }
    }
}

/// Tells the first request of `waiters` that is still waiting, handing it the
/// rest to tell. (A request whose client went away no longer waits.)
fn tell(stored: bool, mut waiters: Vec<oneshot::Sender<Done>>) {
    while !waiters.is_empty() {
        let first = waiters.swap_remove(0);
        match first.send(Done {
            stored,
            siblings: waiters,
        }) {
            Ok(()) => return,
            Err(undelivered) => waiters = undelivered.siblings,
        }
    }
}

fn write_batch(db: &Db, hits: &[PendingHit]) -> bool {
    for attempt in 1..=ATTEMPTS {
        match db.write_blocking(|conn| tracking::record_batch(conn, hits)) {
            Ok(_) => return true,
            Err(e) if attempt < ATTEMPTS => {
                log::warn!("tracking batch of {} failed ({e}); retrying", hits.len());
                std::thread::sleep(std::time::Duration::from_millis(100 * u64::from(attempt)));
            }
            Err(e) => log::error!("tracking batch of {} hits lost: {e}", hits.len()),
        }
    }
    false
}
