//! Helpers for the tests that need a real X server.

pub mod xserver;
pub mod xterm;

use std::time::Instant;

use fernsicht_input::{
    EnigoBackend, EnigoConfig, HostInput, Injector, InputEvent, Outcome, RateLimit, ViewerId,
    x11_display_layout,
};

use xserver::Xvfb;

/// The host side as the app builds it, injecting into `xvfb` only: enigo gets
/// the display name explicitly, so tests running in parallel threads of one
/// process each talk to their own server and never read `$DISPLAY`.
pub fn host_on(xvfb: &Xvfb) -> HostInput<EnigoBackend> {
    let layout = x11_display_layout(Some(xvfb.display())).expect("read the monitor layout");
    let backend = EnigoBackend::new(&EnigoConfig {
        x11_display: Some(xvfb.display().to_owned()),
        ..EnigoConfig::default()
    })
    .expect("connect enigo to Xvfb");
    HostInput::new(Injector::new(backend, layout), RateLimit::default())
}

/// Sends events through the wire form and the host, as the session would,
/// and checks each was injected.
pub fn send_all(host: &mut HostInput<EnigoBackend>, viewer: ViewerId, events: &[InputEvent]) {
    for event in events {
        let bytes = event.to_bytes().expect("encode");
        let event = InputEvent::from_bytes(&bytes).expect("decode");
        let outcome = host
            .handle(viewer, event.clone(), Instant::now())
            .unwrap_or_else(|e| panic!("{event:?}: {e}"));
        assert_eq!(outcome, Outcome::Injected, "{event:?}");
    }
}
