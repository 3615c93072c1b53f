//! Gives the plugin (and its tests) an rpath to libtorch, so `GST_PLUGIN_PATH` alone loads it in
//! any GStreamer host, with no LD_LIBRARY_PATH (as the root crate's build.rs does for its binaries).

fn main() {
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
    }
}
