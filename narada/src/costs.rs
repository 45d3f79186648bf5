//! Route costs packed for a table reply ([`crate::Message::TableReply`]): a member asked for
//! its costs lists one per live member, so at 512 members the reply is most of a member's
//! control traffic. Each cost is packed into two bytes (three with a bandwidth width) instead
//! of postcard's seven: the distance keeps 12 significant bits, far finer than the utility
//! computed from it needs (a link's gain is judged against thresholds of whole percent).
//!
//! Layout: one byte of flags, then one entry per member. With the widths flag (bit 0) clear (every
//! reachable cost is [`PathMetric::UNBOUNDED`] wide, as under the latency metric) an entry is
//! the packed distance, `u16` little-endian, `0xFFFF` for no route. With it set, an
//! entry starts with a width byte: 0 for no route (nothing follows), `w + 1` for width `w`
//! below 254, 255 followed by the width as `u16` little-endian for any other; then the packed
//! distance.
//!
//! When the asker's members differ from the replier's, the reply names whom each cost is for by
//! a four-byte [`Fingerprint`] instead of a 32-byte id (see [`fingerprint`]).

use overlay_core::NodeId;
use serde::{Deserialize, Serialize};

use crate::fnv::Fnv1a;
use crate::metric::PathMetric;

/// A member named in a table reply by four bytes instead of its 32-byte id.
pub type Fingerprint = [u8; 4];

/// The fingerprint of `id` in the reply to the query with `nonce`: FNV-1a of the nonce and the
/// id, folded to 32 bits. The asker computes its own members' fingerprints under the same nonce
/// and ignores a fingerprint it does not know or that two of its members share. Two members of
/// a 512-member group share one in about 3 replies in 100 000 (the birthday bound); a
/// replier's member unknown to the asker takes a known one's place more rarely still (about 1
/// reply in 800 000 with ten unknown among 512), which misjudges one candidate link once.
/// Keyed by the asker's nonce, so no member can pick an id that collides with another's in
/// every reply.
pub fn fingerprint(nonce: u64, id: &NodeId) -> Fingerprint {
    let mut hash = Fnv1a::new();
    hash.eat(&nonce.to_le_bytes());
    hash.eat(id.as_bytes());
    let h = hash.finish();
    // Both halves: a product's low bits depend only on its factors' low bits, so FNV's high
    // half has mixed in more of what was fed.
    ((h ^ (h >> 32)) as u32).to_le_bytes()
}

/// Flag: entries carry widths.
const WIDTHS: u8 = 1;
/// A distance entry meaning "no route" (when widths are absent).
const UNREACHABLE: u16 = u16::MAX;
/// Significant bits a packed distance keeps.
const MANTISSA_BITS: u32 = 12;
/// Width byte announcing a two-byte width.
const WIDE: u8 = u8::MAX;

/// Route costs, one per member, packed (see the module's documentation).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PackedCosts(Vec<u8>);

/// Why packed costs could not be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CostsError {
    /// The bytes end inside an entry (or before the flags).
    #[error("packed costs end inside entry {entry}")]
    Truncated {
        /// The entry being read.
        entry: usize,
    },
    /// The flags byte has bits this version does not know.
    #[error("packed costs have unknown flags {0:#04x}")]
    UnknownFlags(u8),
    /// More entries than the reader accepts.
    #[error("packed costs list more than {limit} entries")]
    TooMany {
        /// The reader's limit.
        limit: usize,
    },
}

impl PackedCosts {
    /// Pack `costs` (`None`: no route).
    pub fn pack(costs: &[Option<PathMetric>]) -> Self {
        let widths = costs
            .iter()
            .flatten()
            .any(|c| c.width != PathMetric::UNBOUNDED);
        let mut bytes = Vec::with_capacity(1 + costs.len() * if widths { 3 } else { 2 });
        bytes.push(if widths { WIDTHS } else { 0 });
        for cost in costs {
            match (widths, cost) {
                (false, None) => bytes.extend_from_slice(&UNREACHABLE.to_le_bytes()),
                (false, Some(c)) => bytes.extend_from_slice(&pack_dist(c.dist).to_le_bytes()),
                (true, None) => bytes.push(0),
                (true, Some(c)) => {
                    match u8::try_from(c.width) {
                        Ok(w) if w < WIDE - 1 => bytes.push(w + 1),
                        _ => {
                            bytes.push(WIDE);
                            bytes.extend_from_slice(&c.width.to_le_bytes());
                        }
                    }
                    bytes.extend_from_slice(&pack_dist(c.dist).to_le_bytes());
                }
            }
        }
        Self(bytes)
    }

    /// The costs, if they are well formed and at most `limit` (distances as packed: within
    /// one part in 2 048 of what was packed, exact below 4 096).
    pub fn unpack(&self, limit: usize) -> Result<Vec<Option<PathMetric>>, CostsError> {
        let (&flags, mut rest) = self
            .0
            .split_first()
            .ok_or(CostsError::Truncated { entry: 0 })?;
        if flags & !WIDTHS != 0 {
            return Err(CostsError::UnknownFlags(flags));
        }
        let widths = flags & WIDTHS != 0;
        let mut costs = Vec::new();
        while !rest.is_empty() {
            let entry = costs.len();
            if entry >= limit {
                return Err(CostsError::TooMany { limit });
            }
            let truncated = CostsError::Truncated { entry };
            let width = if widths {
                let (&w, after) = rest.split_first().ok_or(truncated)?;
                rest = after;
                match w {
                    0 => {
                        costs.push(None);
                        continue;
                    }
                    WIDE => {
                        let (w, after) = take_u16(rest).ok_or(truncated)?;
                        rest = after;
                        w
                    }
                    w => u16::from(w - 1),
                }
            } else {
                PathMetric::UNBOUNDED
            };
            let (dist, after) = take_u16(rest).ok_or(truncated)?;
            rest = after;
            costs.push((widths || dist != UNREACHABLE).then(|| PathMetric {
                width,
                dist: unpack_dist(dist),
            }));
        }
        Ok(costs)
    }

    /// Bytes packed.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether nothing is packed (not even the flags).
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

fn take_u16(bytes: &[u8]) -> Option<(u16, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<2>()?;
    Some((u16::from_le_bytes(*head), rest))
}

/// `dist` as a 16-bit float: a 4-bit exponent over a 12-bit mantissa (exact below 4 096,
/// rounded down above, saturating at the largest value below [`UNREACHABLE`]).
fn pack_dist(dist: u32) -> u16 {
    let bits = u32::BITS - dist.leading_zeros();
    let exp = bits.saturating_sub(MANTISSA_BITS);
    let packed = if exp > 15 {
        u32::from(UNREACHABLE - 1)
    } else {
        (exp << MANTISSA_BITS) | (dist >> exp)
    };
    u16::try_from(packed.min(u32::from(UNREACHABLE - 1))).unwrap_or(UNREACHABLE - 1)
}

fn unpack_dist(packed: u16) -> u32 {
    let exp = u32::from(packed >> MANTISSA_BITS);
    let mantissa = u32::from(packed) & ((1 << MANTISSA_BITS) - 1);
    if exp == 0 {
        mantissa
    } else {
        // The mantissa's leading 1 is stored (2 048..4 095), so this is exact up to `exp`.
        mantissa << exp
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn metric(width: u16, dist: u32) -> PathMetric {
        PathMetric { width, dist }
    }

    #[test]
    fn latency_costs_take_two_bytes_each_and_come_back() {
        let costs = vec![
            Some(metric(PathMetric::UNBOUNDED, 0)),
            None,
            Some(metric(PathMetric::UNBOUNDED, 4_095)),
            Some(metric(PathMetric::UNBOUNDED, 35_000)),
        ];
        let packed = PackedCosts::pack(&costs);
        assert_eq!(packed.len(), 1 + 2 * costs.len());
        let back = packed.unpack(16).unwrap();
        assert_eq!(back[..3], costs[..3]);
        let d = back[3].unwrap().dist;
        assert!(d <= 35_000 && 35_000 - d < 35_000 / 2_048, "{d}");
    }

    #[test]
    fn widths_are_kept_exactly_small_or_large() {
        let costs = vec![
            Some(metric(0, 7)),
            Some(metric(10, 70)),
            None,
            Some(metric(253, 1)),
            Some(metric(254, 1)),
            Some(metric(PathMetric::UNBOUNDED, 0)),
        ];
        let packed = PackedCosts::pack(&costs);
        assert_eq!(packed.unpack(16).unwrap(), costs);
    }

    #[test]
    fn bad_input_is_named() {
        assert_eq!(
            PackedCosts(vec![]).unpack(4),
            Err(CostsError::Truncated { entry: 0 })
        );
        assert_eq!(
            PackedCosts(vec![0, 1, 2, 3]).unpack(4),
            Err(CostsError::Truncated { entry: 1 })
        );
        assert_eq!(
            PackedCosts(vec![WIDTHS, WIDE, 1]).unpack(4),
            Err(CostsError::Truncated { entry: 0 })
        );
        assert_eq!(
            PackedCosts(vec![2, 0, 0]).unpack(4),
            Err(CostsError::UnknownFlags(2))
        );
        assert_eq!(
            PackedCosts(vec![0, 0, 0, 0, 0]).unpack(1),
            Err(CostsError::TooMany { limit: 1 })
        );
    }

    #[test]
    fn huge_distances_saturate_below_unreachable() {
        let packed = PackedCosts::pack(&[Some(metric(PathMetric::UNBOUNDED, u32::MAX))]);
        let back = packed.unpack(1).unwrap()[0].unwrap();
        assert!(back.dist > 100_000_000);
    }

    proptest! {
        /// Any bytes decode to an answer or an error, never a panic, and never more entries
        /// than the limit.
        #[test]
        fn unpacking_is_total(bytes in proptest::collection::vec(any::<u8>(), 0..64), limit in 0usize..40) {
            if let Ok(costs) = PackedCosts(bytes).unpack(limit) {
                prop_assert!(costs.len() <= limit);
            }
        }

        /// Packing keeps reachability and width exactly and the distance within one part in
        /// 2 048 (never above it), in order.
        #[test]
        fn packing_keeps_order_reachability_width_and_near_distance(
            costs in proptest::collection::vec(proptest::option::of((any::<u16>(), 0u32..200_000_000)), 0..50),
        ) {
            let costs: Vec<Option<PathMetric>> =
                costs.into_iter().map(|c| c.map(|(w, d)| metric(w, d))).collect();
            let back = PackedCosts::pack(&costs).unpack(costs.len()).unwrap();
            prop_assert_eq!(back.len(), costs.len());
            for (a, b) in costs.iter().zip(&back) {
                match (a, b) {
                    (None, None) => {}
                    (Some(a), Some(b)) => {
                        prop_assert_eq!(a.width, b.width);
                        prop_assert!(b.dist <= a.dist);
                        if a.dist < 134_000_000 {
                            prop_assert!(a.dist - b.dist <= a.dist / 2_048, "{} -> {}", a.dist, b.dist);
                        }
                    }
                    _ => prop_assert!(false, "reachability changed: {:?} -> {:?}", a, b),
                }
            }
        }
    }
}
