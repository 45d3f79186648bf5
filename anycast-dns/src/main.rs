//! `anycast-dns`: serve anycast names from a fixed table of groups, for trying the front end
//! with `dig` or an ordinary resolver (the live one is `esm resolver --dns`).
//!
//! ```sh
//! anycast-dns --listen 127.0.0.1:5353 --group web%example.org=192.0.2.7:4433,192.0.2.8:4433
//! dig @127.0.0.1 -p 5353 web._anycast.example.org A
//! dig @127.0.0.1 -p 5353 web._anycast.example.org SRV
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeMap;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;

use anycast_dns::{DnsFrontEnd, FixedTable, serve_udp};
use anycast_resolver::AnycastName;
use clap::Parser;

/// Answer A/AAAA/SRV queries for service._anycast.domain names from a fixed table, rotating
/// among each group's servers.
#[derive(Debug, Parser)]
#[command(name = "anycast-dns", version)]
struct Cli {
    /// UDP address to listen on.
    #[arg(long, default_value = "127.0.0.1:5353")]
    listen: SocketAddr,
    /// A group and its servers: Service%Domain=ADDR[,ADDR...] (repeatable), each ADDR an IP
    /// or IP:PORT (the port SRV answers give; 0 when not said).
    #[arg(long = "group", value_parser = parse_group)]
    groups: Vec<(AnycastName, Vec<SocketAddr>)>,
    /// TTL of answers, seconds.
    #[arg(long, default_value_t = 5)]
    ttl: u32,
}

fn parse_group(text: &str) -> Result<(AnycastName, Vec<SocketAddr>), String> {
    let (name, addrs) = text
        .split_once('=')
        .ok_or_else(|| format!("{text:?}: expected Service%Domain=ADDR[,ADDR...]"))?;
    let name: AnycastName = name.parse().map_err(|e| format!("{e}"))?;
    let addrs = addrs
        .split(',')
        .map(|a| {
            let a = a.trim();
            a.parse::<SocketAddr>()
                .or_else(|_| a.parse::<IpAddr>().map(|ip| SocketAddr::new(ip, 0)))
                .map_err(|e| format!("{text:?}: address {a:?}: {e}"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((name, addrs))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let source = FixedTable::new(cli.groups.into_iter().collect::<BTreeMap<_, _>>());
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        let socket = match tokio::net::UdpSocket::bind(cli.listen).await {
            Ok(s) => s,
            Err(e) => {
                eprintln!("error: cannot listen on {}: {e}", cli.listen);
                return ExitCode::FAILURE;
            }
        };
        eprintln!("anycast-dns listening on {}", cli.listen);
        let mut server = serve_udp(socket, DnsFrontEnd::new(source, cli.ttl));
        match server.block_until_done().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("error: {e}");
                ExitCode::FAILURE
            }
        }
    })
}
