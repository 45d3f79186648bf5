//! A wide-area network emulated under QUIC, for tests and demos (never a production path):
//! member processes on one machine, each on its own loopback address, exchange datagrams as if
//! they sat in cities far apart behind access links of their own. The socket quinn uses is
//! wrapped ([`socket::EmulatedSocket`]): a datagram leaves through the sender's upload link
//! (a rate and a bounded queue: a full queue drops, so QUIC's congestion control meets a real
//! bottleneck), is held for the one-way delay between the two places (plus optional jitter, or
//! lost at random), and enters through the receiver's download link.
//!
//! Every member reads the same [`EmulationSpec`] (JSON): each member's address, place and
//! access link, and the one-way delay between every two places. `experiments emulation-spec`
//! writes one from a measured latency matrix and drawn access links, so that one placement
//! runs both in the simulator and as real processes; it can also be written by hand.

pub mod link;
pub mod socket;

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

pub use overlay_core::emulation::{EmulationSpec, Place, RateChange};

/// Most members a spec may place.
const MAX_MEMBERS: usize = 4096;
/// The largest spec file read.
const MAX_SPEC_BYTES: u64 = 64 << 20;
/// The longest one-way delay, jitter or queue a spec may ask for.
const MAX_DELAY_US: u64 = 10_000_000;
/// Most changes of one place's download.
const MAX_RATE_CHANGES: usize = 64;
/// The latest a change may come (a day).
const MAX_CHANGE_MS: u64 = 86_400_000;

/// Why a spec cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum EmulationError {
    /// The file could not be read.
    #[error("emulation spec {}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is larger than a spec can be.
    #[error("emulation spec {}: over {MAX_SPEC_BYTES} bytes", path.display())]
    TooLarge {
        /// The file.
        path: PathBuf,
    },
    /// The text is not a spec.
    #[error("emulation spec: {0}")]
    Json(#[from] serde_json::Error),
    /// The spec says something impossible.
    #[error("emulation spec: {0}")]
    Invalid(String),
}

/// A checked spec, with each place found by its address.
#[derive(Clone, Debug)]
pub struct Emulation {
    spec: EmulationSpec,
    by_ip: BTreeMap<IpAddr, usize>,
}

impl Emulation {
    /// Reads and checks the spec in `path`.
    pub fn load(path: &Path) -> Result<Self, EmulationError> {
        let io = |source| EmulationError::Io {
            path: path.to_owned(),
            source,
        };
        let len = std::fs::metadata(path).map_err(io)?.len();
        if len > MAX_SPEC_BYTES {
            return Err(EmulationError::TooLarge {
                path: path.to_owned(),
            });
        }
        let text = std::fs::read_to_string(path).map_err(io)?;
        Self::parse(&text)
    }

    /// Checks the spec in `text`.
    pub fn parse(text: &str) -> Result<Self, EmulationError> {
        let spec: EmulationSpec = serde_json::from_str(text)?;
        Self::new(spec)
    }

    /// Checks `spec`: a place per row of a square delay matrix, distinct addresses, delays and
    /// loss within reason.
    pub fn new(spec: EmulationSpec) -> Result<Self, EmulationError> {
        let invalid = |why: String| Err(EmulationError::Invalid(why));
        let n = spec.places.len();
        if n == 0 || n > MAX_MEMBERS {
            return invalid(format!("{n} places; 1 to {MAX_MEMBERS} are allowed"));
        }
        if spec.one_way_us.len() != n || spec.one_way_us.iter().any(|row| row.len() != n) {
            return invalid(format!("one_way_us must be {n} rows of {n} delays"));
        }
        if let Some((i, j)) = (0..n)
            .flat_map(|i| (0..n).map(move |j| (i, j)))
            .find(|&(i, j)| spec.one_way_us[i][j] > MAX_DELAY_US)
        {
            return invalid(format!(
                "the delay from place {i} to {j} is over {MAX_DELAY_US} µs"
            ));
        }
        if !(0.0..1.0).contains(&spec.loss) {
            return invalid(format!("loss {} is not in [0, 1)", spec.loss));
        }
        if spec.jitter_us > MAX_DELAY_US || spec.queue_us > MAX_DELAY_US {
            return invalid(format!(
                "jitter and queue must be at most {MAX_DELAY_US} µs"
            ));
        }
        let mut by_ip = BTreeMap::new();
        for (i, place) in spec.places.iter().enumerate() {
            if by_ip.insert(place.ip, i).is_some() {
                return invalid(format!("address {} is given to two places", place.ip));
            }
            let changes = &place.down_changes;
            if changes.len() > MAX_RATE_CHANGES
                || changes.windows(2).any(|w| w[0].after_ms >= w[1].after_ms)
                || changes.iter().any(|c| c.after_ms > MAX_CHANGE_MS)
            {
                return invalid(format!(
                    "place {i}: down_changes must be at most {MAX_RATE_CHANGES}, in increasing \
                     order of after_ms, each within {MAX_CHANGE_MS} ms"
                ));
            }
        }
        Ok(Self { spec, by_ip })
    }

    /// The place of the member at `ip`, if the spec has it.
    pub fn place_of(&self, ip: IpAddr) -> Option<usize> {
        self.by_ip.get(&ip).copied()
    }

    /// Place `i`.
    pub fn place(&self, i: usize) -> &Place {
        &self.spec.places[i]
    }

    /// Every place, in order.
    pub fn places(&self) -> &[Place] {
        &self.spec.places
    }

    /// One-way delay from place `from` to place `to`.
    pub fn one_way(&self, from: usize, to: usize) -> Duration {
        Duration::from_micros(self.spec.one_way_us[from][to])
    }

    /// The spec.
    pub fn spec(&self) -> &EmulationSpec {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> String {
        r#"{"name": "two cities",
            "places": [
              {"ip": "127.0.0.2", "name": "London", "up_bps": 10000000, "down_bps": 50000000},
              {"ip": "127.0.0.3", "name": "Sydney", "lat": -33.9, "lon": 151.2,
               "up_bps": 1000000, "down_bps": 8000000}],
            "one_way_us": [[0, 140000], [140000, 0]]}"#
            .to_owned()
    }

    #[test]
    fn a_spec_finds_places_by_address_with_their_delays_and_links() {
        let e = Emulation::parse(&spec()).unwrap();
        let sydney = e.place_of("127.0.0.3".parse().unwrap()).unwrap();
        assert_eq!(e.place(sydney).name, "Sydney");
        assert_eq!(e.one_way(0, sydney), Duration::from_millis(140));
        assert_eq!(e.spec().queue_us, 100_000, "the default queue");
        assert_eq!(e.place_of("127.0.0.9".parse().unwrap()), None);
    }

    #[test]
    fn a_download_narrows_and_recovers_as_its_changes_say() {
        let text = spec().replace(
            "\"down_bps\": 8000000",
            "\"down_bps\": 0, \"down_changes\": [{\"after_ms\": 1000, \"bps\": 1000000}, \
             {\"after_ms\": 2000, \"bps\": 0}]",
        );
        let e = Emulation::parse(&text).unwrap();
        let sydney = e.place(1);
        assert_eq!(sydney.down_changes.len(), 2);
        let mut download = socket::Download {
            link: link::Bottleneck::new(sydney.down_bps, Duration::from_millis(100)),
            changes: sydney.down_changes.clone().into(),
        };
        let at = overlay_core::Time::from_millis;
        // Unlimited at first; from 1 s, 1 Mbit/s (1250 bytes take 10 ms); from 2 s unlimited.
        assert_eq!(download.offer(at(500), 1250), Some(at(500)));
        assert_eq!(download.offer(at(1500), 1250), Some(at(1510)));
        assert_eq!(download.offer(at(1500), 1250), Some(at(1520)));
        assert_eq!(download.offer(at(2500), 1250), Some(at(2500)));
    }

    #[test]
    fn impossible_specs_are_refused_with_what_is_wrong() {
        let wrong = [
            (
                spec().replace("[[0, 140000], [140000, 0]]", "[[0, 1]]"),
                "rows",
            ),
            (spec().replace("127.0.0.3", "127.0.0.2"), "two places"),
            (spec().replace("140000, 0]", "99999999999, 0]"), "over"),
            (
                spec().replace("\"one_way_us\"", "\"loss\": 1.5, \"one_way_us\""),
                "loss",
            ),
            (
                spec().replace("\"name\": \"two", "\"colour\": \"two"),
                "unknown field",
            ),
            (
                spec().replace(
                    "\"down_bps\": 8000000",
                    "\"down_bps\": 8000000, \"down_changes\": [{\"after_ms\": 9, \"bps\": 1}, \
                     {\"after_ms\": 9, \"bps\": 0}]",
                ),
                "increasing",
            ),
        ];
        for (text, says) in wrong {
            let e = Emulation::parse(&text).unwrap_err().to_string();
            assert!(e.contains(says), "{e}");
        }
    }
}
