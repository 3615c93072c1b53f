//! Gives every binary (the CLI, tests, benches, doctests) an rpath to libtorch, so nothing needs
//! LD_LIBRARY_PATH; with SHIFTLIVE_CUDA=1 also keeps libtorch_cuda in the link, which the default
//! `--as-needed` would drop (CUDA would then read as unavailable).

fn main() {
    println!("cargo:rerun-if-env-changed=SHIFTLIVE_CUDA");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::env::var("SHIFTLIVE_CUDA").as_deref() == Ok("1") {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-L{lib},-ltorch_cuda,--as-needed");
        }
    }
}
