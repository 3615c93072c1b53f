// Ends a tch trace with ONE tuple output, as Python's tracer does for a function returning
// several tensors (src/export/step.rs). tch's own `atm_end_tracing` registers each output as a
// separate graph return, and TorchScript refuses to save a method with several returns
// ("Exportable methods must have a single return value"). Called inside the tracing closure:
// it records a TupleConstruct of the outputs and registers that as the graph's one output;
// the closure then hands tch no outputs, and tch finishes the method (scope fix-up,
// normalisation, compilation) as usual. No exception crosses this boundary: the message comes
// back malloc'd (freed with sl_trace_free).

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/ir/ir.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

char* message(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, s.c_str(), s.size() + 1);
  }
  return out;
}

}  // namespace

extern "C" {

// `tensors`: n at::Tensor* (tch's Tensor::as_ptr), the values the traced function returns, in
// order. Null on success, else the error.
char* sl_trace_return_tuple(void* const* tensors, int n) {
  try {
    auto state = torch::jit::tracer::getTracingState();
    if (!state) {
      return message("not inside a trace");
    }
    auto& graph = state->graph;
    std::vector<torch::jit::Value*> values;
    values.reserve(static_cast<size_t>(n));
    for (int i = 0; i < n; ++i) {
      const auto* t = static_cast<const at::Tensor*>(tensors[i]);
      values.push_back(state->getOutput(torch::jit::IValue(*t), static_cast<size_t>(i)));
    }
    auto* tuple = graph->insertNode(graph->createTuple(values))->output();
    graph->registerOutput(tuple);
    return nullptr;
  } catch (const c10::Error& e) {
    return message(e.what_without_backtrace());
  } catch (const std::exception& e) {
    return message(e.what());
  } catch (...) {
    return message("unknown C++ exception");
  }
}

void sl_trace_free(char* s) { std::free(s); }

}  // extern "C"
