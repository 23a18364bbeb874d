//! Relay families: the relays of one service, named in a row (tunnel1,
//! tunnel2, …), written once as `tunnel{1..100}.example.org`.
//!
//! A client tries a family from a random member on, then the next ones in
//! turn. Starting anywhere spreads clients over the family; going on in
//! order means a relay that is down costs each client one attempt, not a
//! random number of them. The relays share sessions (`--redis`), so it does
//! not matter which one a host or viewer reaches.

use super::{RelayAddr, RelayAddrError};
use rand::Rng;
use thiserror::Error;

/// Most relays one pattern may name.
pub const MAX_MEMBERS: u32 = 1000;

#[derive(Debug, Error, PartialEq, Eq)]
#[non_exhaustive]
pub enum FamilyError {
    #[error(transparent)]
    Addr(#[from] RelayAddrError),
    #[error("'{0}': a family is written name{{FIRST..LAST}}, e.g. tunnel{{1..9}}.example.org")]
    BadRange(String),
    #[error("'{0}' names more than {MAX_MEMBERS} relays")]
    TooMany(String),
}

/// The relays `pattern` names: one address, or one per number of its
/// `{FIRST..LAST}` range.
pub fn expand(pattern: &str) -> Result<Vec<RelayAddr>, FamilyError> {
    let Some((head, rest)) = pattern.split_once('{') else {
        return Ok(vec![pattern.parse()?]);
    };
    let bad = || FamilyError::BadRange(pattern.to_owned());
    let (range, tail) = rest.split_once('}').ok_or_else(bad)?;
    let (first, last) = range.split_once("..").ok_or_else(bad)?;
    let first: u32 = first.trim().parse().map_err(|_| bad())?;
    let last: u32 = last.trim().parse().map_err(|_| bad())?;
    if first > last || tail.contains('{') {
        return Err(bad());
    }
    if last - first >= MAX_MEMBERS {
        return Err(FamilyError::TooMany(pattern.to_owned()));
    }
    (first..=last)
        .map(|i| Ok(format!("{head}{i}{tail}").parse()?))
        .collect()
}

/// `members` starting from a random one, then on in order, round to the
/// beginning.
pub fn from_random_member<T>(mut members: Vec<T>) -> Vec<T> {
    if members.len() > 1 {
        let start = rand::thread_rng().gen_range(0..members.len());
        members.rotate_left(start);
    }
    members
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_range_names_each_member_with_the_port() {
        let family = expand("tunnel{1..3}.example.org:443").unwrap();
        let names: Vec<String> = family.iter().map(ToString::to_string).collect();
        assert_eq!(
            names,
            [
                "tunnel1.example.org:443",
                "tunnel2.example.org:443",
                "tunnel3.example.org:443"
            ]
        );
        assert_eq!(expand("relay.example").unwrap().len(), 1);
        assert_eq!(expand("relay.example").unwrap()[0].port(), 4663);
    }

    #[test]
    fn bad_ranges_are_named() {
        for bad in [
            "t{1..}.x",
            "t{3..1}.x",
            "t{1-3}.x",
            "t{1..2.x",
            "t{1..2}{1..2}",
        ] {
            assert!(
                matches!(expand(bad), Err(FamilyError::BadRange(_))),
                "{bad}"
            );
        }
        assert!(matches!(
            expand("t{1..5000}.x"),
            Err(FamilyError::TooMany(_))
        ));
    }

    #[test]
    fn the_order_is_a_rotation_starting_anywhere() {
        let members: Vec<u32> = (0..10).collect();
        let mut starts = std::collections::HashSet::new();
        for _ in 0..200 {
            let order = from_random_member(members.clone());
            let start = order[0];
            let expected: Vec<u32> = (0..10).map(|i| (start + i) % 10).collect();
            assert_eq!(order, expected);
            starts.insert(start);
        }
        // 200 draws from 10 starts: all seen but with negligible odds.
        assert!(starts.len() >= 8, "{starts:?}");
    }
}
