use super::*;

#[test]
fn the_worst_pair_is_judged_against_its_fair_share() {
    // Two senders to receiver 2, whose download allows each 1 Mbit/s (its unicast paths
    // 2 Mbit/s alone); one gets all of it, the other half.
    let reference = Reference {
        pairs: [((0, 2), (2e6, 100.0, 1e6)), ((1, 2), (2e6, 100.0, 1e6))]
            .into_iter()
            .collect(),
    };
    let pairs = [
        PairResult {
            sender: 0,
            receiver: 2,
            bw_bps: 1e6,
            rtt_ms: 100.0,
        },
        PairResult {
            sender: 1,
            receiver: 2,
            bw_bps: 0.5e6,
            rtt_ms: 200.0,
        },
    ];
    let f = figures_of(&pairs, &reference);
    assert!((f.min_pair_share - 0.5).abs() < 1e-9, "{f:?}");
    assert!((f.min_receiver_ratio - 0.75).abs() < 1e-9, "{f:?}");
    assert!((f.mean_receiver_ratio - 0.75).abs() < 1e-9, "{f:?}");
    // Against sequential unicast alone (2 Mbit/s each): a half and a quarter.
    assert!((f.mean_bw_ratio - 0.375).abs() < 1e-9, "{f:?}");
}

#[test]
fn a_real_runs_window_replaces_the_usual_one_and_the_crash_stays_after_it() {
    let mut args = ConferencingArgs {
        topology: String::new(),
        members: 16,
        seed: 1,
        protocol_seed: None,
        access: String::new(),
        out: None,
        rate: Bandwidth::from_kbps(1200),
        senders: 1,
        duration: Duration::from_secs(60),
        schemes: Vec::new(),
        no_congestion: true,
        narada_config: None,
        conversation: false,
        delay_budget: Duration::from_millis(300),
        no_delay_budget: false,
        crash_at: Some(0.6),
        window: None,
    };
    let t = args.timeline();
    assert_eq!(t.window, (Time::from_secs(10), Time::from_secs(33)));
    assert_eq!(t.crash, Some(Time::from_secs(36)));
    args.window = Some((Duration::from_millis(22_500), Duration::from_secs(45)));
    let t = args.timeline();
    assert_eq!(t.window, (Time::from_millis(22_500), Time::from_secs(45)));
    assert_eq!(
        t.crash,
        Some(Time::from_secs(45)),
        "never inside the window"
    );
    args.window = Some((Duration::from_secs(30), Duration::from_secs(90)));
    assert_eq!(
        args.timeline().window.1,
        Time::from_secs(60),
        "within the run"
    );
}

#[test]
fn the_crash_takes_a_relay_that_does_not_send_then_a_relaying_source_never_a_lone_one() {
    use overlay::crash_victim;
    let degree = |m: usize| [3, 5, 2, 4, 1][m];
    // Senders 0 and 1; member 3 relays two streams, the source 1 relays three.
    assert_eq!(crash_victim(&[0, 3, 0, 2, 0], &[0, 1], degree), Some(3));
    // No member that does not send relays: the busiest relaying source.
    assert_eq!(crash_victim(&[1, 3, 0, 0, 0], &[0, 1], degree), Some(1));
    // Nobody relays: the best-connected member that does not send (a crash that cuts nobody
    // off); equal relays go to the most neighbours.
    assert_eq!(crash_victim(&[0, 0, 0, 0, 0], &[0, 1], degree), Some(3));
    assert_eq!(crash_victim(&[0, 0, 1, 1, 0], &[0], degree), Some(3));
    // A lone sender that relays nothing is never crashed.
    assert_eq!(crash_victim(&[0], &[0], degree), None);
}
