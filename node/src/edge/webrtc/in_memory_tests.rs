//! The edge against two WebRTC peers over an in-memory link, without a browser or a socket:
//! str0m clients (full ICE, as a browser) publish and watch through an [`EdgeCore`] (ICE-lite),
//! with time passed in. Offer and answer, ICE and DTLS, frames both ways, the keyframe group a
//! new watcher starts from, and a watcher's keyframe request reaching the publisher.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use overlay_core::NodeId;
use str0m::change::SdpAnswer;
use str0m::format::Codec as C;
use str0m::media::{Direction, KeyframeRequestKind, MediaKind, MediaTime, Mid};
use str0m::net::{Protocol, Receive};
use str0m::{Candidate, Event, Input, Output, Rtc};

use super::{EdgeCore, EdgeCounters, EdgeError, EdgeEvent, SourceKey};

const EDGE: &str = "10.0.0.1:4000";

/// A peer standing in for a browser.
struct Client {
    rtc: Rtc,
    addr: SocketAddr,
    events: Vec<Event>,
    connected: bool,
}

impl Client {
    fn new(addr: &str, now: Instant) -> Self {
        let addr: SocketAddr = addr.parse().unwrap();
        let mut rtc = Rtc::builder()
            .clear_codecs()
            .enable_vp8(true)
            .enable_opus(true, false)
            .build(now);
        rtc.add_local_candidate(Candidate::host(addr, "udp").unwrap());
        Self {
            rtc,
            addr,
            events: Vec::new(),
            connected: false,
        }
    }

    /// An offer with a video and an audio line in `dir`, answered by `answer`; the mids.
    fn offer(
        &mut self,
        dir: Direction,
        answer: impl FnOnce(String) -> Result<String, EdgeError>,
    ) -> Result<(Mid, Mid), EdgeError> {
        let mut api = self.rtc.sdp_api();
        let video = api.add_media(MediaKind::Video, dir, None, None, None);
        let audio = api.add_media(MediaKind::Audio, dir, None, None, None);
        let (offer, pending) = api.apply().unwrap();
        let answer = answer(offer.to_sdp_string())?;
        let answer = SdpAnswer::from_sdp_string(&answer).unwrap();
        self.rtc.sdp_api().accept_answer(pending, answer).unwrap();
        Ok((video, audio))
    }

    /// Drains the peer: its datagrams to the edge, its events kept.
    fn drain(&mut self, edge: &mut EdgeCore, now: Instant) {
        loop {
            match self.rtc.poll_output().unwrap() {
                Output::Timeout(_) => return,
                Output::Transmit(t) => {
                    edge.receive(self.addr, &t.contents, now);
                    edge.poll(now);
                }
                Output::Event(e) => {
                    self.connected |= matches!(e, Event::Connected);
                    self.events.push(e);
                }
            }
        }
    }

    fn frames(&self) -> Vec<Vec<u8>> {
        self.events
            .iter()
            .filter_map(|e| match e {
                Event::MediaData(d) => Some(d.data.to_vec()),
                _ => None,
            })
            .collect()
    }

    fn write(&mut self, mid: Mid, codec: C, at: MediaTime, data: &[u8], now: Instant) {
        let writer = self.rtc.writer(mid).unwrap();
        let pt = writer
            .payload_params()
            .find(|p| p.spec().codec == codec)
            .map(|p| p.pt())
            .unwrap();
        writer.write(pt, now, at, data.to_vec()).unwrap();
    }
}

/// Runs the link for `steps` of 5 ms: the edge's datagrams to the clients they are for, the
/// clients' to the edge, every timer.
fn run(edge: &mut EdgeCore, clients: &mut [&mut Client], now: &mut Instant, steps: usize) {
    let from: SocketAddr = EDGE.parse().unwrap();
    for _ in 0..steps {
        edge.poll(*now);
        while let Some((to, bytes)) = edge.poll_transmit() {
            if let Some(c) = clients.iter_mut().find(|c| c.addr == to) {
                let r = Receive::new(Protocol::Udp, from, to, &bytes).unwrap();
                c.rtc.handle_input(Input::Receive(*now, r)).unwrap();
                c.drain(edge, *now);
            }
        }
        for c in clients.iter_mut() {
            c.drain(edge, *now);
        }
        *now += Duration::from_millis(5);
        edge.timeout(*now);
        for c in clients.iter_mut() {
            c.rtc.handle_input(Input::Timeout(*now)).unwrap();
            c.drain(edge, *now);
        }
    }
}

/// A VP8 frame's first bytes: bit 0 of the first byte is clear on a keyframe.
fn vp8(keyframe: bool, n: u8) -> Vec<u8> {
    let mut f = vec![
        if keyframe { 0x10 } else { 0x11 },
        0x02,
        0x00,
        0x9d,
        0x01,
        0x2a,
    ];
    f.extend(std::iter::repeat_n(n, 1500));
    f
}

#[test]
fn a_publisher_and_a_watcher_meet_through_the_edge_and_keyframe_requests_reach_the_publisher() {
    let mut now = Instant::now();
    let me = NodeId::from_index(1);
    let counters = Arc::new(EdgeCounters::default());
    let mut edge = EdgeCore::new(me, vec![EDGE.parse().unwrap()], counters.clone());

    // Bad input first: a stranger's datagram and an offer that is not SDP.
    edge.receive("10.9.9.9:1".parse().unwrap(), b"\x00\x01junk", now);
    assert_eq!(counters.strays.load(Ordering::Relaxed), 1);
    assert!(matches!(
        edge.open("v=0 nonsense", None, now),
        Err(EdgeError::Offer(_))
    ));

    let mut publisher = Client::new("10.0.0.2:5000", now);
    let mut source = None;
    let (video, audio) = publisher
        .offer(Direction::SendOnly, |offer| {
            let opened = edge.open(&offer, None, now)?;
            source = opened.publishes;
            assert!(opened.answer.contains("a=ice-lite"), "{}", opened.answer);
            Ok(opened.answer)
        })
        .unwrap();
    let source = source.expect("a publishing session names its source");
    assert_eq!(
        source,
        SourceKey {
            member: me,
            publisher: 0
        }
    );
    run(&mut edge, &mut [&mut publisher], &mut now, 200);
    assert!(
        publisher.connected,
        "ICE and DTLS up within a second: {:?} strays {}",
        publisher.events,
        counters.strays.load(Ordering::Relaxed)
    );

    // A keyframe, deltas and audio go out as the member's events.
    let frames = [vp8(true, 1), vp8(false, 2), vp8(false, 3)];
    for (i, f) in frames.iter().enumerate() {
        let at = MediaTime::from_90khz(3000 * i as u64);
        publisher.write(video, C::Vp8, at, f, now);
        publisher.write(
            audio,
            C::Opus,
            MediaTime::from_millis(20 * i as u64),
            b"opus",
            now,
        );
        run(&mut edge, &mut [&mut publisher], &mut now, 7);
    }
    let mut published = Vec::new();
    while let Some(EdgeEvent::Published { publisher, frame }) = edge.poll_event() {
        assert_eq!(publisher, 0);
        published.push(frame);
    }
    let video_frames: Vec<_> = published.iter().filter(|f| !f.codec.is_audio()).collect();
    assert_eq!(video_frames.len(), 3, "{published:?}");
    assert!(video_frames[0].keyframe && !video_frames[1].keyframe);
    assert_eq!(video_frames[2].data.as_ref(), &frames[2][..]);
    assert_eq!(published.iter().filter(|f| f.codec.is_audio()).count(), 3);

    // A watcher starts from the keyframe group, then gets what follows.
    let mut watcher = Client::new("10.0.0.3:5000", now);
    let (watched_video, _) = watcher
        .offer(Direction::RecvOnly, |offer| {
            edge.open(&offer, Some(source), now).map(|o| o.answer)
        })
        .unwrap();
    run(
        &mut edge,
        &mut [&mut publisher, &mut watcher],
        &mut now,
        200,
    );
    assert!(watcher.connected);
    let next = vp8(false, 4);
    publisher.write(video, C::Vp8, MediaTime::from_90khz(9000), &next, now);
    run(&mut edge, &mut [&mut publisher, &mut watcher], &mut now, 20);
    let seen = watcher.frames();
    let videos: Vec<&Vec<u8>> = seen.iter().filter(|f| f.len() > 100).collect();
    assert_eq!(
        videos.len(),
        4,
        "the group of three, then the next frame: {:?}",
        seen.iter()
            .map(|f| (f.len(), f[0], f.last().copied()))
            .collect::<Vec<_>>()
    );
    assert_eq!(videos[0], &frames[0]);
    assert_eq!(videos[3], &next);

    // The watcher's browser asks for a keyframe: the request reaches the publisher (merged to
    // one a second, so after a pause).
    run(
        &mut edge,
        &mut [&mut publisher, &mut watcher],
        &mut now,
        220,
    );
    let before = publisher
        .events
        .iter()
        .filter(|e| matches!(e, Event::KeyframeRequest(_)))
        .count();
    watcher
        .rtc
        .writer(watched_video)
        .unwrap()
        .request_keyframe(None, KeyframeRequestKind::Pli)
        .unwrap();
    watcher.drain(&mut edge, now);
    run(&mut edge, &mut [&mut publisher, &mut watcher], &mut now, 20);
    let after = publisher
        .events
        .iter()
        .filter(|e| matches!(e, Event::KeyframeRequest(_)))
        .count();
    assert!(after > before, "the publisher was asked for a keyframe");
    assert!(counters.frames_out.load(Ordering::Relaxed) >= 4);
}

/// The edge's leg to one client, carrying `bps` with at most `max_delay` of queue (the rest
/// is lost), as a slow access link would.
struct ShapedLeg {
    bps: u64,
    max_delay: Duration,
    free_at: Instant,
    queue: std::collections::VecDeque<(Instant, Vec<u8>)>,
}

impl ShapedLeg {
    fn send(&mut self, bytes: Vec<u8>, now: Instant) {
        let start = self.free_at.max(now);
        let done =
            start + Duration::from_secs_f64((bytes.len() as f64 + 28.0) * 8.0 / self.bps as f64);
        if done.saturating_duration_since(now) > self.max_delay {
            return;
        }
        self.free_at = done;
        self.queue.push_back((done, bytes));
    }
}

/// A VP8 frame of `size` bytes whose last byte says its layer.
fn layered_vp8(keyframe: bool, layer: u8, size: usize) -> Vec<u8> {
    let mut f = vp8(keyframe, 0x55);
    f.resize(size, 0x55);
    f.push(layer);
    f
}

#[test]
fn a_watcher_whose_leg_narrows_gets_the_base_layer_then_every_layer_again() {
    let mut now = Instant::now();
    let me = NodeId::from_index(1);
    let counters = Arc::new(EdgeCounters::default());
    let mut edge = EdgeCore::new(me, vec![EDGE.parse().unwrap()], counters.clone());
    // Another member's source, forwarded here: 25 frames a second in two temporal layers
    // (base 1 500 bytes, upper 2 500, every other upper frame a layer sync), a keyframe every
    // two seconds: about 160 kbit/s of base and 400 kbit/s in all.
    let source = SourceKey {
        member: NodeId::from_index(2),
        publisher: 0,
    };
    let mut watcher = Client::new("10.0.0.3:5000", now);
    watcher
        .offer(Direction::RecvOnly, |offer| {
            edge.open(&offer, Some(source), now).map(|o| o.answer)
        })
        .unwrap();
    let mut leg = ShapedLeg {
        bps: 2_000_000,
        max_delay: Duration::from_millis(300),
        free_at: now,
        queue: Default::default(),
    };
    let from: SocketAddr = EDGE.parse().unwrap();
    let start = now;
    let mut sent = 0u64;
    // (seconds since start, layer) of each video frame the watcher got.
    let mut got: Vec<(f64, u8)> = Vec::new();
    let mut seen_events = 0;
    let mut phase = |edge: &mut EdgeCore,
                     watcher: &mut Client,
                     leg: &mut ShapedLeg,
                     now: &mut Instant,
                     until: f64| {
        while now.saturating_duration_since(start).as_secs_f64() < until {
            let t = now.saturating_duration_since(start);
            // A frame every 40 ms.
            if t >= Duration::from_millis(40 * sent) {
                let layer = (sent % 2) as u8;
                let frame = media::Frame {
                    codec: media::Codec::Vp8,
                    keyframe: sent.is_multiple_of(50),
                    timestamp_us: 40_000 * sent,
                    data: layered_vp8(
                        sent.is_multiple_of(50),
                        layer,
                        if layer == 0 { 1500 } else { 2500 },
                    )
                    .into(),
                    layer,
                    layer_sync: layer == 1 && sent % 4 == 1,
                    encoding: 0,
                };
                edge.forward(source, &frame, *now);
                sent += 1;
            }
            edge.poll(*now);
            while let Some((to, bytes)) = edge.poll_transmit() {
                if to == watcher.addr {
                    leg.send(bytes, *now);
                }
            }
            while leg.queue.front().is_some_and(|(at, _)| *at <= *now) {
                let (_, bytes) = leg.queue.pop_front().unwrap();
                let r = Receive::new(Protocol::Udp, from, watcher.addr, &bytes).unwrap();
                watcher.rtc.handle_input(Input::Receive(*now, r)).unwrap();
                watcher.drain(edge, *now);
            }
            watcher.drain(edge, *now);
            for e in &watcher.events[seen_events..] {
                if let Event::MediaData(d) = e
                    && d.data.len() > 1000
                {
                    got.push((t.as_secs_f64(), *d.data.last().unwrap()));
                }
            }
            seen_events = watcher.events.len();
            *now += Duration::from_millis(5);
            edge.timeout(*now);
            watcher.rtc.handle_input(Input::Timeout(*now)).unwrap();
            watcher.drain(edge, *now);
        }
    };
    phase(&mut edge, &mut watcher, &mut leg, &mut now, 10.0);
    assert!(watcher.connected);
    leg.bps = 300_000;
    phase(&mut edge, &mut watcher, &mut leg, &mut now, 25.0);
    let on_base = counters.watchers_on_base.load(Ordering::Relaxed);
    let withheld = counters.enhancement_frames_withheld.load(Ordering::Relaxed);
    leg.bps = 2_000_000;
    phase(&mut edge, &mut watcher, &mut leg, &mut now, 45.0);
    let per_second = |from: f64, to: f64, layer: u8| {
        got.iter()
            .filter(|&&(t, l)| t >= from && t < to && l == layer)
            .count() as f64
            / (to - from)
    };
    let phases = [(5.0, 10.0), (20.0, 25.0), (40.0, 45.0)];
    let rates: Vec<(f64, f64)> = phases
        .iter()
        .map(|&(a, b)| (per_second(a, b, 0), per_second(a, b, 1)))
        .collect();
    let back = got
        .iter()
        .find(|&&(t, l)| t >= 25.0 && l == 1)
        .map_or(f64::NAN, |&(t, _)| t - 25.0);
    println!(
        "frames/s received (base, upper): wide {:?}, narrowed to 300 kbit/s {:?}, wide again \
         {:?}; {withheld} upper frames withheld while narrow; the upper layer back {back:.1} s \
         after the leg widened",
        rates[0], rates[1], rates[2]
    );
    assert!(
        rates[0].0 >= 12.0 && rates[0].1 >= 12.0,
        "wide: every layer"
    );
    assert_eq!(on_base, 1, "narrow: the watcher is on the base layer");
    assert!(
        rates[1].0 >= 11.0 && rates[1].1 <= 1.0,
        "narrow: the base whole, the upper layer withheld"
    );
    assert!(
        rates[2].0 >= 12.0 && rates[2].1 >= 12.0,
        "wide again: every layer"
    );
}

/// A VP8 keyframe (or delta) announcing a `w`×`h` picture, `len` bytes, whose last byte is
/// `tag`.
fn sized_vp8(keyframe: bool, w: u16, h: u16, len: usize, tag: u8) -> Vec<u8> {
    // The first six bytes of `vp8`, then the size where a keyframe keeps it.
    let mut f = vp8(keyframe, 0);
    f.truncate(6);
    f.extend(w.to_le_bytes());
    f.extend(h.to_le_bytes());
    f.resize(len - 1, 0x33);
    f.push(tag);
    f
}

#[test]
fn a_simulcast_publisher_is_watched_in_the_encoding_that_arrives_and_fits() {
    use str0m::media::{Rid, Simulcast, SimulcastLayer};
    const LOW: u8 = 0xa0;
    const HIGH: u8 = 0xb0;
    let mut now = Instant::now();
    let me = NodeId::from_index(1);
    let counters = Arc::new(EdgeCounters::default());
    let mut edge = EdgeCore::new(me, vec![EDGE.parse().unwrap()], counters.clone());

    // A publisher sending two encodings, as a browser with two `sendEncodings` does: the
    // large one listed first (the edge ranks them by picture size, not by name or order).
    let mut publisher = Client::new("10.0.0.2:5000", now);
    let simulcast = Simulcast {
        send: vec![SimulcastLayer::new("h"), SimulcastLayer::new("l")],
        recv: vec![],
    };
    let mut api = publisher.rtc.sdp_api();
    let video = api.add_media(
        MediaKind::Video,
        Direction::SendOnly,
        None,
        None,
        Some(simulcast),
    );
    let (offer, pending) = api.apply().unwrap();
    let opened = edge.open(&offer.to_sdp_string(), None, now).unwrap();
    assert!(
        opened.answer.contains("a=simulcast:recv"),
        "{}",
        opened.answer
    );
    let source = opened.publishes.unwrap();
    let answer = SdpAnswer::from_sdp_string(&opened.answer).unwrap();
    publisher
        .rtc
        .sdp_api()
        .accept_answer(pending, answer)
        .unwrap();
    run(&mut edge, &mut [&mut publisher], &mut now, 200);
    assert!(publisher.connected);

    let mut watcher = Client::new("10.0.0.3:5000", now);
    watcher
        .offer(Direction::RecvOnly, |offer| {
            edge.open(&offer, Some(source), now).map(|o| o.answer)
        })
        .unwrap();

    // 25 frames a second in each encoding: the small one 400 bytes (80 kbit/s), the large
    // 1 500 (300 kbit/s, within what str0m's estimator finds on this link), its media clock
    // 10 s ahead of the small one's. A keyframe of an
    // encoding when its rid is asked for one.
    let (low_rid, high_rid) = (Rid::from("l"), Rid::from("h"));
    let start = now;
    let mut frame_no = 0u64;
    let mut keyframe_due = [true, true];
    let mut seen_requests = 0;
    // (seconds since start, tag, media time in 90 kHz ticks) of each frame the watcher got.
    let mut got: Vec<(f64, u8, u64)> = Vec::new();
    let mut seen_events = 0;
    let mut published = [0usize; 2];
    let mut step = |edge: &mut EdgeCore,
                    publisher: &mut Client,
                    watcher: &mut Client,
                    now: &mut Instant,
                    until: f64,
                    high_off: &[(f64, f64)]| {
        while now.saturating_duration_since(start).as_secs_f64() < until {
            let t = now.saturating_duration_since(start);
            if t >= Duration::from_millis(40 * frame_no) {
                for (i, (rid, tag, w, len, offset)) in [
                    (low_rid, LOW, 160u16, 400usize, 0u64),
                    (high_rid, HIGH, 640, 1500, 900_000),
                ]
                .into_iter()
                .enumerate()
                {
                    let secs = t.as_secs_f64();
                    if tag == HIGH && high_off.iter().any(|&(a, b)| secs >= a && secs < b) {
                        continue;
                    }
                    let keyframe = std::mem::take(&mut keyframe_due[i]);
                    let data = sized_vp8(keyframe, w, w * 3 / 4, len, tag);
                    let writer = publisher.rtc.writer(video).unwrap();
                    let pt = writer.payload_params().next().unwrap().pt();
                    let at = MediaTime::from_90khz(offset + 3600 * frame_no);
                    writer.rid(rid).write(pt, *now, at, data).unwrap();
                }
                frame_no += 1;
            }
            run(edge, &mut [&mut *publisher, &mut *watcher], now, 1);
            for e in &publisher.events[seen_requests..] {
                if let Event::KeyframeRequest(r) = e {
                    if r.rid == Some(low_rid) {
                        keyframe_due[0] = true;
                    }
                    if r.rid == Some(high_rid) {
                        keyframe_due[1] = true;
                    }
                }
            }
            seen_requests = publisher.events.len();
            for e in &watcher.events[seen_events..] {
                if let Event::MediaData(d) = e {
                    let tag = *d.data.last().unwrap();
                    got.push((t.as_secs_f64(), tag, d.time.as_micros() * 9 / 100));
                }
            }
            seen_events = watcher.events.len();
            while let Some(event) = edge.poll_event() {
                if let EdgeEvent::Published { frame, .. } = event {
                    published[usize::from(frame.encoding)] += 1;
                }
            }
        }
    };
    // The large one pauses from 10 to 14 s (starved: the watcher notices it missing), and
    // stops for good at 30 s, the member's assembler saying it broke (as where a link above
    // sheds it): then the watcher leaves it at once.
    let high_off = [(10.0, 14.0), (30.0, f64::INFINITY)];
    let mut run_to = |until: f64, now: &mut Instant, edge: &mut EdgeCore| {
        step(edge, &mut publisher, &mut watcher, now, until, &high_off);
    };
    run_to(10.0, &mut now, &mut edge);
    let on_lower_while_high_came = counters.watchers_on_lower_encoding.load(Ordering::Relaxed);
    run_to(14.0, &mut now, &mut edge);
    let on_lower_when_starved = counters.watchers_on_lower_encoding.load(Ordering::Relaxed);
    // Back after the pause: the watcher returns to it at a keyframe asked once the leg has
    // shown room for three seconds.
    run_to(30.0, &mut now, &mut edge);
    edge.encoding_broken(source, 1, now);
    run_to(32.0, &mut now, &mut edge);
    assert!(watcher.connected);

    let tags_in = |from: f64, to: f64| -> (usize, usize) {
        let n = |tag| {
            got.iter()
                .filter(|&&(t, g, _)| t >= from && t < to && g == tag)
                .count()
        };
        (n(LOW), n(HIGH))
    };
    // Seconds from `at` to the first frame tagged `tag` after it.
    let first_after = |at: f64, tag: u8| {
        got.iter()
            .find(|&&(t, g, _)| t >= at && g == tag)
            .map_or(f64::NAN, |&(t, _, _)| t - at)
    };
    let first_high = first_after(0.0, HIGH);
    let (starved, broken) = (first_after(10.0, LOW), first_after(30.0, LOW));
    let again = first_after(14.0, HIGH);
    println!(
        "published (small, large) {published:?}; the watcher got (small, large) frames: \
         0-2 s {:?}, 8-10 s {:?}, 11-14 s {:?}; the large one from {first_high:.2} s; the small \
         one again {starved:.2} s after the large one stopped; the large one {again:.2} s after it \
         came back; the small one {broken:.2} s after the large one broke",
        tags_in(0.0, 2.0),
        tags_in(8.0, 10.0),
        tags_in(11.0, 14.0)
    );
    assert!(published[0] >= 240 && published[1] >= 240, "{published:?}");
    let (low, high) = tags_in(0.0, 2.0);
    assert!(low >= 35 && high == 0, "it starts on the small encoding");
    let (low, high) = tags_in(8.0, 10.0);
    assert!(
        low == 0 && high >= 45,
        "with room on its leg it moves to the large one"
    );
    assert!((3.0..8.0).contains(&first_high), "{first_high}");
    assert_eq!(on_lower_while_high_came, 0);
    let (low, high) = tags_in(11.0, 14.0);
    assert!(
        high == 0 && low >= 70,
        "the large one starved: the small one"
    );
    assert!(starved < 0.5, "{starved}");
    assert_eq!(on_lower_when_starved, 1);
    let (low, high) = tags_in(28.5, 30.0);
    assert!(
        low == 0 && high >= 30,
        "the large one again after the pause"
    );
    assert!(broken < 0.3, "{broken}");
    let (low, high) = tags_in(30.5, 32.0);
    assert!(high == 0 && low >= 30, "the small one once the large broke");
    // One timeline for the browser: media times never go back, and the switches leave no jump
    // (the large encoding's clock is 10 s ahead).
    for pair in got.windows(2) {
        let (a, b) = (pair[0].2, pair[1].2);
        assert!(b >= a && b - a < 90_000, "a jump from {a} to {b}");
    }
}
