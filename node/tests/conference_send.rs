//! Members without a browser taking part with files from ffmpeg (`--send ts:`, `ivf:`, `ogg:`),
//! other members recording them for ffprobe (`--record`) or showing them to a browser.
//!
//! Needs Debian's `ffmpeg` (else SKIPPED, unless `ESM_REQUIRE_FFMPEG` is set) and, for the
//! browser, `chromium` (likewise with `ESM_REQUIRE_CHROMIUM`); `.ci/run` installs both.

mod conference_common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use node::demo::process::MemberProcess;

use conference_common::chromium::Chromium;
use conference_common::*;

/// Whether ffmpeg is here (SKIPPED if not, unless `ESM_REQUIRE_FFMPEG` is set).
fn ffmpeg_here() -> bool {
    let here = std::process::Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    here_or_skipped(here, "ESM_REQUIRE_FFMPEG", "ffmpeg")
}

/// `seconds` of a 320x240 test pattern at 25 fps and a 440 Hz tone, as a user would send them
/// to browsers: H.264 in 4:2:0 (libx264's default High profile) without B-frames, a keyframe
/// every second, and Opus, in MPEG-TS.
fn make_ts(path: &Path, seconds: u32) {
    let made = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-y"])
        .args(["-f", "lavfi", "-i", "testsrc=size=320x240:rate=25"])
        .args(["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"])
        .args(["-t", &seconds.to_string()])
        .args([
            "-c:v", "libx264", "-pix_fmt", "yuv420p", "-bf", "0", "-g", "25",
        ])
        .args([
            "-b:v", "300k", "-c:a", "libopus", "-b:a", "48k", "-f", "mpegts",
        ])
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg made the MPEG-TS file");
}

/// ffprobe's name of the profile of the first video stream in `path`.
fn video_profile(path: &Path) -> String {
    let out = std::process::Command::new("ffprobe")
        .args(["-v", "error", "-select_streams", "v:0"])
        .args(["-show_entries", "stream=profile", "-of", "csv=p=0"])
        .arg(path)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// What b recorded of a's sent files: (video codec, frames), (sound codec, packets), and the
/// two files; `None` where ffprobe is missing.
type Recorded = ((String, u64), (String, u64), PathBuf, PathBuf);

/// Member b records (`--record`), member a joins it sending `sends` (`--send` values); after
/// 9 s, b's files of a's sent source (video with `video_ext`, and Opus), which must exist, as
/// ffprobe counts them. The members are returned to be dropped by the caller.
async fn send_and_record(
    dir: &Path,
    sends: &[String],
    video_ext: &str,
) -> (MemberProcess, MemberProcess, Option<Recorded>) {
    let recordings = dir.join("recordings");
    let mut receiver = spec(dir, 1, vec![]);
    receiver.flags = vec!["--record".into(), recordings.display().to_string()];
    let b = MemberProcess::start(&receiver).await.unwrap();
    let mut sender = spec(dir, 0, vec![b.quic]);
    sender.flags = sends
        .iter()
        .flat_map(|s| ["--send".to_owned(), s.clone()])
        .collect();
    let t0 = Instant::now();
    let a = MemberProcess::start(&sender).await.unwrap();
    let recorded_video = recordings.join(format!("{}-15.{video_ext}", &a.id[..16]));
    let recorded_sound = recordings.join(format!("{}-15.opus", &a.id[..16]));
    tokio::time::sleep(Duration::from_secs(9)).await;
    for recorded in [&recorded_video, &recorded_sound] {
        assert!(
            recorded.exists(),
            "b recorded {} after {:?}",
            recorded.display(),
            t0.elapsed()
        );
    }
    let counted = match (probe(&recorded_video, true), probe(&recorded_sound, false)) {
        (Some(video), Some(sound)) => Some((video, sound, recorded_video, recorded_sound)),
        _ => None,
    };
    (a, b, counted)
}

/// ffmpeg decodes `path` to the end without an error.
fn assert_decodes_cleanly(path: &Path) {
    let decoded = std::process::Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .unwrap();
    let errors = String::from_utf8_lossy(&decoded.stderr);
    assert!(
        decoded.status.success() && errors.trim().is_empty(),
        "ffmpeg decoding {}: {errors}",
        path.display()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sends_an_mpeg_ts_of_h264_and_opus_and_another_records_both_for_ffprobe() {
    if !ffmpeg_here() {
        return;
    }
    let dir = scratch("esm-send-ts");
    let sent = dir.join("talk.ts");
    make_ts(&sent, 6);
    let (a, b, counted) = send_and_record(&dir, &[format!("ts:{}", sent.display())], "h264").await;
    let Some(((video_codec, frames), (sound_codec, packets), recorded_video, recorded_sound)) =
        counted
    else {
        return;
    };
    let profile = video_profile(&recorded_video);
    println!(
        "a sent ffmpeg's MPEG-TS of 150 H.264 frames and 300 Opus packets; b recorded \
         {frames} {video_codec} frames ({profile} profile) and {packets} {sound_codec} packets"
    );
    assert_eq!(video_codec, "h264");
    assert_eq!(profile, "High", "the recording is the stream sent, as sent");
    assert_eq!(sound_codec, "opus");
    // The first frames may go before b's tree from a is up; the rest arrive.
    assert!(frames >= 100, "{frames} of 150 frames");
    assert!(packets >= 200, "{packets} of 300 packets");
    assert_decodes_cleanly(&recorded_video);
    assert_decodes_cleanly(&recorded_sound);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_browser_on_another_member_decodes_the_high_profile_h264_and_opus_of_a_sent_mpeg_ts() {
    if !ffmpeg_here() || !chromium_here() {
        return;
    }
    let dir = scratch("esm-send-ts-browser");
    let sent = dir.join("talk.ts");
    make_ts(&sent, 30);
    let b = MemberProcess::start(&spec(&dir, 1, vec![])).await.unwrap();
    let mut sender = spec(&dir, 0, vec![b.quic]);
    sender.flags = vec!["--send".into(), format!("ts:{}", sent.display())];
    let a = MemberProcess::start(&sender).await.unwrap();
    let mut browser = Chromium::launch(&dir.join("chromium-profile"), WEBRTC_FLAGS).await;
    let opened = Instant::now();
    let _tab = browser.open(&page_url(&b)).await;
    let source = format!("{}-15", a.id);
    let (took, codec, energy) = loop {
        let got = decoded(&page_value(&mut browser, "lastStats").await);
        let sent_source = got.iter().find(|(s, ..)| *s == source);
        if let Some(&(_, frames, keys, width, samples)) = sent_source
            && frames >= 50
            && keys >= 1
            && samples > 0
        {
            assert_eq!(width, 320, "the browser shows the file's 320x240 picture");
            let stats = page_value(&mut browser, "lastStats").await;
            let codec = stats[&source]["videoCodec"]
                .as_str()
                .unwrap_or("")
                .to_owned();
            let energy = stats[&source]["totalAudioEnergy"].as_f64().unwrap_or(0.0);
            if energy > 0.0 {
                break (opened.elapsed(), codec, energy);
            }
        }
        assert!(
            opened.elapsed() < Duration::from_secs(25),
            "the browser did not decode the sent file in 25 s: {got:?}; console {:?}",
            browser.console
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    println!(
        "a sent an MPEG-TS (H.264 High, Opus); a browser on b decoded 50 frames, a keyframe \
         and sound (not silence: energy {energy:.4}) {:.1} s after its page opened, the video \
         in {codec}",
        took.as_secs_f64()
    );
    // It came in a payload type whose decoder takes High profile (High itself, 0x64, or High
    // 4:4:4 Predictive, 0xf4, which Chromium on OpenH264 offers instead), not in the first
    // H.264 one the browser offered (baseline): Chromium's own decoder takes either, stricter
    // ones (hardware, other browsers) need the profile they agreed.
    assert!(
        codec.starts_with("video/H264")
            && (codec.contains("profile-level-id=64") || codec.contains("profile-level-id=f4")),
        "the video's payload type: {codec:?}"
    );
    drop(browser);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_member_sends_ffmpegs_video_and_sound_files_and_another_records_them_for_ffprobe() {
    if !ffmpeg_here() {
        return;
    }
    let dir = scratch("esm-send-files");
    // Six seconds of 25 fps VP8 with a keyframe every second, and six seconds of a tone as
    // Opus in Ogg (20 ms packets: 300 of them), as a user would make them.
    let video = dir.join("talk.ivf");
    let sound = dir.join("talk.ogg");
    let made = std::process::Command::new("ffmpeg")
        .args([
            "-v",
            "error",
            "-f",
            "lavfi",
            "-i",
            "testsrc=size=320x240:rate=25",
            "-f",
            "lavfi",
            "-i",
            "sine=frequency=440:sample_rate=48000",
        ])
        .args([
            "-t", "6", "-map", "0:v", "-c:v", "libvpx", "-g", "25", "-b:v", "300k", "-f", "ivf",
        ])
        .arg(&video)
        .args([
            "-t", "6", "-map", "1:a", "-c:a", "libopus", "-b:a", "48k", "-f", "ogg",
        ])
        .arg(&sound)
        .status()
        .unwrap();
    assert!(made.success(), "ffmpeg made the IVF and Ogg files");
    let sends = [
        format!("ivf:{}", video.display()),
        format!("ogg:{}", sound.display()),
    ];
    let (a, b, counted) = send_and_record(&dir, &sends, "ivf").await;
    let Some(((video_codec, frames), (sound_codec, packets), _, recorded_sound)) = counted else {
        return;
    };
    println!(
        "a sent ffmpeg's 150-frame VP8 file and 300-packet Opus file; b recorded {frames} \
         {video_codec} frames and {packets} {sound_codec} packets"
    );
    assert_eq!(video_codec, "vp8");
    assert_eq!(sound_codec, "opus");
    // The first frames may go before b's tree from a is up; the rest arrive.
    assert!(frames >= 100, "{frames} of 150 frames");
    assert!(packets >= 200, "{packets} of 300 packets");
    // The sound decodes cleanly: every packet that arrived is a whole Opus packet.
    assert_decodes_cleanly(&recorded_sound);
    drop((a, b));
    let _ = std::fs::remove_dir_all(&dir);
}
