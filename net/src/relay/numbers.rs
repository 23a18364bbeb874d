//! Session numbers that are never handed out twice, across restarts.
//!
//! Every number the relay has ever handed out (or reserved) is "burned" in
//! an embedded transactional store (redb). Numbers are drawn at random from
//! the current digit range; once half of that range is burned the relay
//! moves to one more digit, so a random draw hits a free number at least
//! half the time and guessing a live number stays hard.
//!
//! A durable commit per session would cap registration at the disk's fsync
//! rate, so numbers are reserved in small batches: one commit burns a batch,
//! and numbers are then handed out from memory. A batch lost in a crash is
//! simply never used, which is safe: burned numbers only have to be unique,
//! not all used.

use crate::number::{MAX_DIGITS, MIN_DIGITS, SessionNumber};
use rand::Rng;
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;
use thiserror::Error;

const BURNED: TableDefinition<u64, ()> = TableDefinition::new("burned_numbers");
const COUNTS: TableDefinition<u32, u64> = TableDefinition::new("burned_per_digit_count");

/// Numbers reserved per durable commit.
const BATCH: usize = 32;

#[derive(Debug, Error)]
#[non_exhaustive]
pub enum StoreError {
    #[error("session number store")]
    Db(#[from] redb::Error),
    #[error("another relay is using this data directory")]
    InUse,
    #[error("every session number up to {MAX_DIGITS} digits is used")]
    Exhausted,
}

fn store_err<E: Into<redb::Error>>(e: E) -> StoreError {
    match e.into() {
        redb::Error::DatabaseAlreadyOpen => StoreError::InUse,
        other => StoreError::Db(other),
    }
}

/// Whether a digit count is used up for drawing: once half its range is
/// burned, numbers come from one more digit, so a random draw still hits a
/// free number at least half the time. The family's shared store follows
/// the same rule.
pub fn half_burned(digits: u32, burned: u64) -> bool {
    let range = SessionNumber::range(digits);
    let size = range.end() - range.start() + 1;
    burned >= size / 2
}

pub struct NumberStore {
    db: Database,
    reserved: Vec<SessionNumber>,
}

impl NumberStore {
    /// Opens (or creates) the store at `path`. Fails if another relay has
    /// it open: two relays sharing one store without coordination could
    /// hand out the same number.
    pub fn open(path: &Path) -> Result<Self, StoreError> {
        let db = Database::create(path).map_err(store_err)?;
        let txn = db.begin_write().map_err(store_err)?;
        txn.open_table(BURNED).map_err(store_err)?;
        txn.open_table(COUNTS).map_err(store_err)?;
        txn.commit().map_err(store_err)?;
        Ok(NumberStore {
            db,
            reserved: Vec::new(),
        })
    }

    /// A fresh number, burned before it is returned.
    pub fn allocate<R: Rng>(&mut self, rng: &mut R) -> Result<SessionNumber, StoreError> {
        if self.reserved.is_empty() {
            self.reserve(rng)?;
        }
        self.reserved.pop().ok_or(StoreError::Exhausted)
    }

    fn reserve<R: Rng>(&mut self, rng: &mut R) -> Result<(), StoreError> {
        let txn = self.db.begin_write().map_err(store_err)?;
        {
            let mut burned = txn.open_table(BURNED).map_err(store_err)?;
            let mut counts = txn.open_table(COUNTS).map_err(store_err)?;
            let mut digits = MIN_DIGITS;
            while self.reserved.len() < BATCH {
                let count = counts
                    .get(digits)
                    .map_err(store_err)?
                    .map(|v| v.value())
                    .unwrap_or(0);
                if half_burned(digits, count) {
                    digits += 1;
                    if digits > MAX_DIGITS {
                        break;
                    }
                    continue;
                }
                let candidate = rng.gen_range(SessionNumber::range(digits));
                if burned.get(candidate).map_err(store_err)?.is_some() {
                    continue;
                }
                burned.insert(candidate, ()).map_err(store_err)?;
                counts.insert(digits, count + 1).map_err(store_err)?;
                // In range by construction.
                if let Ok(n) = SessionNumber::new(candidate) {
                    self.reserved.push(n);
                }
            }
        }
        txn.commit().map_err(store_err)?;
        if self.reserved.is_empty() {
            return Err(StoreError::Exhausted);
        }
        Ok(())
    }

    /// Whether `n` has ever been handed out or reserved.
    pub fn is_burned(&self, n: SessionNumber) -> Result<bool, StoreError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(BURNED).map_err(store_err)?;
        Ok(table.get(n.get()).map_err(store_err)?.is_some())
    }

    /// How many numbers are burned in all.
    pub fn burned(&self) -> Result<u64, StoreError> {
        let txn = self.db.begin_read().map_err(store_err)?;
        let table = txn.open_table(BURNED).map_err(store_err)?;
        table.len().map_err(store_err)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;
    use std::collections::HashSet;

    #[test]
    fn numbers_never_repeat_across_50_000_sessions_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numbers.redb");
        let mut rng = StdRng::seed_from_u64(1);
        let mut seen = HashSet::new();
        let mut store = NumberStore::open(&path).unwrap();
        for _ in 0..25_000 {
            assert!(seen.insert(store.allocate(&mut rng).unwrap()));
        }
        drop(store);
        // Restart: a fresh store on the same file, and the same random
        // sequence again, which would repeat every number if the store
        // forgot them.
        let mut rng = StdRng::seed_from_u64(1);
        let mut store = NumberStore::open(&path).unwrap();
        for _ in 0..25_000 {
            let n = store.allocate(&mut rng).unwrap();
            assert!(seen.insert(n), "{n} handed out twice");
        }
        let five = seen.iter().filter(|n| n.digits() == 5).count();
        let six = seen.iter().filter(|n| n.digits() == 6).count();
        assert_eq!(five + six, 50_000);
        // Half of the 90 000 five-digit numbers, then six digits.
        assert!(five <= 45_000, "{five} five-digit numbers");
        assert!(six >= 5_000, "{six} six-digit numbers");
        for n in &seen {
            assert!(store.is_burned(*n).unwrap());
        }
    }

    #[test]
    fn a_second_relay_cannot_open_the_same_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("numbers.redb");
        let _first = NumberStore::open(&path).unwrap();
        assert!(NumberStore::open(&path).is_err());
    }
}
