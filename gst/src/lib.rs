//! A GStreamer plugin holding `tsmclassify`: shiftlive's online action recogniser as an in-place
//! video element. Buffers pass through untouched; each processed frame posts an element message
//! (as `level` and `spectrum` report) with the label, the scores and, when asked, the logits.
//!
//! Load it with `GST_PLUGIN_PATH=<dir of libgstshiftlive.so>`; tests register it statically with
//! [`plugin_register_static`].

use gstreamer as gst;

mod tsmclassify;

pub use tsmclassify::TsmClassify;

fn plugin_init(plugin: &gst::Plugin) -> Result<(), gst::glib::BoolError> {
    tsmclassify::register(plugin)
}

// The plugin descriptor GStreamer reads from the .so (the macro's expansion holds the FFI glue).
#[allow(unsafe_code)]
mod desc {
    use super::{gst, plugin_init};

    gst::plugin_define!(
        shiftlive,
        env!("CARGO_PKG_DESCRIPTION"),
        plugin_init,
        env!("CARGO_PKG_VERSION"),
        "MIT/X11",
        "gst-shiftlive",
        "gst-shiftlive",
        "https://github.com/shiftlive/shiftlive"
    );
}

pub use desc::plugin_register_static;
