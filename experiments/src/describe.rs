//! `experiments topology`: what a topology looks like, in numbers.

use std::time::Duration;

use crate::network::Network;
use crate::report::Table;
use crate::stats::Distribution;
use crate::topology::capacity::capacity_mix;
use crate::topology::{LatencyMatrix, PhysicalGraph, ShortestPathTree, Topology};

/// A text report on `topology`, and on `net`'s member pairs if members were placed.
pub fn describe(topology: &Topology, net: Option<&Network>) -> String {
    let mut out = match topology {
        Topology::Physical(g) => describe_graph(g),
        Topology::Matrix(m) => describe_matrix(m),
    };
    for note in topology.notes() {
        out.push_str(&format!("note: {note}\n"));
    }
    if let Some(net) = net {
        out.push('\n');
        out.push_str(&describe_members(net));
    }
    out
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn quantiles_row(name: &str, d: &Distribution, unit: &str) -> Vec<String> {
    let q = |p| {
        d.quantile(p)
            .map_or_else(|| "n/a".to_owned(), |v| format!("{v:.2}"))
    };
    vec![
        name.to_owned(),
        q(0.0),
        q(0.1),
        q(0.5),
        q(0.9),
        q(1.0),
        d.mean().map_or_else(|| "n/a".into(), |m| format!("{m:.2}")),
        unit.to_owned(),
    ]
}

const QUANTILE_HEADER: [&str; 8] = ["", "min", "p10", "p50", "p90", "max", "mean", "unit"];

fn describe_graph(g: &PhysicalGraph) -> String {
    let n = g.routers().len();
    let degrees = Distribution::new((0..n).map(|r| g.neighbours(r).len() as f64).collect());
    let delays = Distribution::new(g.links().iter().map(|l| ms(l.delay)).collect());
    let (mut hop_diameter, mut delay_diameter) = (0u32, 0u64);
    for r in 0..n {
        let spt = ShortestPathTree::compute(g, r);
        delay_diameter = delay_diameter.max(spt.eccentricity_micros());
        hop_diameter = hop_diameter.max((0..n).filter_map(|x| spt.hops(x)).max().unwrap_or(0));
    }
    let mut out = format!(
        "topology {}\nrouters {n}, links {}, attach points {}, connected: {}\n",
        g.name,
        g.links().len(),
        g.attach_points().len(),
        g.is_connected()
    );
    out.push_str(&format!(
        "diameter: {hop_diameter} hops along delay-shortest routes, {:.2} ms (largest shortest-path delay)\n",
        delay_diameter as f64 / 1e3
    ));
    out.push_str(&format!("link capacities: {}\n", capacity_mix(g)));
    if !g.capacity_rule.is_empty() {
        out.push_str(&format!("  from: {}\n", g.capacity_rule));
    }
    out.push('\n');
    let mut t = Table::new(&QUANTILE_HEADER);
    t.row(&quantiles_row("degree", &degrees, "links"));
    t.row(&quantiles_row("link delay", &delays, "ms"));
    out.push_str(&t.render());
    out
}

fn describe_matrix(m: &LatencyMatrix) -> String {
    let n = m.len();
    let mut measured = Vec::new();
    for i in 0..n {
        for j in i + 1..n {
            if m.is_measured(i, j) {
                measured.push(ms(m.rtt(i, j)));
            }
        }
    }
    let pairs = n * (n - 1) / 2;
    let mut out = format!(
        "matrix {}\nhosts {n}, pairs {pairs}, measured {} ({:.1}%)\n",
        m.name,
        measured.len(),
        100.0 * measured.len() as f64 / pairs as f64
    );
    out.push_str(&format!(
        "triangle-inequality violations: {:.1}% of triangles of measured pairs (one side longer than the other two)\n\n",
        100.0 * m.triangle_violation_share()
    ));
    let mut t = Table::new(&QUANTILE_HEADER);
    t.row(&quantiles_row("RTT", &Distribution::new(measured), "ms"));
    out.push_str(&t.render());
    out
}

fn describe_members(net: &Network) -> String {
    let n = net.members();
    let (mut delays, mut hops) = (Vec::new(), Vec::new());
    for a in 0..n {
        for b in a + 1..n {
            delays.push(net.unicast_delay_micros(a, b) as f64 / 1e3);
            hops.push(f64::from(net.router_hops(a, b)));
        }
    }
    let up = Distribution::new(net.hosts().iter().map(|h| h.access.up.mbps_f64()).collect());
    let down = Distribution::new(
        net.hosts()
            .iter()
            .map(|h| h.access.down.mbps_f64())
            .collect(),
    );
    let mut classes: std::collections::BTreeMap<&str, usize> = std::collections::BTreeMap::new();
    for h in net.hosts() {
        *classes.entry(h.access.class.as_str()).or_default() += 1;
    }
    let classes: Vec<String> = classes.iter().map(|(c, k)| format!("{c} {k}")).collect();
    let mut out = format!("members {n}: {}\n", classes.join(", "));
    let mut t = Table::new(&QUANTILE_HEADER);
    t.row(&quantiles_row(
        "one-way delay",
        &Distribution::new(delays),
        "ms",
    ));
    if net.has_physical_links() {
        t.row(&quantiles_row(
            "router hops",
            &Distribution::new(hops),
            "hops",
        ));
    }
    t.row(&quantiles_row("upload", &up, "Mbps"));
    t.row(&quantiles_row("download", &down, "Mbps"));
    out.push_str(&t.render());
    out
}
