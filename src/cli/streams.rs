//! `live`/`play` with several sources: one batched pipeline, one JSON line per processed frame
//! tagged with its `"stream"` (index) and `"source"` (name), a `{"stream", "source", "error"}` line
//! for each stream whose source failed, then `{"summary": {"streams": [...], "totals": {...}}}`.
//! The run fails (non-zero exit) only when every source failed.

use std::sync::atomic::Ordering;

use anyhow::{Context, bail};
use serde::Serialize;
use shiftlive::pipeline::{BatchPipeline, Event, StreamSource, StreamsEvent, StreamsSummary};

use super::run::{Plan, load_streams, set_hook, stride_of};

/// A result line: the stream's index and name, then the result's own fields.
#[derive(Serialize)]
struct Tagged<'a, T: Serialize> {
    stream: usize,
    source: &'a str,
    #[serde(flatten)]
    body: &'a T,
}

/// JSON lines on stdout for a batched run of `sources`.
pub fn headless(plan: Plan<'_>, sources: Vec<StreamSource>) -> anyhow::Result<()> {
    let (args, hook) = (plan.args, plan.hook);
    let paced = sources
        .iter()
        .all(|s| super::run::is_paced(&s.source, plan.realtime));
    let (recognizer, labels, _) = load_streams(plan.model, sources.len(), paced)?;
    let stride = stride_of(plan.model, args)?;
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let options = plan.pipeline_options(stride, labels);
    let pipeline = BatchPipeline::start(recognizer, &options, sources)
        .context("starting the pipeline threads")?;
    let stop = pipeline.stop_handle();
    set_hook(hook, Box::new(move || stop.store(true, Ordering::Relaxed)));
    let mut last = None;
    for event in pipeline.events().iter() {
        let line = match event {
            StreamsEvent::Stream { stream, event } => {
                let source = names.get(stream).map_or("", String::as_str);
                match event {
                    Event::Frame(result) => serde_json::to_string(&Tagged {
                        stream,
                        source,
                        body: &*result,
                    })?,
                    Event::Warning(message) => {
                        tracing::warn!("stream {stream} ({source}): {message}");
                        continue;
                    }
                    Event::Picture(_) => continue,
                    Event::Summary(summary) => match &summary.error {
                        Some(error) => serde_json::to_string(&serde_json::json!({
                            "stream": stream, "source": source, "error": error,
                        }))?,
                        None => continue,
                    },
                }
            }
            StreamsEvent::Summary(summary) => {
                let line = serde_json::to_string(&serde_json::json!({ "summary": summary }))?;
                last = Some(summary);
                line
            }
        };
        if let Err(err) = super::out::line(format_args!("{line}")) {
            pipeline.stop();
            return Err(err.into());
        }
    }
    drop(pipeline);
    match last {
        Some(summary) => outcome_of(&summary),
        None => Ok(()),
    }
}

/// A batched run fails when every stream failed; a failed stream among running ones was reported
/// on its own line.
pub(super) fn outcome_of(summary: &StreamsSummary) -> anyhow::Result<()> {
    let totals = &summary.totals;
    if totals.streams > 0 && totals.failed == totals.streams {
        bail!("all {} sources failed", totals.streams);
    }
    if totals.failed > 0 {
        tracing::warn!(
            "{} of {} sources failed (see their \"error\" lines)",
            totals.failed,
            totals.streams
        );
    }
    Ok(())
}
