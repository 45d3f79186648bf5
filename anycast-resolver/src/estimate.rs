//! The hybrid response-time estimate: a resolver's occasional probe measures the whole response
//! time RT of a small object, whose body carries the server's own processing delay (TUFR, time
//! until first read). The scale factor SF = RT / TUFR calibrates the server's cheap, frequent
//! pushes of TUFR between probes: RT ≈ SF × latest TUFR.
//!
//! Every figure is checked before it is used: zero, absurdly large and out-of-order figures are
//! refused with an error and leave the estimate as it was.

use std::time::Duration;

use overlay_core::Time;
use serde::{Deserialize, Serialize};

/// How a probe calibrates the pushed processing delay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Model {
    /// The paper's: RT = SF × TUFR with SF = RT / TUFR from the last probes. The network's
    /// share of RT is scaled with the server's delay, so a busier server looks worse than it is
    /// (and a quieter one better).
    Scaled,
    /// RT = (RT − TUFR from the probes: the network's share) + TUFR: the delay a push reports
    /// adds to the path, it does not multiply it.
    #[default]
    Additive,
}

/// Settings of an estimate.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EstimatorConfig {
    /// How probes calibrate pushes.
    pub model: Model,
    /// Weight of a new calibration against the old (exponential smoothing).
    pub sf_weight: f64,
    /// A push older than this no longer describes the server: the estimate falls back to the
    /// last probe, and is marked stale.
    pub push_max_age: Duration,
    /// A probe older than this no longer calibrates anything: the estimate is gone.
    pub probe_max_age: Duration,
    /// The smallest processing delay taken as real (a server claiming less is refused).
    pub min_tufr: Duration,
    /// The largest figure taken as real (response time or processing delay).
    pub max_figure: Duration,
    /// The largest spare capacity taken as real, requests per second.
    pub max_spare_rps: f64,
}

impl Default for EstimatorConfig {
    fn default() -> Self {
        Self {
            model: Model::default(),
            sf_weight: 0.5,
            push_max_age: Duration::from_secs(60),
            probe_max_age: Duration::from_secs(600),
            min_tufr: Duration::from_micros(100),
            max_figure: Duration::from_secs(120),
            max_spare_rps: 10_000_000.0,
        }
    }
}

/// Why a figure was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FigureError {
    /// Zero or below the configured floor.
    #[error("{what} of {got:?} is below the smallest believable {floor:?}")]
    TooSmall {
        /// Which figure.
        what: &'static str,
        /// Its value.
        got: Duration,
        /// The floor.
        floor: Duration,
    },
    /// Larger than anything believable.
    #[error("{what} of {got:?} is above the largest believable {ceiling:?}")]
    TooLarge {
        /// Which figure.
        what: &'static str,
        /// Its value.
        got: Duration,
        /// The ceiling.
        ceiling: Duration,
    },
    /// A spare capacity above anything believable.
    #[error(
        "a spare capacity of {got_mrps} thousandths of a request per second is above the largest believable"
    )]
    SpareTooLarge {
        /// The stated figure, thousandths of a request per second.
        got_mrps: u64,
    },
    /// A push numbered at or below one already taken.
    #[error("push {got} is not newer than push {have}")]
    OutOfOrder {
        /// Its number.
        got: u64,
        /// The newest taken.
        have: u64,
    },
}

/// Where an estimate comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Basis {
    /// SF × a fresh push.
    Hybrid,
    /// The last probe alone (no push since, or pushes stopped).
    Probe,
}

/// A response-time estimate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Estimate {
    /// Expected response time.
    pub rt: Duration,
    /// Where it comes from.
    pub basis: Basis,
    /// Whether the server's pushes stopped (older than `push_max_age`).
    pub stale: bool,
    /// The spare capacity the server last stated, requests per second (none once stale).
    pub spare_rps: Option<f64>,
}

/// What one resolver knows of one server.
#[derive(Clone, Debug, Default)]
pub struct ServerEstimate {
    sf: Option<f64>,
    /// The network's share of the response time, seconds (smoothed).
    network: Option<f64>,
    /// The last probe: when, and the response time it saw.
    probe: Option<(Time, Duration)>,
    /// The latest processing delay and when it was stated (push or probe body).
    tufr: Option<(Time, Duration)>,
    /// When the last push arrived.
    pushed_at: Option<Time>,
    /// The newest push number taken.
    push_seq: Option<u64>,
    /// The spare capacity the latest push stated, requests per second.
    spare: Option<f64>,
}

impl ServerEstimate {
    fn check(
        config: &EstimatorConfig,
        what: &'static str,
        got: Duration,
        floor: Duration,
    ) -> Result<(), FigureError> {
        if got < floor || got.is_zero() {
            Err(FigureError::TooSmall { what, got, floor })
        } else if got > config.max_figure {
            Err(FigureError::TooLarge {
                what,
                got,
                ceiling: config.max_figure,
            })
        } else {
            Ok(())
        }
    }

    /// A probe at `now` saw response time `rt`; its body carried processing delay `tufr`.
    pub fn on_probe(
        &mut self,
        config: &EstimatorConfig,
        now: Time,
        rt: Duration,
        tufr: Duration,
    ) -> Result<(), FigureError> {
        Self::check(config, "probe response time", rt, Duration::from_micros(1))?;
        Self::check(config, "probed processing delay", tufr, config.min_tufr)?;
        let sf = rt.as_secs_f64() / tufr.as_secs_f64();
        let w = config.sf_weight.clamp(0.0, 1.0);
        self.sf = Some(match self.sf {
            Some(old) => old * (1.0 - w) + sf * w,
            None => sf,
        });
        let network = (rt.as_secs_f64() - tufr.as_secs_f64()).max(0.0);
        self.network = Some(match self.network {
            Some(old) => old * (1.0 - w) + network * w,
            None => network,
        });
        self.probe = Some((now, rt));
        if self.tufr.is_none_or(|(at, _)| at <= now) {
            self.tufr = Some((now, tufr));
        }
        Ok(())
    }

    /// Push number `seq` arrived at `now` with processing delay `tufr` and, if the server
    /// measures it, its spare capacity in thousandths of a request per second.
    pub fn on_push(
        &mut self,
        config: &EstimatorConfig,
        now: Time,
        seq: u64,
        tufr: Duration,
        spare_mrps: Option<u64>,
    ) -> Result<(), FigureError> {
        if let Some(have) = self.push_seq.filter(|&have| seq <= have) {
            return Err(FigureError::OutOfOrder { got: seq, have });
        }
        Self::check(config, "pushed processing delay", tufr, config.min_tufr)?;
        let spare = spare_mrps.map(|m| m as f64 / 1000.0);
        if let (Some(got_mrps), Some(rps)) = (spare_mrps, spare)
            && rps > config.max_spare_rps
        {
            return Err(FigureError::SpareTooLarge { got_mrps });
        }
        self.push_seq = Some(seq);
        self.pushed_at = Some(now);
        self.tufr = Some((now, tufr));
        self.spare = spare;
        Ok(())
    }

    /// The expected response time at `now`, if any can be given.
    pub fn estimate(&self, config: &EstimatorConfig, now: Time) -> Option<Estimate> {
        let (probed_at, probe_rt) = self.probe?;
        if now.saturating_since(probed_at) > config.probe_max_age {
            return None;
        }
        let stale = self
            .pushed_at
            .is_some_and(|at| now.saturating_since(at) > config.push_max_age);
        let fresh_push = self.pushed_at.is_some() && !stale;
        match (self.sf, self.tufr) {
            (Some(sf), Some((at, tufr))) if fresh_push && at >= probed_at => {
                let secs = match config.model {
                    Model::Scaled => sf * tufr.as_secs_f64(),
                    Model::Additive => self.network.unwrap_or(0.0) + tufr.as_secs_f64(),
                };
                let rt = Duration::from_secs_f64(secs.clamp(0.0, 1e6));
                Some(Estimate {
                    rt: rt.min(config.max_figure),
                    basis: Basis::Hybrid,
                    stale,
                    spare_rps: self.spare,
                })
            }
            _ => Some(Estimate {
                rt: probe_rt,
                basis: Basis::Probe,
                stale,
                spare_rps: if stale { None } else { self.spare },
            }),
        }
    }

    /// The calibrated scale factor, once a probe came back.
    pub fn scale_factor(&self) -> Option<f64> {
        self.sf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: u64) -> Duration {
        Duration::from_millis(v)
    }

    fn at(s: u64) -> Time {
        Time::ZERO + Duration::from_secs(s)
    }

    #[test]
    fn a_probe_calibrates_and_pushes_scale_the_estimate() {
        let c = EstimatorConfig {
            model: Model::Scaled,
            ..EstimatorConfig::default()
        };
        let mut e = ServerEstimate::default();
        assert_eq!(e.estimate(&c, at(0)), None);
        // RT 400 ms while the server said it takes 100 ms: SF 4.
        e.on_probe(&c, at(1), ms(400), ms(100)).unwrap();
        assert_eq!(e.scale_factor(), Some(4.0));
        let probe_only = e.estimate(&c, at(2)).unwrap();
        assert_eq!((probe_only.rt, probe_only.basis), (ms(400), Basis::Probe));
        // The server gets busier: 250 ms of processing means about a second.
        e.on_push(&c, at(3), 1, ms(250), None).unwrap();
        let hybrid = e.estimate(&c, at(4)).unwrap();
        assert_eq!((hybrid.rt, hybrid.basis), (ms(1000), Basis::Hybrid));
        // A second probe blends its factor in: (4 + 2) / 2 = 3.
        e.on_probe(&c, at(5), ms(500), ms(250)).unwrap();
        assert!((e.scale_factor().unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn a_server_that_stops_pushing_falls_back_to_its_probe_and_is_stale() {
        let c = EstimatorConfig {
            model: Model::Scaled,
            ..EstimatorConfig::default()
        };
        let mut e = ServerEstimate::default();
        e.on_probe(&c, at(0), ms(300), ms(100)).unwrap();
        e.on_push(&c, at(1), 1, ms(50), None).unwrap();
        assert_eq!(e.estimate(&c, at(10)).unwrap().rt, ms(150));
        let later = e.estimate(&c, at(1) + c.push_max_age + ms(1)).unwrap();
        assert_eq!(
            (later.rt, later.basis, later.stale),
            (ms(300), Basis::Probe, true)
        );
        assert_eq!(e.estimate(&c, at(0) + c.probe_max_age + ms(1)), None);
    }

    #[test]
    fn the_additive_model_adds_the_pushed_delay_to_the_network_share() {
        let c = EstimatorConfig::default();
        let mut e = ServerEstimate::default();
        // 400 ms of which the server took 100: 300 ms of network.
        e.on_probe(&c, at(1), ms(400), ms(100)).unwrap();
        e.on_push(&c, at(2), 1, ms(250), None).unwrap();
        assert_eq!(e.estimate(&c, at(3)).unwrap().rt, ms(550));
    }

    #[test]
    fn absurd_or_old_figures_are_refused_and_change_nothing() {
        let c = EstimatorConfig::default();
        let mut e = ServerEstimate::default();
        e.on_probe(&c, at(0), ms(300), ms(100)).unwrap();
        e.on_push(&c, at(1), 5, ms(100), None).unwrap();
        let before = e.estimate(&c, at(2));
        assert!(matches!(
            e.on_push(&c, at(2), 6, Duration::ZERO, None),
            Err(FigureError::TooSmall { .. })
        ));
        assert!(matches!(
            e.on_push(&c, at(2), 6, Duration::from_secs(3600), None),
            Err(FigureError::TooLarge { .. })
        ));
        assert_eq!(
            e.on_push(&c, at(2), 5, ms(1), None),
            Err(FigureError::OutOfOrder { got: 5, have: 5 })
        );
        assert!(e.on_probe(&c, at(2), Duration::ZERO, ms(100)).is_err());
        assert!(
            e.on_probe(&c, at(2), ms(100), Duration::from_nanos(1))
                .is_err()
        );
        assert_eq!(
            e.on_push(&c, at(2), 6, ms(100), Some(u64::MAX)),
            Err(FigureError::SpareTooLarge { got_mrps: u64::MAX })
        );
        assert_eq!(e.estimate(&c, at(2)), before);
        assert!((e.scale_factor().unwrap() - 3.0).abs() < 1e-9);
    }

    #[test]
    fn the_stated_spare_capacity_rides_with_the_estimate_until_pushes_stop() {
        let c = EstimatorConfig::default();
        let mut e = ServerEstimate::default();
        e.on_probe(&c, at(0), ms(300), ms(100)).unwrap();
        assert_eq!(e.estimate(&c, at(0)).unwrap().spare_rps, None);
        e.on_push(&c, at(1), 1, ms(100), Some(12_500)).unwrap();
        assert_eq!(e.estimate(&c, at(2)).unwrap().spare_rps, Some(12.5));
        // A push without the figure clears it: the server no longer states one.
        e.on_push(&c, at(3), 2, ms(100), None).unwrap();
        assert_eq!(e.estimate(&c, at(4)).unwrap().spare_rps, None);
        e.on_push(&c, at(5), 3, ms(100), Some(0)).unwrap();
        assert_eq!(e.estimate(&c, at(6)).unwrap().spare_rps, Some(0.0));
        let stale = e.estimate(&c, at(5) + c.push_max_age + ms(1)).unwrap();
        assert_eq!((stale.stale, stale.spare_rps), (true, None));
    }
}
