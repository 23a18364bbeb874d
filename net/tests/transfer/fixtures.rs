//! The transfer tests' fixtures: a host and a viewer with their transfer
//! services on a test relay, a link that counts and damages chunks, files
//! and what to wait for.

use crate::common::*;
use fernsicht_net::client::{
    HostEvent, HostHandle, HostOptions, ViewerEvent, ViewerHandle, ViewerSession, start_host,
};
use fernsicht_net::direct::DirectOptions;
use fernsicht_net::handshake::HandshakeConfig;
use fernsicht_net::message::{Message, Permission};
use fernsicht_net::transfer::service::{Outcome, ServiceConfig, TransferEvent, TransferService};
use fernsicht_net::transfer::store::StoreRequest;
use fernsicht_net::transfer::{Entry, EntryKind, Link, Manifest, TransferMsg};
use fernsicht_net::{ChannelId, SessionNumber};
use rand::{RngCore, SeedableRng};
use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use tokio::sync::mpsc;

pub fn random_file(path: &Path, len: usize, seed: u64) -> Vec<u8> {
    let mut data = vec![0u8; len];
    rand_chacha::ChaCha8Rng::seed_from_u64(seed).fill_bytes(&mut data);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, &data).unwrap();
    data
}

pub fn b3(path: &Path) -> [u8; 32] {
    *blake3::hash(&std::fs::read(path).unwrap()).as_bytes()
}

/// The viewer's link, seen by the test: which chunks went out, and
/// optionally one chunk damaged once on its way (as a fault between the
/// sender's disk and the wire would, out of reach of the record layer).
pub struct Spy {
    pub inner: ViewerHandle,
    pub sent: Mutex<Vec<u64>>,
    pub flip: Mutex<Option<u64>>,
}

impl Link for Spy {
    fn send(&self, peer: ChannelId, mut message: Message) {
        if let Message::Transfer(TransferMsg::Chunk { chunk, data, .. }) = &mut message {
            self.sent.lock().unwrap().push(*chunk);
            let mut flip = self.flip.lock().unwrap();
            if *flip == Some(*chunk) {
                data[100] ^= 0x20;
                *flip = None;
            }
        }
        Link::send(&self.inner, peer, message);
    }

    fn store(&self, request: StoreRequest) {
        Link::store(&self.inner, request);
    }
}

pub struct Host {
    pub handle: HostHandle,
    pub number: SessionNumber,
    pub service: TransferService,
    pub transfers: mpsc::UnboundedReceiver<TransferEvent>,
    pub events: mpsc::UnboundedReceiver<HostEvent>,
}

pub async fn host(relay: &TestRelay, inbox: Option<&Path>) -> Host {
    host_with(relay, inbox, None).await
}

/// A host that may also take direct connections.
pub async fn host_with(
    relay: &TestRelay,
    inbox: Option<&Path>,
    direct: Option<DirectOptions>,
) -> Host {
    let target = relay.target();
    let mut session = start_host(HostOptions {
        family: Vec::new(),
        relay: target.addr,
        connect: target.connect,
        handshake: HandshakeConfig::default(),
        direct,
    })
    .await
    .unwrap();
    let (service, transfers) = TransferService::spawn(
        Arc::new(session.handle.clone()),
        ServiceConfig {
            auto_accept: inbox.map(Path::to_path_buf),
            ..ServiceConfig::default()
        },
    );
    let (tx, events) = mpsc::unbounded_channel();
    let svc = service.clone();
    tokio::spawn(async move {
        while let Some(e) = session.events.recv().await {
            if let Some(e) = svc.host_event(e) {
                let _ = tx.send(e);
            }
        }
    });
    Host {
        handle: session.handle,
        number: session.number,
        service,
        transfers,
        events,
    }
}

pub struct Viewer {
    /// Names the host in this viewer's transfer events.
    pub channel: ChannelId,
    pub handle: ViewerHandle,
    pub spy: Arc<Spy>,
    pub service: TransferService,
    pub transfers: mpsc::UnboundedReceiver<TransferEvent>,
    pub events: mpsc::UnboundedReceiver<ViewerEvent>,
    /// Chunks the host acknowledged to this viewer.
    pub acked: Arc<Mutex<HashSet<u64>>>,
    /// Why the host refused offers, as it told this viewer.
    pub refusals: mpsc::UnboundedReceiver<String>,
}

/// Joins through `relay`, is allowed by the host, and starts a
/// transfer service.
pub async fn viewer(host: &mut Host, relay: &Target, inbox: Option<&Path>) -> Viewer {
    let mut session: ViewerSession = crate::common::viewer(relay, host.number, "Ada", None).await;
    viewer_code(&mut session).await;
    let HostEvent::ViewerRequest { viewer, .. } = until(&mut host.events, |e| {
        matches!(e, HostEvent::ViewerRequest { .. })
    })
    .await
    else {
        unreachable!()
    };
    host.handle.decide(viewer, Some(Permission::Control));
    until(&mut session.events, |e| {
        matches!(e, ViewerEvent::Allowed(_))
    })
    .await;
    let spy = Arc::new(Spy {
        inner: session.handle.clone(),
        sent: Mutex::new(Vec::new()),
        flip: Mutex::new(None),
    });
    let (service, transfers) = TransferService::spawn(
        spy.clone(),
        ServiceConfig {
            auto_accept: inbox.map(Path::to_path_buf),
            ..ServiceConfig::default()
        },
    );
    let (tx, events) = mpsc::unbounded_channel();
    let svc = service.clone();
    let acked = Arc::new(Mutex::new(HashSet::new()));
    let seen = acked.clone();
    let me = session.channel;
    let (refused_tx, refusals) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(e) = session.events.recv().await {
            match &e {
                ViewerEvent::Message(Message::Transfer(TransferMsg::Ack { chunk, .. })) => {
                    seen.lock().unwrap().insert(*chunk);
                }
                ViewerEvent::Message(Message::Transfer(TransferMsg::Refuse { reason, .. })) => {
                    let _ = refused_tx.send(reason.to_string());
                }
                _ => {}
            }
            if let Some(e) = svc.viewer_event(me, e) {
                let _ = tx.send(e);
            }
        }
    });
    Viewer {
        channel: me,
        handle: session.handle,
        spy,
        service,
        transfers,
        events,
        acked,
        refusals,
    }
}

/// Waits for the transfer to finish (or fail: a test failure).
pub async fn finished(rx: &mut mpsc::UnboundedReceiver<TransferEvent>) -> Outcome {
    match until(rx, |e| {
        matches!(
            e,
            TransferEvent::Finished { .. } | TransferEvent::Failed { .. }
        )
    })
    .await
    {
        TransferEvent::Finished { outcome, .. } => outcome,
        other => panic!("transfer failed: {other:?}"),
    }
}

pub fn offer(path: &[u8], size: u64) -> Message {
    let mut manifest = Manifest {
        chunk_log2: 18,
        entries: vec![Entry {
            path: path.to_vec(),
            kind: EntryKind::File {
                size: 5,
                hash: *blake3::hash(b"hello").as_bytes(),
                chunks: vec![*blake3::hash(b"hello").as_bytes()],
            },
        }],
    };
    if let EntryKind::File { size: s, .. } = &mut manifest.entries[0].kind {
        *s = size;
    }
    Message::Transfer(TransferMsg::Offer { manifest })
}

/// Every file under `dir`, read whole.
pub fn files_under(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push((p.clone(), std::fs::read(&p).unwrap()));
            }
        }
    }
    out
}

/// The events of one transfer up to its end, the end returned.
pub async fn failed(rx: &mut mpsc::UnboundedReceiver<TransferEvent>) -> String {
    match until(rx, |e| {
        matches!(
            e,
            TransferEvent::Finished { .. } | TransferEvent::Failed { .. }
        )
    })
    .await
    {
        TransferEvent::Failed { reason, .. } => reason,
        other => panic!("the transfer was not stopped: {other:?}"),
    }
}

/// Waits until `dir` holds no partial state (the writer thread removes it
/// after the service said the transfer is over).
pub async fn no_partial_state(dir: &Path) {
    let partial = dir.join(".fernsicht-partial");
    let deadline = std::time::Instant::now() + WAIT;
    while partial.exists() && std::time::Instant::now() < deadline {
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert!(!partial.exists(), "partial files outlived the cancel");
}

/// Chunks the viewer's reader sends after a transfer was stopped: none,
/// once the one it may have been reading is out.
pub async fn no_more_chunks(spy: &Spy) {
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let settled = spy.sent.lock().unwrap().len();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(
        spy.sent.lock().unwrap().len(),
        settled,
        "chunks still went out after the cancel"
    );
}
