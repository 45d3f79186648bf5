//! A parent checks at once on a child that stopped acknowledging its stream, or that the
//! child's own children report silent (`check_silent_children`): the root's table drops a dead
//! node in a second or two instead of the lease, and a live child reported silent stays.

mod lab;

use lab::{Lab, id, secs};
use overcast::Message;

/// The streaming lab run to 30 s; `checks` turns the child checks on or off.
fn streaming_lab(checks: bool) -> Lab {
    let mut lab = Lab::streaming(|c| c.check_silent_children = checks);
    lab.run_until(secs(30.0));
    assert!(lab.tree_problems().is_empty(), "{:?}", lab.tree_problems());
    lab
}

/// Crashes the node `pick` chooses at 30.5 s; the seconds until the root's table was exact
/// again (no dead node in it, every live node in it), looked at every 100 ms up to 12 s.
fn table_exact_after_crash(checks: bool, pick: impl Fn(&Lab) -> usize) -> f64 {
    let mut lab = streaming_lab(checks);
    let victim = pick(&lab);
    lab.crash(secs(30.5), victim);
    let mut at = 30.5;
    while at < 42.5 {
        at += 0.1;
        lab.run_until(secs(at));
        let (missing, extra) = lab.root_table_diff();
        if missing.is_empty() && extra.is_empty() {
            return at - 30.5;
        }
    }
    panic!("the root's table was not exact 12 s after the crash");
}

/// A leaf below the root's children (its parent is not the root).
fn deep_leaf(lab: &Lab) -> usize {
    (1..12)
        .find(|&i| lab.node(i).children().next().is_none() && lab.node(i).parent() != Some(id(0)))
        .expect("a leaf two levels down")
}

/// The non-root node with the largest subtree.
fn largest_subtree(lab: &Lab) -> usize {
    let victim = (1..12)
        .max_by_key(|&i| (lab.node(i).table().live_count(), i))
        .unwrap();
    assert!(
        lab.node(victim).children().next().is_some(),
        "it has children"
    );
    victim
}

#[test]
fn a_dead_leaf_leaves_the_roots_table_well_before_its_lease_runs_out() {
    let on = table_exact_after_crash(true, deep_leaf);
    let off = table_exact_after_crash(false, deep_leaf);
    println!("a dead leaf: the root's table exact after {on:.1} s with checks, {off:.1} s without");
    // On: acknowledgements overdue after about 400 ms (two ack delays), then three requests
    // 400 ms apart. Off: the lease, 5 s from the last check-in before the crash (up to a
    // second before it), checked at one-second check-ins.
    assert!(on < 2.5, "with checks: {on:.1} s");
    assert!(off > 4.0, "without: {off:.1} s");
}

#[test]
fn a_dead_node_with_a_subtree_is_dropped_after_its_orphans_reattached() {
    let on = table_exact_after_crash(true, largest_subtree);
    let off = table_exact_after_crash(false, largest_subtree);
    println!(
        "a dead subtree root: the root's table exact after {on:.1} s with checks, {off:.1} s without"
    );
    // On: held dead no sooner than the parent timeout (2 s) after the check began while
    // entries remain under it; its orphans find it dead within a second and reattach, so the
    // hold mostly ends early.
    assert!(on < 3.5, "with checks: {on:.1} s");
    assert!(off > 4.0, "without: {off:.1} s");
}

#[test]
fn a_live_child_reported_silent_answers_and_stays() {
    let mut lab = streaming_lab(true);
    // Node `child` hangs under `parent`, and `grandchild` under `child`.
    let (parent, child, grandchild) = (1..12)
        .find_map(|g| {
            let c = lab.index_of(&lab.node(g).parent()?);
            let p = lab.index_of(&lab.node(c).parent()?);
            Some((p, c, g))
        })
        .filter(|&(p, c, _)| p != c)
        .expect("three levels");
    let reported = id(child);
    // The grandchild falsely reports its live parent silent; a stranger reports it too.
    lab.inject(
        secs(31.0),
        grandchild,
        parent,
        Message::ParentSilent { parent: reported },
    );
    let stranger = (1..12)
        .find(|&s| s != grandchild && lab.node(parent).table().via(&id(s)) != Some(reported))
        .expect("a node not under the child");
    lab.inject(
        secs(31.0),
        stranger,
        parent,
        Message::ParentSilent { parent: reported },
    );
    lab.run_until(secs(40.0));
    let stats = lab.node(parent).stats();
    assert_eq!(stats.child_checks, 1, "one request, answered");
    assert_eq!(stats.silent_children_lost, 0);
    assert!(stats.silent_reports_ignored >= 1, "the stranger's report");
    assert_eq!(
        lab.node(child).parent(),
        Some(id(parent)),
        "the child stays"
    );
    assert!(lab.tree_problems().is_empty(), "{:?}", lab.tree_problems());
}

#[test]
fn a_steady_tree_checks_no_child_and_loses_none() {
    let mut lab = streaming_lab(true);
    // Through the rest of the stream and its end.
    lab.run_until(secs(70.0));
    for i in 0..12 {
        let stats = lab.node(i).stats();
        assert_eq!(stats.child_checks, 0, "node {i}");
        assert_eq!(stats.silent_children_lost, 0, "node {i}");
    }
}
