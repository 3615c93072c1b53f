//! Gives every binary (the CLI, tests, benches, doctests) an rpath to libtorch, so nothing needs
//! LD_LIBRARY_PATH; with SHIFTLIVE_CUDA=1 also keeps libtorch_cuda in the link, which the default
//! `--as-needed` would drop (CUDA would then read as unavailable). Also generates the ONNX protobuf
//! types from the vendored `proto/onnx.proto` (ONNX's own file, copied from the `onnx` 1.23 wheel)
//! with protox, a protobuf compiler in Rust: no system `protoc` is needed.
//!
//! Compiles the c10d shim (`src/dist/shim.cpp`, data-parallel training) against the libtorch
//! torch-sys found, with torch-sys's own C++ standard and ABI flags. Gloo's headers come from
//! Debian's libgloo-dev (see the shim's opening comment); the `nccl` feature adds ProcessGroupNCCL
//! and is built only with SHIFTLIVE_CUDA=1. The same library holds `src/export/trace.cpp`, which
//! ends a TorchScript trace with a tuple of outputs (tch's tracer cannot).

use std::path::{Path, PathBuf};

fn main() {
    println!("cargo:rerun-if-env-changed=SHIFTLIVE_CUDA");
    println!("cargo:rerun-if-env-changed=DEP_TCH_LIBTORCH_LIB");
    println!("cargo:rerun-if-env-changed=LIBTORCH");
    println!("cargo:rerun-if-env-changed=LIBTORCH_CXX11_ABI");
    println!("cargo:rerun-if-changed=src/dist/shim.cpp");
    println!("cargo:rerun-if-changed=src/export/trace.cpp");
    let cuda = std::env::var("SHIFTLIVE_CUDA").as_deref() == Ok("1");
    let lib = libtorch_lib();
    if let Some(lib) = &lib {
        let lib = lib.display();
        println!("cargo:rustc-link-arg=-Wl,-rpath,{lib}");
        if cuda {
            println!("cargo:rustc-link-arg=-Wl,--no-as-needed,-L{lib},-ltorch_cuda,--as-needed");
        }
    }
    if let Err(e) = shim(lib.as_deref(), cuda) {
        println!("cargo:warning={e}");
        std::process::exit(1);
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

/// libtorch's `lib` directory: torch-sys's, else `$LIBTORCH/lib`.
fn libtorch_lib() -> Option<PathBuf> {
    if let Ok(lib) = std::env::var("DEP_TCH_LIBTORCH_LIB") {
        return Some(PathBuf::from(lib));
    }
    std::env::var("LIBTORCH")
        .ok()
        .map(|t| PathBuf::from(t).join("lib"))
}

fn shim(lib: Option<&Path>, cuda: bool) -> Result<(), String> {
    let lib = lib.ok_or("shim: libtorch not found (set LIBTORCH; scripts/setup.sh installs it)")?;
    let root = lib
        .parent()
        .ok_or("shim: libtorch's lib directory has no parent")?;
    let include = root.join("include");
    if !include
        .join("torch/csrc/distributed/c10d/ProcessGroupGloo.hpp")
        .is_file()
    {
        return Err(format!(
            "shim: {} has no c10d headers (torch/csrc/distributed/c10d)",
            include.display()
        ));
    }
    if !Path::new("/usr/include/gloo/config.h").is_file() {
        return Err(
            "shim: gloo's headers are missing: install Debian's libgloo-dev (scripts/setup.sh)"
                .into(),
        );
    }
    let nccl = std::env::var_os("CARGO_FEATURE_NCCL").is_some();
    if nccl && !cuda {
        return Err(
            "shim: the `nccl` feature needs the CUDA libtorch: build with SHIFTLIVE_CUDA=1".into(),
        );
    }
    let abi = std::env::var("LIBTORCH_CXX11_ABI").unwrap_or_else(|_| "1".to_owned());
    let mut build = cc::Build::new();
    build
        .cpp(true)
        .pic(true)
        .warnings(false)
        .include(&include)
        .include(include.join("torch/csrc/api/include"))
        .flag("-std=c++17")
        .flag(format!("-D_GLIBCXX_USE_CXX11_ABI={abi}"))
        .flag("-DGLOG_USE_GLOG_EXPORT")
        .define("USE_DISTRIBUTED", None)
        .define("USE_C10D_GLOO", None)
        .file("src/dist/shim.cpp")
        .file("src/export/trace.cpp");
    if nccl {
        build
            .define("USE_C10D_NCCL", None)
            .define("SHIFTLIVE_NCCL", None);
        // CUDA's headers from the wheel's nvidia packages (the full install).
        for sub in [
            "nvidia/cu13/include",
            "nvidia/cuda_runtime/include",
            "nvidia/nccl/include",
        ] {
            let dir = root.join("..").join(sub);
            if dir.is_dir() {
                build.include(dir);
            }
        }
    }
    build
        .try_compile("shiftlive_dist")
        .map_err(|e| format!("shim: {e}"))?;
    // After the static shim, so `--as-needed` keeps the libraries that define its symbols.
    println!("cargo:rustc-link-search=native={}", lib.display());
    for name in ["torch_cpu", "c10"] {
        println!("cargo:rustc-link-lib=dylib={name}");
    }
    if nccl {
        println!("cargo:rustc-link-lib=dylib=torch_cuda");
    }
    Ok(())
}
