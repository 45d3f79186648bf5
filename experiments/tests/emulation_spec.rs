//! The emulation spec written for real processes is the simulator's placement: same cities,
//! access links and delays, every city with coordinates, and it reads back.

use std::net::Ipv4Addr;

use experiments::emulation_spec::{loopback_addresses, read_cities, spec_of};
use experiments::network::{AccessSpec, Network};
use experiments::topology;
use overlay_core::emulation::EmulationSpec;

#[test]
fn the_spec_is_the_simulators_placement_and_reads_back() {
    let data = format!("{}/../data/latency", env!("CARGO_MANIFEST_DIR"));
    let topo = topology::load(&format!(
        "matrix:{data}/wondernetwork-2018-242cities-rtt-ms.csv"
    ))
    .unwrap();
    let access = AccessSpec::parse("simblock:year=2019,adsl=0.15").unwrap();
    let net = Network::build(topo, 16, &access, 1).unwrap();
    let addresses = loopback_addresses(Ipv4Addr::new(127, 0, 0, 10), 16).unwrap();
    let cities = read_cities(format!("{data}/wondernetwork-2018-cities.csv").as_ref()).unwrap();
    let spec = spec_of(&net, "test", &addresses, &cities);
    let back: EmulationSpec = serde_json::from_str(&serde_json::to_string(&spec).unwrap()).unwrap();
    assert_eq!(back, spec);
    assert_eq!(spec.places.len(), 16);
    for (i, place) in spec.places.iter().enumerate() {
        let host = &net.hosts()[i];
        assert_eq!(place.ip, addresses[i]);
        assert_eq!(place.name, host.name);
        assert_eq!(place.up_bps, host.access.up.bps());
        assert_eq!(place.down_bps, host.access.down.bps());
        assert!(
            place.lat.is_some() && place.lon.is_some(),
            "{} has no coordinates",
            place.name
        );
        assert_eq!(spec.one_way_us[i][i], 0);
        for j in (0..16).filter(|&j| j != i) {
            let d = spec.one_way_us[i][j];
            assert_eq!(d, net.unicast_delay_micros(i, j));
            assert!(d > 0, "{} to {}", place.name, spec.places[j].name);
        }
    }
}

/// `esm demo`'s world is what the command in `data/README.md` writes; regenerate it with that
/// command if the placement or the access draws change.
#[test]
fn the_demos_world_is_what_its_command_writes() {
    let root = format!("{}/..", env!("CARGO_MANIFEST_DIR"));
    let checked_in: EmulationSpec = serde_json::from_str(
        &std::fs::read_to_string(format!("{root}/data/emulation/demo-world.json")).unwrap(),
    )
    .unwrap();
    let topo = topology::load(&format!(
        "matrix:{root}/data/latency/wondernetwork-2018-242cities-rtt-ms.csv"
    ))
    .unwrap();
    let access = AccessSpec::parse("simblock:year=2019,adsl=0.15").unwrap();
    let net = Network::build(topo, 8, &access, 3).unwrap();
    let addresses = loopback_addresses(Ipv4Addr::new(127, 0, 0, 10), 8).unwrap();
    let cities =
        read_cities(format!("{root}/data/latency/wondernetwork-2018-cities.csv").as_ref()).unwrap();
    let mut written = spec_of(&net, &checked_in.name, &addresses, &cities);
    written.places[7].down_bps = 1_200_000;
    assert_eq!(written, checked_in);
}
