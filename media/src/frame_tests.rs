use super::*;
use proptest::prelude::*;

fn video(n: u64, keyframe: bool, len: usize) -> Frame {
    Frame {
        codec: Codec::Vp8,
        keyframe,
        timestamp_us: n * 33_333,
        data: Bytes::from(vec![n as u8; len]),
        layer: 0,
        layer_sync: false,
        encoding: 0,
    }
}

#[test]
fn fragment_counts_a_sender_inflates_are_held_to_the_pending_bound() {
    // Frames of 65 535 fragments each (2 MiB of slots) with one byte sent of each: the
    // slots count against PENDING_BYTES, so at most one waits.
    let mut assembler = FrameAssembler::new();
    for n in 0..16 {
        assembler.push(MediaPacket {
            stream: track_stream(0, true),
            seq: n,
            frame: n,
            timestamp_us: n,
            priority: Priority::Keyframe,
            fragment: 0,
            fragments: u16::MAX,
            payload: Bytes::from_static(&[1]),
        });
    }
    assert!(
        assembler.counts().incomplete >= 14,
        "{:?}",
        assembler.counts()
    );
}

#[test]
fn frames_cross_as_packets_in_any_order_and_come_out_whole_in_order() {
    let mut slicer = FrameSlicer::new(1100);
    let frames = [
        video(0, true, 5000),
        video(1, false, 1200),
        video(2, false, 10),
    ];
    let mut packets: Vec<MediaPacket> = frames.iter().flat_map(|f| slicer.slice(3, f)).collect();
    assert_eq!(packets.len(), 5 + 2 + 1);
    assert!(packets.iter().all(|p| p.payload.len() <= 1100));
    assert_eq!(packets[0].priority, Priority::Keyframe);
    assert_eq!(packets[6].priority, Priority::Base);
    packets.swap(0, 4);
    packets.swap(5, 6);
    let mut assembler = FrameAssembler::new();
    let out: Vec<Frame> = packets
        .into_iter()
        .flat_map(|p| assembler.push(p).frames)
        .collect();
    assert_eq!(out, frames);
}

/// Frame `n` of a VP8 `L1T2` stream: even frames the base layer, odd ones layer 1, every
/// other one of which builds on the base alone (Debian's Chromium, in the three-browser
/// test, marked about half of its upper-layer frames so).
fn layered(n: u64) -> Frame {
    Frame {
        layer: (n % 2) as u8,
        layer_sync: n % 4 == 1,
        ..video(n, n == 0, 1500)
    }
}

/// Which of `frames` play when the packets of those in `lost` never arrive, and whether a
/// keyframe was asked for.
fn play_losing(frames: &[Frame], lost: &[u64]) -> (Vec<u64>, bool, AssemblyCounts) {
    let mut slicer = FrameSlicer::new(1100);
    let mut assembler = FrameAssembler::new();
    let (mut played, mut needed) = (Vec::new(), false);
    for (n, frame) in frames.iter().enumerate() {
        let packets = slicer.slice(0, frame);
        if lost.contains(&(n as u64)) {
            continue;
        }
        for p in packets {
            let out = assembler.push(p);
            needed |= out.keyframe_needed;
            played.extend(out.frames.iter().map(|f| u64::from(f.data[0])));
        }
    }
    (played, needed, assembler.counts())
}

#[test]
fn temporal_layers_are_marked_and_carried() {
    let mut slicer = FrameSlicer::new(1100);
    let priorities: Vec<Priority> = (0..4)
        .map(|n| slicer.slice(0, &layered(n))[0].priority)
        .collect();
    use Priority::{Base, Enhancement, Keyframe};
    assert_eq!(priorities, [Keyframe, Enhancement(1), Base, Enhancement(1)]);
    let frames: Vec<Frame> = (0..8).map(layered).collect();
    let (played, needed, _) = play_losing(&frames, &[]);
    assert_eq!(played, (0..8).collect::<Vec<_>>());
    assert!(!needed);
    // What comes out is what went in, layer and sync included.
    let mut assembler = FrameAssembler::new();
    let mut slicer = FrameSlicer::new(1100);
    let out: Vec<Frame> = frames
        .iter()
        .flat_map(|f| slicer.slice(0, f))
        .flat_map(|p| assembler.push(p).frames)
        .collect();
    assert_eq!(out, frames);
}

#[test]
fn two_simulcast_encodings_travel_apart_and_the_higher_is_shed_first() {
    // Every stream of every publisher names its publisher and encoding, and no two share a
    // number; the synthetic source's stream and beyond belong to no publisher.
    let mut seen = std::collections::BTreeSet::new();
    for p in 0..MAX_PUBLISHERS {
        assert_eq!(stream_place(track_stream(p, true)), Some((p, 0)));
        for e in 0..MAX_ENCODINGS {
            assert_eq!(stream_place(encoding_stream(p, e)), Some((p, e)));
            assert!(seen.insert(encoding_stream(p, e)));
        }
        assert!(seen.insert(track_stream(p, true)));
    }
    assert_eq!(stream_place(u32::from(MAX_PUBLISHERS) * 3), None);
    assert_eq!(stream_place(1 << 16), None);
    // The higher encoding's keyframes and base layer rank below the lower's upper layer,
    // its own upper layer below that.
    let high = |n: u64| Frame {
        encoding: 1,
        ..layered(n)
    };
    let mut slicer = FrameSlicer::new(1100);
    let priorities: Vec<Priority> = (0..4)
        .map(|n| slicer.slice(2, &high(n))[0].priority)
        .collect();
    use Priority::Enhancement;
    assert_eq!(
        priorities,
        [
            Enhancement(2),
            Enhancement(3),
            Enhancement(2),
            Enhancement(3)
        ]
    );
    assert!(Enhancement(1).class() < Enhancement(2).class());
    // Both encodings of one publisher, interleaved frame by frame, come out whole and
    // marked; a frame of the higher lost stops only the higher, and asks for its keyframe.
    let mut frames = Vec::new();
    for n in 0..8 {
        frames.push(layered(n));
        frames.push(high(n));
    }
    let mut slicer = FrameSlicer::new(1100);
    let mut assembler = FrameAssembler::new();
    let mut out = Vec::new();
    let mut needed = Vec::new();
    let mut run = 0;
    for (i, frame) in frames.iter().enumerate() {
        let packets = slicer.slice(2, frame);
        assert!(
            packets
                .iter()
                .all(|p| p.stream == encoding_stream(2, frame.encoding))
        );
        // The higher encoding's frame 2 (its base layer) is lost.
        if i == 5 {
            continue;
        }
        for p in packets {
            let got = assembler.push(p);
            assert_eq!(got.publisher, 2);
            if got.keyframe_needed {
                needed.push(got.encoding);
                run = got.whole_while_waiting;
            }
            out.extend(got.frames);
        }
    }
    let lower: Vec<&Frame> = out.iter().filter(|f| f.encoding == 0).collect();
    assert_eq!(lower.len(), 8, "the lower encoding plays on");
    let higher: Vec<u64> = out
        .iter()
        .filter(|f| f.encoding == 1)
        .map(|f| f.timestamp_us / 33_333)
        .collect();
    assert_eq!(higher, [0, 1], "the higher waits for its keyframe");
    assert!(!needed.is_empty() && needed.iter().all(|&e| e == 1));
    // Frames 3 to 7 of the higher came whole while it waited: its link carries it again.
    assert_eq!(run, 5);
}

#[test]
fn a_lost_enhancement_frame_holds_its_layer_until_a_sync_and_the_base_plays_on() {
    let frames: Vec<Frame> = (0..12).map(layered).collect();
    // Frame 3 (layer 1) lost: layer 1 waits until frame 5 (a sync), frame 4 (base) plays;
    // no keyframe is asked for.
    let (played, needed, counts) = play_losing(&frames, &[3]);
    assert_eq!(played, [0, 1, 2, 4, 5, 6, 7, 8, 9, 10, 11]);
    assert!(!needed);
    assert_eq!(counts.awaiting_layer_sync, 0);
    // Frame 5 (a sync) lost: frame 7 (layer 1, not a sync) waits; frame 9 (a sync) plays.
    let (played, needed, counts) = play_losing(&frames, &[5]);
    assert_eq!(played, [0, 1, 2, 3, 4, 6, 8, 9, 10, 11]);
    assert!(!needed);
    assert_eq!(counts.awaiting_layer_sync, 1);
    // Every layer-1 frame lost (a link that sheds the layer): the base plays at half rate.
    let odd: Vec<u64> = (1..12).step_by(2).collect();
    let (played, needed, _) = play_losing(&frames, &odd);
    assert_eq!(played, [0, 2, 4, 6, 8, 10]);
    assert!(!needed);
}

#[test]
fn a_lost_base_frame_stops_every_layer_until_a_keyframe() {
    let mut frames: Vec<Frame> = (0..12).map(layered).collect();
    frames[8].keyframe = true;
    // Frame 4 (base) lost: frame 5 builds on it and waits, as does all until the keyframe.
    let (played, needed, counts) = play_losing(&frames, &[4]);
    assert_eq!(played, [0, 1, 2, 3, 8, 9, 10, 11]);
    assert!(needed);
    assert_eq!(counts.awaiting_keyframe, 3);
    // Lost together with what follows it up to the next base frame: the same.
    let (played, _, _) = play_losing(&frames, &[4, 5]);
    assert_eq!(played, [0, 1, 2, 3, 8, 9, 10, 11]);
}

#[test]
fn after_a_lost_video_frame_only_a_keyframe_plays_again_and_audio_never_waits() {
    let mut slicer = FrameSlicer::new(1100);
    let mut assembler = FrameAssembler::new();
    let mut played = Vec::new();
    let mut needed = false;
    let audio = |n: u64| Frame {
        codec: Codec::Opus,
        keyframe: true,
        timestamp_us: n * 20_000,
        data: Bytes::from_static(b"opus"),
        layer: 0,
        layer_sync: false,
        encoding: 0,
    };
    for (n, frame) in [
        video(0, true, 3000),
        video(1, false, 3000),
        video(2, false, 3000),
        video(3, false, 3000),
        video(4, true, 3000),
    ]
    .into_iter()
    .enumerate()
    {
        for (i, p) in slicer.slice(0, &frame).into_iter().enumerate() {
            // Frame 1 loses its second packet.
            if n == 1 && i == 1 {
                continue;
            }
            let got = assembler.push(p);
            needed |= got.keyframe_needed;
            played.extend(got.frames.into_iter().map(|f| f.data[0]));
        }
        for p in slicer.slice(0, &audio(n as u64)) {
            let got = assembler.push(p);
            assert_eq!(got.frames.len(), 1, "audio plays at once");
        }
    }
    assert_eq!(played, vec![0, 4]);
    assert!(needed);
    let counts = assembler.counts();
    assert_eq!(counts.incomplete, 1);
    assert_eq!(counts.awaiting_keyframe, 2);
}

proptest! {
    /// Whatever packets arrive, the assembler never panics, keeps its bounds, and hands on
    /// frames of each stream in increasing order.
    #[test]
    fn any_packets_are_taken_without_panic(
        packets in proptest::collection::vec(
            (0u32..40, 0u64..40, 0u16..6, 0u16..6, proptest::collection::vec(any::<u8>(), 0..40)),
            0..300,
        )
    ) {
        let mut assembler = FrameAssembler::new();
        let mut last: BTreeMap<u32, u64> = BTreeMap::new();
        for (stream, frame, fragment, fragments, payload) in packets {
            let got = assembler.push(MediaPacket {
                stream,
                seq: 0,
                frame,
                timestamp_us: frame,
                priority: Priority::Base,
                fragment,
                fragments,
                payload: Bytes::from(payload),
            });
            for f in got.frames {
                let s = track_stream(got.publisher, f.codec.is_audio());
                prop_assert!(last.get(&s).is_none_or(|&l| f.timestamp_us > l));
                last.insert(s, f.timestamp_us);
            }
            for s in assembler.streams.values() {
                prop_assert!(s.pending.len() <= PENDING_FRAMES);
            }
        }
    }
}
