//! Access links: how each member's host reaches its router, chosen by a spec string.
//!
//! - `fixed:up=100mbps,down=100mbps,delay=1ms`: every host alike;
//! - `simblock:year=2019,adsl=0.1,spread=0.3,delay=1ms`: each host draws a world region with the
//!   probabilities SimBlock measured for Bitcoin nodes, takes that region's measured upload and
//!   download bandwidth, scaled by a log-normal factor `exp(spread · Z)` so hosts of one region
//!   differ; a fraction `adsl` of hosts instead get a slow asymmetric ADSL line (`adsl_up`,
//!   `adsl_down`, default 1 and 8 Mbps). `path=FILE` reads another file of SimBlock's format;
//! - `router:factor=1,delay=0.1ms`: infrastructure hosts (Overcast's nodes) whose own link, each
//!   way, is `factor` times the capacity of all their router's links together, so the node can
//!   feed every link of its router at once and its own link is never what limits it (only on
//!   router maps).
//!
//! `delay` is the access link's propagation delay on router maps; measured RTT matrices already
//! include the hosts' own links, so there it is not added.

use std::time::Duration;

use overlay_core::Bandwidth;
use overlay_core::rng::ProtocolRng;
use rand::RngExt;
use serde_json::Value;

use crate::spec::{Spec, SpecError};

/// The SimBlock table shipped with the project (`data/simblock-region-bandwidth.json`).
const SIMBLOCK_TABLE: &str = include_str!("../../../data/simblock-region-bandwidth.json");

/// One host's access link.
#[derive(Clone, Debug, PartialEq)]
pub struct AccessLink {
    /// Capacity from the host towards the network.
    pub up: Bandwidth,
    /// Capacity from the network to the host.
    pub down: Bandwidth,
    /// Propagation delay.
    pub delay: Duration,
    /// What kind of host drew it (a region name, `adsl`, or `fixed`), for reports.
    pub class: String,
}

/// Per-region bandwidths and how hosts are spread over regions.
#[derive(Clone, Debug, PartialEq)]
pub struct RegionTable {
    /// Region names.
    pub regions: Vec<String>,
    /// Upload bandwidth per region.
    pub upload: Vec<Bandwidth>,
    /// Download bandwidth per region.
    pub download: Vec<Bandwidth>,
    /// Share of hosts per region (sums to about one).
    pub share: Vec<f64>,
}

/// How access links are drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum AccessSpec {
    /// Every host has the same link.
    Fixed {
        /// Upload capacity.
        up: Bandwidth,
        /// Download capacity.
        down: Bandwidth,
        /// Delay.
        delay: Duration,
    },
    /// Heterogeneous hosts drawn from measured regional bandwidths.
    Regional {
        /// The regional table.
        table: RegionTable,
        /// Fraction of ADSL hosts.
        adsl: f64,
        /// ADSL upload capacity.
        adsl_up: Bandwidth,
        /// ADSL download capacity.
        adsl_down: Bandwidth,
        /// Log-normal spread of each host around its region's figures.
        spread: f64,
        /// Delay.
        delay: Duration,
    },
    /// A link as fast as the host's router's links together, times `factor`.
    RouterRelative {
        /// Multiple of the router's total link capacity.
        factor: f64,
        /// Delay.
        delay: Duration,
    },
}

/// Help text for access specs.
pub const ACCESS_HELP: &str = "fixed:up=100mbps,down=100mbps,delay=1ms | simblock:year=2019,adsl=0.1,spread=0.3,delay=1ms[,path=FILE] | router:factor=1,delay=0.1ms";

impl AccessSpec {
    /// Parse an access spec string.
    pub fn parse(text: &str) -> Result<Self, SpecError> {
        let mut spec = Spec::parse(text, |_| false)?;
        let delay = spec.take("delay", Duration::from_millis(1))?;
        let parsed = match spec.kind() {
            "fixed" => {
                let up = spec.take("up", Bandwidth::from_mbps(100))?;
                let down = spec.take("down", Bandwidth::from_mbps(100))?;
                spec.clone().finish(&["up", "down", "delay"])?;
                Self::Fixed { up, down, delay }
            }
            "simblock" => {
                let year: u32 = spec.take("year", 2019)?;
                let adsl: f64 = spec.take("adsl", 0.1)?;
                let spread: f64 = spec.take("spread", 0.3)?;
                let adsl_up = spec.take("adsl_up", Bandwidth::from_mbps(1))?;
                let adsl_down = spec.take("adsl_down", Bandwidth::from_mbps(8))?;
                let path: Option<String> = spec.take_opt("path")?;
                if !(0.0..=1.0).contains(&adsl) {
                    return Err(
                        spec.error(format!("adsl is a fraction of hosts in 0..=1, got {adsl}"))
                    );
                }
                if !(0.0..=3.0).contains(&spread) {
                    return Err(spec.error(format!("spread must be in 0..=3, got {spread}")));
                }
                let (source, text) = match &path {
                    Some(p) => (
                        p.as_str(),
                        std::fs::read_to_string(p)
                            .map_err(|e| spec.error(format!("cannot read {p}: {e}")))?,
                    ),
                    None => ("the built-in SimBlock table", SIMBLOCK_TABLE.to_owned()),
                };
                let table = parse_region_table(&text, year)
                    .map_err(|e| spec.error(format!("{source}: {e}")))?;
                spec.clone().finish(&[
                    "year",
                    "adsl",
                    "spread",
                    "adsl_up",
                    "adsl_down",
                    "path",
                    "delay",
                ])?;
                Self::Regional {
                    table,
                    adsl,
                    adsl_up,
                    adsl_down,
                    spread,
                    delay,
                }
            }
            "router" => {
                let factor: f64 = spec.take("factor", 1.0)?;
                if !(factor > 0.0 && factor <= 1e3) {
                    return Err(spec.error(format!("factor must be in (0, 1000], got {factor}")));
                }
                spec.clone().finish(&["factor", "delay"])?;
                Self::RouterRelative { factor, delay }
            }
            other => {
                return Err(spec.error(format!("unknown access kind {other:?}; use {ACCESS_HELP}")));
            }
        };
        Ok(parsed)
    }

    /// Draw `n` access links.
    pub fn draw(&self, n: usize, rng: &mut ProtocolRng) -> Vec<AccessLink> {
        (0..n).map(|_| self.draw_one(rng)).collect()
    }

    fn draw_one(&self, rng: &mut ProtocolRng) -> AccessLink {
        match self {
            // Sized when the host is placed: see `AccessSpec::router_factor`.
            Self::RouterRelative { delay, .. } => AccessLink {
                up: Bandwidth::ZERO,
                down: Bandwidth::ZERO,
                delay: *delay,
                class: "router".to_owned(),
            },
            Self::Fixed { up, down, delay } => AccessLink {
                up: *up,
                down: *down,
                delay: *delay,
                class: "fixed".to_owned(),
            },
            Self::Regional {
                table,
                adsl,
                adsl_up,
                adsl_down,
                spread,
                delay,
            } => {
                let pick: f64 = rng.random();
                let factor = (spread * standard_normal(rng)).exp();
                if rng.random_bool(*adsl) {
                    return AccessLink {
                        up: *adsl_up,
                        down: *adsl_down,
                        delay: *delay,
                        class: "adsl".to_owned(),
                    };
                }
                let total: f64 = table.share.iter().sum();
                let mut acc = 0.0;
                let region = table
                    .share
                    .iter()
                    .position(|s| {
                        acc += s / total;
                        pick < acc
                    })
                    .unwrap_or(table.share.len() - 1);
                AccessLink {
                    up: Bandwidth::from_bps_f64(table.upload[region].bps_f64() * factor),
                    down: Bandwidth::from_bps_f64(table.download[region].bps_f64() * factor),
                    delay: *delay,
                    class: table.regions[region].clone(),
                }
            }
        }
    }

    /// The access delay.
    pub fn delay(&self) -> Duration {
        match self {
            Self::Fixed { delay, .. }
            | Self::Regional { delay, .. }
            | Self::RouterRelative { delay, .. } => *delay,
        }
    }

    /// For router-relative links, the multiple of the router's total link capacity each host's
    /// link gets (the network sizes them once it knows the routers).
    pub fn router_factor(&self) -> Option<f64> {
        match self {
            Self::RouterRelative { factor, .. } => Some(*factor),
            Self::Fixed { .. } | Self::Regional { .. } => None,
        }
    }
}

/// A standard normal draw (Box-Muller).
pub fn standard_normal(rng: &mut ProtocolRng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

fn parse_region_table(text: &str, year: u32) -> Result<RegionTable, String> {
    let root: Value = serde_json::from_str(text)
        .map_err(|e| format!("line {} column {}: {e}", e.line(), e.column()))?;
    let object = root.as_object().ok_or("the top level is not an object")?;
    let regions: Vec<String> = object
        .get("regions")
        .and_then(Value::as_array)
        .ok_or("no \"regions\" array")?
        .iter()
        .map(|v| {
            v.as_str()
                .map(str::to_owned)
                .ok_or("a region name is not a string")
        })
        .collect::<Result<_, _>>()?;
    let series = |prefix: String| -> Result<Vec<f64>, String> {
        let (key, value) = object
            .iter()
            .find(|(k, _)| k.starts_with(&prefix))
            .ok_or_else(|| format!("no key starting with {prefix:?}"))?;
        let values = value
            .as_array()
            .ok_or_else(|| format!("{key:?} is not an array"))?;
        if values.len() < regions.len() {
            return Err(format!(
                "{key:?} has {} values for {} regions",
                values.len(),
                regions.len()
            ));
        }
        values[..regions.len()]
            .iter()
            .enumerate()
            .map(|(i, v)| match v.as_f64() {
                Some(x) if x.is_finite() && x >= 0.0 => Ok(x),
                _ => Err(format!("{key:?}[{i}] is not a non-negative number")),
            })
            .collect()
    };
    let upload = series(format!("upload_bps_{year}"))?;
    let download = series(format!("download_bps_{year}"))?;
    let share = series(format!("region_distribution_bitcoin_{year}"))?;
    if share.iter().sum::<f64>() <= 0.0 {
        return Err("the region distribution sums to zero".to_owned());
    }
    Ok(RegionTable {
        regions,
        upload: upload.into_iter().map(Bandwidth::from_bps_f64).collect(),
        download: download.into_iter().map(Bandwidth::from_bps_f64).collect(),
        share,
    })
}

#[cfg(test)]
mod tests {
    use overlay_core::rng::rng_from_seed;

    use super::*;

    #[test]
    fn fixed_links_are_alike() {
        let spec = AccessSpec::parse("fixed:up=10mbps,down=50mbps,delay=2ms").unwrap();
        let links = spec.draw(3, &mut rng_from_seed(1));
        assert!(
            links
                .iter()
                .all(|l| l.up == Bandwidth::from_mbps(10) && l.down == Bandwidth::from_mbps(50))
        );
        assert_eq!(links[0].delay, Duration::from_millis(2));
    }

    #[test]
    fn simblock_draws_are_heterogeneous_with_slow_adsl_hosts() {
        let spec = AccessSpec::parse("simblock:year=2019,adsl=0.2").unwrap();
        let links = spec.draw(2000, &mut rng_from_seed(7));
        let adsl = links.iter().filter(|l| l.class == "adsl").count();
        assert!((300..500).contains(&adsl), "{adsl}");
        assert!(
            links
                .iter()
                .filter(|l| l.class == "adsl")
                .all(|l| l.up < l.down)
        );
        let europe = links.iter().filter(|l| l.class == "EUROPE").count();
        assert!(
            europe > 600,
            "Europe holds half of SimBlock's nodes: {europe}"
        );
        let mut ups: Vec<u64> = links.iter().map(|l| l.up.bps()).collect();
        ups.sort_unstable();
        ups.dedup();
        assert!(ups.len() > 1000, "hosts of a region differ");
    }

    #[test]
    fn bad_access_specs_say_why() {
        for (text, expected) in [
            (
                "simblock:year=1999",
                "no key starting with \"upload_bps_1999\"",
            ),
            ("simblock:adsl=2", "adsl is a fraction"),
            ("fixed:up=fast", "\"fast\" is not a bandwidth"),
            ("fixed:upp=1mbps", "unknown key \"upp\""),
            ("dialup", "unknown access kind"),
        ] {
            let err = AccessSpec::parse(text).unwrap_err().to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
    }
}
