//! The driver's bandwidth probes: asking a peer for a train, sending the train a peer asked
//! for, and handing the protocol the rate the train arrived at (or the connection's estimate
//! when none came).

use overlay_core::{Bandwidth, LinkMetrics, NodeId, Protocol};

use super::Driver;
use crate::runtime::bandwidth_probe;
use crate::transport::frame::Frame;

impl<P> Driver<P>
where
    P: Protocol + Send + 'static,
    P::Message: Send + 'static,
    P::Command: Send + 'static,
    P::Event: Send + 'static,
{
    /// Asks `peer` for a bandwidth probe (unless one is under way: its train answers this
    /// request too); the train's rate, or the fallback when none comes, goes to the protocol.
    pub(super) fn ask_probe(&mut self, peer: NodeId, max_rate: Bandwidth) {
        let now = self.clock.now();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.probe_out.is_some() {
            return;
        }
        self.probe_serial = self.probe_serial.wrapping_add(1);
        let id = self.probe_serial;
        p.probe_out = Some(bandwidth_probe::Outgoing {
            id,
            at: now,
            max_bps: max_rate.bps_f64(),
        });
        p.probe_in = None;
        self.send_frame(peer, &Frame::ProbeAsk { id });
    }

    /// Sends `peer` the train of probe `id` it asked for (at most one a
    /// [`bandwidth_probe::MIN_SPACING`]).
    pub(super) fn send_train(&mut self, peer: NodeId, id: u32) {
        let now = self.clock.now();
        let Some(p) = self.peers.get_mut(&peer) else {
            return;
        };
        if p.train_sent
            .is_some_and(|t| now.saturating_since(t) < bandwidth_probe::MIN_SPACING)
        {
            return;
        }
        p.train_sent = Some(now);
        for index in 0..bandwidth_probe::TRAIN {
            let frame = Frame::Probe {
                id,
                index,
                count: bandwidth_probe::TRAIN,
                fill: vec![0; bandwidth_probe::FILL],
            };
            self.send_frame(peer, &frame);
        }
    }

    /// The protocol's answer to a bandwidth probe of `peer`: the rate its train arrived at
    /// (`None`: no train came, so QUIC's congestion window over the round trip, what the
    /// connection knows), capped at what the protocol asked for.
    pub(super) fn probe_answered(
        &mut self,
        peer: NodeId,
        probe: bandwidth_probe::Outgoing,
        bps: Option<u64>,
    ) {
        let Some(conn) = self.peers.get(&peer).and_then(|p| p.conns.last()) else {
            return;
        };
        let rtt = conn.conn.rtt();
        let bps = bps.map_or_else(
            || conn.conn.stats().path.cwnd as f64 * 8.0 / rtt.as_secs_f64().max(1e-4),
            |b| b as f64,
        );
        if bps.is_nan() {
            return;
        }
        let metrics = LinkMetrics {
            rtt: Some(rtt),
            bandwidth: Some(Bandwidth::from_bps_f64(bps.min(probe.max_bps))),
            loss: None,
        };
        let now = self.clock.now();
        self.protocol.handle_measurement(now, peer, metrics);
    }

    /// Probes whose report is overdue get the fallback answer.
    pub(super) fn expire_probes(&mut self) {
        let now = self.clock.now();
        let overdue: Vec<(NodeId, bandwidth_probe::Outgoing)> = self
            .peers
            .iter_mut()
            .filter_map(|(id, p)| {
                let late = p
                    .probe_out
                    .is_some_and(|o| now.saturating_since(o.at) >= bandwidth_probe::TIMEOUT);
                late.then(|| p.probe_out.take().map(|o| (*id, o))).flatten()
            })
            .collect();
        for (peer, probe) in overdue {
            self.counters.probes_unanswered += 1;
            self.probe_answered(peer, probe, None);
        }
    }
}
