//! Ctrl-C during `live`/`play`: one handler for the process, whose action (stop the pipeline,
//! close the window) is installed once the run has one; a Ctrl-C before that is kept.

use std::sync::{Arc, Mutex};

/// What Ctrl-C does: stop the headless pipeline, or close the window. Set once the mode is known;
/// a Ctrl-C before that (while the model loads or the sources open) is kept and acted on then.
pub(super) type InterruptHook = Arc<Mutex<Interrupt>>;

#[derive(Default)]
pub(super) struct Interrupt {
    action: Option<Box<dyn Fn() + Send>>,
    pending: bool,
}

impl Interrupt {
    /// Ctrl-C: the action, or remember it for when there is one.
    fn fire(&mut self) {
        match &self.action {
            Some(action) => action(),
            None => self.pending = true,
        }
    }
}

pub(super) fn set_hook(hook: &InterruptHook, action: Box<dyn Fn() + Send>) {
    if let Ok(mut slot) = hook.lock() {
        if std::mem::take(&mut slot.pending) {
            action();
        }
        slot.action = Some(action);
    }
}

/// Installs the process's Ctrl-C handler and returns the hook a run sets its action into.
pub(super) fn install_interrupt() -> InterruptHook {
    let hook: InterruptHook = Arc::default();
    let handler = {
        let hook = hook.clone();
        move || {
            if let Ok(mut slot) = hook.lock() {
                slot.fire();
            }
        }
    };
    if let Err(e) = ctrlc::set_handler(handler) {
        tracing::warn!("Ctrl-C handler not installed: {e}");
    }
    hook
}
