"""Runs shiftlive's exported graphs in ONNX Runtime for tests/export.rs (and times them for
`shiftlive bench`). Each command prints one JSON line; tensors travel as safetensors files.

  check MODEL.onnx                   onnx.checker (full check), opset, inputs/outputs with shapes
  stream MODEL.onnx IN OUT           IN: frames [T, B, 3, S, S], optional starts [T, B] (1: zero that
                                     stream's state before step t); OUT: logits [T, B, C]. ORT's own
                                     state outputs are fed back frame after frame.
  clip MODEL.onnx IN OUT             IN: frames [N, T, 3, S, S]; OUT: logits [N, C]
  triton REPO NAME                   parses REPO/NAME/config.pbtxt with Triton's model_config protobuf,
                                     checks every state against the ONNX graph, and emulates the
                                     sequence batcher on 4 interleaved sequences vs 4 isolated streams
  serve MODEL.onnx THREADS           times one step at batch 1, states fed back, of the set-up asked
                                     on standard input (ort, ort_nospin, openvino, openvino_bf16):
                                     `shiftlive bench` alternates rounds of its own step with these
"""
import json
import sys
import time

import numpy as np
import onnx
import onnxruntime as ort
from safetensors.numpy import load_file, save_file


def session(path, threads=2, spin=True):
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


def state_names(sess):
    inputs = [i for i in sess.get_inputs() if i.name.startswith("state_in_")]
    return [(i.name, "state_out_" + i.name[len("state_in_"):], i.shape[1:]) for i in inputs]


def zeros(batch, shape):
    return np.zeros([batch] + list(shape), np.float32)


def step(sess, frame, states):
    """One call: frame [B, 3, S, S], states {input name: [B, ...]} -> logits, new states."""
    names = state_names(sess)
    feeds = {"frame": frame}
    feeds.update(states)
    outputs = ["logits"] + [out for _, out, _ in names]
    got = sess.run(outputs, feeds)
    return got[0], {inp: got[k + 1] for k, (inp, _, _) in enumerate(names)}


def cmd_check(path):
    model = onnx.load(path)
    onnx.checker.check_model(model, full_check=True)

    def dims(v):
        return [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]

    g = model.graph
    print(json.dumps({
        "checked": True,
        "opset": model.opset_import[0].version,
        "inputs": {v.name: dims(v) for v in g.input},
        "outputs": {v.name: dims(v) for v in g.output},
        "ops": sorted({n.op_type for n in g.node}),
    }))


def cmd_stream(path, src, dst):
    data = load_file(src)
    frames = data["frames"]
    t_len, batch = frames.shape[:2]
    starts = data.get("starts", np.zeros([t_len, batch], np.float32))
    sess = session(path)
    states = {inp: zeros(batch, shape) for inp, _, shape in state_names(sess)}
    logits = []
    for t in range(t_len):
        for name in states:
            states[name][starts[t] > 0] = 0.0
        out, states = step(sess, np.ascontiguousarray(frames[t]), states)
        logits.append(out)
    save_file({"logits": np.stack(logits)}, dst)
    print(json.dumps({"frames": int(t_len), "streams": int(batch), "states": len(states)}))


def cmd_clip(path, src, dst):
    frames = load_file(src)["frames"]
    sess = session(path)
    (logits,) = sess.run(["logits"], {"frames": frames})
    save_file({"logits": logits}, dst)
    print(json.dumps({"clips": int(frames.shape[0])}))


def cmd_triton(repo, name):
    from google.protobuf import text_format
    from tritonclient.grpc import model_config_pb2 as mc

    with open(f"{repo}/{name}/config.pbtxt") as f:
        config = text_format.Parse(f.read(), mc.ModelConfig())
    path = f"{repo}/{name}/1/model.onnx"
    graph = onnx.load(path).graph

    def dims(v):
        return [d.dim_value if d.dim_value else d.dim_param for d in v.type.tensor_type.shape.dim]

    inputs = {v.name: v for v in graph.input}
    outputs = {v.name: v for v in graph.output}
    fp32 = onnx.TensorProto.FLOAT
    problems = []

    def expect(ok, what):
        if not ok:
            problems.append(what)

    expect(config.max_batch_size > 0, "max_batch_size must be > 0")
    expect(config.backend == "onnxruntime", f"backend {config.backend}")
    for tensor, table in [(i, inputs) for i in config.input] + [(o, outputs) for o in config.output]:
        v = table.get(tensor.name)
        expect(v is not None, f"{tensor.name} not in the graph")
        if v is not None:
            expect(dims(v)[0] == "N" and dims(v)[1:] == list(tensor.dims), f"{tensor.name} dims")
            expect(tensor.data_type == mc.TYPE_FP32 and v.type.tensor_type.elem_type == fp32,
                   f"{tensor.name} dtype")
    states = list(config.sequence_batching.state)
    for s in states:
        vin, vout = inputs.get(s.input_name), outputs.get(s.output_name)
        expect(vin is not None and vout is not None, f"state {s.input_name}/{s.output_name} missing")
        if vin is None or vout is None:
            continue
        for v in (vin, vout):
            expect(dims(v)[0] == "N" and dims(v)[1:] == list(s.dims), f"{v.name} dims {dims(v)} vs {list(s.dims)}")
            expect(v.type.tensor_type.elem_type == fp32 and s.data_type == mc.TYPE_FP32, f"{v.name} dtype")
        init = list(s.initial_state)
        expect(len(init) == 1 and init[0].zero_data and list(init[0].dims) == list(s.dims),
               f"{s.input_name} initial state")
    state_inputs = [n for n in inputs if n.startswith("state_in_")]
    expect(len(states) == len(state_inputs), "one state entry per state input")

    # The sequence batcher, emulated: each sequence's state lives here (as Triton keeps it),
    # a start flag gives it zeros; batches mix up to max_batch_size sequences, never one twice.
    sess = session(path)
    shape = [config.input[0].dims[i] for i in range(3)]
    rng = np.random.default_rng(7)
    seqs, t_len = 4, 16
    frames = rng.standard_normal([seqs, t_len] + shape).astype(np.float32)
    # Sequence 3 ends at frame 9 and a new one starts under the same id (a camera reconnect).
    start_at = {(s, 0) for s in range(seqs)} | {(3, 9)}
    kept = {}
    next_t = [0] * seqs
    got = np.zeros([seqs, t_len, len(config.output[0].dims) and config.output[0].dims[0]], np.float32)
    calls = 0
    while any(t < t_len for t in next_t):
        ready = [s for s in range(seqs) if next_t[s] < t_len]
        rng.shuffle(ready)
        batch = ready[: rng.integers(1, min(len(ready), config.max_batch_size) + 1)]
        state_feed = {}
        for s in batch:
            if (s, next_t[s]) in start_at:
                kept[s] = {st.input_name: np.zeros(list(st.dims), np.float32) for st in states}
        for st in states:
            state_feed[st.input_name] = np.stack([kept[s][st.input_name] for s in batch])
        frame = np.stack([frames[s, next_t[s]] for s in batch])
        logits, new = step(sess, frame, state_feed)
        for row, s in enumerate(batch):
            got[s, next_t[s]] = logits[row]
            kept[s] = {name: new[name][row] for name in new}
            next_t[s] += 1
        calls += 1
    # Each sequence alone, one frame at a time from zeros.
    worst = 0.0
    for s in range(seqs):
        st_alone = None
        for t in range(t_len):
            if (s, t) in start_at:
                st_alone = {inp: zeros(1, shp) for inp, _, shp in state_names(sess)}
            logits, st_alone = step(sess, frames[s, t][None], st_alone)
            worst = max(worst, float(np.abs(logits[0] - got[s, t]).max()))
    print(json.dumps({"problems": problems, "states": len(states), "calls": calls,
                      "requests": seqs * t_len, "max_abs_diff": worst}))


def peer_step(name, path, threads):
    """One peer set-up's step on the exported graph (batch 1, states fed back), or None when this
    machine does not have it: ort (ONNX Runtime's defaults: idle threads spin), ort_nospin,
    openvino (fp32), openvino_bf16 (where the CPU computes bf16 natively)."""
    if name in ("ort", "ort_nospin"):
        sess = session(path, threads, spin=(name == "ort"))
        side = list(sess.get_inputs()[0].shape[1:])
        frame = np.random.default_rng(0).standard_normal([1] + side).astype(np.float32)
        states = {inp: zeros(1, shp) for inp, _, shp in state_names(sess)}

        def ort_step():
            nonlocal states
            _, states = step(sess, frame, states)
        return ort_step
    if name not in ("openvino", "openvino_bf16"):
        raise ValueError(f"unknown set-up {name}")
    try:
        import openvino as ov
    except ImportError:
        return None
    core = ov.Core()
    precision = "bf16" if name == "openvino_bf16" else "f32"
    if precision == "bf16" and "BF16" not in core.get_property("CPU", "OPTIMIZATION_CAPABILITIES"):
        return None
    compiled = core.compile_model(path, "CPU", {"INFERENCE_NUM_THREADS": threads,
                                                "INFERENCE_PRECISION_HINT": precision})
    request = compiled.create_infer_request()
    model = onnx.load(path, load_external_data=False)
    feeds = {}
    for i in model.graph.input:
        shape = [d.dim_value or 1 for d in i.type.tensor_type.shape.dim]
        feeds[i.name] = np.zeros(shape, np.float32)
    feeds["frame"] = np.random.default_rng(0).standard_normal(feeds["frame"].shape).astype(np.float32)

    def ov_step():
        request.infer(feeds)
    return ov_step


def cmd_serve(path, threads):
    """Times peer set-ups on request, so that `shiftlive bench` can alternate rounds of its own
    step with theirs. Prints one JSON line when ready (versions); then reads lines
    `SETUP WARMUP ITERS` from standard input and answers each with one JSON line: the iterations'
    times in ms, or `"unavailable"`. One set-up is kept at a time (a new one drops the last, so
    no idle thread pool sits beside the step timed). Ends at end of input."""
    threads = int(threads)
    ready = {"ready": True, "threads": threads, "ort_version": ort.__version__}
    try:
        import openvino as ov
        ready["openvino_version"] = ov.__version__
    except ImportError:
        pass
    print(json.dumps(ready), flush=True)
    current, run = None, None
    for line in sys.stdin:
        name, warmup, iters = line.split()
        if name != current:
            run = None  # the last set-up's session goes before the next one loads
            run = peer_step(name, path, threads)
            current = name
        if run is None:
            print(json.dumps({"setup": name, "unavailable": True}), flush=True)
            continue
        for _ in range(int(warmup)):
            run()
        times = []
        for _ in range(int(iters)):
            start = time.perf_counter()
            run()
            times.append((time.perf_counter() - start) * 1e3)
        print(json.dumps({"setup": name, "ms": times}), flush=True)


if __name__ == "__main__":
    commands = {"check": cmd_check, "stream": cmd_stream, "clip": cmd_clip,
                "triton": cmd_triton, "serve": cmd_serve}
    if len(sys.argv) < 2 or sys.argv[1] not in commands:
        sys.exit(__doc__)
    commands[sys.argv[1]](*sys.argv[2:])
