//! Where each session lives, and taking over the sessions of a relay that
//! died.
//!
//! Each live session has a hash `fernsicht:session:NUMBER` with the relay
//! that holds it (`relay`), the SHA-256 of the host's resume token (`h`),
//! of each viewer's (`v<channel>`), and the next free channel (`next`).
//! Its owner refreshes it every [`KEEP_EVERY`]; it expires [`SESSION_TTL`]
//! after the owner stopped, which is longer than any client waits to resume.

use super::{ALIVE_FOR, Cluster, ClusterError, key};
use crate::number::SessionNumber;
use crate::relay::hub::TokenHash;
use crate::tls::Fingerprint;
use std::time::Duration;

/// How long a session's entry outlives its last refresh.
pub const SESSION_TTL: Duration = Duration::from_secs(90);
/// How often the owner refreshes its sessions' entries.
pub const KEEP_EVERY: Duration = Duration::from_secs(20);

/// Who holds a session, as the family knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    /// This relay, by the shared store (though maybe not any more in
    /// memory, after a restart).
    Here,
    /// Another relay that is alive: clients go there.
    Elsewhere {
        relay: String,
        fingerprint: Fingerprint,
    },
    /// A relay that stopped saying it is alive: its sessions may be taken
    /// over.
    Gone,
}

/// The places of a session taken over from a relay that is gone.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Places {
    pub host: TokenHash,
    pub viewers: Vec<(u16, TokenHash)>,
    pub next_channel: u16,
}

/// The answer to a resume at a relay that does not hold the session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Adoption {
    /// This relay holds the session now; every place is empty until its
    /// participant comes back.
    Adopted(Places),
    /// A live relay holds it: send the client there.
    Elsewhere {
        relay: String,
        fingerprint: Fingerprint,
    },
    /// No such session, or not that token.
    Refused,
}

/// Takes a session over if its owner is this relay or gone, and the token
/// hash matches the place asked for. Atomic, so two relays cannot both
/// take one session.
const ADOPT: &str = r"
local owner = redis.call('HGET', KEYS[1], 'relay')
if not owner then return {'refused'} end
if owner ~= ARGV[1] and redis.call('EXISTS', ARGV[4] .. owner) == 1 then
  return {'elsewhere', owner}
end
if redis.call('HGET', KEYS[1], ARGV[2]) ~= ARGV[3] then return {'refused'} end
redis.call('HSET', KEYS[1], 'relay', ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[5])
local all = redis.call('HGETALL', KEYS[1])
table.insert(all, 1, 'adopted')
return all
";

/// Deletes a session's entry only if this relay still owns it: a relay
/// that lost a session to another must not end it there.
const END: &str = r"
if redis.call('HGET', KEYS[1], 'relay') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
";

fn session_key(n: SessionNumber) -> String {
    key(&format!("session:{n}"))
}

fn viewer_field(channel: u16) -> String {
    format!("v{channel}")
}

fn parse_hash(s: &str) -> Result<TokenHash, ClusterError> {
    let mut out = [0u8; 32];
    hex::decode_to_slice(s, &mut out)
        .map_err(|_| ClusterError::Malformed("a resume token hash".into()))?;
    Ok(out)
}

fn parse_places(fields: &[String]) -> Result<Places, ClusterError> {
    let mut host = None;
    let mut viewers = Vec::new();
    let mut next_channel = 1;
    for pair in fields.chunks_exact(2) {
        let (name, value) = (pair[0].as_str(), pair[1].as_str());
        match name {
            "h" => host = Some(parse_hash(value)?),
            "next" => {
                next_channel = value
                    .parse()
                    .map_err(|_| ClusterError::Malformed("the next channel".into()))?;
            }
            "relay" => {}
            _ => {
                if let Some(channel) = name.strip_prefix('v').and_then(|c| c.parse().ok()) {
                    viewers.push((channel, parse_hash(value)?));
                }
            }
        }
    }
    Ok(Places {
        host: host.ok_or_else(|| ClusterError::Malformed("a session without its host".into()))?,
        viewers,
        next_channel,
    })
}

impl Cluster {
    /// A host registered here with a token hashing to `host`.
    pub async fn hosted(&self, n: SessionNumber, host: &TokenHash) -> Result<(), ClusterError> {
        let k = session_key(n);
        redis::pipe()
            .atomic()
            .cmd("HSET")
            .arg(&k)
            .arg("relay")
            .arg(&self.me)
            .arg("h")
            .arg(hex::encode(host))
            .arg("next")
            .arg(1)
            .ignore()
            .cmd("EXPIRE")
            .arg(&k)
            .arg(SESSION_TTL.as_secs())
            .ignore()
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// A viewer joined on `channel`; `next` is the session's next channel.
    pub async fn joined(
        &self,
        n: SessionNumber,
        channel: u16,
        token: &TokenHash,
        next: u16,
    ) -> Result<(), ClusterError> {
        redis::cmd("HSET")
            .arg(session_key(n))
            .arg(viewer_field(channel))
            .arg(hex::encode(token))
            .arg("next")
            .arg(next)
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The viewer on `channel` left for good.
    pub async fn left(&self, n: SessionNumber, channel: u16) -> Result<(), ClusterError> {
        redis::cmd("HDEL")
            .arg(session_key(n))
            .arg(viewer_field(channel))
            .query_async::<()>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// The session ended here.
    pub async fn ended(&self, n: SessionNumber) -> Result<(), ClusterError> {
        redis::Script::new(END)
            .key(session_key(n))
            .arg(&self.me)
            .invoke_async::<i64>(&mut self.conn())
            .await?;
        Ok(())
    }

    /// Refreshes the entries of the sessions this relay holds.
    pub async fn keep(&self, numbers: &[SessionNumber]) -> Result<(), ClusterError> {
        for chunk in numbers.chunks(512) {
            let mut pipe = redis::pipe();
            for n in chunk {
                pipe.cmd("EXPIRE")
                    .arg(session_key(*n))
                    .arg(SESSION_TTL.as_secs())
                    .ignore();
            }
            pipe.query_async::<()>(&mut self.conn()).await?;
        }
        Ok(())
    }

    /// Who holds session `n`; `None` if no relay of the family does.
    pub async fn locate(&self, n: SessionNumber) -> Result<Option<Owner>, ClusterError> {
        let owner: Option<String> = redis::cmd("HGET")
            .arg(session_key(n))
            .arg("relay")
            .query_async(&mut self.conn())
            .await?;
        let Some(owner) = owner else {
            return Ok(None);
        };
        if owner == self.me {
            return Ok(Some(Owner::Here));
        }
        Ok(Some(match self.alive(&owner).await? {
            Some(fingerprint) => Owner::Elsewhere {
                relay: owner,
                fingerprint,
            },
            None => Owner::Gone,
        }))
    }

    /// Takes session `n` over for a participant back on `channel` (0: the
    /// host) with a token hashing to `token`.
    pub async fn adopt(
        &self,
        n: SessionNumber,
        channel: u16,
        token: &TokenHash,
    ) -> Result<Adoption, ClusterError> {
        let field = if channel == 0 {
            "h".to_owned()
        } else {
            viewer_field(channel)
        };
        // A live owner that dies between the script and the lookup of its
        // fingerprint is gone: the next round takes the session over.
        for _ in 0..3 {
            let answer: Vec<String> = redis::Script::new(ADOPT)
                .key(session_key(n))
                .arg(&self.me)
                .arg(&field)
                .arg(hex::encode(token))
                .arg(key("relay:"))
                .arg(SESSION_TTL.as_secs())
                .invoke_async(&mut self.conn())
                .await?;
            match answer.first().map(String::as_str) {
                Some("adopted") => return Ok(Adoption::Adopted(parse_places(&answer[1..])?)),
                Some("elsewhere") => {
                    let relay = answer.get(1).cloned().unwrap_or_default();
                    if let Some(fingerprint) = self.alive(&relay).await? {
                        return Ok(Adoption::Elsewhere { relay, fingerprint });
                    }
                }
                _ => return Ok(Adoption::Refused),
            }
        }
        Ok(Adoption::Refused)
    }
}

// Keeps the relation between the two timings visible where both are used.
const _: () = assert!(SESSION_TTL.as_secs() > 4 * ALIVE_FOR.as_secs());

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_parse_from_the_hash_fields() {
        let h = hex::encode([1u8; 32]);
        let v = hex::encode([2u8; 32]);
        let fields: Vec<String> = ["relay", "a:1", "h", &h, "next", "4", "v3", &v]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let places = parse_places(&fields).unwrap();
        assert_eq!(places.host, [1; 32]);
        assert_eq!(places.viewers, vec![(3, [2; 32])]);
        assert_eq!(places.next_channel, 4);
        assert!(parse_places(&fields[2..4].iter().rev().cloned().collect::<Vec<_>>()).is_err());
    }
}
