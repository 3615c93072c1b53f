#!/usr/bin/env bash
# Installs everything shiftlive needs on a fresh Debian 12 machine, idempotently:
#   - Debian packages: GStreamer (dev + plugins + libav), Xvfb and Mesa for the window tests,
#     libgloo-dev (gloo's headers, for the c10d shim of data-parallel training);
#   - libtorch from the PyPI torch wheel into .libtorch/ (CPU route by default; TORCH_FULL=1 for the
#     full CUDA install), with a build-version file so torch-sys refuses a wrong version;
#   - ONNX Runtime's shared library (libonnxruntime.so, pinned) from the PyPI onnxruntime wheel into
#     .onnxruntime/lib/, loaded at run time by `--backend onnxruntime` (no Python involved);
#   - OpenVINO's shared libraries (the C API, the CPU plugin, the ONNX reader, TBB; pinned) from the PyPI
#     openvino wheel into .openvino/lib/, loaded at run time by `--backend openvino`;
#   - with --reference: a Python venv (.venv-ref) holding full torch, used only to regenerate golden data
#     and to time the PyTorch reference in `shiftlive bench`;
#   - with --export: a Python venv (.venv-export, about 270 MB) with onnx, onnxruntime and tritonclient,
#     used only by the export tests (tests/export.rs) and to time ONNX Runtime in `shiftlive bench`.
#     `make test` asks for it; `make demo` does not need it.
# A second run takes seconds: each step checks what is there first.
set -euo pipefail
cd "$(dirname "$0")/.."

TORCH_VERSION=2.13.0
TORCH_BUILD_VERSION="2.13.0+cu130"
want_reference=0
want_export=0
for arg in "$@"; do
  case "$arg" in
    --reference) want_reference=1 ;;
    --export) want_export=1 ;;
    *) echo "setup.sh: unknown option '$arg' (known: --reference, --export)" >&2; exit 2 ;;
  esac
done

log() { printf 'setup: %s\n' "$*" >&2; }

# --- Debian packages ---------------------------------------------------------------------------
# libgstreamer1.0-dev also carries gstreamer-check-1.0.pc (the Harness of gst/tests).
debs=(
  pkg-config build-essential libgloo-dev
  libgstreamer1.0-dev libgstreamer-plugins-base1.0-dev gstreamer1.0-tools
  gstreamer1.0-plugins-base gstreamer1.0-plugins-good gstreamer1.0-plugins-bad
  gstreamer1.0-plugins-ugly gstreamer1.0-libav
  xvfb xauth libgl1 libgl1-mesa-dri libegl1 libegl-mesa0 libgles2 mesa-vulkan-drivers libvulkan1
  libxkbcommon-x11-0 libxcursor1 libxrandr2 libxi6 libx11-xcb1 imagemagick xdotool openbox
)
missing=()
for p in "${debs[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if ((${#missing[@]})); then
  log "installing Debian packages: ${missing[*]}"
  sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "Debian packages present"
fi

# --- libtorch from the PyPI wheel --------------------------------------------------------------
py=${PYTHON:-python3}
if [ "${TORCH_FULL:-0}" = "1" ]; then
  # Full install (CUDA libraries included, about 4.7 GB). Build with SHIFTLIVE_CUDA=1 so the link
  # keeps libtorch_cuda (see build.rs).
  if [ ! -f .libtorch/torch/lib/libtorch_cuda.so ]; then
    log "installing torch==$TORCH_VERSION (full, with CUDA) into .libtorch"
    rm -rf .libtorch
    "$py" -m pip install --quiet --no-cache-dir --target .libtorch "torch==$TORCH_VERSION"
  fi
elif [ ! -f .libtorch/torch/lib/libtorch_cpu.so ] || [ ! -e .libtorch/nvidia ]; then
  log "installing torch==$TORCH_VERSION (libtorch, CPU route) into .libtorch"
  rm -rf .libtorch
  # libtorch_cpu.so links libcudart.so.13 and libcupti.so.13 even on a CPU: the two small wheels
  # supply them, found through the wheel's RPATH ($ORIGIN/../../nvidia/cu13/lib).
  "$py" -m pip install --quiet --no-cache-dir --no-deps --target .libtorch \
    "torch==$TORCH_VERSION" nvidia-cuda-runtime==13.0.96 nvidia-cuda-cupti==13.0.85
else
  log "libtorch present in .libtorch"
fi
# torch-sys checks this file against the version it expects; the wheel does not ship it.
if [ "$(cat .libtorch/torch/build-version 2>/dev/null)" != "$TORCH_BUILD_VERSION" ]; then
  echo "$TORCH_BUILD_VERSION" > .libtorch/torch/build-version
fi

# --- ONNX Runtime's shared library from the PyPI wheel ---------------------------------------------
# Only the C library is kept (about 35 MB): the `ort` crate loads it with dlopen (load-dynamic), so
# nothing is downloaded at build or run time. The version is the export venv's (the tests compare
# numbers across the two).
ORT_VERSION=1.32.0
ort_lib=.onnxruntime/lib/libonnxruntime.so.$ORT_VERSION
if [ ! -f "$ort_lib" ]; then
  log "installing libonnxruntime $ORT_VERSION (from the onnxruntime wheel) into .onnxruntime"
  ort_tmp=$(mktemp -d)
  trap 'rm -rf "$ort_tmp"' EXIT
  "$py" -m pip install --quiet --no-cache-dir --no-deps --target "$ort_tmp" "onnxruntime==$ORT_VERSION"
  rm -rf .onnxruntime
  mkdir -p .onnxruntime/lib
  cp "$ort_tmp/onnxruntime/capi/libonnxruntime.so.$ORT_VERSION" "$ort_lib"
  rm -rf "$ort_tmp"
  trap - EXIT
else
  log "libonnxruntime $ORT_VERSION present in .onnxruntime"
fi
ln -sfn "libonnxruntime.so.$ORT_VERSION" .onnxruntime/lib/libonnxruntime.so

# --- OpenVINO's shared libraries from the PyPI wheel --------------------------------------------
# Only what the CPU step needs (about 95 MB of the wheel's 165): the C API the `openvino` crate loads
# with dlopen, the core, the CPU plugin, the ONNX frontend (the step is read from memory as ONNX) and
# TBB. Each finds the others through its RPATH ($ORIGIN), and the core finds its plugin and frontend in
# its own directory. The version is the export venv's.
OV_VERSION=2026.4.1
OV_SUFFIX=2641
ov_libs=(libopenvino.so.$OV_SUFFIX libopenvino_c.so.$OV_SUFFIX libopenvino_onnx_frontend.so.$OV_SUFFIX
  libopenvino_intel_cpu_plugin.so libtbb.so.12 libtbbmalloc.so.2 libtbbbind_2_5.so.3 libhwloc.so.15)
if [ "$(cat .openvino/version 2>/dev/null)" != "$OV_VERSION" ] || [ ! -f ".openvino/lib/libopenvino_c.so.$OV_SUFFIX" ]; then
  log "installing OpenVINO $OV_VERSION's libraries (from the openvino wheel) into .openvino"
  ov_tmp=$(mktemp -d)
  trap 'rm -rf "$ov_tmp"' EXIT
  "$py" -m pip install --quiet --no-cache-dir --no-deps --target "$ov_tmp" "openvino==$OV_VERSION"
  rm -rf .openvino
  mkdir -p .openvino/lib
  for f in "${ov_libs[@]}"; do cp "$ov_tmp/openvino/libs/$f" .openvino/lib/; done
  echo "$OV_VERSION" > .openvino/version
  rm -rf "$ov_tmp"
  trap - EXIT
else
  log "OpenVINO $OV_VERSION present in .openvino"
fi
ln -sfn "libopenvino_c.so.$OV_SUFFIX" .openvino/lib/libopenvino_c.so

# --- optional Python reference venv ------------------------------------------------------------
if ((want_reference)); then
  if [ ! -x .venv-ref/bin/python ] || ! .venv-ref/bin/python -c "import torch, safetensors, numpy" 2>/dev/null; then
    log "creating .venv-ref with torch==$TORCH_VERSION, safetensors, numpy"
    "$py" -m venv .venv-ref
    .venv-ref/bin/pip install --quiet --no-cache-dir "torch==$TORCH_VERSION" safetensors numpy
  else
    log "reference venv present in .venv-ref"
  fi
fi
# --- optional Python export-check venv --------------------------------------------------------
# Pinned: the tests compare numbers across these runtimes. openvino is optional (bench only).
export_pkgs=(onnx==1.23.2 "onnxruntime==$ORT_VERSION" "tritonclient[grpc]==2.73.0" numpy safetensors)
if ((want_export)); then
  if [ ! -x .venv-export/bin/python ] || ! .venv-export/bin/python -c "import onnx, onnxruntime, numpy, safetensors, tritonclient.grpc.model_config_pb2" 2>/dev/null; then
    log "creating .venv-export with ${export_pkgs[*]}"
    "$py" -m venv .venv-export
    .venv-export/bin/pip install --quiet --no-cache-dir "${export_pkgs[@]}"
  else
    log "export venv present in .venv-export"
  fi
  # The pinned version, as in .openvino/lib (the bench compares the two).
  if ! .venv-export/bin/python -c "import importlib.metadata as m, sys; sys.exit(m.version('openvino') != '$OV_VERSION')" 2>/dev/null; then
    .venv-export/bin/pip install --quiet --no-cache-dir "openvino==$OV_VERSION" \
      || log "openvino did not install: bench will time ONNX Runtime only"
  fi
fi
log "done"
