//! The window's session: one thread that loads the model, owns the running pipeline and saves
//! screenshots, so the UI thread never loads a model, opens a source, joins a thread or encodes a
//! PNG.
//!
//! ```text
//! UI --Command (bounded, try_send)--> [shiftlive-session] --frames (bounded, newest kept)--> UI
//!                                        owns Pipeline        --messages (bounded)---------> UI
//!                                        (capture + infer)    request_repaint() after each
//! ```
//!
//! Frames go to the UI through a queue of 64 that keeps the newest: when the window does not draw
//! (minimised), the oldest result is dropped and counted (`frames_lost`); a frame the stride left
//! out (a picture, shown but not processed) is dropped rather than push a result out. Messages (errors,
//! warnings, the model, the summary) have their own queue, so a flood of frames never pushes an
//! error out. A new source or model means a new pipeline: the old one is finished (its threads
//! joined) and its recogniser reused.
//!
//! With several sources the session runs a `BatchPipeline` instead (one recogniser of as many
//! streams, which the loader gives): results and pictures carry their stream's index, a stream's
//! end and warnings are messages of their own, and controls go to every stream or to one (a reset
//! of its rows).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender, TrySendError, bounded, never, select};

use crate::capture::Source;
use crate::errors::chain;
use crate::online::Recognizer;
use crate::pipeline::{
    BatchPipeline, Control, Event, Pipeline, PipelineOptions, StreamSource, StreamsEvent, Summary,
};

use super::messages::{Command, Message, ModelInfo, ModelLoader, Origin, Shown};
use super::running::{Closed, Running};
use super::screenshot::save_png;

/// How the session starts and restarts pipelines.
pub struct SessionConfig {
    /// The first source and every setting; `source` is replaced on a switch.
    pub options: PipelineOptions,
    /// Reopenings of a live source (cameras, URIs, test patterns) opened from the window.
    pub live_retries: Option<u32>,
    pub loader: ModelLoader,
    /// `--stride`, which wins over a checkpoint's stride as it does at start.
    pub stride_flag: Option<u32>,
    /// Called after each frame or message, to wake the UI (`egui::Context::request_repaint`).
    pub repaint: Box<dyn Fn() + Send>,
}

/// The handle the UI holds; dropping it stops the pipeline and joins every thread.
pub struct Session {
    commands: Option<Sender<Command>>,
    frames: Receiver<Shown>,
    messages: Receiver<Message>,
    frames_lost: Arc<AtomicU64>,
    /// The thread gives back the summary of the pipeline that ran when it was stopped.
    thread: Option<JoinHandle<Closed>>,
}

impl Session {
    /// A session of one source, `config.options.source`.
    pub fn start(config: SessionConfig) -> std::io::Result<Self> {
        Self::start_streams(config, Vec::new())
    }

    /// A session of `streams` as one batch when there are several (the loader must give a
    /// recogniser of as many streams); of `config.options.source` alone otherwise.
    pub fn start_streams(
        config: SessionConfig,
        streams: Vec<StreamSource>,
    ) -> std::io::Result<Self> {
        let (commands, command_rx) = bounded(32);
        let (frame_tx, frames) = bounded(64);
        let (message_tx, messages) = bounded(64);
        let frames_lost = Arc::new(AtomicU64::new(0));
        let thread = SessionThread {
            config,
            commands: command_rx,
            frames: frame_tx,
            frames_rx: frames.clone(),
            messages: message_tx,
            frames_lost: frames_lost.clone(),
            model: None,
            pipeline: None,
            streams: if streams.len() > 1 {
                streams
            } else {
                Vec::new()
            },
            paused: false,
        };
        let thread = std::thread::Builder::new()
            .name("shiftlive-session".into())
            .spawn(move || thread.run())?;
        Ok(Self {
            commands: Some(commands),
            frames,
            messages,
            frames_lost,
            thread: Some(thread),
        })
    }

    /// Queues a command without waiting; false when 32 are already waiting (the UI says so).
    pub fn send(&self, command: Command) -> bool {
        self.commands
            .as_ref()
            .is_some_and(|c| c.try_send(command).is_ok())
    }

    /// The next frame to show (with its result, if it was processed), without waiting.
    pub fn try_frame(&self) -> Option<Shown> {
        self.frames.try_recv().ok()
    }

    /// The next message, without waiting.
    pub fn try_message(&self) -> Option<Message> {
        self.messages.try_recv().ok()
    }

    /// Results the UI never took because its queue was full (the window was not drawing).
    pub fn frames_lost(&self) -> u64 {
        self.frames_lost.load(Ordering::Relaxed)
    }
}

impl Session {
    /// Stops the running pipeline, joins every thread and returns the summary of the run that
    /// was still going (None when nothing ran).
    pub fn close(self) -> Option<Summary> {
        self.close_all().summary
    }

    /// As `close`, with the summary of a run of several sources.
    pub fn close_all(mut self) -> Closed {
        self.stop()
    }

    fn stop(&mut self) -> Closed {
        // A closed command channel is the session thread's signal to stop.
        self.commands = None;
        self.thread
            .take()
            .and_then(|t| t.join().ok())
            .unwrap_or_default()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The session thread's state: the model between pipelines, the running pipeline, the queues.
struct SessionThread {
    config: SessionConfig,
    commands: Receiver<Command>,
    frames: Sender<Shown>,
    /// The UI's end, to drop the oldest frame when the queue is full.
    frames_rx: Receiver<Shown>,
    messages: Sender<Message>,
    frames_lost: Arc<AtomicU64>,
    /// The model between pipelines.
    model: Option<Recognizer>,
    pipeline: Option<Running>,
    /// The sources of a batched run (empty: one source, `config.options.source`).
    streams: Vec<StreamSource>,
    paused: bool,
}

impl SessionThread {
    fn run(mut self) -> Closed {
        self.model = self.load(None);
        self.start();
        loop {
            let (one, many) = match &self.pipeline {
                Some(Running::One(p)) => (p.events().clone(), never()),
                Some(Running::Many(p)) => (never(), p.events().clone()),
                None => (never(), never()),
            };
            select! {
                recv(self.commands) -> command => match command {
                    Ok(command) => self.handle(command),
                    Err(_) => break,
                },
                recv(one) -> event => match event {
                    Ok(event) => self.forward(event),
                    // The pipeline ended without a summary (it always sends one; be safe).
                    Err(_) => self.finish(),
                },
                recv(many) -> event => match event {
                    Ok(event) => self.forward_streams(event),
                    Err(_) => self.finish(),
                },
            }
        }
        // The UI hung up: stop and join the pipeline's threads; its summary is the run's.
        self.pipeline
            .take()
            .map_or_else(Closed::default, |running| running.join().1)
    }

    fn message(&self, message: Message) {
        if let Message::Error(text) | Message::Warning(text) = &message {
            tracing::warn!("{text}");
        }
        if self.messages.try_send(message).is_err() {
            tracing::warn!("the window's message queue is full: a message was dropped");
        }
        (self.config.repaint)();
    }

    /// Queues a frame for the UI, dropping the oldest when the queue is full; a picture (a frame
    /// without a result) never pushes a result out: it is dropped itself.
    fn show(&self, mut shown: Shown) {
        loop {
            match self.frames.try_send(shown) {
                Ok(()) => return,
                Err(TrySendError::Full(Shown::Picture(_) | Shown::StreamPicture(..))) => return,
                Err(TrySendError::Full(back)) => {
                    // Keep the newest: the window shows the present, and counts the results it
                    // missed.
                    if let Ok(Shown::Result(_) | Shown::StreamResult(..)) =
                        self.frames_rx.try_recv()
                    {
                        self.frames_lost.fetch_add(1, Ordering::Relaxed);
                    }
                    shown = back;
                }
                Err(TrySendError::Disconnected(_)) => return,
            }
        }
    }

    fn forward(&mut self, event: Event) {
        match event {
            Event::Frame(result) => self.show(Shown::Result(result)),
            Event::Picture(frame) => self.show(Shown::Picture(frame)),
            Event::Warning(text) => return self.message(Message::Warning(text)),
            Event::Summary(summary) => {
                if let Some(error) = &summary.error {
                    self.message(Message::Error(error.clone()));
                }
                self.message(Message::Summary(summary));
                // The summary is the last event: join the threads and take the model back.
                return self.finish();
            }
        }
        (self.config.repaint)();
    }

    /// One event of a batched run: a stream's result, picture, warning or end, or the run's
    /// summary (its last event).
    fn forward_streams(&mut self, event: StreamsEvent) {
        match event {
            StreamsEvent::Stream { stream, event } => match event {
                Event::Frame(result) => self.show(Shown::StreamResult(stream, result)),
                Event::Picture(frame) => self.show(Shown::StreamPicture(stream, frame)),
                Event::Warning(text) => return self.message(Message::StreamWarning(stream, text)),
                Event::Summary(summary) => {
                    if let Some(error) = &summary.error {
                        tracing::warn!("stream {stream} ({}): {error}", summary.source);
                    }
                    return self.message(Message::StreamEnded(stream, summary));
                }
            },
            StreamsEvent::Summary(summary) => {
                let totals = &summary.totals;
                if totals.streams > 0 && totals.failed == totals.streams {
                    let text = format!("all {} sources failed (see their tiles)", totals.streams);
                    self.message(Message::Error(text));
                }
                self.message(Message::StreamsSummary(summary));
                return self.finish();
            }
        }
        (self.config.repaint)();
    }

    /// What plays now, for a message.
    fn playing(&self) -> String {
        if self.pipeline.is_some() {
            self.config.options.source.describe()
        } else {
            "nothing".into()
        }
    }

    fn finish(&mut self) {
        if let Some(running) = self.pipeline.take() {
            self.model = running.join().0;
        }
    }

    /// Loads the model (the command line's without a path); None when it failed (reported).
    fn load(&mut self, path: Option<&Path>) -> Option<Recognizer> {
        match (self.config.loader)(path) {
            Ok(loaded) => {
                // The model's settings apply as `--model` applies them at start: --stride wins,
                // else the checkpoint's, else 1.
                let (stride, stride_from) = match (self.config.stride_flag, loaded.stride) {
                    (Some(flag), _) => (flag, Origin::Flag),
                    (None, Some(trained)) => (trained, Origin::Checkpoint),
                    (None, None) => (1, Origin::Default),
                };
                self.config.options.stride = stride;
                let config = loaded.recognizer.config();
                self.message(Message::ModelLoaded(ModelInfo {
                    name: config.name.clone(),
                    device: loaded.device,
                    classes: config.num_classes,
                    trained: loaded.trained,
                    stride,
                    stride_from,
                }));
                self.config.options.labels = loaded.labels;
                Some(loaded.recognizer)
            }
            Err(e) => {
                let what = path.map_or_else(
                    || "the model".to_string(),
                    |p| format!("model {}", p.display()),
                );
                self.message(Message::Error(format!(
                    "{what} failed to load: {e:#}. Open a checkpoint (.safetensors) with O or drop it on the window."
                )));
                None
            }
        }
    }

    /// Starts a pipeline on `config.options.source` with the model, if there is one.
    fn start(&mut self) {
        self.finish();
        let Some(recognizer) = self.model.take() else {
            return;
        };
        if !self.streams.is_empty() {
            return self.start_streams(recognizer);
        }
        let options = self.config.options.clone();
        let source = options.source.clone();
        let describe = source.describe();
        match Pipeline::try_start(recognizer, options) {
            Ok(pipeline) => {
                if self.paused {
                    pipeline.control(Control::Pause(true));
                }
                self.pipeline = Some(Running::One(pipeline));
                self.message(Message::Started(source));
            }
            Err((e, recognizer)) => {
                self.model = recognizer;
                self.message(Message::Error(format!(
                    "cannot start {describe}: {}",
                    chain(&e)
                )));
                if self.model.is_none() {
                    // The inference thread could not be spawned: the model went with it.
                    self.model = self.load(None);
                }
            }
        }
    }

    /// Starts the batch of `streams` with the model (a source that cannot start becomes a
    /// stream that reports its error).
    fn start_streams(&mut self, recognizer: Recognizer) {
        match BatchPipeline::start(recognizer, &self.config.options, self.streams.clone()) {
            Ok(pipeline) => {
                if self.paused {
                    pipeline.control(None, Control::Pause(true));
                }
                self.pipeline = Some(Running::Many(pipeline));
                self.message(Message::StreamsStarted);
            }
            Err(e) => {
                // The recogniser went with the failed start.
                let text = format!("cannot start {} streams: {}", self.streams.len(), chain(&e));
                self.message(Message::Error(text));
                self.model = self.load(None);
            }
        }
    }

    fn handle(&mut self, command: Command) {
        match command {
            Command::Control(control) => {
                match &control {
                    Control::Pause(paused) => self.paused = *paused,
                    Control::Smoothing(smoothing) => {
                        self.config.options.smoothing = smoothing.clone();
                    }
                    Control::Stride(every) => self.config.options.stride = *every,
                    Control::Reset => {}
                }
                if let Some(running) = &self.pipeline
                    && !running.control(None, control)
                {
                    self.message(Message::Warning(
                        "the pipeline is busy: the change was not applied, try again".into(),
                    ));
                }
            }
            Command::StreamControl(stream, control) => {
                if let Some(running) = &self.pipeline
                    && !running.control(Some(stream), control)
                {
                    self.message(Message::Warning(
                        "the pipeline is busy: the change was not applied, try again".into(),
                    ));
                }
            }
            Command::ReplayStreams => {
                if self.streams.is_empty() || self.pipeline.is_some() {
                    return self.message(Message::Warning(
                        "nothing to replay: the streams still run".into(),
                    ));
                }
                self.start();
            }
            Command::OpenSource(_) if !self.streams.is_empty() => {
                self.message(Message::Error(format!(
                    "the window runs {} streams given on the command line: open another source in a run of one",
                    self.streams.len()
                )));
            }
            Command::OpenSource(source) => {
                // A file that is not there: say so and keep what plays.
                if let Source::File(path) | Source::Frames { dir: path, .. } = &source
                    && let Err(e) = std::fs::metadata(path)
                {
                    return self.message(Message::Error(format!(
                        "cannot open {}: {e}; still playing {}",
                        path.display(),
                        self.playing()
                    )));
                }
                self.config.options.max_retries = match source {
                    Source::File(_) | Source::Frames { .. } => Some(0),
                    _ => self.config.live_retries,
                };
                self.config.options.source = source;
                self.start();
                if self.pipeline.is_none() {
                    self.message(Message::Idle);
                }
                if self.pipeline.is_none() && self.model.is_none() {
                    self.message(Message::Error(format!(
                        "no model loaded: {} opens once a checkpoint loads (O, or drop one on the window)",
                        self.config.options.source.describe()
                    )));
                }
            }
            Command::LoadModel(path) => {
                // Load while the old model runs on: a checkpoint that fails changes nothing.
                if let Some(recognizer) = self.load(Some(&path)) {
                    self.finish();
                    self.model = Some(recognizer);
                    self.start();
                }
            }
            Command::SaveScreenshot { image, path } => match save_png(&image, &path) {
                Ok(()) => self.message(Message::Saved(path)),
                Err(e) => self.message(Message::Error(chain(&e))),
            },
        }
    }
}
