//! The server's side: a push agent that smooths the server's own processing delay (time until
//! first read, TUFR) over the requests it serves and decides when registered resolvers must hear
//! of it: when it moved by more than a threshold since the last push (at most once per
//! `min_gap`), and at least every `heartbeat` so a resolver can tell a quiet server from a dead
//! one. Pushes are numbered and signed by the server.
//!
//! Beside the delay, a push may state the server's *spare capacity*: the requests per second it
//! could take on top of its present load, as the server measures it (capacity less the arrival
//! rate, or capacity times the idle fraction). A delay tells a resolver where requests are served
//! fast now; spare capacity tells it how many more a server can take before that stops being
//! true, which is what keeps every resolver from sending its clients to the same server at once.

use std::time::Duration;

use overlay_core::signature::{Signer, Verifier};
use overlay_core::{NodeId, Time};
use serde::{Deserialize, Serialize};

/// Settings of a push agent.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PushConfig {
    /// Weight of a new request's delay in the smoothed figure.
    pub weight: f64,
    /// Push when the smoothed delay moved by more than this fraction since the last push.
    pub threshold: f64,
    /// Never push more often than this.
    pub min_gap: Duration,
    /// Push at least this often, changed or not.
    pub heartbeat: Duration,
}

impl Default for PushConfig {
    fn default() -> Self {
        Self {
            weight: 0.2,
            threshold: 0.2,
            min_gap: Duration::from_secs(1),
            heartbeat: Duration::from_secs(20),
        }
    }
}

/// A server's statement of its processing delay.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Push {
    /// The server.
    pub server: NodeId,
    /// Numbered from 1, one more each push.
    pub seq: u64,
    /// Smoothed time until first read, microseconds.
    pub tufr_us: u64,
    /// Smoothed spare capacity, thousandths of a request per second, if the server measures it.
    pub spare_mrps: Option<u64>,
    /// The server's signature over the four fields above.
    pub signature: Vec<u8>,
}

fn signed_bytes(server: &NodeId, seq: u64, tufr_us: u64, spare_mrps: Option<u64>) -> Vec<u8> {
    overlay_core::wire::encode(&(server, seq, tufr_us, spare_mrps)).unwrap_or_default()
}

impl Push {
    /// Whether the server signed it.
    pub fn verify(&self, verifier: &dyn Verifier) -> bool {
        verifier.verify(
            &self.server,
            &signed_bytes(&self.server, self.seq, self.tufr_us, self.spare_mrps),
            &self.signature,
        )
    }

    /// The stated delay.
    pub fn tufr(&self) -> Duration {
        Duration::from_micros(self.tufr_us)
    }

    /// The stated spare capacity, requests per second.
    pub fn spare_rps(&self) -> Option<f64> {
        self.spare_mrps.map(|m| m as f64 / 1000.0)
    }
}

/// Decides a server's pushes.
#[derive(Debug)]
pub struct PushAgent {
    server: NodeId,
    config: PushConfig,
    signer: Box<dyn Signer>,
    smoothed: Option<f64>,
    spare: Option<f64>,
    /// The last push: when, its delay and its spare capacity.
    last: Option<(Time, f64, Option<f64>)>,
    seq: u64,
}

impl PushAgent {
    /// The agent of `server`, signing with `signer`.
    pub fn new(server: NodeId, config: PushConfig, signer: Box<dyn Signer>) -> Self {
        Self {
            server,
            config,
            signer,
            smoothed: None,
            spare: None,
            last: None,
            seq: 0,
        }
    }

    /// The server answered a request whose first read came `tufr` after it arrived.
    pub fn on_served(&mut self, tufr: Duration) {
        let x = tufr.as_secs_f64();
        let w = self.config.weight.clamp(0.0, 1.0);
        self.smoothed = Some(match self.smoothed {
            Some(old) => old * (1.0 - w) + x * w,
            None => x,
        });
    }

    /// The server measured that it could take `spare_rps` more requests per second than it is
    /// getting (negative or non-finite figures count as none spare).
    pub fn on_spare(&mut self, spare_rps: f64) {
        let x = if spare_rps.is_finite() {
            spare_rps.max(0.0)
        } else {
            0.0
        };
        let w = self.config.weight.clamp(0.0, 1.0);
        self.spare = Some(match self.spare {
            Some(old) => old * (1.0 - w) + x * w,
            None => x,
        });
    }

    /// The smoothed spare capacity, requests per second.
    pub fn spare(&self) -> Option<f64> {
        self.spare
    }

    /// The smoothed delay (what a push carries, and a probe's body unless the application
    /// served the probe itself).
    pub fn current(&self) -> Option<Duration> {
        self.smoothed.map(Duration::from_secs_f64)
    }

    /// A push due at `now`, if one is.
    pub fn poll_push(&mut self, now: Time) -> Option<Push> {
        let value = self.smoothed?;
        let due = match self.last {
            None => true,
            Some((at, pushed, pushed_spare)) => {
                let since = now.saturating_since(at);
                let moved = (value - pushed).abs() > self.config.threshold * pushed.max(1e-9);
                // Spare capacity near zero matters most; one request per second is the floor
                // of what counts as a move.
                let spare_moved = match (self.spare, pushed_spare) {
                    (Some(now), Some(then)) => {
                        (now - then).abs() > self.config.threshold * then.max(1.0)
                    }
                    (Some(_), None) => true,
                    _ => false,
                };
                since >= self.config.heartbeat
                    || ((moved || spare_moved) && since >= self.config.min_gap)
            }
        };
        if !due {
            return None;
        }
        self.seq += 1;
        self.last = Some((now, value, self.spare));
        let tufr_us = u64::try_from(Duration::from_secs_f64(value).as_micros()).unwrap_or(u64::MAX);
        // Saturating float-to-int conversion: an enormous figure states u64::MAX.
        let spare_mrps = self.spare.map(|s| (s * 1000.0) as u64);
        Some(Push {
            server: self.server,
            seq: self.seq,
            tufr_us,
            spare_mrps,
            signature: self
                .signer
                .sign(&signed_bytes(&self.server, self.seq, tufr_us, spare_mrps)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use overlay_core::signature::SimulatedSignatures;

    fn agent() -> (PushAgent, SimulatedSignatures) {
        let id = NodeId::from_index(7);
        let sig = SimulatedSignatures::new(1, id);
        (
            PushAgent::new(id, PushConfig::default(), Box::new(sig.clone())),
            sig,
        )
    }

    fn at(ms: u64) -> Time {
        Time::ZERO + Duration::from_millis(ms)
    }

    #[test]
    fn pushes_when_the_delay_moves_and_on_the_heartbeat() {
        let (mut a, sig) = agent();
        assert_eq!(a.poll_push(at(0)), None, "nothing measured yet");
        a.on_served(Duration::from_millis(100));
        let first = a.poll_push(at(0)).unwrap();
        assert_eq!((first.seq, first.tufr_us), (1, 100_000));
        assert!(first.verify(&sig));
        // Small wobbles stay quiet.
        a.on_served(Duration::from_millis(110));
        assert_eq!(a.poll_push(at(5000)), None);
        // A jump is pushed, but not within min_gap of the last push.
        for _ in 0..10 {
            a.on_served(Duration::from_millis(400));
        }
        assert_eq!(a.poll_push(at(500)), None);
        let jump = a.poll_push(at(6000)).unwrap();
        assert_eq!(jump.seq, 2);
        assert!(jump.tufr_us > 300_000);
        // Unchanged, it still speaks every heartbeat.
        assert_eq!(a.poll_push(at(7000)), None);
        assert_eq!(a.poll_push(at(26_000)).unwrap().seq, 3);
    }

    #[test]
    fn an_altered_push_fails_to_verify() {
        let (mut a, sig) = agent();
        a.on_served(Duration::from_millis(100));
        let mut p = a.poll_push(at(0)).unwrap();
        p.tufr_us = 1;
        assert!(!p.verify(&sig));
    }

    #[test]
    fn spare_capacity_is_pushed_when_it_moves_and_is_signed() {
        let (mut a, sig) = agent();
        a.on_served(Duration::from_millis(100));
        a.on_spare(50.0);
        let first = a.poll_push(at(0)).unwrap();
        assert_eq!(first.spare_mrps, Some(50_000));
        assert_eq!(first.spare_rps(), Some(50.0));
        // The delay is steady but the spare capacity collapses: that alone is pushed.
        for _ in 0..20 {
            a.on_spare(2.0);
        }
        let second = a.poll_push(at(2000)).unwrap();
        assert!(second.spare_mrps.unwrap() < 5_000, "{second:?}");
        assert!(second.verify(&sig));
        let mut forged = second.clone();
        forged.spare_mrps = Some(1_000_000);
        assert!(!forged.verify(&sig), "the spare figure is signed");
        // Nonsense measurements count as nothing spare.
        a.on_spare(f64::NAN);
        a.on_spare(-5.0);
        assert!(a.spare().unwrap() < 2.0);
    }
}
