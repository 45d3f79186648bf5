//! A member's own upload split among its outgoing links.
//!
//! Each outgoing link's pacer (see `pacing`) adapts to its own path, from the round trip and
//! losses its connection sees. A member sending to several peers at once shares one bottleneck
//! among them, its own access link, and each link's congestion control fills the queue there
//! until losses stop it. That queue delays everything else the member sends, above all the
//! acknowledgements of the media it *receives*: on a slow upload (ADSL's 1 Mbit/s), a keyframe
//! sent to two children stood hundreds of milliseconds in the access queue, every parent
//! feeding this member saw its round trip grow by as much, took it for a queue on its own path
//! and cut its rate, and the member received 0.63 to 0.83 of each stream while its own went
//! out whole (`experiments sim-to-real --members 8 --senders 8 --rate 300kbps`).
//!
//! So a member that knows its upload caps each outgoing link's pacer at a share of it: a
//! max-min fair split per flow of most of the upload over what each link sends now, with room
//! to grow (the split of `receive_budget`, applied to the sending side). Together the links
//! then stay under the upload, media waits (and is dropped, least important first) in this
//! member's own pacers, and the access queue stays short for the acknowledgements and control
//! messages behind it.

use super::receive_budget::{self, Sending};

/// The part of the upload the shares split; the rest is headroom for the packets' headers,
/// the acknowledgements of what arrives, control messages and bandwidth probes.
pub(super) const HEADROOM: f64 = 0.85;

/// Splits `upload_bps` among outgoing links sending as `links` say (the same order back).
pub(super) fn shares(upload_bps: f64, links: &[Sending]) -> Vec<f64> {
    receive_budget::shares(upload_bps * HEADROOM, links)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_share_most_of_the_upload_and_a_quiet_link_keeps_room_to_start() {
        // 1 Mbit/s up; two children take a 300 kbit/s stream each; a third link is quiet.
        let links = [
            Sending {
                bps: 300_000.0,
                flows: 1,
            },
            Sending {
                bps: 300_000.0,
                flows: 1,
            },
            Sending { bps: 0.0, flows: 1 },
        ];
        let got = shares(1_000_000.0, &links);
        let total: f64 = got.iter().sum();
        assert!((total - 850_000.0).abs() < 1.0, "{got:?}");
        // Each sender keeps more than it sends now, and the quiet link has room to start.
        assert!(got[0] > 300_000.0 && got[1] > 300_000.0, "{got:?}");
        assert!(got[2] >= 64_000.0, "{got:?}");
        // A link carrying three streams, with too little upload for all: it gets three times
        // the one-stream link's share.
        let links = [
            Sending {
                bps: 900_000.0,
                flows: 3,
            },
            Sending {
                bps: 300_000.0,
                flows: 1,
            },
        ];
        let got = shares(1_000_000.0, &links);
        assert!((got[0] - 3.0 * got[1]).abs() < 1.0, "{got:?}");
    }
}
