//! The command line: `serve`, `migrate`, `account create` and
//! `triggered-send create|list`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::config::{Overrides, Settings};
use crate::db::{Db, write_transaction};
use crate::domain::accounts::{self, CreatedAccount, NewAccount};
use crate::domain::credentials::{self, CredentialKind};
use crate::domain::triggered_sends::{self, NewTriggeredSend};
use crate::sender;
use crate::server::{self, AppState};
use crate::{Error, Result};

#[derive(Debug, Parser)]
#[command(
    name = "espbridge",
    version,
    about = "Self-hosted e-mail and SMS server speaking legacy ESP protocols"
)]
pub struct Cli {
    /// TOML configuration file (keys as in the README's configuration table).
    #[arg(long, global = true, env = "ESPBRIDGE_CONFIG")]
    pub config: Option<PathBuf>,
    /// sqlite://PATH or postgres://USER@HOST/DB [default: sqlite://DATA_DIR/espbridge.db]
    #[arg(long, global = true, env = "ESPBRIDGE_DATABASE_URL")]
    pub database_url: Option<String>,
    /// Directory for local data [default: ./data]
    #[arg(long, global = true, env = "ESPBRIDGE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Migrate the database and run the HTTP server.
    Serve(ServeArgs),
    /// Run only the sender (no HTTP): extra processes working through the outbox.
    Worker,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Replace the key that signs links (unsubscribe, tracking, confirmation,
    /// VERP). Links signed with the old key keep working until the next
    /// rotation; restart servers and workers to sign with the new one.
    RotateLinkKey,
    /// Manage accounts (tenants).
    Account {
        #[command(subcommand)]
        command: AccountCommand,
    },
    /// Write MailUp's unsubscriber export (CSV) of an account: who left which
    /// list, when and why. Run it from cron or a timer for a regular export.
    ExportUnsubscribers(ExportUnsubscribersArgs),
    /// Send the confirmation mails held back for a list's pending
    /// subscribers (MailUp imports with ConfirmEmail).
    SendConfirmations(SendConfirmationsArgs),
    /// Show or set an account's message credits (MailUp's GetCredits).
    Credits(CreditsArgs),
    /// Manage ExactTarget triggered-send definitions (the CustomerKeys that
    /// `triggeredsend/add` calls fire).
    TriggeredSend {
        #[command(subcommand)]
        command: TriggeredSendCommand,
    },
}

#[derive(Debug, Args)]
pub struct ExportUnsubscribersArgs {
    /// The account, by its console id.
    #[arg(long)]
    pub console_id: i64,
    /// A list id to export (repeatable); every list when none is given.
    #[arg(long = "list")]
    pub lists: Vec<i64>,
    /// Unsubscribes from this time on (UTC, `YYYY-MM-DD` or `YYYY-MM-DDTHH:MM:SS`).
    #[arg(long)]
    pub from: Option<String>,
    /// Unsubscribes before this time (UTC, same forms).
    #[arg(long)]
    pub until: Option<String>,
    /// Only these reason codes, comma-separated (e.g. `2,32,64`).
    #[arg(long, value_delimiter = ',')]
    pub reasons: Vec<i32>,
    /// Leave out these reason codes, comma-separated.
    #[arg(long = "exclude-reasons", value_delimiter = ',')]
    pub excluded_reasons: Vec<i32>,
    /// Where to write [default: DATA_DIR/ftp/CONSOLE_ID/export/unsubscribers-TIME.csv]
    #[arg(long)]
    pub out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct SendConfirmationsArgs {
    /// The account, by its console id.
    #[arg(long)]
    pub console_id: i64,
    /// The list id.
    #[arg(long)]
    pub list: i64,
    /// Base URL of the confirmation links [default: the public_url setting]
    #[arg(long, env = "ESPBRIDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
}

#[derive(Debug, Args)]
pub struct CreditsArgs {
    /// The account, by its console id.
    #[arg(long)]
    pub console_id: i64,
    /// `email` or `sms` (with --balance or --unlimited).
    #[arg(long)]
    pub channel: Option<String>,
    /// Set the channel's balance: each message sent takes one credit.
    #[arg(long, conflicts_with = "unlimited", requires = "channel")]
    pub balance: Option<i64>,
    /// Remove the channel's balance (the default: no limit is counted).
    #[arg(long, requires = "channel")]
    pub unlimited: bool,
}

#[derive(Debug, Subcommand)]
pub enum TriggeredSendCommand {
    /// Define a triggered send: its key, the e-mail it sends, optionally the
    /// list it is sent for and a sender overriding the e-mail's.
    Create {
        /// The account, by its console id.
        #[arg(long)]
        console_id: i64,
        /// The external key (CustomerKey) calls name it by.
        #[arg(long)]
        key: String,
        /// The e-mail (message) id, as `email/add` answered it.
        #[arg(long)]
        email_id: i64,
        #[arg(long)]
        list: Option<i64>,
        #[arg(long, default_value = "")]
        from_name: String,
        #[arg(long, default_value = "")]
        from_email: String,
    },
    /// List an account's triggered-send definitions, one per line.
    List {
        #[arg(long)]
        console_id: i64,
    },
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:8080]
    #[arg(long, env = "ESPBRIDGE_LISTEN")]
    pub listen: Option<String>,
    /// Public base URL used in links and WSDL addresses.
    #[arg(long, env = "ESPBRIDGE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// SMTP relay URL; without it mail is written to the file outbox.
    #[arg(long, env = "ESPBRIDGE_SMTP_URL")]
    pub smtp_url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its credentials (shown only this once).
    Create {
        #[arg(long)]
        name: String,
        /// Numeric console id (MailUp consoleId); next free one if omitted.
        #[arg(long)]
        console_id: Option<i64>,
        /// Host name the account's frontend requests arrive on (repeatable).
        #[arg(long = "console-host")]
        console_hosts: Vec<String>,
        /// E-mail address of the account's eCircle API user (where
        /// `sendEmailToMe` writes); none if omitted.
        #[arg(long)]
        ecircle_email: Option<String>,
        /// Print one JSON object instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Give an existing account's eCircle API user an e-mail address (an
    /// empty one removes it).
    EcircleEmail {
        /// The account, by its console id.
        #[arg(long)]
        console_id: i64,
        #[arg(long)]
        email: String,
    },
}

/// Runs a parsed command line; errors are printed, not panicked.
pub fn run(cli: Cli) -> ExitCode {
    match execute(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("espbridge: {e}");
            ExitCode::FAILURE
        }
    }
}

fn execute(cli: Cli) -> Result<()> {
    let mut overrides = Overrides {
        database_url: cli.database_url,
        data_dir: cli.data_dir,
        ..Overrides::default()
    };
    if let Command::Serve(args) = &cli.command {
        overrides.listen = args.listen.clone();
        overrides.public_url = args.public_url.clone();
        overrides.smtp_url = args.smtp_url.clone();
    }
    let settings = Settings::load(cli.config.as_deref(), overrides)?;
    let db = open_database(&settings)?;
    match cli.command {
        Command::Migrate => {
            println!("database {} is up to date", db.backend().name());
            Ok(())
        }
        Command::ExportUnsubscribers(args) => export_unsubscribers(&db, &settings, args),
        Command::RotateLinkKey => {
            crate::domain::links::LinkSigner::rotate(&mut *db.conn()?)?;
            println!(
                "link key rotated; links signed before keep working until the next rotation. \
                 Restart servers and workers to sign with the new key."
            );
            Ok(())
        }
        Command::Account {
            command:
                AccountCommand::Create {
                    name,
                    console_id,
                    console_hosts,
                    ecircle_email,
                    json,
                },
        } => {
            // The account and its API user's address are written together.
            let created = write_transaction(&mut *db.conn()?, |conn| {
                let mut created = accounts::create(
                    conn,
                    &NewAccount {
                        name,
                        console_id,
                        console_hosts,
                    },
                )?;
                if let Some(email) = &ecircle_email {
                    credentials::set_email(
                        conn,
                        created.account_id,
                        CredentialKind::Ecircle,
                        email,
                    )?;
                    created.ecircle.email = email.trim().to_string();
                }
                Ok(created)
            })?;
            if json {
                let text = serde_json::to_string_pretty(&created)
                    .map_err(|e| Error::Internal(e.to_string()))?;
                println!("{text}");
            } else {
                print_credentials(&created);
            }
            Ok(())
        }
        Command::Account {
            command: AccountCommand::EcircleEmail { console_id, email },
        } => {
            let mut conn = db.conn()?;
            let account = accounts::find_by_console_id(&mut conn, console_id)?
                .ok_or(Error::NotFound("account"))?;
            credentials::set_email(&mut conn, account.id, CredentialKind::Ecircle, &email)?;
            match email.trim() {
                "" => println!("the eCircle API user of account {console_id} has no address now"),
                address => {
                    println!("the eCircle API user of account {console_id} writes to {address}")
                }
            }
            Ok(())
        }
        Command::TriggeredSend { command } => triggered_send(&db, command),
        Command::SendConfirmations(args) => send_confirmations(&db, &settings, args),
        Command::Credits(args) => credits(&db, args),
        Command::Serve(_) => serve(db, settings),
        Command::Worker => sender::run_worker(db, &settings),
    }
}

fn triggered_send(db: &Db, command: TriggeredSendCommand) -> Result<()> {
    let mut conn = db.conn()?;
    let console_id = match &command {
        TriggeredSendCommand::Create { console_id, .. }
        | TriggeredSendCommand::List { console_id } => *console_id,
    };
    let account =
        accounts::find_by_console_id(&mut conn, console_id)?.ok_or(Error::NotFound("account"))?;
    match command {
        TriggeredSendCommand::Create {
            key,
            email_id,
            list,
            from_name,
            from_email,
            ..
        } => {
            let created = triggered_sends::create(
                &mut conn,
                account.id,
                &NewTriggeredSend {
                    customer_key: key,
                    message_id: email_id,
                    list,
                    from_name,
                    from_email,
                },
            )?;
            println!(
                "triggered send {:?} sends e-mail {}",
                created.customer_key, created.message_id
            );
        }
        TriggeredSendCommand::List { .. } => {
            for definition in triggered_sends::all(&mut conn, account.id)? {
                println!(
                    "{}\temail {}\tfrom {} <{}>",
                    definition.customer_key,
                    definition.message_id,
                    definition.from_name,
                    definition.from_email
                );
            }
        }
    }
    Ok(())
}

fn export_unsubscribers(db: &Db, settings: &Settings, args: ExportUnsubscribersArgs) -> Result<()> {
    let mut conn = db.conn()?;
    let account = accounts::find_by_console_id(&mut conn, args.console_id)?
        .ok_or(Error::NotFound("account"))?;
    let filter = crate::domain::history::UnsubscriberFilter {
        lists: args.lists,
        from: args.from.as_deref().map(parse_time).transpose()?,
        until: args.until.as_deref().map(parse_time).transpose()?,
        reasons: args.reasons,
        excluded_reasons: args.excluded_reasons,
    };
    let rows = crate::domain::history::unsubscribers(&mut conn, account.id, &filter)?;
    let path = args.out.unwrap_or_else(|| {
        settings
            .data_dir
            .join(format!("ftp/{}/export", account.console_id))
            .join(format!(
                "unsubscribers-{}.csv",
                crate::domain::now().format("%Y%m%dT%H%M%S")
            ))
    });
    let write = |path: &std::path::Path| -> std::io::Result<()> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(path, crate::protocols::mailup::csv::unsubscribers(&rows))
    };
    write(&path).map_err(|e| Error::Unavailable(format!("writing {}: {e}", path.display())))?;
    println!("{} unsubscribes written to {}", rows.len(), path.display());
    Ok(())
}

fn send_confirmations(db: &Db, settings: &Settings, args: SendConfirmationsArgs) -> Result<()> {
    let (account, signer) = {
        let mut conn = db.conn()?;
        let account = accounts::find_by_console_id(&mut conn, args.console_id)?
            .ok_or(Error::NotFound("account"))?;
        (account, crate::domain::links::LinkSigner::load(&mut conn)?)
    };
    let base = args
        .public_url
        .or_else(|| settings.public_url.clone())
        .ok_or_else(|| {
            Error::invalid(
                "public_url",
                "the links need the server's public URL: set public_url or pass --public-url",
            )
        })?;
    let page = format!(
        "{}{}",
        base.trim_end_matches('/'),
        crate::web::confirm::PATH
    );
    let sent = crate::domain::confirmations::send_held(db, &signer, account.id, args.list, &page)?;
    println!("{sent} confirmation mails queued for list {}", args.list);
    Ok(())
}

fn credits(db: &Db, args: CreditsArgs) -> Result<()> {
    use crate::domain::credits::{self, Balance};
    use crate::domain::messages::MessageKind;
    let mut conn = db.conn()?;
    let account = accounts::find_by_console_id(&mut conn, args.console_id)?
        .ok_or(Error::NotFound("account"))?;
    if let Some(channel) = &args.channel {
        let kind = match channel.as_str() {
            "email" => MessageKind::Email,
            "sms" => MessageKind::Sms,
            other => {
                return Err(Error::invalid(
                    "channel",
                    format!("{other:?} is not email or sms"),
                ));
            }
        };
        let balance = match (args.balance, args.unlimited) {
            (Some(left), false) => Balance::Left(left),
            (None, true) => Balance::Unlimited,
            _ => {
                return Err(Error::invalid(
                    "credits",
                    "give --balance N or --unlimited with --channel",
                ));
            }
        };
        credits::set(&mut conn, account.id, kind, balance)?;
    }
    let now = credits::get(&mut conn, account.id)?;
    let show = |balance: Balance| match balance {
        Balance::Unlimited => "unlimited".to_string(),
        Balance::Left(left) => left.to_string(),
    };
    println!("email\t{}\nsms\t{}", show(now.email), show(now.sms));
    Ok(())
}

/// `YYYY-MM-DD` (midnight) or `YYYY-MM-DDTHH:MM:SS`, UTC.
fn parse_time(text: &str) -> Result<chrono::NaiveDateTime> {
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S")
        .or_else(|_| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| d.and_hms_opt(0, 0, 0).unwrap_or_default())
        })
        .map_err(|_| Error::invalid("time", format!("{text:?} is not YYYY-MM-DD[THH:MM:SS]")))
}

/// Connects and brings the schema up to date (every command needs both).
fn open_database(settings: &Settings) -> Result<Db> {
    std::fs::create_dir_all(&settings.data_dir).map_err(|e| {
        Error::Unavailable(format!(
            "cannot create {}: {e}",
            settings.data_dir.display()
        ))
    })?;
    let db = Db::connect(&settings.database_url(), settings.pool_size)?;
    db.migrate()?;
    Ok(db)
}

fn serve(db: Db, settings: Settings) -> Result<()> {
    if accounts::count(&mut *db.conn()?)? == 0 {
        let created = accounts::create(
            &mut *db.conn()?,
            &NewAccount {
                name: "Demo".into(),
                ..NewAccount::default()
            },
        )?;
        println!(
            "No account existed, so a demo account was created. Its credentials are shown only now:"
        );
        print_credentials(&created);
    }
    log::info!("database: {}", db.backend().name());
    let sender = if settings.sender.in_server {
        Some(sender::spawn(db.clone(), &settings)?)
    } else {
        None
    };
    let state = AppState::new(db, settings);
    // Opened now, not at the first hit: it also applies what a stopped
    // process left in the journal.
    let hits = state.hit_journal().cloned();
    let served = actix_web::rt::System::new()
        .block_on(server::run(state))
        .map_err(|e| Error::Unavailable(format!("HTTP server: {e}")));
    if let Some(hits) = hits
        && !hits.settle(std::time::Duration::from_secs(10))
    {
        log::warn!("stopping with opens and clicks not yet applied; the next start applies them");
    }
    if let Some(sender) = sender {
        log::info!("stopping the sender: finishing deliveries in flight");
        sender.stop();
    }
    served
}

fn print_credentials(created: &CreatedAccount) {
    let hosts = if created.console_hosts.is_empty() {
        "(none: single-account install answers every host)".to_string()
    } else {
        created.console_hosts.join(", ")
    };
    println!(
        "account {name} (id {id}, console id {console})\n\
         \x20 console hosts         {hosts}\n\
         \x20 default list          id {list} guid {guid}\n\
         \x20 MailUp WS user        {ws_user} / {ws_password}\n\
         \x20 MailUp console user   {console_user} / {console_password}\n\
         \x20 ExactTarget API user  {et_user} / {et_password}\n\
         \x20 eCircle               realm {realm} user {ec_user} / {ec_password} {ec_email}\n\
         \x20 REST API key          {api_key}",
        name = created.name,
        id = created.account_id,
        console = created.console_id,
        list = created.default_list.id,
        guid = created.default_list.guid,
        ws_user = created.mailup.ws_user,
        ws_password = created.mailup.ws_password,
        console_user = created.mailup.console_user,
        console_password = created.mailup.console_password,
        et_user = created.exacttarget.username,
        et_password = created.exacttarget.password,
        realm = created.ecircle.realm,
        ec_user = created.ecircle.user,
        ec_password = created.ecircle.password,
        ec_email = match created.ecircle.email.as_str() {
            "" => String::new(),
            email => format!("(mail to {email})"),
        },
        api_key = created.api_key,
    );
}
