#include "dist/distributed.h"

#include <spdlog/spdlog.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef USE_C10D_NCCL
#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif

#include <cstdlib>
#include <sstream>
#include <thread>

#include "util/text.h"

namespace ssmax {
namespace {

const char* get_env(const char* name) {
  const char* value = std::getenv(name);
  return value && *value ? value : nullptr;
}

int int_env(const char* name, int fallback, int min, int max) {
  const char* text = get_env(name);
  if (!text) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < min || value > max)
    throw UsageError(fmt::format("environment variable {}={} is not an integer in [{}, {}] (set by the launcher, "
                                 "e.g. torchrun)",
                                 name, text, min, max));
  return static_cast<int>(value);
}

std::string to_string(const std::vector<uint8_t>& bytes) { return std::string(bytes.begin(), bytes.end()); }
std::vector<uint8_t> to_bytes(const std::string& text) { return std::vector<uint8_t>(text.begin(), text.end()); }

// Heartbeats are "<sequence> <step> <phase>": the sequence orders them, step and phase describe them.
struct Beat {
  int64_t sequence = -1, step = 0;
  std::string phase;
};
Beat parse_beat(const std::string& text) {
  Beat beat;
  std::istringstream in(text);
  in >> beat.sequence >> beat.step;
  std::getline(in >> std::ws, beat.phase);
  return beat;
}

}  // namespace

LaunchEnvironment read_launch_environment() {
  LaunchEnvironment env;
  const bool has_rank = get_env("RANK") != nullptr, has_world = get_env("WORLD_SIZE") != nullptr;
  if (!has_rank && !has_world) return env;
  if (has_rank != has_world)
    throw UsageError(std::string("environment variable ") + (has_rank ? "WORLD_SIZE" : "RANK") +
                     " is missing: a distributed launch sets RANK and WORLD_SIZE together (use torchrun)");
  env.launched = true;
  env.world_size = int_env("WORLD_SIZE", 1, 1, 1 << 20);
  env.rank = int_env("RANK", 0, 0, env.world_size - 1);
  env.local_rank = int_env("LOCAL_RANK", 0, 0, env.world_size - 1);
  env.local_world_size = int_env("LOCAL_WORLD_SIZE", 1, 1, env.world_size);
  const char* addr = get_env("MASTER_ADDR");
  if (!addr)
    throw UsageError("environment variable MASTER_ADDR is missing: RANK/WORLD_SIZE are set, so the program "
                     "needs the rendezvous address (use torchrun, or set MASTER_ADDR and MASTER_PORT)");
  env.master_addr = addr;
  if (!get_env("MASTER_PORT")) throw UsageError("environment variable MASTER_PORT is missing (use torchrun)");
  env.master_port = int_env("MASTER_PORT", 0, 1, 65535);
  const char* agent = get_env("TORCHELASTIC_USE_AGENT_STORE");
  env.agent_store = agent && std::string(agent) == "True";
  return env;
}

Distributed& Distributed::instance() {
  static Distributed distributed;
  return distributed;
}

void Distributed::join(const torch::Device& device, std::chrono::milliseconds timeout) {
  const std::string type = device.is_cuda() ? "cuda" : "cpu";
  if (active()) {
    if (type != device_type_)
      throw UsageError("device = " + device.str() + " but this process group runs on " + device_type_ + " (" +
                       backend_name() + "); every run of a distributed sweep must use the same device kind");
    timeout_ = timeout;
    backend_->setTimeout(timeout);
    return;
  }
  env_ = read_launch_environment();
  if (!env_.launched) return;
  device_type_ = type;
  timeout_ = timeout;
  c10d::TCPStoreOptions options;
  options.port = static_cast<uint16_t>(env_.master_port);
  // torchrun's agent hosts a store at MASTER_ADDR:MASTER_PORT (its rendezvous); otherwise rank 0 hosts one.
  options.isServer = !env_.agent_store && env_.rank == 0;
  options.numWorkers = env_.world_size;
  options.waitWorkers = false;
  options.multiTenant = true;
  options.timeout = timeout;
  try {
    auto tcp = c10::make_intrusive<c10d::TCPStore>(env_.master_addr, options);
    const char* restart = get_env("TORCHELASTIC_RESTART_COUNT");
    store_ = c10::make_intrusive<c10d::PrefixStore>(std::string("ssmax-gpt/") + (restart ? restart : "0"), tcp);
    if (device.is_cuda()) {
#ifdef USE_C10D_NCCL
      // NCCL works on the current device: the one this rank trains on (rank_device: GPU LOCAL_RANK).
      c10::cuda::set_device(device.has_index() ? device.index() : static_cast<c10::DeviceIndex>(env_.local_rank));
      auto nccl_options = c10d::ProcessGroupNCCL::Options::create();
      nccl_options->timeout = timeout;
      backend_ = c10::make_intrusive<c10d::ProcessGroupNCCL>(store_, env_.rank, env_.world_size, nccl_options);
#else
      throw UsageError("device = " + device.str() +
                       " under a distributed launch needs NCCL, which this LibTorch lacks");
#endif
    } else {
      auto gloo_options = c10d::ProcessGroupGloo::Options::create(timeout);
      // GLOO_SOCKET_IFNAME picks the network interfaces, as in PyTorch; else the one this host's name resolves to.
      if (const char* interfaces = get_env("GLOO_SOCKET_IFNAME")) {
        for (const auto& name : split_list(interfaces))
          gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(name));
      } else {
        gloo_options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
      }
      backend_ = c10::make_intrusive<c10d::ProcessGroupGloo>(store_, env_.rank, env_.world_size, gloo_options);
    }
  } catch (const UsageError&) {
    throw;
  } catch (const std::exception& e) {
    throw RuntimeFailure(fmt::format("rank {}: could not join the process group at {}:{} within {} s: {}", env_.rank,
                                     env_.master_addr, env_.master_port, timeout.count() / 1000, first_line(e.what())));
  }
}

std::string Distributed::backend_name() const { return active() ? backend_->getBackendName() : "none"; }

torch::Device Distributed::rank_device(const torch::Device& requested) const {
  const LaunchEnvironment env = env_.launched ? env_ : read_launch_environment();
  if (!env.launched || !requested.is_cuda()) return requested;
  if (requested.has_index() && env.local_world_size > 1)
    throw UsageError("device = \"" + requested.str() +
                     "\" would put every rank on one GPU; use \"cuda\" or \"auto\" "
                     "under torchrun (LOCAL_RANK picks each rank's GPU)");
  if (requested.has_index()) return requested;
  if (env.local_rank >= static_cast<int>(torch::cuda::device_count()))
    throw UsageError(fmt::format("LOCAL_RANK {} but this machine has {} CUDA device(s): start at most that many "
                                 "processes per node (torchrun --nproc-per-node)",
                                 env.local_rank, torch::cuda::device_count()));
  return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(env.local_rank));
}

int Distributed::default_threads(int hardware_threads) const {
  const LaunchEnvironment env = env_.launched ? env_ : read_launch_environment();
  return std::max(1, hardware_threads / env.local_world_size);
}

void Distributed::all_reduce_sum(torch::Tensor& tensor, const std::string& what) {
  if (!active()) return;
  wait(all_reduce_sum_async(tensor, what), what);
}

c10::intrusive_ptr<c10d::Work> Distributed::all_reduce_sum_async(torch::Tensor& tensor, const std::string& what) {
  try {
    std::vector<at::Tensor> tensors{tensor};
    return backend_->allreduce(tensors, c10d::AllreduceOptions{});
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void Distributed::all_reduce_min_max(torch::Tensor& min, torch::Tensor& max, const std::string& what) {
  if (!active()) return;
  try {
    std::vector<at::Tensor> low{min}, high{max};
    c10d::AllreduceOptions min_options, max_options;
    min_options.reduceOp = c10d::ReduceOp::MIN;
    max_options.reduceOp = c10d::ReduceOp::MAX;
    finish(backend_->allreduce(low, min_options));
    finish(backend_->allreduce(high, max_options));
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void Distributed::broadcast_from_main(torch::Tensor& tensor, const std::string& what) {
  if (!active()) return;
  try {
    std::vector<at::Tensor> tensors{tensor};
    finish(backend_->broadcast(tensors, c10d::BroadcastOptions{}));
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

// Gloo: the CPU waits, at most the timeout. NCCL: the stream waits (the CPU goes on); NCCL's watchdog aborts a
// collective that passes the timeout.
void Distributed::finish(const c10::intrusive_ptr<c10d::Work>& work) const {
  if (device_type_ == "cuda") work->wait();
  else work->wait(timeout_);
}

void Distributed::wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what) {
  try {
    finish(work);
  } catch (const std::exception& e) {
    fail(what, e);
  }
}

void Distributed::heartbeat(int64_t step, const std::string& phase) {
  if (!active()) return;
  step_ = step;
  try {
    store_->set("beat/" + std::to_string(env_.rank), to_bytes(fmt::format("{} {} {}", ++beat_, step, phase)));
  } catch (const std::exception& e) {
    fail("heartbeat", e);
  }
}

std::string Distributed::on_main(const std::string& what, const std::function<std::string()>& task,
                                 std::chrono::milliseconds timeout) {
  if (!active()) return task();
  const std::string key = "main/" + std::to_string(++main_calls_);
  if (is_main()) {
    std::string kind = "ok", result;
    try {
      result = task();
    } catch (const UsageError& e) {
      kind = "usage", result = e.what();
    } catch (const std::exception& e) {
      kind = "runtime", result = first_line(e.what());
    }
    try {
      store_->set(key, to_bytes(kind + "\n" + result));
    } catch (const std::exception& e) {
      fail(what, e);
    }
    if (kind == "usage") throw UsageError(result);
    if (kind == "runtime") throw RuntimeFailure(result);
    return result;
  }
  std::string reply;
  try {
    store_->wait({key}, timeout);
    reply = to_string(store_->get(key));
  } catch (const std::exception& e) {
    fail(what + " (done by rank 0)", e);
  }
  const std::string kind = reply.substr(0, reply.find('\n')), result = reply.substr(reply.find('\n') + 1);
  if (kind == "usage") throw UsageError(result);
  if (kind == "runtime") throw RuntimeFailure("rank 0 failed: " + result);
  return result;
}

std::vector<std::string> Distributed::gather(const std::string& what, const std::string& mine) {
  if (!active()) return {mine};
  const std::string prefix = "gather/" + std::to_string(++gathers_) + "/";
  std::vector<std::string> all;
  try {
    store_->set(prefix + std::to_string(env_.rank), to_bytes(mine));
    for (int r = 0; r < env_.world_size; ++r) {
      store_->wait({prefix + std::to_string(r)}, timeout_);
      all.push_back(to_string(store_->get(prefix + std::to_string(r))));
    }
  } catch (const std::exception& e) {
    fail(what, e);
  }
  return all;
}

void Distributed::note_failure(const std::string& message) noexcept {
  if (!active() || lost_peer_) return;  // a rank that lost a peer has said so already
  try {
    c10d::StoreTimeoutGuard guard(*store_, std::chrono::seconds(5));
    store_->set("failed/" + std::to_string(env_.rank), to_bytes("error\n" + first_line(message)));
  } catch (...) {
    // The store is gone too: the survivors will say so.
  }
}

// Names the ranks that caused a failed collective. Every rank that sees the failure says so in the store at once
// ("peer"), and a rank that fails on its own error leaves that error ("error"); a rank that stays silent for a
// few seconds has died or hangs, and its heartbeat tells how far it got.
std::string Distributed::diagnose() {
  lost_peer_ = true;
  try {
    c10d::StoreTimeoutGuard guard(*store_, std::chrono::seconds(10));
    store_->set("failed/" + std::to_string(env_.rank), to_bytes("peer\n"));
    std::vector<std::string> notes(env_.world_size);
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
    for (bool waiting = true; waiting && std::chrono::steady_clock::now() < deadline;) {
      waiting = false;
      for (int r = 0; r < env_.world_size; ++r) {
        const std::string key = "failed/" + std::to_string(r);
        if (r == env_.rank || !notes[r].empty()) continue;
        if (store_->check({key})) notes[r] = to_string(store_->get(key));
        else waiting = true;
      }
      if (waiting) std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    std::string text;
    for (int r = 0; r < env_.world_size; ++r) {
      if (r == env_.rank || notes[r].rfind("peer\n", 0) == 0) continue;
      std::string line;
      if (notes[r].rfind("error\n", 0) == 0) {
        line = fmt::format("rank {} failed: {}", r, notes[r].substr(6));
      } else {
        const std::string beat = "beat/" + std::to_string(r);
        const Beat b = store_->check({beat}) ? parse_beat(to_string(store_->get(beat))) : Beat{};
        line = b.sequence < 0 ? fmt::format("rank {} does not respond and never reached the training loop", r)
                              : fmt::format("rank {} does not respond (it died or hangs; it last reached the {} of "
                                            "step {})",
                                            r, b.phase, b.step);
      }
      text += (text.empty() ? "" : "; ") + line;
    }
    return text;
  } catch (const std::exception&) {
    return fmt::format(
        "the rendezvous store at {}:{} is unreachable{}", env_.master_addr, env_.master_port,
        env_.agent_store ? " (torchrun's agent stopped)" : ": rank 0, which hosts it, has most likely died");
  }
}

void Distributed::fail(const std::string& what, const std::exception& cause) {
  const std::string culprit = diagnose();
  throw CollectiveFailure(fmt::format("rank {} of {}: the {} failed at step {}: {}c10d: {}", env_.rank, env_.world_size,
                                      what, step_, culprit.empty() ? "" : culprit + "; ", first_line(cause.what())));
}

}  // namespace ssmax
