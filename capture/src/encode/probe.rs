//! Finds an encoder that really works on this machine.
//!
//! FFmpeg lists hardware encoders whether or not there is hardware behind
//! them, so listing proves nothing: each candidate is opened at the real
//! size and must turn a test picture into H.264 before it is trusted. The
//! first that does wins; openh264 is the fallback that always works.

use std::time::Duration;

use super::{EncodeError, EncodedFrame, Encoder, EncoderKind, EncoderSettings, OpenH264Encoder};
use crate::convert::I420Frame;

/// One encoder to try, with an optional device: the VA-API render node
/// (e.g. `/dev/dri/renderD128`) or the NVENC GPU index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Candidate {
    /// Which encoder.
    pub kind: EncoderKind,
    /// Device to open it on; `None` for the default.
    pub device: Option<String>,
}

impl Candidate {
    /// A candidate on its default device.
    pub fn new(kind: EncoderKind) -> Self {
        Self { kind, device: None }
    }

    /// A candidate on a given device.
    pub fn on_device(kind: EncoderKind, device: impl Into<String>) -> Self {
        Self {
            kind,
            device: Some(device.into()),
        }
    }
}

/// What happened to one candidate.
#[derive(Clone, Debug)]
pub struct ProbeAttempt {
    /// The candidate.
    pub candidate: Candidate,
    /// `Ok` if it encoded the test picture, else why not.
    pub outcome: Result<(), String>,
}

/// The result of a probe: which encoder runs and why the others do not.
#[derive(Clone, Debug)]
pub struct ProbeReport {
    /// The encoder chosen.
    pub chosen: EncoderKind,
    /// Every candidate tried, in order, the chosen one last.
    pub attempts: Vec<ProbeAttempt>,
}

impl std::fmt::Display for ProbeReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "encoder: {}", self.chosen)?;
        for a in &self.attempts {
            if let Err(why) = &a.outcome {
                write!(f, "; {} unavailable ({why})", a.candidate.kind)?;
            }
        }
        Ok(())
    }
}

/// The default candidates: VA-API on every render node, then the other
/// hardware encoders of this platform.
fn default_candidates() -> Vec<Candidate> {
    let mut out = Vec::new();
    for &kind in EncoderKind::hardware_for_platform() {
        if kind == EncoderKind::Vaapi {
            let mut nodes: Vec<String> = std::fs::read_dir("/dev/dri")
                .into_iter()
                .flatten()
                .flatten()
                .map(|e| e.path().to_string_lossy().into_owned())
                .filter(|p| p.contains("renderD"))
                .collect();
            nodes.sort();
            if nodes.is_empty() {
                // Tried anyway, so the report says why there is none.
                nodes.push("/dev/dri/renderD128".to_owned());
            }
            out.extend(nodes.into_iter().map(|n| Candidate::on_device(kind, n)));
        } else {
            out.push(Candidate::new(kind));
        }
    }
    out
}

/// Probes this platform's hardware encoders, then openh264, for pictures of
/// `settings`' size; returns a ready encoder and the report.
pub fn probe(settings: EncoderSettings) -> Result<(Box<dyn Encoder>, ProbeReport), EncodeError> {
    probe_with(&default_candidates(), settings)
}

/// Like [`probe`] with an explicit list of hardware candidates; openh264 is
/// always tried last.
pub fn probe_with(
    candidates: &[Candidate],
    settings: EncoderSettings,
) -> Result<(Box<dyn Encoder>, ProbeReport), EncodeError> {
    let mut attempts = Vec::new();
    let fallback = Candidate::new(EncoderKind::OpenH264);
    for candidate in candidates.iter().chain(std::iter::once(&fallback)) {
        let outcome = try_candidate(candidate, settings);
        attempts.push(ProbeAttempt {
            candidate: candidate.clone(),
            outcome: outcome.as_ref().map(|_| ()).map_err(ToString::to_string),
        });
        if outcome.is_ok() {
            // The probed instance has seen the test picture; a fresh one
            // starts the real stream cleanly.
            let encoder = open_candidate(candidate, settings)?;
            let report = ProbeReport {
                chosen: candidate.kind,
                attempts,
            };
            return Ok((encoder, report));
        }
    }
    Err(EncodeError::Open {
        kind: EncoderKind::OpenH264,
        reason: format!("no encoder works: {attempts:?}"),
    })
}

/// Opens a candidate without testing it.
pub(crate) fn open_candidate(
    candidate: &Candidate,
    settings: EncoderSettings,
) -> Result<Box<dyn Encoder>, EncodeError> {
    match candidate.kind {
        EncoderKind::OpenH264 => Ok(Box::new(OpenH264Encoder::new(settings)?)),
        #[cfg(feature = "hardware")]
        kind => Ok(Box::new(super::ffmpeg::FfmpegEncoder::open(
            kind,
            candidate.device.as_deref(),
            settings,
        )?)),
        #[cfg(not(feature = "hardware"))]
        kind => Err(EncodeError::NotBuilt(kind)),
    }
}

/// A picture with detail everywhere, so an encoder has to produce a real
/// keyframe for it.
fn test_picture(width: u16, height: u16) -> I420Frame {
    let mut frame = I420Frame::new(width, height);
    let w = usize::from(frame.width());
    let (y, u, v) = frame.planes_mut();
    for (i, p) in y.iter_mut().enumerate() {
        *p = (16 + (i % w + i / w) % 220) as u8;
    }
    u.iter_mut()
        .enumerate()
        .for_each(|(i, p)| *p = (64 + i % 128) as u8);
    v.fill(160);
    frame
}

/// Opens the candidate and has it encode a test picture into a keyframe.
fn try_candidate(candidate: &Candidate, settings: EncoderSettings) -> Result<(), EncodeError> {
    let picture = test_picture(settings.width, settings.height);
    let kind = candidate.kind;
    let check = |frame: Option<EncodedFrame>| -> Result<(), EncodeError> {
        match frame {
            Some(f) if !f.data.is_empty() => Ok(()),
            _ => Err(EncodeError::Encode {
                kind,
                reason: "produced no output for the test picture".to_owned(),
            }),
        }
    };
    match kind {
        EncoderKind::OpenH264 => {
            let mut encoder = OpenH264Encoder::new(settings)?;
            check(encoder.encode(&picture, Duration::ZERO)?)
        }
        #[cfg(feature = "hardware")]
        _ => {
            let mut encoder =
                super::ffmpeg::FfmpegEncoder::open(kind, candidate.device.as_deref(), settings)?;
            match encoder.encode(&picture, Duration::ZERO)? {
                Some(f) => check(Some(f)),
                None => {
                    // Some hardware encoders hold the first picture back
                    // until they are flushed.
                    let rest = encoder.drain()?;
                    check((!rest.is_empty()).then_some(EncodedFrame {
                        data: rest,
                        is_keyframe: true,
                        width: settings.width,
                        height: settings.height,
                        timestamp: Duration::ZERO,
                    }))
                }
            }
        }
        #[cfg(not(feature = "hardware"))]
        _ => Err(EncodeError::NotBuilt(kind)),
    }
}
