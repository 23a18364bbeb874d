//! Opening and sealing one viewer's frames, and sending them on its path,
//! with failures that end that viewer only or the whole session.

use super::*;

/// How handling one viewer's frame can fail: only that viewer's session, or
/// the link to the relay as a whole.
pub(super) enum ViewerFailure {
    Handshake(HandshakeError),
    Stream(String),
    /// The viewer's direct path broke; the relay may carry on.
    DirectBroke(String),
    Link(ClientError),
}

impl From<HandshakeError> for ViewerFailure {
    fn from(e: HandshakeError) -> Self {
        ViewerFailure::Handshake(e)
    }
}

impl From<ClientError> for ViewerFailure {
    fn from(e: ClientError) -> Self {
        ViewerFailure::Link(e)
    }
}

pub(super) fn open(link: &mut Link, frame: Frame) -> Result<Message, ViewerFailure> {
    let plain = link.opener.open(frame).map_err(|e| {
        ViewerFailure::Stream(format!(
            "damaged or tampered stream: {}",
            crate::error_chain(&e)
        ))
    })?;
    Message::decode(&plain).map_err(|e| ViewerFailure::Stream(e.to_string()))
}

pub(super) fn seal(link: &mut Link, msg: &Message) -> Result<Frame, ViewerFailure> {
    link.resume
        .seal(&mut link.sealer, msg.encode())
        .map_err(|e| ViewerFailure::Stream(e.to_string()))
}

/// Sends a viewer's sealed frame on its path. A broken direct path fails
/// only that viewer; a broken relay link fails the session. While the
/// viewer resumes, the frame only waits in its resend queue.
pub(super) async fn send(
    relay: &LinkWriter,
    link: &Link,
    frame: Frame,
) -> Result<(), ViewerFailure> {
    if link.resume.resuming.is_some() && link.direct.is_none() {
        return Ok(());
    }
    match link.out(relay).send_owned(frame).await {
        Ok(()) => Ok(()),
        Err(_) if link.direct.is_some() => Err(ViewerFailure::DirectBroke(
            "the direct connection to the viewer broke".into(),
        )),
        Err(e) => Err(ViewerFailure::Link(e)),
    }
}

/// [`send`] where only a broken relay link matters (the frame goes on the
/// relay, or a broken direct path shows up at the next read).
pub(super) async fn send_or_fail(
    relay: &LinkWriter,
    link: &Link,
    frame: Frame,
) -> Result<(), ClientError> {
    match send(relay, link, frame).await {
        Err(ViewerFailure::Link(e)) => Err(e),
        _ => Ok(()),
    }
}

pub(super) fn seal_or_err(link: &mut Link, msg: &Message) -> Result<Frame, ClientError> {
    Ok(link.resume.seal(&mut link.sealer, msg.encode())?)
}
