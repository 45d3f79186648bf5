//! One placement for both worlds: members placed on a latency matrix with drawn access links,
//! as the simulator places them, written as the emulation spec real `esm` processes run over
//! (`esm conference --emulate`). Each member gets a loopback address of its own, its city and
//! coordinates (for pictures), its access link, and the one-way delay to every other member.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use overlay_core::emulation::{EmulationSpec, Place, default_queue_us};

use crate::network::Network;

/// Why a spec cannot be written.
#[derive(Debug, thiserror::Error)]
pub enum SpecError {
    /// The addresses would leave the loopback block.
    #[error("{members} members from {first} leave 127.0.0.0/8")]
    Addresses {
        /// The first address asked for.
        first: Ipv4Addr,
        /// How many members.
        members: usize,
    },
    /// The first address is not a loopback address.
    #[error("--first-ip {0} is not a loopback address (127.0.0.0/8)")]
    NotLoopback(Ipv4Addr),
    /// The cities file could not be read.
    #[error("cities file {path}: {reason}")]
    Cities {
        /// The file.
        path: String,
        /// What is wrong, and where.
        reason: String,
    },
}

/// The `members` consecutive addresses from `first`, all inside 127.0.0.0/8.
pub fn loopback_addresses(first: Ipv4Addr, members: usize) -> Result<Vec<IpAddr>, SpecError> {
    if first.octets()[0] != 127 {
        return Err(SpecError::NotLoopback(first));
    }
    let start = u32::from(first);
    let end = u32::try_from(members)
        .ok()
        .and_then(|m| start.checked_add(m))
        .filter(|&end| end <= u32::from(Ipv4Addr::new(127, 255, 255, 255)))
        .ok_or(SpecError::Addresses { first, members })?;
    Ok((start..end)
        .map(|a| IpAddr::V4(Ipv4Addr::from(a)))
        .collect())
}

/// Coordinates by city name from a CSV of `city,Lat,Long,...` (the WonderNetwork cities file).
pub fn read_cities(path: &Path) -> Result<BTreeMap<String, (f64, f64)>, SpecError> {
    let fail = |reason: String| SpecError::Cities {
        path: path.display().to_string(),
        reason,
    };
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_path(path)
        .map_err(|e| fail(e.to_string()))?;
    let mut cities = BTreeMap::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| fail(e.to_string()))?;
        let line = i + 2;
        let field = |k: usize, what: &str| {
            record
                .get(k)
                .ok_or_else(|| fail(format!("line {line}: no {what} column")))
        };
        let name = field(0, "city")?.trim().to_owned();
        let number = |k: usize, what: &str| -> Result<f64, SpecError> {
            let text = field(k, what)?.trim();
            text.parse::<f64>()
                .ok()
                .filter(|v| v.is_finite())
                .ok_or_else(|| fail(format!("line {line}: {what} {text:?} is not a number")))
        };
        let (lat, lon) = (number(1, "latitude")?, number(2, "longitude")?);
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(fail(format!("line {line}: {lat},{lon} is not on Earth")));
        }
        cities.insert(name, (lat, lon));
    }
    Ok(cities)
}

/// The spec of `net`'s members: member `i` at `addresses[i]`, its host's city (with
/// coordinates where `cities` knows it) and access link, and the network's one-way delays.
pub fn spec_of(
    net: &Network,
    name: &str,
    addresses: &[IpAddr],
    cities: &BTreeMap<String, (f64, f64)>,
) -> EmulationSpec {
    let n = net.members();
    let places = net
        .hosts()
        .iter()
        .zip(addresses)
        .map(|(host, &ip)| {
            let at = cities.get(&host.name);
            Place {
                ip,
                name: host.name.clone(),
                lat: at.map(|c| c.0),
                lon: at.map(|c| c.1),
                up_bps: host.access.up.bps(),
                down_bps: host.access.down.bps(),
                down_changes: Vec::new(),
            }
        })
        .collect();
    let one_way_us = (0..n)
        .map(|i| {
            (0..n)
                .map(|j| {
                    if i == j {
                        0
                    } else {
                        net.unicast_delay_micros(i, j)
                    }
                })
                .collect()
        })
        .collect();
    EmulationSpec {
        name: name.to_owned(),
        places,
        one_way_us,
        loss: 0.0,
        jitter_us: 0,
        queue_us: default_queue_us(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_stay_in_the_loopback_block() {
        let a = loopback_addresses(Ipv4Addr::new(127, 0, 0, 254), 3).unwrap();
        assert_eq!(
            a,
            ["127.0.0.254", "127.0.0.255", "127.0.1.0"]
                .map(|s| s.parse::<IpAddr>().unwrap())
                .to_vec()
        );
        assert!(matches!(
            loopback_addresses(Ipv4Addr::new(10, 0, 0, 1), 2),
            Err(SpecError::NotLoopback(_))
        ));
        assert!(matches!(
            loopback_addresses(Ipv4Addr::new(127, 255, 255, 250), 10),
            Err(SpecError::Addresses { .. })
        ));
    }
}
