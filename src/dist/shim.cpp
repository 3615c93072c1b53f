// The C face of libtorch's c10d for shiftlive's Rust side (src/dist/ffi.rs): a process group
// (Gloo, or NCCL when built with SHIFTLIVE_NCCL) over a TCPStore, in-place collectives on the
// at::Tensor objects tch hands over (Tensor::as_ptr), and a few store operations for the start-up
// checks. No C++ exception crosses this boundary: each entry point catches everything and returns
// the message through `err` (malloc'd, freed with sl_free).
//
// Gloo's own headers are not in the PyPI wheel (ProcessGroupGloo.hpp includes <gloo/...>). We take
// them from Debian's libgloo-dev instead of re-declaring the few types the shim touches: the header
// then checks itself against the real declarations, and the class layouts we rely on
// (ProcessGroupGloo::Options with its device list) come from gloo, not from a copy that could
// drift. Only the headers are used; the code is libtorch_cpu's own (it exports ProcessGroupGloo).

#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/csrc/autograd/custom_function.h>
#ifdef SHIFTLIVE_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <vector>

namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;  // null until sl_pg_start
  std::string host;
  int rank;
  int world;
  std::chrono::milliseconds timeout;
};

char* dup(const std::string& s) {
  char* out = static_cast<char*>(std::malloc(s.size() + 1));
  if (out != nullptr) {
    std::memcpy(out, s.c_str(), s.size() + 1);
  }
  return out;
}

// Runs f, turning any exception into a message in *err and false.
template <typename F>
bool guard(char** err, F&& f) {
  try {
    f();
    return true;
  } catch (const c10::Error& e) {
    *err = dup(e.what_without_backtrace());
  } catch (const std::exception& e) {
    *err = dup(e.what());
  } catch (...) {
    *err = dup("unknown C++ exception");
  }
  return false;
}

c10d::Backend& started(void* group) {
  auto g = static_cast<Group*>(group);
  if (!g->backend) {
    throw std::runtime_error("the process group is not started");
  }
  return *g->backend;
}

std::vector<at::Tensor> gather(at::Tensor** tensors, size_t n) {
  std::vector<at::Tensor> v;
  v.reserve(n);
  for (size_t i = 0; i < n; ++i) {
    v.push_back(*tensors[i]);
  }
  return v;
}

void all_reduce_one(c10d::Backend& pg, at::Tensor& t) {
  std::vector<at::Tensor> v{t};
  c10d::AllreduceOptions opts;
  opts.reduceOp = c10d::ReduceOp::SUM;
  pg.allreduce(v, opts)->wait();
}

// The sum over the ranks that synchronised BatchNorm takes of its statistics, with its own
// reference to the backend (it may outlive nothing: the Rust side drops it with the model).
// A collective that fails inside a forward or backward pass cannot return an error through
// autograd without unwinding into Rust: the message is kept here (the local value is used), and
// the training step asks for it before its own gradient all-reduce (sl_replicas_take_error).
struct Replicas {
  c10::intrusive_ptr<c10d::Backend> backend;
  std::mutex mutex;
  std::string error;

  // After a failure the job is over: the remaining collectives of the pass are skipped (each
  // could wait the whole timeout), and the step reports the first failure.
  void sum(at::Tensor& t) {
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (!error.empty()) {
        return;
      }
    }
    try {
      all_reduce_one(*backend, t);
    } catch (const c10::Error& e) {
      keep(e.what_without_backtrace());
    } catch (const std::exception& e) {
      keep(e.what());
    }
  }
  void keep(const std::string& message) {
    std::lock_guard<std::mutex> lock(mutex);
    if (error.empty()) {
      error = message;
    }
  }
};

// y = sum over the ranks of x; its backward sums the incoming gradients over the ranks the same
// way (every rank's loss depends on every rank's x through y): PyTorch's SyncBatchNorm reduces
// its statistics and their gradients so.
struct ReplicaSum : public torch::autograd::Function<ReplicaSum> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x,
                            int64_t replicas) {
    ctx->saved_data["replicas"] = replicas;
    auto y = x.contiguous().clone();
    reinterpret_cast<Replicas*>(replicas)->sum(y);
    return y;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    auto replicas = reinterpret_cast<Replicas*>(ctx->saved_data["replicas"].toInt());
    auto g = grads[0].contiguous().clone();
    replicas->sum(g);
    return {g, torch::autograd::Variable()};
  }
};

}  // namespace

extern "C" {

// Connects to the TCPStore at host:port (served by rank 0 unless `client_only`: torchrun's
// agent already serves it); `timeout_ms` bounds the connection and, later, every collective.
// Returns null and sets *err on failure. The process group itself starts with sl_pg_start, after
// the caller's checks over the store (duplicate ranks, differing configs).
void* sl_pg_open(const char* host, uint16_t port, int rank, int world, int64_t timeout_ms,
                 int client_only, char** err) {
  Group* group = nullptr;
  guard(err, [&] {
    c10d::TCPStoreOptions opts;
    opts.port = port;
    opts.isServer = rank == 0 && client_only == 0;
    opts.numWorkers = static_cast<size_t>(world);
    opts.waitWorkers = false;
    opts.timeout = std::chrono::milliseconds(timeout_ms);
    auto store = c10::make_intrusive<c10d::TCPStore>(std::string(host), opts);
    group = new Group{store, {}, std::string(host), rank, world, opts.timeout};
  });
  return group;
}

// Starts the process group (`gloo`, or `nccl` when built with it): the rendezvous of all ranks.
int sl_pg_start(void* group, const char* backend, char** err) {
  return guard(err, [&] {
    auto g = static_cast<Group*>(group);
    std::string name(backend);
    if (name == "gloo") {
      auto options = c10d::ProcessGroupGloo::Options::create(g->timeout);
      // The device binds to the address peers reach this host by: loopback for a local master,
      // else the address this host's name resolves to.
      const std::string& h = g->host;
      bool local = h == "127.0.0.1" || h == "localhost" || h == "::1";
      options->devices.push_back(local ? c10d::ProcessGroupGloo::createDeviceForHostname(h)
                                       : c10d::ProcessGroupGloo::createDefaultDevice());
      g->backend = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, g->rank, g->world, options);
    }
#ifdef SHIFTLIVE_NCCL
    else if (name == "nccl") {
      auto options = c10d::ProcessGroupNCCL::Options::create();
      options->timeout = g->timeout;
      g->backend = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, g->rank, g->world, options);
    }
#endif
    else {
      throw std::runtime_error("backend '" + name + "' is not built into this binary");
    }
  });
}

void sl_pg_destroy(void* group) { delete static_cast<Group*>(group); }

void sl_free(char* s) { std::free(s); }

// Sums the tensors across the ranks, in place (one coalesced collective; all of one dtype).
int sl_pg_all_reduce_sum(void* group, at::Tensor** tensors, size_t n, char** err) {
  return guard(err, [&] {
    auto& pg = started(group);
    auto v = gather(tensors, n);
    c10d::AllreduceCoalescedOptions opts;
    opts.reduceOp = c10d::ReduceOp::SUM;
    if (n == 1) {
      c10d::AllreduceOptions one;
      one.reduceOp = c10d::ReduceOp::SUM;
      pg.allreduce(v, one)->wait();
    } else {
      pg.allreduce_coalesced(v, opts)->wait();
    }
  });
}

// Overwrites each tensor with rank `root`'s copy (one collective per tensor).
int sl_pg_broadcast(void* group, at::Tensor** tensors, size_t n, int root, char** err) {
  return guard(err, [&] {
    auto& pg = started(group);
    for (size_t i = 0; i < n; ++i) {
      std::vector<at::Tensor> one{*tensors[i]};
      c10d::BroadcastOptions opts;
      opts.rootRank = root;
      pg.broadcast(one, opts)->wait();
    }
  });
}

int sl_pg_barrier(void* group, char** err) {
  return guard(err, [&] {
    c10d::BarrierOptions opts;
    started(group).barrier(opts)->wait();
  });
}

// Store: set key to bytes.
int sl_store_set(void* group, const char* key, const uint8_t* data, size_t len, char** err) {
  return guard(err, [&] {
    auto g = static_cast<Group*>(group);
    g->store->set(std::string(key), std::vector<uint8_t>(data, data + len));
  });
}

// Store: the bytes of key, waiting for it up to the store's timeout. *out is malloc'd (sl_free).
int sl_store_get(void* group, const char* key, uint8_t** out, size_t* len, char** err) {
  return guard(err, [&] {
    auto g = static_cast<Group*>(group);
    auto v = g->store->get(std::string(key));
    *len = v.size();
    *out = static_cast<uint8_t*>(std::malloc(v.size() + 1));
    if (*out == nullptr) {
      throw std::runtime_error("out of memory");
    }
    std::memcpy(*out, v.data(), v.size());
  });
}

// Store: atomically adds `delta` to the integer at key; the new value in *value.
int sl_store_add(void* group, const char* key, int64_t delta, int64_t* value, char** err) {
  return guard(err, [&] {
    auto g = static_cast<Group*>(group);
    *value = g->store->add(std::string(key), delta);
  });
}

// Store: whether key is set (no waiting); *found 1 or 0.
int sl_store_check(void* group, const char* key, int* found, char** err) {
  return guard(err, [&] {
    auto g = static_cast<Group*>(group);
    *found = g->store->check({std::string(key)}) ? 1 : 0;
  });
}

// A handle for synchronised BatchNorm on the started group (sl_replicas_free releases it).
void* sl_replicas_new(void* group, char** err) {
  Replicas* r = nullptr;
  guard(err, [&] {
    auto g = static_cast<Group*>(group);
    started(group);
    r = new Replicas();
    r->backend = g->backend;
  });
  return r;
}

void sl_replicas_free(void* replicas) { delete static_cast<Replicas*>(replicas); }

// *out = the differentiable sum over the ranks of *x (a new tensor, tch's to own).
int sl_replicas_sum(void* replicas, at::Tensor* x, at::Tensor** out, char** err) {
  return guard(err, [&] {
    auto y = ReplicaSum::apply(*x, reinterpret_cast<int64_t>(replicas));
    *out = new at::Tensor(std::move(y));
  });
}

// The first collective failure of a forward or backward pass since the last call, or null.
char* sl_replicas_take_error(void* replicas) {
  auto r = static_cast<Replicas*>(replicas);
  std::lock_guard<std::mutex> lock(r->mutex);
  if (r->error.empty()) {
    return nullptr;
  }
  char* out = dup(r->error);
  r->error.clear();
  return out;
}

}  // extern "C"
