//! Several relays as one service (`--redis URL`): the relays of a family
//! (tunnel1, tunnel2, …) share in Redis what must be the same everywhere.
//!
//! - **Burned numbers**: one Redis set per digit count. `SADD` answers
//!   whether a number was new, atomically, so two relays drawing at the
//!   same moment can never both hand out one number, and since nothing
//!   ever removes a member, no number is used twice across restarts.
//! - **Where each session lives**: a hash per session number naming the
//!   relay that holds its host and the hashes of the resume tokens, so a
//!   viewer who reached another relay is sent on, and a relay can take over
//!   the sessions of one that died ([`Cluster::adopt`]).
//! - **Which relays are alive**: each relay refreshes a short-lived key with
//!   its public address and certificate fingerprint.
//! - **Back-off counters** for wrong numbers, so guessing cannot be spread
//!   over the family.
//!
//! Only numbers, relay addresses, token hashes and counters go to Redis;
//! never an IP address beside a number, a name or any content.

mod backoff;
mod sessions;

pub use sessions::{Adoption, KEEP_EVERY, Owner, Places, SESSION_TTL};

use crate::number::{MAX_DIGITS, MIN_DIGITS, SessionNumber};
use crate::tls::Fingerprint;
use rand::Rng;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use std::time::Duration;
use thiserror::Error;
use tokio::sync::Mutex;

/// Every key starts with this, so a Redis can be shared with other uses.
const PREFIX: &str = "fernsicht";
/// How often a relay says it is alive.
pub const HEARTBEAT: Duration = Duration::from_secs(2);
/// A relay that has not said so for this long counts as gone, and others
/// may take over its sessions.
pub const ALIVE_FOR: Duration = Duration::from_secs(6);
/// Numbers reserved per round trip to Redis.
const BATCH: usize = 32;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum ClusterError {
    #[error("the shared store (Redis)")]
    Redis(#[from] redis::RedisError),
    #[error("every session number up to {MAX_DIGITS} digits is used")]
    Exhausted,
    #[error("the shared store holds a malformed entry: {0}")]
    Malformed(String),
}

/// How a relay joins a family.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    /// The Redis the family shares, e.g. `redis://10.0.0.5/`.
    pub redis: String,
    /// The address clients reach this relay at (`host:port`): where the
    /// others send viewers, and this relay's name in the family.
    pub public: String,
}

/// This relay's handle on the family's shared state.
pub struct Cluster {
    conn: ConnectionManager,
    /// The address clients reach this relay at; also its name in the family.
    me: String,
    fingerprint: Fingerprint,
    /// Numbers burned in Redis and not handed out yet. A relay that stops
    /// loses them, which is safe: burned numbers only have to be unique.
    reserved: Mutex<Vec<SessionNumber>>,
}

fn key(rest: &str) -> String {
    format!("{PREFIX}:{rest}")
}

impl Cluster {
    /// Connects to Redis at `url` as the relay reached at `me`.
    pub async fn connect(
        url: &str,
        me: String,
        fingerprint: Fingerprint,
    ) -> Result<Cluster, ClusterError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(5)))
            .set_response_timeout(Some(Duration::from_secs(5)))
            .set_number_of_retries(3);
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let cluster = Cluster {
            conn,
            me,
            fingerprint,
            reserved: Mutex::new(Vec::new()),
        };
        cluster.heartbeat().await?;
        Ok(cluster)
    }

    /// This relay's name in the family (its public address).
    pub fn name(&self) -> &str {
        &self.me
    }

    fn conn(&self) -> ConnectionManager {
        self.conn.clone()
    }

    /// Says this relay is alive, for [`ALIVE_FOR`]; called every
    /// [`HEARTBEAT`].
    pub async fn heartbeat(&self) -> Result<(), ClusterError> {
        redis::cmd("SET")
            .arg(key(&format!("relay:{}", self.me)))
            .arg(self.fingerprint.to_string())
            .arg("PX")
            .arg(ALIVE_FOR.as_millis() as u64)
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Says this relay is gone, at a clean shutdown, so that others take
    /// over at once instead of after [`ALIVE_FOR`].
    pub async fn leave(&self) -> Result<(), ClusterError> {
        redis::cmd("DEL")
            .arg(key(&format!("relay:{}", self.me)))
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The fingerprint `relay` announced, if it is alive.
    async fn alive(&self, relay: &str) -> Result<Option<Fingerprint>, ClusterError> {
        let fp: Option<String> = redis::cmd("GET")
            .arg(key(&format!("relay:{relay}")))
            .query_async(&mut self.conn())
            .await?;
        fp.map(|f| {
            f.parse()
                .map_err(|_| ClusterError::Malformed(format!("fingerprint of {relay}")))
        })
        .transpose()
    }

    /// A fresh number, burned in Redis before it is returned.
    pub async fn allocate(&self) -> Result<SessionNumber, ClusterError> {
        let mut reserved = self.reserved.lock().await;
        if reserved.is_empty() {
            *reserved = self.reserve().await?;
        }
        reserved.pop().ok_or(ClusterError::Exhausted)
    }

    /// Burns up to [`BATCH`] random free numbers of the smallest digit
    /// count that is less than half used.
    async fn reserve(&self) -> Result<Vec<SessionNumber>, ClusterError> {
        let mut conn = self.conn();
        let mut digits = MIN_DIGITS;
        loop {
            let set = key(&format!("burned:{digits}"));
            let count: u64 = redis::cmd("SCARD").arg(&set).query_async(&mut conn).await?;
            if crate::relay::numbers::half_burned(digits, count) {
                digits += 1;
                if digits > MAX_DIGITS {
                    return Err(ClusterError::Exhausted);
                }
                continue;
            }
            let candidates: Vec<u64> = {
                let mut rng = rand::thread_rng();
                let range = SessionNumber::range(digits);
                (0..BATCH).map(|_| rng.gen_range(range.clone())).collect()
            };
            let mut pipe = redis::pipe();
            for c in &candidates {
                pipe.cmd("SADD").arg(&set).arg(*c);
            }
            let added: Vec<u8> = pipe.query_async(&mut conn).await?;
            let fresh: Vec<SessionNumber> = candidates
                .into_iter()
                .zip(added)
                .filter(|(_, added)| *added == 1)
                .filter_map(|(c, _)| SessionNumber::new(c).ok())
                .collect();
            if !fresh.is_empty() {
                return Ok(fresh);
            }
        }
    }

    /// Whether `n` has ever been handed out by any relay of the family.
    pub async fn is_burned(&self, n: SessionNumber) -> Result<bool, ClusterError> {
        let member: bool = redis::cmd("SISMEMBER")
            .arg(key(&format!("burned:{}", n.digits())))
            .arg(n.get())
            .query_async(&mut self.conn())
            .await?;
        Ok(member)
    }
}
