//! Host and viewer as real processes in a network that lets only a
//! password-protected HTTP proxy out: the relay's own port is dropped by a
//! firewall (nftables in a network namespace), and a real tinyproxy stands
//! between the clients and the relay.
#![allow(clippy::unwrap_used)] // integration tests: a failed step is a failed test

use fernsicht_tests::{Netns, Proc, netns, workspace_bin};
use std::process::Command;

const RELAY_IP: &str = "10.66.0.1";
const CLIENT_IP: &str = "10.66.0.2";
const PROXY_PORT: u16 = 3128;

/// The relay's side (relay and proxy) and the clients' side, one link
/// between them; the clients' side may reach only the proxy.
struct WebOnlyNetwork {
    // Processes go first, then the namespaces they ran in.
    _relay: Proc,
    proxy: Proc,
    proxy_conf: std::path::PathBuf,
    outside: Netns,
    inside: Netns,
    _dir: tempfile::TempDir,
    home: std::path::PathBuf,
    pin: String,
}

impl WebOnlyNetwork {
    fn start() -> WebOnlyNetwork {
        let outside = Netns::new("relay");
        let inside = Netns::new("office");
        outside.link(
            ("lan", &format!("{RELAY_IP}/24")),
            &inside,
            ("eth0", &format!("{CLIENT_IP}/24")),
        );
        // A company firewall: the relay's port vanishes silently (a drop,
        // the worst case for a client: no answer at all), everything else
        // but the proxy is refused.
        inside.nft(&format!(
            "table inet office {{
               chain out {{
                 type filter hook output priority 0; policy accept;
                 ip daddr {RELAY_IP} tcp dport 4663 counter drop comment \"relay-port\"
                 ip daddr {RELAY_IP} tcp dport {PROXY_PORT} counter accept comment \"proxy\"
                 ip daddr {RELAY_IP} counter reject with tcp reset comment \"direct\"
               }}
             }}"
        ));

        let dir = tempfile::tempdir().unwrap();
        let home = dir.path().join("home");
        std::fs::create_dir(&home).unwrap();
        let conf = dir.path().join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {PROXY_PORT}\nListen {RELAY_IP}\nTimeout 60\nMaxClients 50\n\
                 LogLevel Connect\nBasicAuth fern s3cret\nAllow 10.66.0.0/24\n"
            ),
        )
        .unwrap();
        let mut proxy = outside.command("tinyproxy");
        proxy.arg("-d").arg("-c").arg(&conf);
        let proxy = Proc::spawn(proxy);

        let mut relay = outside.command(workspace_bin("fernsicht-relay"));
        relay
            .args(["--listen", "0.0.0.0:4663,0.0.0.0:443,0.0.0.0:80"])
            .arg("--data")
            .arg(dir.path().join("relay"));
        let mut relay = Proc::spawn(relay);
        let pin = relay
            .expect("certificate ")
            .trim_start_matches("certificate ")
            .to_owned();
        wait_for_port(&outside, PROXY_PORT);
        WebOnlyNetwork {
            outside,
            inside,
            _dir: dir,
            home,
            _relay: relay,
            proxy,
            proxy_conf: conf,
            pin,
        }
    }

    /// Kills the proxy (every connection through it drops) and starts it
    /// again.
    fn restart_proxy(&mut self) {
        let mut proxy = self.outside.command("tinyproxy");
        proxy.arg("-d").arg("-c").arg(&self.proxy_conf);
        // The old one goes first, so that the new one gets the port.
        self.proxy = Proc::spawn(std::process::Command::new("true"));
        std::thread::sleep(std::time::Duration::from_millis(300));
        self.proxy = Proc::spawn(proxy);
        wait_for_port(&self.outside, PROXY_PORT);
    }

    /// `fernsicht args…` inside the office network, with `proxy` as its
    /// environment's HTTPS proxy.
    fn app(&self, proxy: &str, args: &[&str]) -> Proc {
        let mut cmd = self.inside.command("env");
        cmd.arg("-u")
            .arg("DISPLAY")
            .arg(format!("HOME={}", self.home.display()))
            .arg(format!("XDG_CONFIG_HOME={}", self.home.display()))
            .arg(format!("HTTPS_PROXY={proxy}"))
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
}

/// Waits until something listens on `port` inside `ns`.
fn wait_for_port(ns: &Netns, port: u16) {
    for _ in 0..200 {
        let out = ns.command("ss").args(["-ltnH"]).output().unwrap();
        if String::from_utf8_lossy(&out.stdout).contains(&format!(":{port} ")) {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(25));
    }
    panic!("nothing listens on {port} in {}", ns.name());
}

fn skip_reason() -> Option<String> {
    let reason = netns::unavailable()?;
    eprintln!("skipped: {reason}");
    Some(reason)
}

#[test]
fn through_a_password_proxy_when_only_web_traffic_gets_out() {
    if skip_reason().is_some() {
        return;
    }
    assert!(
        Command::new("tinyproxy").arg("-v").output().is_ok(),
        "tinyproxy is missing: run scripts/setup-debian.sh"
    );
    let mut net = WebOnlyNetwork::start();
    let proxy = format!("http://fern:s3cret@{RELAY_IP}:{PROXY_PORT}");
    let via = format!("WebSocket over TLS, port 443, via proxy {RELAY_IP}:{PROXY_PORT}");

    let mut host = net.app(&proxy, &["host", "--accept", "control"]);
    let link = host.expect("relay link ");
    assert_eq!(link, format!("relay link {via} certificate {}", net.pin));
    assert!(!link.contains("s3cret"), "no password in the output");
    assert_eq!(
        host.expect("direct connections on "),
        "direct connections on 0.0.0.0:4663"
    );
    let number = host
        .expect("session ")
        .trim_start_matches("session ")
        .to_owned();

    let mut viewer = net.app(&proxy, &["view", &number, "--name", "Ada"]);
    assert_eq!(
        viewer.expect("relay link "),
        format!("relay link {via} certificate {}", net.pin)
    );
    viewer.expect("connected e2e aes-256-gcm");
    viewer.expect("allowed control");
    host.expect("connected #1");
    // Host and viewer share a network: the session moves off the relay to
    // a direct connection to the host's address.
    assert_eq!(
        viewer.expect("path "),
        format!("path direct {CLIENT_IP}:4663")
    );
    assert!(
        host.expect("path #1 ")
            .starts_with(&format!("path #1 direct {CLIENT_IP}:"))
    );
    viewer.type_line("hallo durch den Proxy");
    host.expect("#1 Ada: hallo durch den Proxy");
    host.type_line("angekommen");
    viewer.expect("host: angekommen");

    // The clients really knocked on the relay's port first, and then went
    // through the proxy: the firewall's counters say so.
    assert!(net.inside.nft_counter("relay-port") > 0);
    assert!(net.inside.nft_counter("proxy") > 0);

    // The direct connection breaks (the firewall starts resetting it):
    // both sides go back to the relay on their own, the helper proves the
    // keys there, and the chat goes on with nothing lost.
    net.inside.nft(&format!(
        "table inet cut {{
           chain out {{
             type filter hook output priority 0; policy accept;
             ip daddr {CLIENT_IP} tcp dport 4663 tcp flags & rst == 0 counter reject with tcp reset comment \"cut\"
             ip saddr {CLIENT_IP} tcp sport 4663 tcp flags & rst == 0 counter reject with tcp reset
           }}
         }}"
    ));
    host.type_line("nach dem Schnitt");
    assert_eq!(host.expect("path #1 "), "path #1 relayed");
    assert_eq!(viewer.expect("path "), "path relayed");
    viewer.expect("host: nach dem Schnitt");
    viewer.type_line("wieder über das Relais");
    host.expect("#1 Ada: wieder über das Relais");
    assert!(net.inside.nft_counter("cut") > 0);

    // A wrong proxy password is named as such, at once, not as a timeout
    // (tinyproxy answers 401 where the standard says 407; both count).
    let wrong = format!("http://fern:falsch@{RELAY_IP}:{PROXY_PORT}");
    let mut lost = net.app(&wrong, &["view", &number, "--name", "Bo"]);
    let error = lost.expect("error: ");
    assert!(
        error.contains(&format!(
            "the proxy {RELAY_IP}:{PROXY_PORT} refused the credentials (HTTP 40"
        )) && error.contains("check the user name and password"),
        "{error}"
    );
    assert!(!error.contains("falsch"), "no password in the output");
    assert_ne!(lost.exit_code(), 0);

    // A helper that stays on the relay: when the proxy dies and every
    // link through it drops, both sides reconnect on their own and the
    // session goes on with nothing lost.
    let mut relayed = net.app(&proxy, &["view", &number, "--name", "Cy", "--no-direct"]);
    relayed.expect("allowed control");
    host.expect("connected #2");
    net.restart_proxy();
    host.expect("reconnecting");
    relayed.expect("reconnecting");
    host.expect("reconnected");
    relayed.expect("resumed");
    host.type_line("noch da?");
    relayed.expect("host: noch da?");
    viewer.expect("host: noch da?");
    relayed.type_line("ja");
    host.expect("#2 Cy: ja");

    viewer.type_line("/quit");
    host.expect("left #1");
    host.type_line("/quit");
    assert_eq!(host.exit_code(), 0);
}
