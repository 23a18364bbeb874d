//! The session number a person reads aloud: 5 digits to start with, more
//! once the relay has burned half of a digit range.

use serde::{Deserialize, Serialize};
use std::{fmt, str::FromStr};
use thiserror::Error;

/// Fewest digits a session number has.
pub const MIN_DIGITS: u32 = 5;
/// Most digits a session number can have (fits easily in a `u64`).
pub const MAX_DIGITS: u32 = 12;

/// A session number, guaranteed to have between [`MIN_DIGITS`] and
/// [`MAX_DIGITS`] digits and no leading zero (so that "01234" is never read
/// aloud as a different number than the one typed).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct SessionNumber(u64);

impl SessionNumber {
    /// The range of numbers with `digits` digits.
    pub fn range(digits: u32) -> std::ops::RangeInclusive<u64> {
        10u64.pow(digits - 1)..=10u64.pow(digits) - 1
    }

    pub fn new(n: u64) -> Result<Self, NumberError> {
        let low = *Self::range(MIN_DIGITS).start();
        let high = *Self::range(MAX_DIGITS).end();
        if (low..=high).contains(&n) {
            Ok(SessionNumber(n))
        } else {
            Err(NumberError::OutOfRange)
        }
    }

    pub fn get(self) -> u64 {
        self.0
    }

    pub fn digits(self) -> u32 {
        self.0.ilog10() + 1
    }

    /// The number grouped for reading aloud: `12 345`, `123 456`.
    pub fn grouped(self) -> String {
        let s = self.0.to_string();
        let split = s.len() - 3;
        format!("{} {}", &s[..split], &s[split..])
    }
}

impl TryFrom<u64> for SessionNumber {
    type Error = NumberError;
    fn try_from(n: u64) -> Result<Self, NumberError> {
        SessionNumber::new(n)
    }
}

impl From<SessionNumber> for u64 {
    fn from(n: SessionNumber) -> u64 {
        n.0
    }
}

impl fmt::Display for SessionNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for SessionNumber {
    type Err = NumberError;

    /// Accepts what people type: digits with spaces or dashes between groups.
    fn from_str(s: &str) -> Result<Self, NumberError> {
        let digits: String = s
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .collect();
        if digits.is_empty() {
            return Err(NumberError::Empty);
        }
        if let Some(bad) = digits.chars().find(|c| !c.is_ascii_digit()) {
            return Err(NumberError::NotADigit(bad));
        }
        if digits.starts_with('0') {
            return Err(NumberError::OutOfRange);
        }
        if digits.len() > MAX_DIGITS as usize {
            return Err(NumberError::OutOfRange);
        }
        let n: u64 = digits.parse().map_err(|_| NumberError::OutOfRange)?;
        SessionNumber::new(n)
    }
}

#[derive(Debug, Error, PartialEq, Eq)]
pub enum NumberError {
    #[error("no session number given")]
    Empty,
    #[error("'{0}' is not a digit: a session number has only digits")]
    NotADigit(char),
    #[error("a session number has {MIN_DIGITS} to {MAX_DIGITS} digits and does not start with 0")]
    OutOfRange,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_what_people_type() {
        assert_eq!("12345".parse::<SessionNumber>().unwrap().get(), 12345);
        assert_eq!("12 345".parse::<SessionNumber>().unwrap().get(), 12345);
        assert_eq!("123-456".parse::<SessionNumber>().unwrap().get(), 123456);
        assert_eq!("".parse::<SessionNumber>(), Err(NumberError::Empty));
        assert_eq!(
            "12a45".parse::<SessionNumber>(),
            Err(NumberError::NotADigit('a'))
        );
        assert_eq!(
            "1234".parse::<SessionNumber>(),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            "01234".parse::<SessionNumber>(),
            Err(NumberError::OutOfRange)
        );
        assert_eq!(
            "9999999999999999999999".parse::<SessionNumber>(),
            Err(NumberError::OutOfRange)
        );
    }

    #[test]
    fn groups_for_reading_aloud() {
        assert_eq!(SessionNumber::new(12345).unwrap().grouped(), "12 345");
        assert_eq!(SessionNumber::new(123456).unwrap().digits(), 6);
    }
}
