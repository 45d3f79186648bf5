//! A synthetic constant-bit-rate video source with a realistic frame pattern.
//!
//! Frames come at a fixed rate; every `gop` frames a keyframe (several times a delta frame's
//! size) starts a group; delta frames are split into a base layer and enhancement layers. Sizes
//! are chosen so the long-run rate is the configured one. Frames are cut into packets of at most
//! `mtu` bytes of payload.

use std::time::Duration;

use bytes::Bytes;
use overlay_core::{Bandwidth, Time};

use crate::packet::{MediaPacket, Priority};

/// Settings of a [`SyntheticSource`].
#[derive(Clone, Debug, PartialEq)]
pub struct SourceConfig {
    /// Long-run bit rate.
    pub rate: Bandwidth,
    /// Frames per second.
    pub fps: u32,
    /// Frames per group (a keyframe every `gop` frames; 60 at 30 fps: every two seconds).
    pub gop: u32,
    /// Keyframe size over a delta frame's.
    pub keyframe_factor: f64,
    /// Share of a delta frame in each layer: base first, then enhancements (sums to 1).
    pub layers: Vec<f64>,
    /// Most payload bytes per packet.
    pub mtu: usize,
}

impl Default for SourceConfig {
    fn default() -> Self {
        Self {
            rate: Bandwidth::from_kbps(1200),
            fps: 30,
            gop: 60,
            keyframe_factor: 4.0,
            layers: vec![0.5, 0.25, 0.25],
            mtu: 1100,
        }
    }
}

impl SourceConfig {
    /// The share of the stream's payload in keyframes and the base layer of delta frames: what
    /// a link must carry for a receiver to see every frame, at the lowest quality.
    pub fn keyframe_and_base_share(&self) -> f64 {
        let k = self.keyframe_factor.max(0.0);
        let deltas = f64::from(self.gop.max(1)) - 1.0;
        let base = self.layers.first().copied().unwrap_or(1.0);
        (k + deltas * base) / (k + deltas).max(f64::MIN_POSITIVE)
    }
}

/// A source emitting packets as its frames fall due.
#[derive(Clone, Debug)]
pub struct SyntheticSource {
    config: SourceConfig,
    stream: u32,
    start: Time,
    next_frame: u64,
    next_seq: u64,
    /// One shared buffer sliced for payloads (the content is irrelevant to the overlay).
    zeros: Bytes,
}

impl SyntheticSource {
    /// A source of stream `stream` whose first frame is due at `start`.
    pub fn new(config: SourceConfig, stream: u32, start: Time) -> Self {
        let zeros = Bytes::from(vec![0u8; config.mtu.max(1)]);
        Self {
            config,
            stream,
            start,
            next_frame: 0,
            next_seq: 0,
            zeros,
        }
    }

    /// When the next frame is due (whole microseconds, so frame times never drift).
    pub fn next_due(&self) -> Time {
        let fps = u64::from(self.config.fps.max(1));
        self.start + Duration::from_micros(self.next_frame * 1_000_000 / fps)
    }

    /// Bytes of a delta frame (keyframes are `keyframe_factor` times larger).
    fn delta_bytes(&self) -> f64 {
        let per_frame = self.config.rate.bps_f64() / 8.0 / f64::from(self.config.fps.max(1));
        let g = f64::from(self.config.gop.max(1));
        per_frame * g / (self.config.keyframe_factor + g - 1.0)
    }

    /// Every packet of the frames due by `now`, in order.
    pub fn poll(&mut self, now: Time) -> Vec<MediaPacket> {
        let mut out = Vec::new();
        while self.next_due() <= now {
            let frame = self.next_frame;
            let timestamp_us = self.next_due().as_micros();
            let delta = self.delta_bytes();
            if frame.is_multiple_of(u64::from(self.config.gop.max(1))) {
                self.cut(
                    frame,
                    timestamp_us,
                    Priority::Keyframe,
                    delta * self.config.keyframe_factor,
                    &mut out,
                );
            } else {
                let layers = self.config.layers.clone();
                for (i, share) in layers.iter().enumerate() {
                    let priority = if i == 0 {
                        Priority::Base
                    } else {
                        Priority::Enhancement(i as u8)
                    };
                    self.cut(frame, timestamp_us, priority, delta * share, &mut out);
                }
            }
            self.next_frame += 1;
        }
        out
    }

    fn cut(
        &mut self,
        frame: u64,
        timestamp_us: u64,
        priority: Priority,
        bytes: f64,
        out: &mut Vec<MediaPacket>,
    ) {
        let total = bytes.round().max(1.0) as usize;
        let mtu = self.config.mtu.max(1);
        let fragments = total.div_ceil(mtu).clamp(1, usize::from(u16::MAX));
        for fragment in 0..fragments {
            let len = if fragment + 1 == fragments {
                total - mtu * (fragments - 1)
            } else {
                mtu
            };
            out.push(MediaPacket {
                stream: self.stream,
                seq: self.next_seq,
                frame,
                timestamp_us,
                priority,
                fragment: fragment as u16,
                fragments: fragments as u16,
                payload: self.zeros.slice(..len.min(self.zeros.len())),
            });
            self.next_seq += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_run_rate_matches_and_frames_follow_the_pattern() {
        let config = SourceConfig {
            rate: Bandwidth::from_kbps(2400),
            ..SourceConfig::default()
        };
        let mut source = SyntheticSource::new(config, 9, Time::ZERO);
        let packets = source.poll(Time::from_secs(10) - Duration::from_micros(1));
        let bytes: usize = packets.iter().map(|p| p.payload.len()).sum();
        let rate = bytes as f64 * 8.0 / 10.0;
        assert!((rate - 2.4e6).abs() / 2.4e6 < 0.02, "{rate}");
        // 300 frames; keyframes at 0, 60, ...: five of them.
        let keyframes: std::collections::BTreeSet<u64> = packets
            .iter()
            .filter(|p| p.priority == Priority::Keyframe)
            .map(|p| p.frame)
            .collect();
        assert_eq!(
            keyframes.into_iter().collect::<Vec<_>>(),
            vec![0, 60, 120, 180, 240]
        );
        assert!(
            packets
                .iter()
                .all(|p| p.payload.len() <= 1100 && p.stream == 9)
        );
        assert!(packets.windows(2).all(|w| w[1].seq == w[0].seq + 1));
        assert!(
            packets
                .iter()
                .any(|p| p.priority == Priority::Enhancement(2))
        );
        assert_eq!(source.next_due(), Time::from_secs(10));
    }

    #[test]
    fn the_keyframe_and_base_share_is_what_the_source_sends_in_them() {
        for layers in [vec![0.5, 0.25, 0.25], vec![0.25, 0.35, 0.4], vec![1.0]] {
            let config = SourceConfig {
                rate: Bandwidth::from_kbps(1200),
                layers,
                ..SourceConfig::default()
            };
            let share = config.keyframe_and_base_share();
            let mut source = SyntheticSource::new(config, 0, Time::ZERO);
            // Ten whole groups of pictures.
            let packets = source.poll(Time::from_secs(20) - Duration::from_micros(1));
            let bytes = |keep: fn(Priority) -> bool| -> f64 {
                packets
                    .iter()
                    .filter(|p| keep(p.priority))
                    .map(|p| p.payload.len() as f64)
                    .sum()
            };
            let counted =
                bytes(|p| matches!(p, Priority::Keyframe | Priority::Base)) / bytes(|_| true);
            assert!((counted - share).abs() < 0.005, "{counted} {share}");
        }
    }
}
