//! The `tsmclassify` element: the GObject wrapper and its registration. `imp` holds the element
//! (properties, caps, the BaseTransform hooks), `settings` its properties, `engine` the recogniser
//! and smoothing it runs per frame, `report` the element message of one frame.

use gstreamer as gst;
use gstreamer::glib;
use gstreamer::prelude::*;

mod engine;
mod imp;
mod report;
mod settings;

glib::wrapper! {
    pub struct TsmClassify(ObjectSubclass<imp::TsmClassify>)
        @extends gstreamer_base::BaseTransform, gst::Element, gst::Object;
}

pub fn register(plugin: &gst::Plugin) -> Result<(), glib::BoolError> {
    gst::Element::register(
        Some(plugin),
        "tsmclassify",
        gst::Rank::NONE,
        TsmClassify::static_type(),
    )
}
