//! Network namespaces for partition tests: each node in a namespace of its
//! own, all joined by a bridge in one more namespace, and the test process
//! (root namespace) on that bridge too, so it reaches every node's API.
//! A partition takes a node's bridge port down: a real link failure, seen
//! by the kernel and QUIC as such, not a userspace relay dropping packets.
//!
//! Needs root and `ip` (iproute2). Every name carries the test process id,
//! and everything is deleted on drop.

use std::net::{IpAddr, Ipv4Addr};
use std::process::Command;

pub struct Netns {
    suffix: u32,
    octet: u8,
    nodes: usize,
}

fn ip(args: &[&str]) -> Result<(), String> {
    let out = Command::new("ip")
        .args(args)
        .output()
        .map_err(|e| format!("ip: {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "ip {}: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        ))
    }
}

impl Netns {
    /// Creates the namespaces and links for `nodes` nodes; `Err` says why
    /// it cannot (not root, no `ip`, no netns support).
    pub fn create(nodes: usize) -> Result<Netns, String> {
        let suffix = std::process::id() % 100_000;
        let netns = Netns {
            suffix,
            octet: 100 + (suffix % 100) as u8,
            nodes,
        };
        netns.build()?;
        Ok(netns)
    }

    fn bridge_ns(&self) -> String {
        format!("ordo-br-{}", self.suffix)
    }

    pub fn node_ns(&self, i: usize) -> String {
        format!("ordo-n{i}-{}", self.suffix)
    }

    /// The bridge-side end of node `i`'s link (names stay within 15 bytes).
    fn port(&self, i: usize) -> String {
        format!("ob{i}-{}", self.suffix)
    }

    pub fn address(&self, i: usize) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(10, self.octet, 0, i as u8 + 1))
    }

    fn build(&self) -> Result<(), String> {
        let br = self.bridge_ns();
        ip(&["netns", "add", &br])?;
        ip(&["-n", &br, "link", "set", "lo", "up"])?;
        ip(&["-n", &br, "link", "add", "br0", "type", "bridge"])?;
        ip(&["-n", &br, "link", "set", "br0", "up"])?;
        for i in 0..self.nodes {
            let ns = self.node_ns(i);
            let port = self.port(i);
            let inner = format!("on{i}-{}", self.suffix);
            ip(&["netns", "add", &ns])?;
            ip(&["-n", &ns, "link", "set", "lo", "up"])?;
            ip(&["link", "add", &inner, "type", "veth", "peer", "name", &port])?;
            ip(&["link", "set", &inner, "netns", &ns])?;
            ip(&["link", "set", &port, "netns", &br])?;
            ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
            ip(&["-n", &br, "link", "set", &port, "up"])?;
            let addr = format!("{}/24", self.address(i));
            ip(&["-n", &ns, "addr", "add", &addr, "dev", &inner])?;
            ip(&["-n", &ns, "link", "set", &inner, "up"])?;
        }
        // The test process's own leg on the bridge.
        let root = format!("or-{}", self.suffix);
        let port = format!("obr-{}", self.suffix);
        ip(&["link", "add", &root, "type", "veth", "peer", "name", &port])?;
        ip(&["link", "set", &port, "netns", &br])?;
        ip(&["-n", &br, "link", "set", &port, "master", "br0"])?;
        ip(&["-n", &br, "link", "set", &port, "up"])?;
        let addr = format!("10.{}.0.254/24", self.octet);
        ip(&["addr", "add", &addr, "dev", &root])?;
        ip(&["link", "set", &root, "up"])?;
        Ok(())
    }

    /// Cuts node `i` off from everyone (the test included).
    pub fn isolate(&self, i: usize) {
        ip(&[
            "-n",
            &self.bridge_ns(),
            "link",
            "set",
            &self.port(i),
            "down",
        ])
        .unwrap();
    }

    /// Restores node `i`'s link.
    pub fn heal(&self, i: usize) {
        ip(&["-n", &self.bridge_ns(), "link", "set", &self.port(i), "up"]).unwrap();
    }

    /// The command prefix that runs a program in node `i`'s namespace.
    pub fn exec_prefix(&self, i: usize) -> Vec<String> {
        ["ip", "netns", "exec"]
            .iter()
            .map(|s| s.to_string())
            .chain([self.node_ns(i)])
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = ip(&["link", "del", &format!("or-{}", self.suffix)]);
        for i in 0..self.nodes {
            let _ = ip(&["netns", "del", &self.node_ns(i)]);
        }
        let _ = ip(&["netns", "del", &self.bridge_ns()]);
    }
}
