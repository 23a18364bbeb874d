//! The punched QUIC path on loopback: the host's endpoint and the viewer's,
//! set up as the session has them (fresh certificate pinned by the viewer,
//! path-key proof on the stream), without the punching that loopback does
//! not need.

use super::*;
use fernsicht_net::direct::{Accepted, PathKey, Registry};
use fernsicht_net::punch::{HostPunch, ViewerPunch};
use fernsicht_net::transport::BoxStream;

/// A proven QUIC path: the viewer's end and the host's.
pub(crate) async fn quic_pair() -> Result<(BoxStream, BoxStream)> {
    let channel = ChannelId(1);
    let key = PathKey::from_bytes([7; 32]);
    let registry = Registry::default();
    registry.insert(channel, key.clone());
    let (accepted_tx, mut accepted) = tokio::sync::mpsc::unbounded_channel::<Accepted>();
    let (_host, offer) = HostPunch::bind_local(loopback(), registry, accepted_tx).await?;
    let viewer = ViewerPunch::bind_local(loopback())?;
    let (go_tx, go) = tokio::sync::oneshot::channel();
    let _ = go_tx.send(());
    let (viewer_end, _) = viewer.connect(&offer, go, channel, &key).await?;
    let host_end = accepted
        .recv()
        .await
        .context("the host's endpoint accepted nothing")?
        .stream;
    Ok((Box::new(viewer_end), host_end))
}

/// Streams sealed frames of `size` bytes host → viewer on a QUIC path.
pub(crate) async fn quic_forward(key: &ViewerKey, size: usize) -> Result<Moved> {
    let frames = sealed_frames(key, size, ChannelId(1))?;
    let (viewer_end, host_end) = quic_pair().await?;
    let (viewer_read, _viewer_write) = tokio::io::split(viewer_end);
    let (_host_read, host_write) = tokio::io::split(host_end);
    stream(
        FrameWriter::new(host_write),
        FrameReader::new(viewer_read),
        frames,
    )
    .await
}

/// Round trips of a small frame on a QUIC path.
pub(crate) async fn quic_round_trips(key: &ViewerKey, count: usize) -> Result<Vec<Duration>> {
    let (viewer_end, host_end) = quic_pair().await?;
    let (vr, vw) = tokio::io::split(viewer_end);
    let (hr, hw) = tokio::io::split(host_end);
    let frames = sealed_frames(key, 256, ChannelId(1))?;
    round_trips(
        (&mut FrameWriter::new(hw), &mut FrameReader::new(hr)),
        (&mut FrameWriter::new(vw), &mut FrameReader::new(vr)),
        &frames,
        count,
    )
    .await
}
