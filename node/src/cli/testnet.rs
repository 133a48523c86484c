use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use anyhow::{bail, Context};
use ordo_types::{Committee, Keypair, Member};

use crate::config::NodeConfig;
use crate::keyfile;

#[derive(clap::Args)]
pub struct Args {
    /// Number of nodes in the committee.
    #[arg(long, default_value_t = 4)]
    nodes: usize,
    /// Folder to write into (created if missing; must not hold a testnet).
    #[arg(long)]
    dir: PathBuf,
    /// First QUIC port; node i listens on base+i and serves its API on
    /// base+1000+i. 0 picks free ports from the operating system.
    #[arg(long, default_value_t = 7000)]
    base_port: u16,
    /// Replace an existing testnet in the folder.
    #[arg(long)]
    force: bool,
}

pub fn run(args: Args) -> anyhow::Result<()> {
    write(&args.dir, args.nodes, args.base_port, args.force)?;
    println!(
        "wrote a {}-node testnet to {}; start node i with: ordo run --config {}",
        args.nodes,
        args.dir.display(),
        args.dir.join("node-<i>.toml").display()
    );
    Ok(())
}

/// Writes `node-<i>.key`, `node-<i>.toml` and `committee.toml` into `dir`.
/// Returns the config paths.
pub fn write(
    dir: &Path,
    nodes: usize,
    base_port: u16,
    force: bool,
) -> anyhow::Result<Vec<PathBuf>> {
    if nodes == 0 || nodes > 1000 {
        bail!("--nodes must be between 1 and 1000, got {nodes}");
    }
    if base_port != 0 && usize::from(base_port) + 1000 + nodes > usize::from(u16::MAX) {
        bail!("--base-port {base_port} leaves no room for {nodes} nodes");
    }
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let committee_path = dir.join("committee.toml");
    if committee_path.exists() && !force {
        bail!(
            "{} already holds a testnet (use --force to replace it)",
            dir.display()
        );
    }
    let ports = if base_port == 0 {
        free_ports(nodes)?
    } else {
        (0..nodes as u16)
            .map(|i| (base_port + i, base_port + 1000 + i))
            .collect()
    };
    let loopback = |port| SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    let mut members = Vec::with_capacity(nodes);
    let mut configs = Vec::with_capacity(nodes);
    for (i, (quic, api)) in ports.into_iter().enumerate() {
        let keypair = Keypair::generate()?;
        let key_file = format!("node-{i}.key");
        keyfile::write(&dir.join(&key_file), &keypair, force)?;
        members.push(Member {
            key: keypair.public(),
            address: loopback(quic),
            api_address: loopback(api),
        });
        let config = NodeConfig {
            key_file: key_file.into(),
            committee_file: "committee.toml".into(),
            data_dir: format!("data/node-{i}").into(),
            listen: None,
            api_listen: None,
            inclusion_lists: true,
            consensus: Default::default(),
            mempool: Default::default(),
            intake: Default::default(),
            storage: Default::default(),
            // All on loopback: 64 KiB datagrams (docs/network.md).
            transport: crate::config::TransportConfig {
                max_udp_payload_bytes: 65_527,
                ..Default::default()
            },
            backends: Default::default(),
        };
        let path = dir.join(format!("node-{i}.toml"));
        std::fs::write(&path, toml::to_string(&config)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        configs.push(path);
    }
    let committee = Committee::new(members)?;
    std::fs::write(&committee_path, committee.to_toml())
        .with_context(|| format!("cannot write {}", committee_path.display()))?;
    Ok(configs)
}

/// Free (UDP, TCP) port pairs from the operating system. A port freed here
/// could in principle be taken again before the node binds it; the node
/// then fails with a clear "cannot listen" error.
fn free_ports(n: usize) -> anyhow::Result<Vec<(u16, u16)>> {
    let mut held = Vec::with_capacity(n);
    for _ in 0..n {
        let udp = std::net::UdpSocket::bind((Ipv4Addr::LOCALHOST, 0))?;
        let tcp = std::net::TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
        held.push((udp, tcp));
    }
    held.iter()
        .map(|(u, t)| Ok((u.local_addr()?.port(), t.local_addr()?.port())))
        .collect()
}
