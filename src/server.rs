//! The HTTP server: shared state, middleware (logging, metrics, body limits) and
//! the operational endpoints. Protocol modules add their routes in `configure`.

use std::sync::{Arc, OnceLock};
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::{Logger, Next, from_fn};
use actix_web::{App, HttpResponse, HttpServer, web};

use crate::config::Settings;
use crate::db::Db;
use crate::domain::links::LinkSigner;
use crate::intake::hit_journal::HitJournal;
use crate::metrics::Metrics;

/// What every handler can reach.
#[derive(Clone)]
pub struct AppState {
    pub db: Db,
    pub settings: Arc<Settings>,
    pub metrics: Arc<Metrics>,
    /// The installation's link signer, read from the database on first use.
    links: Arc<OnceLock<LinkSigner>>,
    /// Takes in opens and clicks; opened on first use (`None` if it could
    /// not be, which is logged).
    hits: Arc<OnceLock<Option<HitJournal>>>,
}

impl AppState {
    pub fn new(db: Db, settings: Settings) -> AppState {
        AppState {
            db,
            settings: Arc::new(settings),
            metrics: Arc::new(Metrics::default()),
            links: Arc::new(OnceLock::new()),
            hits: Arc::new(OnceLock::new()),
        }
    }

    pub fn hit_journal(&self) -> Option<&HitJournal> {
        self.hits
            .get_or_init(|| {
                HitJournal::open(self.db.clone(), &self.settings.data_dir)
                    .inspect_err(|e| log::error!("opens and clicks cannot be recorded: {e}"))
                    .ok()
            })
            .as_ref()
    }

    pub async fn link_signer(&self) -> crate::Result<LinkSigner> {
        if let Some(signer) = self.links.get() {
            return Ok(signer.clone());
        }
        let signer = self.db.run(LinkSigner::load).await?;
        Ok(self.links.get_or_init(|| signer).clone())
    }
}

/// Registers state, body limits and every route on an app (the server and the
/// tests build their apps with this).
pub fn configure(state: AppState) -> impl FnOnce(&mut web::ServiceConfig) {
    move |cfg: &mut web::ServiceConfig| {
        let limit = state.settings.max_body_bytes;
        cfg.app_data(web::Data::new(state))
            .app_data(web::PayloadConfig::new(limit))
            .app_data(web::FormConfig::default().limit(limit))
            .app_data(web::JsonConfig::default().limit(limit))
            .route("/healthz", web::get().to(healthz))
            .route("/readyz", web::get().to(readyz))
            .route("/metrics", web::get().to(metrics))
            // Routes are tried in order; pixels and links are the busiest
            // dynamic ones.
            .configure(crate::web::tracking::configure)
            .configure(crate::web::confirm::configure)
            .configure(crate::web::unsubscribe::configure)
            .configure(crate::web::webhooks::configure)
            .configure(crate::protocols::mailup::configure)
            .configure(crate::protocols::ecircle::configure)
            .configure(crate::protocols::exacttarget::configure);
    }
}

/// Counts and times every request under its route pattern (never the raw path,
/// which would let clients create unbounded label sets).
pub async fn track_request(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let metrics = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.metrics.clone());
    let method = req.method().to_string();
    let response = next.call(req).await?;
    if let Some(metrics) = metrics {
        let route = response
            .request()
            .match_pattern()
            .unwrap_or_else(|| "unmatched".into());
        metrics.observe(
            &method,
            &route,
            response.status().as_u16(),
            started.elapsed(),
        );
    }
    Ok(response)
}

/// Runs the HTTP server until it is stopped (SIGINT/SIGTERM).
pub async fn run(state: AppState) -> std::io::Result<()> {
    let listen = state.settings.listen.clone();
    let workers = state.settings.http_workers;
    let mut server = HttpServer::new(move || {
        App::new()
            .configure(configure(state.clone()))
            .wrap(from_fn(track_request))
            .wrap(Logger::new("%a \"%r\" %s %b %Dms"))
    })
    .bind(&listen)?;
    if let Some(workers) = workers {
        server = server.workers(workers);
    }
    log::info!("listening on http://{listen}");
    server.run().await
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain").body("ok\n")
}

/// Ready when the database answers.
async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    let probe = state
        .db
        .run(|conn| {
            use diesel::connection::SimpleConnection;
            conn.batch_execute("SELECT 1")?;
            Ok(())
        })
        .await;
    match probe {
        Ok(()) => HttpResponse::Ok()
            .content_type("text/plain")
            .body("ready\n"),
        Err(e) => {
            log::warn!("readiness check failed: {e}");
            HttpResponse::ServiceUnavailable()
                .content_type("text/plain")
                .body("database unavailable\n")
        }
    }
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    // Not opened for this: a server that took in no hit yet has none waiting.
    let hit_backlog = state
        .hits
        .get()
        .and_then(Option::as_ref)
        .map(HitJournal::backlog);
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render(state.db.pool_state(), hit_backlog))
}
