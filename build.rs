//! Gives every binary (the CLI, tests, benches, doctests) an rpath to libtorch, so nothing needs
//! LD_LIBRARY_PATH; with SHIFTLIVE_CUDA=1 also keeps libtorch_cuda in the link, which the default
//! `--as-needed` would drop (CUDA would then read as unavailable). Also generates the ONNX protobuf
//! types from the vendored `proto/onnx.proto` (ONNX's own file, copied from the `onnx` 1.23 wheel)
//! with protox, a protobuf compiler in Rust: no system `protoc` is needed.

fn main() {
    println!("cargo:rerun-if-env-changed=SHIFTLIVE_CUDA");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if std::env::var("SHIFTLIVE_CUDA").as_deref() == Ok("1") {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-L{lib},-ltorch_cuda,--as-needed");
        }
    }
    println!("cargo:rerun-if-changed=proto/onnx.proto");
    let descriptors = match protox::compile(["onnx.proto"], ["proto"]) {
        Ok(fds) => fds,
        Err(e) => panic!("proto/onnx.proto: {e}"),
    };
    if let Err(e) = prost_build::Config::new().compile_fds(descriptors) {
        panic!("generating the ONNX types: {e}");
    }
}
