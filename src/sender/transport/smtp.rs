//! SMTP through lettre's async transport, with its connection pool.

use lettre::transport::smtp::PoolConfig;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use super::config_error;
use crate::Result;
use crate::sender::queue::Outcome;

pub struct Smtp {
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl Smtp {
    pub fn new(url: &str, connections: u32) -> Result<Smtp> {
        let transport = AsyncSmtpTransport::<Tokio1Executor>::from_url(url)
            .map_err(|e| config_error("SMTP URL", e))?
            .pool_config(PoolConfig::new().max_size(connections.max(1)))
            .timeout(Some(std::time::Duration::from_secs(60)))
            .build();
        Ok(Smtp { transport })
    }

    pub async fn send(&self, message: lettre::Message) -> Outcome {
        match self.transport.send(message).await {
            Ok(response) => Outcome::Sent(format!(
                "{} {}",
                response.code(),
                response.message().collect::<Vec<_>>().join(" ")
            )),
            Err(e) if e.is_transient() => Outcome::Deferred(e.to_string()),
            Err(e) if e.is_permanent() => Outcome::Bounced(e.to_string()),
            // Connection, network or protocol trouble: the server may have taken
            // the message before the failure, or not. See queue.rs for the policy.
            Err(e) => Outcome::Unknown(e.to_string()),
        }
    }
}
