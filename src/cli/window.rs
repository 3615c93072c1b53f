//! The window of `live` and `play`: the model loads on the session thread (so one that fails
//! opens the window with an error banner), a model opened in the window applies its checkpoint's
//! settings as `--model` does, and at exit the summary of the last run and the window's report
//! are printed. Several sources run as one batch, shown as a grid of tiles; at exit the summary
//! of every stream and the totals are printed as `--headless` prints them.

use shiftlive::capture::Source;
use shiftlive::pipeline::{StreamSource, StreamsSummary, Summary};

use super::out::outln;
use super::run::{Plan, checkpoint_stride, load_streams, set_hook, stride_of};

/// The window: the model loads on the session thread, so one that fails opens the window with an
/// error banner instead of ending the run. Prints `{"window": {...}}` (and the last summary) at exit
/// and returns the last summary (of one source, or of the batch of `streams` when there are
/// several).
pub fn window(
    plan: Plan<'_>,
    streams: Vec<StreamSource>,
) -> anyhow::Result<(Option<Summary>, Option<StreamsSummary>)> {
    use shiftlive::ui::{LoadedModel, WindowOptions, run_window};

    // The window shows frames at their pace; a source opened later keeps the first one's choice.
    let paced = if streams.is_empty() {
        super::run::is_paced(&plan.source, plan.realtime)
    } else {
        streams
            .iter()
            .all(|s| super::run::is_paced(&s.source, plan.realtime))
    };
    let (model, args, hook) = (plan.model, plan.args, plan.hook);
    let live_retries = match plan.source {
        Source::File(_) | Source::Frames { .. } => None,
        _ => plan.max_retries,
    };
    // A checkpoint whose metadata cannot be read fails to load on the session thread too, where
    // the window shows the error; until then the stride is 1.
    let stride = stride_of(model, args).unwrap_or_else(|e| {
        tracing::warn!("{e:#}: stride 1");
        1
    });
    let mut options = plan.pipeline_options(stride, Vec::new());
    options.keep_frames = true;
    let model = model.clone();
    let hook = hook.clone();
    let recognizer_streams = streams.len().max(1);
    let outcome = run_window(WindowOptions {
        pipeline: options,
        streams,
        live_retries,
        loader: Box::new(move |path| {
            let mut model = model.clone();
            if let Some(path) = path {
                // A checkpoint opened in the window brings its own labels.
                model.model = Some(path.to_path_buf());
                model.labels = None;
            }
            let (recognizer, labels, device) = load_streams(&model, recognizer_streams, paced)?;
            // The checkpoint's stride, as `--model` gives it at start (the session lets --stride
            // win, as at start).
            let stride = match &model.model {
                Some(path) => checkpoint_stride(path)?,
                None => None,
            };
            Ok(LoadedModel {
                recognizer,
                labels,
                device,
                stride,
                trained: model.model.is_some(),
            })
        }),
        stride_flag: args.stride,
        on_result: args.echo_results.then(|| -> shiftlive::ui::ResultHook {
            Box::new(|result| {
                if let Ok(line) = serde_json::to_string(result) {
                    let _ = super::out::line(format_args!("{line}"));
                }
            })
        }),
        renderer: args.renderer,
        measure_latency: args.measure_window,
        on_context: Box::new(move |ctx| {
            set_hook(
                &hook,
                Box::new(move || {
                    ctx.send_viewport_cmd(egui::ViewportCommand::Close);
                    ctx.request_repaint();
                }),
            );
        }),
    })?;
    if let Some(summary) = &outcome.streams {
        outln!("{}", serde_json::json!({ "summary": summary }));
    } else if let Some(summary) = &outcome.summary {
        outln!("{}", serde_json::json!({ "summary": summary }));
    }
    outln!("{}", serde_json::json!({ "window": outcome.report }));
    Ok((outcome.summary, outcome.streams))
}
