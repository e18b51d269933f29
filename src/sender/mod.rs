//! The durable queued sender: workers that take deliveries from the outbox with a
//! lease, render them, hand them to a transport and record the outcome; a
//! housekeeper that starts scheduled sends and reaps expired leases; an expander
//! that turns list campaigns into deliveries in batches.
//!
//! Two lanes, each with its own claim loop and concurrency: the priority lane
//! (transactional, OTP, system) and the bulk lane (campaigns), so a running
//! campaign never delays a password reset. No transaction is held while a
//! message is on the network: claims and outcomes are short transactions, and
//! outcomes are written in batches.

pub mod compose;
pub mod lease;
pub mod queue;
pub mod throttle;
pub mod transport;

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use chrono::Duration;
use futures_util::FutureExt;
use lettre::message::Mailbox;
use tokio::sync::{Notify, Semaphore, mpsc, watch};

use self::lease::Leases;
use self::queue::{Claimed, Outcome, RetryPolicy};
use self::transport::{EmailTransport, Sms, SmsTransport};
use crate::config::{SenderSettings, Settings};
use crate::db::{Db, DbConnection};
use crate::domain::links::{LinkSigner, Purpose};
use crate::domain::messages::{self, MessageKind};
use crate::domain::providers::{self, Category, ProviderKind};
use crate::domain::sends::{self, Lane};
use crate::domain::{fields, imports, list_decorations, lists, recipients, sessions, variables};
use crate::intake::{imap, import_folder, maildir};
use crate::render::decoration::Decoration;
use crate::render::{Compiled, RecipientData, RenderContext, template_value};
use crate::{Error, Result};

/// A running sender (threads of its own); [`SenderHandle::stop`] ends it after
/// the deliveries in flight are finished and recorded.
pub struct SenderHandle {
    stop: watch::Sender<bool>,
    thread: std::thread::JoinHandle<()>,
}

impl SenderHandle {
    pub fn stop(self) {
        let _ = self.stop.send(true);
        if self.thread.join().is_err() {
            log::error!("sender thread panicked");
        }
    }
}

/// Starts the sender on a runtime thread of its own; returns once it is set up
/// (or with the reason it could not be).
pub fn spawn(db: Db, settings: &Settings) -> Result<SenderHandle> {
    let settings = settings.clone();
    let (stop, stopped) = watch::channel(false);
    let (started, startup) = std::sync::mpsc::channel::<Result<()>>();
    let thread = std::thread::Builder::new()
        .name("sender".into())
        .spawn(move || {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .thread_name("sender-worker")
                .enable_all()
                .build()
            {
                Ok(runtime) => runtime,
                Err(e) => {
                    let _ = started.send(Err(Error::Internal(format!("sender runtime: {e}"))));
                    return;
                }
            };
            runtime.block_on(async move {
                match Sender::new(db, &settings) {
                    Ok(sender) => {
                        let _ = started.send(Ok(()));
                        sender.run(stopped).await;
                    }
                    Err(e) => {
                        let _ = started.send(Err(e));
                    }
                }
            });
        })
        .map_err(|e| Error::Internal(format!("sender thread: {e}")))?;
    match startup.recv() {
        Ok(Ok(())) => Ok(SenderHandle { stop, thread }),
        Ok(Err(e)) => {
            let _ = thread.join();
            Err(e)
        }
        Err(_) => Err(Error::Internal(
            "sender thread ended during start-up".into(),
        )),
    }
}

/// The transport a send's deliveries go through, and its rate limit.
#[derive(Clone)]
enum Route {
    Email(Arc<EmailTransport>),
    Sms(Arc<SmsTransport>),
}

/// Everything about one send needed to render and route its deliveries,
/// compiled once.
struct Prepared {
    kind: MessageKind,
    compiled: Compiled,
    /// From, Reply-To and the message's own headers, encoded once.
    letterhead: compose::Letterhead,
    sms_from: String,
    /// The list, the account's variables and the send's parameters as
    /// template values, shared by every delivery.
    list: minijinja::Value,
    vars: minijinja::Value,
    params: minijinja::Value,
    /// The send's parameters, for the deliveries with parameters of their own.
    params_map: serde_json::Map<String, serde_json::Value>,
    /// Field number → (lower-case name, default value).
    fields: HashMap<i32, (String, String)>,
    route: Route,
    /// Token bucket of the send's provider: (bucket name, messages per second).
    provider_rate: Option<(String, f64)>,
    /// Links rewritten for click tracking and an open pixel added.
    tracking: bool,
    /// The list's subject prefix, headers and footers, when it has any.
    decoration: Option<Decoration>,
}

/// A delivery ready to go out.
struct Work {
    prepared: Arc<Prepared>,
    context: RenderContext,
}

pub struct Sender {
    db: Db,
    settings: SenderSettings,
    data_dir: PathBuf,
    public_url: String,
    owner: String,
    signer: LinkSigner,
    default_email: Arc<EmailTransport>,
    default_sms: Arc<SmsTransport>,
    provider_routes: Mutex<HashMap<i64, Route>>,
    prepared: Mutex<HashMap<i64, Arc<Prepared>>>,
    wake_bulk: Notify,
    /// Claimed deliveries whose outcome is not recorded yet.
    leases: Leases,
}

/// A claimed batch: the deliveries, their recipients.
type ClaimedBatch = (Vec<Claimed>, HashMap<i64, recipients::WithFields>);

/// Prepared sends kept at most; beyond that the cache starts afresh.
const PREPARED_CACHE: usize = 512;

impl Sender {
    pub fn new(db: Db, settings: &Settings) -> Result<Arc<Sender>> {
        let signer = LinkSigner::load(&mut *db.conn()?)?;
        let sender = &settings.sender;
        let connections = (sender.bulk_concurrency + sender.priority_concurrency) as u32;
        let default_email = EmailTransport::new(
            settings.smtp_url.as_deref(),
            &settings.data_dir,
            connections,
        )?;
        let default_sms = SmsTransport::Log(transport::sms::SmsLog::new(
            settings.data_dir.join("sms-outbox.jsonl"),
        )?);
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "espbridge".into());
        Ok(Arc::new(Sender {
            db,
            settings: sender.clone(),
            data_dir: settings.data_dir.clone(),
            public_url: settings
                .public_url
                .clone()
                .unwrap_or_else(|| format!("http://{}", settings.listen))
                .trim_end_matches('/')
                .to_string(),
            owner: format!(
                "{host}:{}:{}",
                std::process::id(),
                crate::domain::secrets::random_token(8)
            ),
            signer,
            default_email: Arc::new(default_email),
            default_sms: Arc::new(default_sms),
            provider_routes: Mutex::new(HashMap::new()),
            prepared: Mutex::new(HashMap::new()),
            wake_bulk: Notify::new(),
            leases: Leases::new(StdDuration::from_secs(sender.lease_seconds)),
        }))
    }

    /// Runs every loop until `stop` turns true.
    pub async fn run(self: Arc<Self>, stop: watch::Receiver<bool>) {
        log::info!("sender {} started", self.owner);
        let priority = tokio::spawn(self.clone().lane(
            Lane::Priority,
            self.settings.priority_concurrency,
            stop.clone(),
        ));
        let bulk = tokio::spawn(self.clone().lane(
            Lane::Bulk,
            self.settings.bulk_concurrency,
            stop.clone(),
        ));
        let housekeeping = tokio::spawn(self.clone().housekeeping(stop.clone()));
        let expansion = tokio::spawn(self.clone().expansion(stop.clone()));
        let imports = tokio::spawn(self.clone().imports(stop));
        // Renews leases until the lanes have recorded their last outcomes.
        let renewal = tokio::spawn(self.clone().renew_leases());
        for task in [priority, bulk, housekeeping, expansion, imports] {
            if let Err(e) = task.await {
                log::error!("sender task failed: {e}");
            }
        }
        renewal.abort();
        log::info!("sender {} stopped", self.owner);
    }

    fn poll(&self) -> StdDuration {
        StdDuration::from_millis(self.settings.poll_milliseconds.max(1))
    }

    fn policy(&self) -> RetryPolicy {
        RetryPolicy {
            base: Duration::seconds(self.settings.retry_base_seconds as i64),
            max_attempts: self.settings.max_attempts.max(1),
        }
    }

    /// Claims and delivers the lane's deliveries with at most `concurrency` in flight.
    async fn lane(self: Arc<Self>, lane: Lane, concurrency: usize, stop: watch::Receiver<bool>) {
        let concurrency = concurrency.max(1);
        let permits = Arc::new(Semaphore::new(concurrency));
        let (results, outcomes) = mpsc::channel(concurrency + self.settings.claim_batch);
        let recorder = tokio::spawn(self.clone().record(outcomes, stop.clone()));
        // The next batch is claimed while this one is handed out, so the slots
        // never wait for a claim.
        let (batches, mut claimed_batches) = mpsc::channel(1);
        let claimer = tokio::spawn(self.clone().claim_batches(lane, batches, stop));
        let max_attempts = self.policy().max_attempts;
        while let Some((claimed, recipients)) = claimed_batches.recv().await {
            for (claimed, job) in self.prepare(claimed, recipients).await {
                let job = if claimed.attempts > max_attempts {
                    // Its earlier workers died with it leased (see queue::reap).
                    Err(Outcome::Failed(format!(
                        "gave up after {} attempts whose outcome is unknown",
                        claimed.attempts - 1
                    )))
                } else {
                    job
                };
                match job {
                    Ok(work) => {
                        let Ok(permit) = permits.clone().acquire_owned().await else {
                            break;
                        };
                        let sender = self.clone();
                        let results = results.clone();
                        tokio::spawn(async move {
                            // A panic must still end in an outcome: without
                            // one the delivery's lease would be renewed for as
                            // long as this worker lives.
                            let outcome = AssertUnwindSafe(sender.deliver(&claimed, work))
                                .catch_unwind()
                                .await
                                .unwrap_or_else(|_| {
                                    Outcome::Unknown("the sending task panicked".into())
                                });
                            let _ = results.send((claimed, outcome)).await;
                            drop(permit);
                        });
                    }
                    Err(outcome) => {
                        let _ = results.send((claimed, outcome)).await;
                    }
                }
            }
        }
        if let Err(e) = claimer.await {
            log::error!("claim loop failed: {e}");
        }
        // Let the deliveries in flight finish, then record everything.
        let _all = permits.acquire_many(concurrency as u32).await;
        drop(results);
        if let Err(e) = recorder.await {
            log::error!("outcome recorder failed: {e}");
        }
    }

    /// Claims batches of the lane's due deliveries (with their recipients) until
    /// `stop`; a batch waits in the channel, leased, until it is handed out.
    async fn claim_batches(
        self: Arc<Self>,
        lane: Lane,
        batches: mpsc::Sender<ClaimedBatch>,
        mut stop: watch::Receiver<bool>,
    ) {
        let lease = Duration::seconds(self.settings.lease_seconds as i64);
        let limit = self.settings.claim_batch.max(1);
        while !*stop.borrow() {
            let owner = self.owner.clone();
            // The recipients are read in the same transaction, on the writing
            // connection whose cache is warm.
            let claim = move |conn: &mut DbConnection| {
                let claimed = queue::claim(conn, lane, &owner, limit, lease)?;
                let recipients = recipient_data(conn, &claimed)?;
                Ok((claimed, recipients))
            };
            let asked = std::time::Instant::now();
            let claimed = self.db.write(claim).await;
            if let Ok((claimed, _)) = &claimed {
                self.leases.claimed(claimed.iter().map(|c| c.id), asked);
            }
            match claimed {
                Ok((claimed, _)) if claimed.is_empty() => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.poll()) => {}
                        _ = self.wake_bulk.notified(), if lane == Lane::Bulk => {}
                        _ = stop.changed() => {}
                    }
                }
                Ok((claimed, recipients)) => {
                    if batches.send((claimed, recipients)).await.is_err() {
                        return;
                    }
                }
                Err(e) => {
                    log::error!("claiming deliveries failed: {e}");
                    tokio::time::sleep(self.poll()).await;
                }
            }
        }
    }

    /// Writes outcomes in batches (up to 256, or what arrives within 20 ms).
    async fn record(
        self: Arc<Self>,
        mut outcomes: mpsc::Receiver<(Claimed, Outcome)>,
        stop: watch::Receiver<bool>,
    ) {
        let mut batch = Vec::new();
        while let Some(first) = outcomes.recv().await {
            batch.push(first);
            let deadline = tokio::time::Instant::now() + StdDuration::from_millis(20);
            while batch.len() < 256 {
                match tokio::time::timeout_at(deadline, outcomes.recv()).await {
                    Ok(Some(next)) => batch.push(next),
                    _ => break,
                }
            }
            self.write_outcomes(std::mem::take(&mut batch), &stop).await;
        }
    }

    /// Writes a batch of outcomes, retrying until it is written: meanwhile the
    /// deliveries' leases are renewed, so none is sent again. Only a stopping
    /// worker gives up (after five attempts), leaving the leases to run out:
    /// its deliveries then become `unknown` and are re-sent.
    async fn write_outcomes(&self, batch: Vec<(Claimed, Outcome)>, stop: &watch::Receiver<bool>) {
        let batch = Arc::new(batch);
        let mut attempt = 1u32;
        loop {
            let owner = self.owner.clone();
            let policy = self.policy();
            let rows = batch.clone();
            match self
                .db
                .write(move |conn| queue::finish(conn, &owner, &rows, policy))
                .await
            {
                Ok(()) => break,
                Err(e) => {
                    log::error!(
                        "recording {} outcomes failed (attempt {attempt}): {e}",
                        batch.len()
                    );
                    if attempt >= 5 && *stop.borrow() {
                        log::error!(
                            "stopping: gave up recording {} outcomes; they will be re-sent \
                             when their lease runs out",
                            batch.len()
                        );
                        break;
                    }
                    let pause = 200 * u64::from(attempt.min(25));
                    tokio::time::sleep(StdDuration::from_millis(pause)).await;
                    attempt += 1;
                }
            }
        }
        self.leases.release(batch.iter().map(|(c, _)| c.id));
    }

    /// Every quarter of a lease, extends the leases of the deliveries claimed
    /// and not yet recorded, so that none runs out while this worker is alive:
    /// a batch waiting its turn, a slow hand-off or a slow outcome write would
    /// otherwise let another worker claim and send the delivery again.
    async fn renew_leases(self: Arc<Self>) {
        let lease = Duration::seconds(self.settings.lease_seconds as i64);
        loop {
            tokio::time::sleep(self.leases.renewal_interval()).await;
            let ids = self.leases.held();
            if ids.is_empty() {
                continue;
            }
            let owner = self.owner.clone();
            let asked = std::time::Instant::now();
            match self
                .db
                .write(move |conn| queue::renew(conn, &owner, &ids, lease))
                .await
            {
                Ok(renewed) => self.leases.renewed(&renewed, asked),
                Err(e) => log::error!("renewing delivery leases failed: {e}"),
            }
        }
    }

    /// Loads what the claimed deliveries need, applies rate limits, and pairs each
    /// with its work, or with the outcome that settles it without sending.
    async fn prepare(
        self: &Arc<Self>,
        claimed: Vec<Claimed>,
        recipients: HashMap<i64, recipients::WithFields>,
    ) -> Vec<(Claimed, std::result::Result<Work, Outcome>)> {
        let mut prepared: HashMap<i64, std::result::Result<Arc<Prepared>, Outcome>> =
            HashMap::new();
        for c in &claimed {
            if let std::collections::hash_map::Entry::Vacant(slot) = prepared.entry(c.send_id) {
                let result = self.prepared_send(c.account_id, c.send_id).await;
                slot.insert(result.map_err(|e| {
                    if e.is_internal() {
                        // Our own trouble (database, pool): try again soon.
                        log::error!("preparing send {}: {e}", c.send_id);
                        Outcome::Throttled(Duration::seconds(5))
                    } else {
                        Outcome::Failed(format!("send cannot be prepared: {e}"))
                    }
                }));
            }
        }
        let held_back = self.apply_rate_limits(&claimed, &prepared).await;
        claimed
            .into_iter()
            .map(|c| {
                if let Some(wait) = held_back.get(&c.id) {
                    return (c, Err(Outcome::Throttled(*wait)));
                }
                let job = match prepared.get(&c.send_id) {
                    Some(Ok(p)) => Ok(Work {
                        prepared: p.clone(),
                        context: render_context(
                            p,
                            &c,
                            recipients.get(&c.recipient_id.unwrap_or(-1)),
                        ),
                    }),
                    Some(Err(outcome)) => Err(outcome.clone()),
                    None => Err(Outcome::Failed("send cannot be prepared".into())),
                };
                (c, job)
            })
            .collect()
    }

    async fn prepared_send(
        self: &Arc<Self>,
        account_id: i64,
        send_id: i64,
    ) -> Result<Arc<Prepared>> {
        if let Some(p) = self
            .prepared
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&send_id)
        {
            return Ok(p.clone());
        }
        let sender = self.clone();
        let p = Arc::new(
            self.db
                .run(move |conn| sender.load_prepared(conn, account_id, send_id))
                .await?,
        );
        let mut cache = self.prepared.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= PREPARED_CACHE {
            cache.clear();
        }
        cache.insert(send_id, p.clone());
        Ok(p)
    }

    fn load_prepared(
        &self,
        conn: &mut DbConnection,
        account_id: i64,
        send_id: i64,
    ) -> Result<Prepared> {
        let send = sends::get(conn, account_id, send_id)?;
        let message = messages::get(conn, account_id, send.message_id)?;
        let kind = message.kind()?;
        let catalogue = fields::all(conn, account_id)?;
        let compiled =
            message.compile(&catalogue.iter().map(|f| f.name.clone()).collect::<Vec<_>>())?;
        let list_id = send.list_id.or(message.list_id);
        let list = match list_id {
            Some(id) => Some(lists::by_id(conn, account_id, id)?),
            None => None,
        };
        // A sender given to this send comes first, then the message's, the list's.
        let (own_name, own_email) = sends::sender(conn, account_id, send_id)?.unwrap_or_default();
        let from_email = [
            own_email.as_str(),
            message.from_email.as_str(),
            list.as_ref().map_or("", |l| l.sender_email.as_str()),
        ]
        .into_iter()
        .find(|e| !e.trim().is_empty())
        .unwrap_or(&self.settings.default_from)
        .trim()
        .to_string();
        let from_name = [
            own_name.as_str(),
            message.from_name.as_str(),
            list.as_ref().map_or("", |l| l.sender_name.as_str()),
        ]
        .into_iter()
        .find(|n| !n.trim().is_empty())
        .map(|n| n.trim().to_string());
        let from = Mailbox::new(
            from_name.clone(),
            from_email
                .parse()
                .map_err(|e| Error::invalid("from address", format!("{from_email:?}: {e}")))?,
        );
        let reply_to_address = [
            message.reply_to.as_str(),
            list.as_ref().map_or("", |l| l.reply_to.as_str()),
        ]
        .into_iter()
        .find(|r| !r.trim().is_empty());
        let reply_to =
            match reply_to_address {
                Some(address) => Some(address.trim().parse().map_err(|e| {
                    Error::invalid("reply-to address", format!("{address:?}: {e}"))
                })?),
                None => None,
            };
        let provider = providers::route(
            conn,
            account_id,
            send.provider_id,
            kind,
            Category::of(send.kind()?),
        )?;
        let (route, provider_rate) = match &provider {
            Some(p) => (
                self.provider_route(p)?,
                p.rate_per_second()
                    .map(|r| (format!("provider:{}", p.id), r)),
            ),
            None => (
                match kind {
                    MessageKind::Email => Route::Email(self.default_email.clone()),
                    MessageKind::Sms => Route::Sms(self.default_sms.clone()),
                },
                None,
            ),
        };
        let mut list_data: BTreeMap<String, String> = BTreeMap::new();
        if let Some(l) = &list {
            list_data.insert("id".into(), l.number.to_string());
            list_data.insert("guid".into(), l.guid.clone());
            list_data.insert("name".into(), l.name.clone());
            list_data.insert("sender_name".into(), l.sender_name.clone());
            list_data.insert("sender_email".into(), l.sender_email.clone());
            list_data.insert("description".into(), l.description.clone());
        }
        // Mail to the list carries its decoration; confirmations, welcomes
        // and OTPs are the system's words to one person, not the list's.
        let decoration = match &list {
            Some(l)
                if kind == MessageKind::Email
                    && matches!(
                        send.kind()?,
                        sends::SendKind::Campaign | sends::SendKind::Single
                    ) =>
            {
                Some(list_decorations::get(conn, account_id, l.id)?).filter(|d| !d.is_empty())
            }
            _ => None,
        };
        Ok(Prepared {
            kind,
            decoration,
            compiled,
            letterhead: compose::Letterhead::new(&from, reply_to.as_ref(), &message.headers())
                .map_err(|e| Error::invalid("message headers", e))?,
            sms_from: from_name.unwrap_or_default(),
            list: template_value(&list_data),
            vars: template_value(&variables::all(conn, account_id)?),
            params: template_value(&send.params()),
            params_map: send.params(),
            fields: catalogue
                .into_iter()
                .map(|f| (f.number, (f.name.to_lowercase(), f.default_value)))
                .collect(),
            route,
            provider_rate,
            // Confirmation, welcome and OTP mails carry links that must
            // work as written and are nobody's campaign to measure.
            tracking: kind == MessageKind::Email
                && send.tracking
                && !matches!(send.kind()?, sends::SendKind::System | sends::SendKind::Otp)
                && list.as_ref().is_none_or(|l| l.tracking),
        })
    }

    /// The transport of an account's provider, built once.
    fn provider_route(&self, provider: &providers::Provider) -> Result<Route> {
        if let Some(route) = self
            .provider_routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&provider.id)
        {
            return Ok(route.clone());
        }
        let config: serde_json::Value = serde_json::from_str(&provider.config).unwrap_or_default();
        let connections =
            (self.settings.bulk_concurrency + self.settings.priority_concurrency) as u32;
        let route = match provider.kind()? {
            ProviderKind::Smtp => {
                let url = config
                    .get("url")
                    .and_then(|u| u.as_str())
                    .ok_or(Error::invalid("provider", "SMTP provider needs a url"))?;
                Route::Email(Arc::new(EmailTransport::new(
                    Some(url),
                    &self.data_dir,
                    connections,
                )?))
            }
            ProviderKind::File => Route::Email(Arc::new(EmailTransport::new(
                None,
                &self.data_dir,
                connections,
            )?)),
            ProviderKind::Http => {
                let mut settings = config.as_object().cloned().unwrap_or_default();
                settings.remove("rate_per_second");
                let settings = serde_json::from_value(serde_json::Value::Object(settings))
                    .map_err(|e| Error::invalid("provider", e.to_string()))?;
                Route::Sms(Arc::new(SmsTransport::Http(transport::sms::HttpSms::new(
                    settings,
                )?)))
            }
            ProviderKind::Log => {
                Route::Sms(Arc::new(SmsTransport::Log(transport::sms::SmsLog::new(
                    self.data_dir
                        .join(format!("sms-provider-{}.jsonl", provider.id)),
                )?)))
            }
        };
        self.provider_routes
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(provider.id, route.clone());
        Ok(route)
    }

    /// Takes tokens from the provider and recipient-domain buckets; returns the
    /// deliveries that must wait, with how long.
    async fn apply_rate_limits(
        &self,
        claimed: &[Claimed],
        prepared: &HashMap<i64, std::result::Result<Arc<Prepared>, Outcome>>,
    ) -> HashMap<i64, Duration> {
        let mut buckets: BTreeMap<String, (f64, Vec<i64>)> = BTreeMap::new();
        for c in claimed {
            if let Some(Ok(p)) = prepared.get(&c.send_id)
                && let Some((bucket, rate)) = &p.provider_rate
            {
                buckets
                    .entry(bucket.clone())
                    .or_insert((*rate, Vec::new()))
                    .1
                    .push(c.id);
            }
            if c.channel == "email"
                && let Some((_, domain)) = c.address.rsplit_once('@')
                && let Some(rate) = self.settings.domain_rates.get(&domain.to_lowercase())
            {
                buckets
                    .entry(format!("domain:{}", domain.to_lowercase()))
                    .or_insert((*rate, Vec::new()))
                    .1
                    .push(c.id);
            }
        }
        let mut held_back = HashMap::new();
        for (bucket, (rate, ids)) in buckets {
            if !(rate.is_finite() && rate > 0.0) {
                log::warn!("rate limit {bucket}: {rate} is not a positive rate; ignored");
                continue;
            }
            let wanted = ids.len();
            let name = bucket.clone();
            let taken = self
                .db
                .write(move |conn| throttle::take(conn, &name, rate, wanted))
                .await;
            let (granted, wait) = match taken {
                Ok(taken) => taken,
                Err(e) => {
                    log::error!("rate limit {bucket}: {e}");
                    (0, Duration::seconds(1))
                }
            };
            for (index, id) in ids.into_iter().enumerate().skip(granted) {
                // Later ones wait their turn at the bucket's rate.
                let extra = ((index - granted) as f64 / rate * 1000.0).min(3_600_000.0);
                held_back.insert(id, wait + Duration::milliseconds(extra as i64));
            }
        }
        held_back
    }

    /// Renders and sends one delivery.
    async fn deliver(&self, claimed: &Claimed, work: Work) -> Outcome {
        let mut rendered = match work.prepared.compiled.render(&work.context) {
            Ok(rendered) => rendered,
            Err(e) => return Outcome::Failed(e.to_string()),
        };
        if let Some(decoration) = &work.prepared.decoration {
            decoration.apply(&mut rendered);
        }
        if work.prepared.tracking
            && let Some(html) = rendered.html.take()
        {
            rendered.html = Some(self.tracked(claimed.id, &html));
        }
        match (&work.prepared.route, work.prepared.kind) {
            (Route::Email(transport), MessageKind::Email) => {
                let token = self
                    .signer
                    .sign(Purpose::Unsubscribe, &claimed.id.to_string());
                let url = format!(
                    "{}{}{token}",
                    self.public_url,
                    crate::web::unsubscribe::PATH
                );
                let return_path = self.settings.bounce_domain.as_deref().map(|domain| {
                    crate::domain::bounces::return_path(&self.signer, claimed.id, domain)
                });
                let envelope = compose::Envelope {
                    to: &claimed.address,
                    message_id: &claimed.message_id,
                    unsubscribe_url: Some(&url),
                    return_path: return_path.as_deref(),
                };
                match compose::email(&work.prepared.letterhead, &envelope, rendered) {
                    Ok(_) if !self.leases.may_send(claimed.id) => back_unsent(claimed),
                    Ok(email) => transport.send(&email).await,
                    Err(reason) => Outcome::Failed(reason),
                }
            }
            (Route::Sms(transport), MessageKind::Sms) => {
                let sms = Sms {
                    to: claimed.address.clone(),
                    from: work.prepared.sms_from.clone(),
                    text: rendered.text.unwrap_or_default(),
                    message_id: claimed.message_id.clone(),
                };
                if !self.leases.may_send(claimed.id) {
                    return back_unsent(claimed);
                }
                transport.send(&sms).await
            }
            _ => Outcome::Failed("the provider does not carry this channel".into()),
        }
    }

    /// The HTML with its web links sent through signed click redirects and an
    /// open pixel at the end. Our own unsubscribe links stay as they are.
    fn tracked(&self, delivery_id: i64, html: &str) -> String {
        use crate::domain::tracking::{click_token, open_token};
        use crate::web::tracking::{CLICK_PATH, OPEN_PATH};
        let pixel = format!(
            "{}{OPEN_PATH}{}",
            self.public_url,
            open_token(&self.signer, delivery_id)
        );
        let own_unsubscribe = format!("{}{}", self.public_url, crate::web::unsubscribe::PATH);
        crate::render::tracking::add_tracking(html, Some(&pixel), |url| {
            (!url.starts_with(&own_unsubscribe)).then(|| {
                format!(
                    "{}{CLICK_PATH}{}",
                    self.public_url,
                    click_token(&self.signer, delivery_id, url)
                )
            })
        })
    }

    /// Starts due scheduled sends, reaps expired leases, purges expired
    /// sessions, and takes in bounce reports.
    async fn housekeeping(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut ticks: u64 = 0;
        while !*stop.borrow() {
            if ticks.is_multiple_of(self.settings.bounce_poll_seconds.max(1)) {
                self.take_bounces().await;
            }
            self.take_import_files().await;
            let purge_sessions = ticks.is_multiple_of(60);
            let work = self
                .db
                .write(move |conn| {
                    let started = sends::start_due(conn)?;
                    let reaped = queue::reap(conn)?;
                    if purge_sessions {
                        sessions::purge_expired(conn)?;
                    }
                    Ok((started, reaped))
                })
                .await;
            match work {
                Ok((started, reaped)) => {
                    if started > 0 {
                        log::info!("started {started} scheduled send(s)");
                    }
                    if reaped > 0 {
                        log::warn!("{reaped} delivery lease(s) expired; they will be re-sent");
                    }
                }
                Err(e) => log::error!("housekeeping failed: {e}"),
            }
            ticks += 1;
            tokio::select! {
                _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// One poll of the bounce Maildir and IMAP mailbox, when configured.
    /// Queues the files dropped into the MailUp import folders.
    async fn take_import_files(&self) {
        let data_dir = self.data_dir.clone();
        match self
            .db
            .run(move |conn| import_folder::scan(conn, &data_dir))
            .await
        {
            Ok(pass) if pass != import_folder::Pass::default() => {
                log::info!("import folders: {pass:?}");
            }
            Ok(_) => {}
            Err(e) => log::error!("import folders: {e}"),
        }
    }

    async fn take_bounces(&self) {
        let maildir = self.settings.bounce_maildir.clone();
        let mailbox = match self
            .settings
            .bounce_imap_url
            .as_deref()
            .map(imap::Mailbox::parse)
        {
            Some(Ok(mailbox)) => Some(mailbox),
            Some(Err(e)) => {
                log::error!("bounce_imap_url: {e}");
                None
            }
            None => None,
        };
        if maildir.is_none() && mailbox.is_none() {
            return;
        }
        let signer = self.signer.clone();
        let polled = self
            .db
            .run(move |conn| {
                if let Some(dir) = maildir {
                    let pass = maildir::process(conn, &signer, &dir)?;
                    if pass != maildir::Pass::default() {
                        log::info!("bounce Maildir: {pass:?}");
                    }
                }
                if let Some(mailbox) = mailbox {
                    let poll = imap::poll(conn, &signer, &mailbox)?;
                    if poll != imap::Poll::default() {
                        log::info!("bounce mailbox: {poll:?}");
                    }
                }
                Ok(())
            })
            .await;
        if let Err(e) = polled {
            log::error!("bounce intake failed: {e}");
        }
    }

    /// Applies queued import processes, one at a time. On stop, a process in
    /// the middle is handed back to the queue after its current chunk.
    async fn imports(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        while !*stop.borrow() {
            let db = self.db.clone();
            let owner = self.owner.clone();
            let stopping = stop.clone();
            let ran = tokio::task::spawn_blocking(move || {
                imports::run_next(&db, &owner, &|| *stopping.borrow())
            })
            .await;
            match ran {
                Ok(Ok(true)) => continue,
                Ok(Ok(false)) => {}
                Ok(Err(e)) => log::error!("running imports failed: {e}"),
                Err(e) => log::error!("import task failed: {e}"),
            }
            tokio::select! {
                _ = tokio::time::sleep(self.poll()) => {}
                _ = imports::queued() => {}
                _ = stop.changed() => {}
            }
        }
    }

    /// Expands list campaigns into deliveries, batch by batch.
    async fn expansion(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let lease = Duration::seconds(self.settings.lease_seconds.max(10) as i64);
        let batch = self.settings.expansion_batch.max(1);
        while !*stop.borrow() {
            let jobs = self
                .db
                .write(move |conn| sends::lease_expansions(conn, lease, 4))
                .await
                .unwrap_or_else(|e| {
                    log::error!("looking for campaigns to expand failed: {e}");
                    Vec::new()
                });
            for job in jobs {
                loop {
                    if *stop.borrow() {
                        return;
                    }
                    match self
                        .db
                        .write(move |conn| sends::expand_next_batch(conn, job, batch, lease))
                        .await
                    {
                        Ok(0) => break,
                        Ok(_) => self.wake_bulk.notify_one(),
                        Err(e) => {
                            log::error!("expanding send {} failed: {e}", job.send_id);
                            break;
                        }
                    }
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(StdDuration::from_secs(1)) => {}
                _ = stop.changed() => {}
            }
        }
    }
}

/// A delivery whose lease has too little left to be sent and recorded in (its
/// worker was held up, or the lease was lost) goes back to the outbox unsent,
/// not counted as an attempt: past its lease another worker may claim it.
fn back_unsent(claimed: &Claimed) -> Outcome {
    log::warn!(
        "delivery {}: lease too short to send it; handed back",
        claimed.id
    );
    Outcome::Throttled(Duration::zero())
}

/// The claimed deliveries' recipients with their field values.
fn recipient_data(
    conn: &mut DbConnection,
    claimed: &[Claimed],
) -> Result<HashMap<i64, recipients::WithFields>> {
    let mut by_account: BTreeMap<i64, Vec<i64>> = BTreeMap::new();
    for c in claimed {
        if let Some(id) = c.recipient_id {
            by_account.entry(c.account_id).or_default().push(id);
        }
    }
    let mut all = HashMap::new();
    for (account_id, ids) in by_account {
        all.extend(recipients::with_field_values(conn, account_id, &ids)?);
    }
    Ok(all)
}

/// The template context of one delivery: recipient, fields (by lower-case name
/// and as `campoN`, defaults filling empty ones), list, variables, parameters.
fn render_context(
    prepared: &Prepared,
    claimed: &Claimed,
    recipient: Option<&recipients::WithFields>,
) -> RenderContext {
    let mut fields = BTreeMap::new();
    let mut values: HashMap<i32, &str> = HashMap::new();
    if let Some(found) = recipient {
        for (number, value) in &found.fields {
            values.insert(*number, value);
        }
    }
    let numbers: std::collections::BTreeSet<i32> = values
        .keys()
        .chain(prepared.fields.keys())
        .copied()
        .collect();
    for number in numbers {
        let value = values.get(&number).copied().unwrap_or("");
        let (name, default) = prepared
            .fields
            .get(&number)
            .map(|(n, d)| (Some(n.as_str()), d.as_str()))
            .unwrap_or((None, ""));
        let value = if value.is_empty() { default } else { value };
        fields.insert(format!("campo{number}"), value.to_string());
        if let Some(name) = name {
            fields.insert(name.to_string(), value.to_string());
        }
    }
    let params = match claimed
        .params
        .as_deref()
        .and_then(|p| serde_json::from_str::<serde_json::Map<_, _>>(p).ok())
    {
        Some(own) => {
            let mut params = prepared.params_map.clone();
            params.extend(own);
            template_value(&params)
        }
        None => prepared.params.clone(),
    };
    let (email, mobile) = match recipient {
        Some(found) => (found.email.clone(), found.mobile_key.clone()),
        None if claimed.channel == "email" => (Some(claimed.address.clone()), None),
        None => (None, Some(claimed.address.clone())),
    };
    RenderContext {
        recipient: RecipientData {
            id: claimed.recipient_id,
            email,
            mobile,
        },
        fields,
        list: prepared.list.clone(),
        vars: prepared.vars.clone(),
        params,
    }
}

/// Runs a sender in this process until SIGINT or SIGTERM (`espbridge worker`).
pub fn run_worker(db: Db, settings: &Settings) -> Result<()> {
    let handle = spawn(db, settings)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::Internal(e.to_string()))?;
    runtime.block_on(wait_for_signal());
    log::info!("stopping: finishing deliveries in flight");
    handle.stop();
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
