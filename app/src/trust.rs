//! Which relay certificate the app trusts.
//!
//! - A pin from the configuration or the command line: exactly that
//!   certificate.
//! - Else a fingerprint remembered from an earlier connection to this
//!   address: that one (trust on first use, as SSH does).
//! - Else, for an address given as an IP (a relay on the local network, such
//!   as another machine's embedded relay): accept it this first time and
//!   remember it.
//! - Else (a DNS name): a certificate from a CA the system trusts.
//!
//! Whatever the relay, sessions stay end-to-end encrypted and the code
//! people compare exposes a relay in the middle; the certificate check is
//! about knowing which relay carries the session.

use fernsicht_net::client::{ConnectOptions, RelayAddr};
use fernsicht_net::tls::{Fingerprint, RelayTrust};
use fernsicht_net::transport::proxy::ProxySetting;

/// The connect options for `addr`.
pub fn connect_options(
    addr: &RelayAddr,
    pin: Option<Fingerprint>,
    remembered: Option<Fingerprint>,
    proxy: ProxySetting,
) -> ConnectOptions {
    let trust = match (pin, remembered) {
        (Some(p), _) | (None, Some(p)) => RelayTrust::Pinned(p),
        (None, None) if is_address(addr.host()) => RelayTrust::FirstUse,
        (None, None) => RelayTrust::System,
    };
    ConnectOptions {
        trust,
        proxy,
        ..ConnectOptions::default()
    }
}

fn is_address(host: &str) -> bool {
    host.parse::<std::net::IpAddr>().is_ok() || host == "localhost"
}

/// The proxy setting from a command-line value: a URL, or `off`.
pub fn proxy_setting(value: Option<&str>) -> ProxySetting {
    match value {
        None => ProxySetting::Auto,
        Some("off" | "none" | "direct") => ProxySetting::Off,
        Some(url) => ProxySetting::Url(url.to_owned()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pins_win_then_memory_then_first_use_for_addresses() {
        let fp = Fingerprint([1; 32]);
        let ip = RelayAddr::new("192.168.1.5", 4663);
        let dns = RelayAddr::new("relay.example", 4663);
        let trust = |a, p, r| connect_options(a, p, r, ProxySetting::Off).trust;
        assert_eq!(trust(&dns, Some(fp), None), RelayTrust::Pinned(fp));
        assert_eq!(trust(&ip, None, Some(fp)), RelayTrust::Pinned(fp));
        assert_eq!(trust(&ip, None, None), RelayTrust::FirstUse);
        assert_eq!(trust(&dns, None, None), RelayTrust::System);
        assert_eq!(proxy_setting(Some("off")), ProxySetting::Off);
    }
}
