//! Host and viewer as real processes behind two home routers (network
//! namespaces doing NAT with nftables), the relay on the "internet"
//! between them. Neither can open a TCP connection to the other's private
//! address, so a direct path needs a hole punched through both NATs.
//!
//! ```text
//!   host 10.1.0.2 ── lan [NAT A] wan 192.0.2.10 ──┐
//!                                                 ├─ br0 192.0.2.1 (relay, 4663 tcp+udp)
//!   viewer 10.2.0.2 ─ lan [NAT B] wan 192.0.2.20 ─┘
//! ```
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

use fernsicht_tests::{Netns, Proc, netns, workspace_bin};

const RELAY_IP: &str = "192.0.2.1";
const NAT_A: &str = "192.0.2.10";
const NAT_B: &str = "192.0.2.20";

/// How a router maps its LAN's sockets to public ports.
#[derive(Clone, Copy)]
enum Mapping {
    /// Linux masquerade: one public port per socket, kept whatever the
    /// destination (endpoint-independent), like most home routers.
    Cone,
    /// A fresh random port per destination: a symmetric NAT, which the
    /// relay's view of the port says nothing about.
    Symmetric,
}

struct Internet {
    // Processes first, then the namespaces they ran in.
    _relay: Proc,
    pin: String,
    nat_a: Netns,
    _nat_b: Netns,
    host_lan: Netns,
    viewer_lan: Netns,
    _public: Netns,
    dir: tempfile::TempDir,
}

/// A home router between `lan` (10.x.0.0/24) and the public bridge: NAT
/// out, and like a real router it drops what comes in unasked (which also
/// keeps such packets from leaving conntrack entries that would make the
/// NAT pick another port for the answer). Counts the UDP packets that
/// reach the LAN from `peer_wan`, the other router.
fn router(
    public: &Netns,
    tag: &str,
    wan_ip: &str,
    lan_net: u8,
    mapping: Mapping,
    peer_wan: &str,
) -> (Netns, Netns) {
    let nat = Netns::new(tag);
    let lan = Netns::new(&format!("{tag}lan"));
    let bridge_port = format!("to{tag}");
    public.ip(&[
        "link",
        "add",
        &bridge_port,
        "type",
        "veth",
        "peer",
        "name",
        "wan",
        "netns",
        nat.name(),
    ]);
    public.ip(&["link", "set", &bridge_port, "master", "br0"]);
    public.ip(&["link", "set", &bridge_port, "up"]);
    nat.ip(&["addr", "add", &format!("{wan_ip}/24"), "dev", "wan"]);
    nat.ip(&["link", "set", "wan", "up"]);
    nat.ip(&["route", "add", "default", "via", RELAY_IP]);
    nat.link(
        ("lan", &format!("10.{lan_net}.0.1/24")),
        &lan,
        ("eth0", &format!("10.{lan_net}.0.2/24")),
    );
    lan.ip(&[
        "route",
        "add",
        "default",
        "via",
        &format!("10.{lan_net}.0.1"),
    ]);
    nat.sh("sysctl -qw net.ipv4.ip_forward=1");
    let masquerade = match mapping {
        Mapping::Cone => "masquerade",
        Mapping::Symmetric => "masquerade fully-random",
    };
    nat.nft(&format!(
        "table ip nat {{
           chain post {{
             type nat hook postrouting priority srcnat; policy accept;
             oifname \"wan\" {masquerade}
           }}
         }}
         table inet fw {{
           chain input {{
             type filter hook input priority 0; policy accept;
             iifname \"wan\" ct state established,related accept
             iifname \"wan\" drop
           }}
           chain forward {{
             type filter hook forward priority 0; policy drop;
             iifname \"lan\" oifname \"wan\" accept
             iifname \"wan\" oifname \"lan\" ip saddr {peer_wan} meta l4proto udp counter accept comment \"from-peer\"
             iifname \"wan\" oifname \"lan\" ct state established,related accept
           }}
         }}"
    ));
    (nat, lan)
}

impl Internet {
    fn start(host_side: Mapping, viewer_side: Mapping) -> Internet {
        let public = Netns::new("inet");
        public.ip(&["link", "add", "br0", "type", "bridge"]);
        public.ip(&["addr", "add", &format!("{RELAY_IP}/24"), "dev", "br0"]);
        public.ip(&["link", "set", "br0", "up"]);
        // Forwarding on, with no route to anyone's private network: a
        // packet for one is answered "network unreachable", as on the
        // internet.
        public.sh("sysctl -qw net.ipv4.ip_forward=1");
        let (nat_a, host_lan) = router(&public, "nata", NAT_A, 1, host_side, NAT_B);
        let (nat_b, viewer_lan) = router(&public, "natb", NAT_B, 2, viewer_side, NAT_A);

        let dir = tempfile::tempdir().unwrap();
        let mut relay = public.command(workspace_bin("fernsicht-relay"));
        relay
            .args(["--listen", "0.0.0.0:4663"])
            .env("RUST_LOG", "info")
            .arg("--data")
            .arg(dir.path().join("relay"));
        let mut relay = Proc::spawn(relay);
        let pin = relay
            .expect("certificate ")
            .trim_start_matches("certificate ")
            .to_owned();
        // A log line (stderr): it may come before or after the certificate.
        let rendezvous = "UDP rendezvous on 0.0.0.0:4663";
        if !relay.seen().iter().any(|l| l.contains(rendezvous)) {
            relay.expect_containing(rendezvous);
        }
        Internet {
            _relay: relay,
            pin,
            nat_a,
            _nat_b: nat_b,
            host_lan,
            viewer_lan,
            _public: public,
            dir,
        }
    }

    /// `fernsicht args… --headless` in `lan`, talking to the relay.
    fn app(&self, lan: &Netns, args: &[&str]) -> Proc {
        let home = self.dir.path().join(lan.name());
        std::fs::create_dir_all(&home).unwrap();
        let mut cmd = lan.command("env");
        cmd.arg("-u")
            .arg("DISPLAY")
            .arg(format!("HOME={}", home.display()))
            .arg(format!("XDG_CONFIG_HOME={}", home.display()))
            // RUST_LOG=fernsicht_net=debug shows each attempt when debugging.
            .arg(format!(
                "RUST_LOG={}",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into())
            ))
            .arg(workspace_bin("fernsicht"))
            .args(args)
            .args([
                "--relay",
                &format!("{RELAY_IP}:4663"),
                "--relay-pin",
                &self.pin,
            ])
            .arg("--headless");
        Proc::spawn(cmd)
    }

    /// A host behind NAT A and a viewer behind NAT B, allowed and talking
    /// through the relay.
    fn session(&self) -> (Proc, Proc) {
        let mut host = self.app(&self.host_lan, &["host", "--accept", "control"]);
        let number = host
            .expect("session ")
            .trim_start_matches("session ")
            .to_owned();
        let mut viewer = self.app(&self.viewer_lan, &["view", &number, "--name", "Ada"]);
        viewer.expect("allowed control");
        host.expect("connected #1");
        (host, viewer)
    }
}

fn skip_reason() -> Option<String> {
    let reason = netns::unavailable()?;
    eprintln!("skipped: {reason}");
    Some(reason)
}

/// Chat both ways, and the lines arrive.
fn chat(host: &mut Proc, viewer: &mut Proc, n: usize) {
    viewer.type_line(&format!("hallo vom Helfer {n}"));
    host.expect(&format!("#1 Ada: hallo vom Helfer {n}"));
    host.type_line(&format!("angekommen {n}"));
    viewer.expect(&format!("host: angekommen {n}"));
}

#[test]
fn behind_two_cone_nats_the_session_moves_to_a_punched_quic_path() {
    if skip_reason().is_some() {
        return;
    }
    let net = Internet::start(Mapping::Cone, Mapping::Cone);
    let (mut host, mut viewer) = net.session();
    // The viewer reached the host at NAT A's public address, not through
    // the relay, and the host sees it coming from NAT B.
    let path = viewer.expect("path ");
    assert!(
        path.starts_with(&format!("path direct (QUIC) {NAT_A}:")),
        "{path}; the viewer saw {:#?}",
        viewer.seen()
    );
    let path = host.expect("path #1 ");
    assert!(
        path.starts_with(&format!("path #1 direct (QUIC) {NAT_B}:")),
        "{path}"
    );

    // After the switch, chat flows both ways, and it flows NAT to NAT:
    // more packets from NAT B reach the host's network.
    let before = net.nat_a.nft_counter("from-peer");
    assert!(before > 0);
    chat(&mut host, &mut viewer, 1);
    chat(&mut host, &mut viewer, 2);
    assert!(net.nat_a.nft_counter("from-peer") > before);

    viewer.type_line("/quit");
    host.expect("left #1");
    host.type_line("/quit");
    assert_eq!(host.exit_code(), 0);
}

#[test]
fn behind_a_symmetric_nat_punching_fails_and_the_session_stays_relayed() {
    if skip_reason().is_some() {
        return;
    }
    // The viewer's router picks a new port per destination: the port the
    // relay saw is not the one the host's packets would have to reach.
    let net = Internet::start(Mapping::Cone, Mapping::Symmetric);
    let (mut host, mut viewer) = net.session();
    // The attempt gives up on its own and says so.
    assert_eq!(
        viewer.expect("path "),
        "path relayed",
        "the viewer saw {:#?}",
        viewer.seen()
    );
    assert_eq!(net.nat_a.nft_counter("from-peer"), 0);
    chat(&mut host, &mut viewer, 1);
    assert!(
        !host.seen().iter().any(|l| l.starts_with("path #1 direct")),
        "{:#?}",
        host.seen()
    );

    viewer.type_line("/quit");
    host.expect("left #1");
    host.type_line("/quit");
    assert_eq!(host.exit_code(), 0);
}
