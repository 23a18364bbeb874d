//! Viewer key pairs made ahead of time.
//!
//! RSA-2048 key generation takes 0.1–0.5 s. The app starts one at launch on
//! a blocking thread, so that when the helper presses Connect the key is
//! (usually) ready; each session takes the prepared key and a new one is
//! started for the next session. A key is never used twice.

use fernsicht_net::handshake::ViewerKey;
use std::sync::{Mutex, OnceLock};
use std::thread::JoinHandle;

type Pending = JoinHandle<Result<ViewerKey, String>>;

fn slot() -> &'static Mutex<Option<Pending>> {
    static SLOT: OnceLock<Mutex<Option<Pending>>> = OnceLock::new();
    SLOT.get_or_init(|| Mutex::new(None))
}

fn generate() -> Pending {
    std::thread::spawn(|| ViewerKey::generate(&mut rand::rngs::OsRng).map_err(|e| e.to_string()))
}

/// Starts generating the next viewer key in the background, if none is
/// under way.
pub fn prewarm_viewer_key() {
    let mut s = slot().lock().unwrap_or_else(|p| p.into_inner());
    if s.is_none() {
        *s = Some(generate());
    }
}

/// Takes the prepared key (waiting for it if it is still being made) and
/// starts the next one. Blocking: call from a blocking thread.
pub(super) fn take_viewer_key() -> Result<ViewerKey, String> {
    let pending = {
        let mut s = slot().lock().unwrap_or_else(|p| p.into_inner());
        let pending = s.take().unwrap_or_else(generate);
        *s = Some(generate());
        pending
    };
    pending
        .join()
        .map_err(|_| "key generation failed".to_owned())?
}
