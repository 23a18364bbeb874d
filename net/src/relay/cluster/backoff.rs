//! The join back-off ([`crate::relay::backoff`]) shared by the family: a
//! guesser who spreads wrong numbers over several relays waits as long as
//! one who stays on one.
//!
//! Per address (IPv6 by /64) two keys: the count of failures, and a key
//! that exists while the address must wait, expiring when the wait ends.
//! Redis's own clock times both, so the relays' clocks need not agree.

use super::{Cluster, ClusterError, key};
use crate::relay::backoff::{FORGET_AFTER, delay_after, group};
use std::net::IpAddr;
use std::time::Duration;

fn failures_key(addr: IpAddr) -> String {
    key(&format!("backoff:failures:{}", group(addr)))
}

fn wait_key(addr: IpAddr) -> String {
    key(&format!("backoff:wait:{}", group(addr)))
}

impl Cluster {
    /// `Err(wait)` if `addr` must wait before it may try a number.
    pub async fn check(&self, addr: IpAddr) -> Result<Result<(), Duration>, ClusterError> {
        let ms: i64 = redis::cmd("PTTL")
            .arg(wait_key(addr))
            .query_async(&mut self.conn())
            .await?;
        // -2: no such key, -1: no expiry (never set so).
        Ok(match u64::try_from(ms) {
            Ok(ms) if ms > 0 => Err(Duration::from_millis(ms)),
            _ => Ok(()),
        })
    }

    /// Records a join to a number no relay of the family holds.
    pub async fn failure(&self, addr: IpAddr) -> Result<(), ClusterError> {
        let failures: u32 = redis::cmd("INCR")
            .arg(failures_key(addr))
            .query_async(&mut self.conn())
            .await?;
        let wait = delay_after(failures);
        let mut pipe = redis::pipe();
        pipe.cmd("PEXPIRE")
            .arg(failures_key(addr))
            .arg((wait + FORGET_AFTER).as_millis() as u64)
            .ignore();
        if !wait.is_zero() {
            pipe.cmd("SET")
                .arg(wait_key(addr))
                .arg(1)
                .arg("PX")
                .arg(wait.as_millis() as u64)
                .ignore();
        }
        pipe.query_async::<()>(&mut self.conn()).await?;
        Ok(())
    }

    /// A successful join: the address starts afresh everywhere.
    pub async fn success(&self, addr: IpAddr) -> Result<(), ClusterError> {
        redis::cmd("DEL")
            .arg(failures_key(addr))
            .arg(wait_key(addr))
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }
}
