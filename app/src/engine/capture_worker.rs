//! The capture pipeline on a thread of its own.
//!
//! `Pipeline` is driven by blocking calls, so one thread owns it: it passes
//! each encoded frame to the engine through a one-place channel (a busy
//! engine makes the pipeline skip pictures, never queue them) and applies
//! the engine's keyframe and bit rate requests between frames.

use fernsicht_capture::{EncodedFrame, EncoderChoice, Pipeline, PipelineConfig};
use std::sync::mpsc;
use std::time::Duration;
use tokio::sync::{mpsc as tmpsc, oneshot};

/// How long the worker waits for a frame before it looks at its commands.
const POLL: Duration = Duration::from_millis(10);

pub enum Command {
    Keyframe,
    Bitrate(u32),
}

pub enum Output {
    Frame(EncodedFrame),
    /// The pipeline stopped (display gone, encoder failure).
    Failed(String),
}

/// What the worker reports once the pipeline runs.
pub struct Started {
    /// Which encoder runs and why the others did not.
    pub encoder_report: String,
    pub encoder: String,
}

/// Controls a running capture thread; dropping it stops the thread.
pub struct CaptureWorker {
    commands: mpsc::Sender<Command>,
}

impl CaptureWorker {
    /// Starts capturing `config.display_index` of `config.x_display`.
    /// Opening the display and probing encoders takes a moment: the result
    /// arrives on the returned channel.
    pub fn spawn(
        config: PipelineConfig,
        frames: tmpsc::Sender<Output>,
    ) -> (CaptureWorker, oneshot::Receiver<Result<Started, String>>) {
        let (cmd_tx, cmd_rx) = mpsc::channel();
        let (ready_tx, ready_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("capture-worker".into())
            .spawn(move || run(config, cmd_rx, frames, ready_tx))
            .map(|_| ())
            .unwrap_or_else(|e| tracing::error!(error = %e, "cannot start the capture thread"));
        (CaptureWorker { commands: cmd_tx }, ready_rx)
    }

    pub fn request_keyframe(&self) {
        let _ = self.commands.send(Command::Keyframe);
    }

    pub fn set_bitrate(&self, bps: u32) {
        let _ = self.commands.send(Command::Bitrate(bps));
    }
}

fn run(
    config: PipelineConfig,
    commands: mpsc::Receiver<Command>,
    frames: tmpsc::Sender<Output>,
    ready: oneshot::Sender<Result<Started, String>>,
) {
    let pipeline = match Pipeline::start(config) {
        Ok(p) => p,
        Err(e) => {
            let _ = ready.send(Err(fernsicht_net::error_chain(&e)));
            return;
        }
    };
    let report = pipeline.encoder_report();
    let _ = ready.send(Ok(Started {
        encoder_report: report.to_string(),
        encoder: report.chosen.name().to_owned(),
    }));
    loop {
        loop {
            match commands.try_recv() {
                Ok(Command::Keyframe) => pipeline.request_keyframe(),
                Ok(Command::Bitrate(bps)) => pipeline.set_bitrate(bps),
                Err(mpsc::TryRecvError::Empty) => break,
                // The engine dropped its worker: stop.
                Err(mpsc::TryRecvError::Disconnected) => return,
            }
        }
        match pipeline.recv_timeout(POLL) {
            Ok(Some(frame)) => {
                if frames.blocking_send(Output::Frame(frame)).is_err() {
                    return;
                }
            }
            Ok(None) => {}
            Err(e) => {
                let _ = frames.blocking_send(Output::Failed(fernsicht_net::error_chain(&e)));
                return;
            }
        }
    }
}

/// The pipeline settings the host uses for display `index`.
pub fn pipeline_config(
    x_display: Option<String>,
    index: usize,
    bitrate_bps: u32,
    max_fps: f32,
) -> PipelineConfig {
    PipelineConfig {
        x_display,
        display_index: index,
        bitrate_bps,
        max_fps,
        encoder: EncoderChoice::Probe,
    }
}
