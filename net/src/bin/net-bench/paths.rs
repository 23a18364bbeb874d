//! The paths frames take in the bench: straight over loopback TCP, through
//! plain forwarders, through a relay over each kind of link; streaming and
//! round trips on them.

use super::*;

#[derive(Debug, Clone)]
pub(crate) enum Path {
    /// Sender connected straight to the receiver.
    Direct,
    /// A QUIC connection as the punched direct path has it.
    Quic,
    /// A `tokio::io::copy` task in between: the plainest forwarder (it
    /// moves 8 KiB per read).
    Copy,
    /// The same with a 64 KiB read buffer (`tokio::io::copy_buf`), the
    /// relay's own read buffer size.
    CopyBuf,
    /// A `Relay` task in between, host to viewer, both linked to it the way
    /// `link` says.
    Relay(Link),
}

/// How host and viewer reach the relay: the ways `connect_relay` tries.
#[derive(Debug, Clone)]
pub(crate) enum Link {
    /// TLS on the relay's own port.
    Tls,
    /// A WebSocket over TLS.
    WebSocket,
    /// A WebSocket over TLS through an HTTP proxy (CONNECT) at this URL.
    Proxy(String),
}

impl Link {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Link::Tls => "relay, TLS link",
            Link::WebSocket => "relay, WebSocket link",
            Link::Proxy(_) => "relay, WebSocket link via tinyproxy",
        }
    }
}

impl Path {
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Path::Direct => "loopback TCP, direct (as host↔viewer direct path)",
            Path::Quic => "loopback QUIC, direct (as the punched direct path)",
            Path::Copy => "loopback TCP via tokio::io::copy",
            Path::CopyBuf => "loopback TCP via copy_buf, 64 KiB buffer",
            Path::Relay(link) => link.label(),
        }
    }
}

/// Bytes a round moved (sealed, or delivered to the receiver) and how long
/// it took.
pub(crate) struct Moved {
    pub(crate) bytes: u64,
    pub(crate) elapsed: Duration,
}

/// Streams at least [`STREAM_BYTES`] of sealed frames of `size` plaintext
/// bytes along `path`.
pub(crate) async fn forward(path: &Path, key: &ViewerKey, size: usize) -> Result<Moved> {
    match path {
        Path::Direct => {
            let frames = sealed_frames(key, size, ChannelId(1))?;
            let listener = TcpListener::bind(loopback()).await?;
            let sender = connect(listener.local_addr()?).await?;
            let (receiver, _) = listener.accept().await?;
            receiver.set_nodelay(true)?;
            stream(FrameWriter::new(sender), FrameReader::new(receiver), frames).await
        }
        Path::Quic => super::quic::quic_forward(key, size).await,
        Path::Copy | Path::CopyBuf => {
            let copy_path = path.clone();
            let frames = sealed_frames(key, size, ChannelId(1))?;
            let to_receiver = TcpListener::bind(loopback()).await?;
            let to_forwarder = TcpListener::bind(loopback()).await?;
            let receiver_addr = to_receiver.local_addr()?;
            let forwarder_addr = to_forwarder.local_addr()?;
            let forwarder = tokio::spawn(async move {
                let (mut inbound, _) = to_forwarder.accept().await?;
                inbound.set_nodelay(true)?;
                let mut outbound = connect(receiver_addr).await?;
                let copied = match copy_path {
                    Path::CopyBuf => {
                        let mut inbound = BufReader::with_capacity(64 * KIB, inbound);
                        tokio::io::copy_buf(&mut inbound, &mut outbound).await?
                    }
                    _ => tokio::io::copy(&mut inbound, &mut outbound).await?,
                };
                anyhow::Ok(copied)
            });
            let sender = connect(forwarder_addr).await?;
            let (receiver, _) = to_receiver.accept().await?;
            receiver.set_nodelay(true)?;
            let moved = stream(FrameWriter::new(sender), FrameReader::new(receiver), frames).await;
            forwarder.await??;
            moved
        }
        Path::Relay(link) => {
            let pair = RelayPair::open(link).await?;
            let frames = sealed_frames(key, size, pair.channel)?;
            let moved = stream(pair.host_writer, pair.viewer_reader, frames).await;
            drop((pair.host_reader, pair.viewer_writer));
            pair.relay.shutdown().await;
            moved
        }
    }
}

pub(crate) type LinkRead = tokio::io::ReadHalf<fernsicht_net::transport::BoxStream>;
pub(crate) type LinkWrite = tokio::io::WriteHalf<fernsicht_net::transport::BoxStream>;

/// A host and a viewer on raw links, speaking the relay protocol through
/// the public API: registered and joined, ready to stream.
pub(crate) struct RelayPair {
    pub(crate) relay: fernsicht_net::relay::RelayHandle,
    pub(crate) channel: ChannelId,
    pub(crate) host_reader: FrameReader<LinkRead>,
    pub(crate) host_writer: FrameWriter<LinkWrite>,
    pub(crate) viewer_reader: FrameReader<LinkRead>,
    pub(crate) viewer_writer: FrameWriter<LinkWrite>,
    pub(crate) _scratch: Scratch,
}

impl RelayPair {
    pub(crate) async fn open(link: &Link) -> Result<RelayPair> {
        let scratch = Scratch::new("relay")?;
        let relay = Relay::bind(RelayConfig::new(loopback(), scratch.0.clone()))
            .await
            .context("starting the relay")?
            .spawn();

        let (host_read, host_write) = relay_link(&relay, link).await?;
        let (mut host_reader, mut host_writer) =
            (FrameReader::new(host_read), FrameWriter::new(host_write));
        host_writer
            .write_frame(
                &ClientRequest::Register {
                    protocol: RELAY_PROTOCOL,
                }
                .to_frame(),
            )
            .await?;
        let number = match relay_event(&mut host_reader).await? {
            RelayEvent::Registered { number } => number,
            other => bail!("the relay answered the registration with {other:?}"),
        };

        let (viewer_read, viewer_write) = relay_link(&relay, link).await?;
        let (mut viewer_reader, mut viewer_writer) = (
            FrameReader::new(viewer_read),
            FrameWriter::new(viewer_write),
        );
        viewer_writer
            .write_frame(
                &ClientRequest::Join {
                    protocol: RELAY_PROTOCOL,
                    number,
                }
                .to_frame(),
            )
            .await?;
        let channel = match relay_event(&mut viewer_reader).await? {
            RelayEvent::Joined { channel } => channel,
            other => bail!("the relay answered the join with {other:?}"),
        };
        match relay_event(&mut host_reader).await? {
            RelayEvent::ViewerJoined { channel: c } if c == channel => {}
            other => bail!("the relay told the host {other:?} instead of the join"),
        }
        Ok(RelayPair {
            relay,
            channel: ChannelId(channel),
            host_reader,
            host_writer,
            viewer_reader,
            viewer_writer,
            _scratch: scratch,
        })
    }

    /// Round trips through the relay (see [`round_trips`]).
    pub(crate) async fn round_trips(
        mut self,
        key: &ViewerKey,
        count: usize,
    ) -> Result<Vec<Duration>> {
        let frames = sealed_frames(key, 256, self.channel)?;
        let times = round_trips(
            (&mut self.host_writer, &mut self.host_reader),
            (&mut self.viewer_writer, &mut self.viewer_reader),
            &frames,
            count,
        )
        .await?;
        self.relay.shutdown().await;
        Ok(times)
    }
}

/// Round trips of one small sealed frame, host → viewer and back: the
/// latency a path adds to every acknowledgement.
pub(crate) async fn round_trips<HW, HR, VW, VR>(
    host: (&mut FrameWriter<HW>, &mut FrameReader<HR>),
    viewer: (&mut FrameWriter<VW>, &mut FrameReader<VR>),
    frames: &[Vec<u8>],
    count: usize,
) -> Result<Vec<Duration>>
where
    HW: AsyncWrite + Unpin,
    HR: AsyncRead + Unpin,
    VW: AsyncWrite + Unpin,
    VR: AsyncRead + Unpin,
{
    let (host_writer, host_reader) = host;
    let (viewer_writer, viewer_reader) = viewer;
    let mut times = Vec::with_capacity(count);
    for i in 0..count {
        let frame = &frames[i % frames.len()];
        let start = Instant::now();
        host_writer.write_raw(frame).await?;
        let there = read_data(viewer_reader)
            .await?
            .context("the viewer's side closed")?;
        viewer_writer.write_raw(&there).await?;
        let back = read_data(host_reader)
            .await?
            .context("the host's side closed")?;
        times.push(start.elapsed());
        if back.len() != frame.len() {
            bail!(
                "the echo came back {} bytes long, not {}",
                back.len(),
                frame.len()
            );
        }
    }
    Ok(times)
}

/// Round trips on a direct TCP connection between host and viewer, as
/// the direct path has it after its proof.
pub(crate) async fn direct_round_trips(key: &ViewerKey, count: usize) -> Result<Vec<Duration>> {
    let listener = TcpListener::bind(loopback()).await?;
    let viewer = connect(listener.local_addr()?).await?;
    let (host, _) = listener.accept().await?;
    host.set_nodelay(true)?;
    let (hr, hw) = host.into_split();
    let (vr, vw) = viewer.into_split();
    let frames = sealed_frames(key, 256, ChannelId(1))?;
    round_trips(
        (&mut FrameWriter::new(hw), &mut FrameReader::new(hr)),
        (&mut FrameWriter::new(vw), &mut FrameReader::new(vr)),
        &frames,
        count,
    )
    .await
}

/// The next frame that is not the relay's own (a resume token, a ping),
/// as wire bytes; `None` at the end of the stream.
pub(crate) async fn read_data<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<Option<Vec<u8>>> {
    loop {
        match reader.read_raw().await? {
            Some((header, _)) if header.frame_type == fernsicht_net::FrameType::Control => {}
            other => return Ok(other.map(|(_, raw)| raw)),
        }
    }
}

/// The relay's next event, past the resume token it hands out (which a
/// bench that never reconnects does not need).
pub(crate) async fn relay_event<R: AsyncRead + Unpin>(
    reader: &mut FrameReader<R>,
) -> Result<RelayEvent> {
    loop {
        let frame = tokio::time::timeout(Duration::from_secs(10), reader.read_frame())
            .await
            .context("the relay did not answer within 10 s")??
            .context("the relay closed the connection")?;
        match RelayEvent::from_frame(&frame)? {
            RelayEvent::ResumeToken { .. } => {}
            event => return Ok(event),
        }
    }
}

/// Sends `frames` round and round until [`STREAM_BYTES`] are out, never more
/// than [`WINDOW`] ahead of the receiver; returns when the receiver has read
/// them all.
pub(crate) async fn stream<W, R>(
    mut writer: FrameWriter<W>,
    mut reader: FrameReader<R>,
    frames: Vec<Vec<u8>>,
) -> Result<Moved>
where
    W: AsyncWrite + Unpin + Send + 'static,
    R: AsyncRead + Unpin,
{
    let (received_tx, mut received_rx) = watch::channel(0u64);
    let start = Instant::now();
    let sender = tokio::spawn(async move {
        let mut sent = 0u64;
        for frame in frames.iter().cycle() {
            if sent >= STREAM_BYTES {
                break;
            }
            while sent.saturating_sub(*received_rx.borrow_and_update()) > WINDOW {
                received_rx.changed().await?;
            }
            writer.write_raw(frame).await?;
            sent += frame.len() as u64;
        }
        writer.shutdown().await?;
        anyhow::Ok(sent)
    });
    let mut received = 0u64;
    while received < STREAM_BYTES {
        let Some(raw) = read_data(&mut reader).await? else {
            bail!("the stream ended after {received} bytes");
        };
        received += raw.len() as u64;
        received_tx.send_replace(received);
    }
    let elapsed = start.elapsed();
    let sent = sender.await??;
    if sent != received {
        bail!("sent {sent} bytes but received {received}");
    }
    Ok(Moved {
        bytes: received,
        elapsed,
    })
}

/// Trusts exactly this relay, on its main port only.
pub(crate) fn pinned(fingerprint: fernsicht_net::tls::Fingerprint) -> ConnectOptions {
    ConnectOptions {
        trust: fernsicht_net::tls::RelayTrust::Pinned(fingerprint),
        proxy: fernsicht_net::transport::proxy::ProxySetting::Off,
        fallback_ports: Vec::new(),
        ..Default::default()
    }
}

/// A link to the relay as clients have it, split in halves. The
/// WebSocket kinds are told a dead main port, so that they get there the
/// way a client behind a firewall does.
pub(crate) async fn relay_link(
    relay: &fernsicht_net::relay::RelayHandle,
    link: &Link,
) -> Result<(LinkRead, LinkWrite)> {
    let mut options = pinned(relay.fingerprint);
    let mut addr: fernsicht_net::client::RelayAddr = relay.addr.into();
    if !matches!(link, Link::Tls) {
        let dead = std::net::TcpListener::bind(loopback())?
            .local_addr()?
            .port();
        addr = fernsicht_net::client::RelayAddr::new("127.0.0.1", dead);
        options.fallback_ports = vec![relay.addr.port()];
    }
    if let Link::Proxy(url) = link {
        options.proxy = fernsicht_net::transport::proxy::ProxySetting::Url(url.clone());
    }
    let opened = fernsicht_net::transport::connect::connect_relay(&addr, &options).await?;
    let want_proxy = matches!(link, Link::Proxy(_));
    match (&opened.path, link) {
        (fernsicht_net::transport::connect::LinkPath::Tls { .. }, Link::Tls) => {}
        (fernsicht_net::transport::connect::LinkPath::WebSocket { proxy, .. }, _)
            if proxy.is_some() == want_proxy && !matches!(link, Link::Tls) => {}
        (got, _) => bail!("wanted a {} but connected by {got}", link.label()),
    }
    Ok(tokio::io::split(opened.stream))
}

/// A tinyproxy on loopback for the proxied link, stopped when dropped.
pub(crate) struct Tinyproxy {
    pub(crate) child: std::process::Child,
    pub(crate) url: String,
    pub(crate) _dir: Scratch,
}

impl Tinyproxy {
    pub(crate) fn start() -> Result<Tinyproxy> {
        let dir = Scratch::new("tinyproxy")?;
        let port = std::net::TcpListener::bind(loopback())?
            .local_addr()?
            .port();
        let conf = dir.0.join("tinyproxy.conf");
        std::fs::write(
            &conf,
            format!(
                "Port {port}\nListen 127.0.0.1\nTimeout 600\nMaxClients 20\n\
                 LogLevel Error\nBasicAuth bench bench\nAllow 127.0.0.1\n"
            ),
        )?;
        let child = std::process::Command::new("tinyproxy")
            .arg("-d")
            .arg("-c")
            .arg(&conf)
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .context("starting tinyproxy (apt install tinyproxy)")?;
        let deadline = Instant::now() + Duration::from_secs(5);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if Instant::now() > deadline {
                bail!("tinyproxy did not listen on port {port}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Tinyproxy {
            child,
            url: format!("http://bench:bench@127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

impl Drop for Tinyproxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub(crate) async fn connect(addr: SocketAddr) -> Result<TcpStream> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

pub(crate) fn loopback() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 0))
}
