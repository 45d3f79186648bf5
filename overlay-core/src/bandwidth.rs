//! Bit rates, parsed from and printed as the text people write (`1.2mbps`, `500kbps`).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A rate in bits per second.
#[derive(Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Bandwidth(u64);

impl Bandwidth {
    /// No bandwidth.
    pub const ZERO: Self = Self(0);

    /// `bps` bits per second.
    pub const fn from_bps(bps: u64) -> Self {
        Self(bps)
    }

    /// `kbps` kilobits (1000 bits) per second.
    pub const fn from_kbps(kbps: u64) -> Self {
        Self(kbps.saturating_mul(1_000))
    }

    /// `mbps` megabits per second.
    pub const fn from_mbps(mbps: u64) -> Self {
        Self(mbps.saturating_mul(1_000_000))
    }

    /// A rate from a float number of bits per second (negative and NaN become zero).
    pub fn from_bps_f64(bps: f64) -> Self {
        // `as` saturates floats into the integer range and maps NaN to zero.
        Self(bps.max(0.0) as u64)
    }

    /// Bits per second.
    pub const fn bps(self) -> u64 {
        self.0
    }

    /// Bits per second as a float.
    pub fn bps_f64(self) -> f64 {
        self.0 as f64
    }

    /// Megabits per second as a float (for reports).
    pub fn mbps_f64(self) -> f64 {
        self.0 as f64 / 1e6
    }

    /// Bytes that this rate carries in `d`.
    pub fn bytes_in(self, d: std::time::Duration) -> u64 {
        (self.0 as f64 / 8.0 * d.as_secs_f64()) as u64
    }
}

impl fmt::Display for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (value, unit) = match self.0 {
            b if b >= 1_000_000_000 => (b as f64 / 1e9, "gbps"),
            b if b >= 1_000_000 => (b as f64 / 1e6, "mbps"),
            b if b >= 1_000 => (b as f64 / 1e3, "kbps"),
            b => return write!(f, "{b}bps"),
        };
        // Up to three decimals, without trailing zeros: 1.2mbps, 10mbps, 1.544mbps.
        let text = format!("{value:.3}");
        let text = text.trim_end_matches('0').trim_end_matches('.');
        write!(f, "{text}{unit}")
    }
}

impl fmt::Debug for Bandwidth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Why a string is not a bandwidth.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a bandwidth: {why} (write e.g. 1.2mbps, 500kbps, 10gbps or 64000bps)")]
pub struct ParseBandwidthError {
    text: String,
    why: &'static str,
}

impl FromStr for Bandwidth {
    type Err = ParseBandwidthError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let err = |why| ParseBandwidthError {
            text: s.to_owned(),
            why,
        };
        let lower = s.trim().to_ascii_lowercase();
        let split = lower
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .unwrap_or(lower.len());
        let (number, unit) = lower.split_at(split);
        if number.is_empty() {
            return Err(err("it does not start with a number"));
        }
        let value: f64 = number.parse().map_err(|_| err("the number is malformed"))?;
        let scale = match unit.trim() {
            "" | "bps" | "b/s" => 1.0,
            "kbps" | "kb/s" | "kbit/s" | "k" => 1e3,
            "mbps" | "mb/s" | "mbit/s" | "m" => 1e6,
            "gbps" | "gb/s" | "gbit/s" | "g" => 1e9,
            _ => return Err(err("the unit is not one of bps, kbps, mbps, gbps")),
        };
        let bps = value * scale;
        if !bps.is_finite() || bps > u64::MAX as f64 {
            return Err(err("the rate is too large"));
        }
        Ok(Self(bps.round() as u64))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_usual_spellings() {
        assert_eq!("1.2mbps".parse(), Ok(Bandwidth::from_bps(1_200_000)));
        assert_eq!("500kbps".parse(), Ok(Bandwidth::from_kbps(500)));
        assert_eq!("10Gbps".parse(), Ok(Bandwidth::from_bps(10_000_000_000)));
        assert_eq!("64000".parse(), Ok(Bandwidth::from_bps(64_000)));
        assert_eq!(" 2 Mbit/s ".parse(), Ok(Bandwidth::from_mbps(2)));
    }

    #[test]
    fn rejects_nonsense_with_a_reason() {
        let err = "fast".parse::<Bandwidth>().unwrap_err();
        assert!(
            err.to_string().contains("does not start with a number"),
            "{err}"
        );
        assert!("1.2.3mbps".parse::<Bandwidth>().is_err());
        assert!("3 furlongs".parse::<Bandwidth>().is_err());
        assert!("1e400".parse::<Bandwidth>().is_err());
    }

    #[test]
    fn displays_compactly_and_round_trips() {
        for text in [
            "1.2mbps",
            "10mbps",
            "1.544mbps",
            "500kbps",
            "10gbps",
            "64bps",
        ] {
            let b: Bandwidth = text.parse().unwrap();
            assert_eq!(b.to_string(), text);
        }
        assert_eq!(
            Bandwidth::from_mbps(8).bytes_in(std::time::Duration::from_secs(1)),
            1_000_000
        );
    }
}
