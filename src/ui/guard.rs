//! The window's guard against a panic inside the window system's event loop: winit panics when
//! the window system destroys its window under it (`xdotool windowclose`, a killed X client), and
//! the window must then close as if the user had closed it, not end the program with a crash.

use std::sync::{Arc, Mutex};

/// Runs `run` on this thread; a panic in it (winit panics when the window system destroys its
/// window) comes back as its message instead of unwinding further, and is not printed by the
/// process's panic hook meanwhile (panics of other threads still are).
pub fn run_guarded<T>(run: impl FnOnce() -> T) -> Result<T, String> {
    let me = std::thread::current().id();
    let previous: Arc<dyn Fn(&std::panic::PanicHookInfo<'_>) + Send + Sync> =
        Arc::from(std::panic::take_hook());
    let message: Arc<Mutex<Option<String>>> = Arc::default();
    {
        let (previous, message) = (previous.clone(), message.clone());
        std::panic::set_hook(Box::new(move |info| {
            if std::thread::current().id() != me {
                return previous(info);
            }
            if let Ok(mut slot) = message.lock() {
                *slot = Some(crate::errors::panic_text(info));
            }
        }));
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(run));
    let _ = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| previous(info)));
    result.map_err(|_| {
        message
            .lock()
            .ok()
            .and_then(|mut m| m.take())
            .unwrap_or_else(|| "a panic".into())
    })
}
