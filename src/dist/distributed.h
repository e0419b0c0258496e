#pragma once
// Data-parallel processes on torch.distributed's C++ core (c10d): a TCPStore for rendezvous and small
// messages, ProcessGroupNCCL on CUDA and ProcessGroupGloo on CPU. Any launcher that sets RANK, WORLD_SIZE,
// LOCAL_RANK, MASTER_ADDR and MASTER_PORT works (torchrun does). Without RANK/WORLD_SIZE the program is one
// process and every call below is a no-op, so single-process runs are unchanged bit for bit.
//
// Failures: a collective that errors (a peer died) or passes distributed.timeout_s (a peer hangs) ends this
// rank with a CollectiveFailure that names the rank that stopped. Each rank leaves a heartbeat in the store
// (how far it got) and, when it exits on an error, the error itself; the survivors read them.
#include <torch/torch.h>

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>
#include <torch/csrc/distributed/c10d/Work.hpp>

#include "util/errors.h"

namespace ssmax {

// A rank could not finish a collective because another rank died or hangs. Exit code 1.
struct CollectiveFailure : RuntimeFailure {
  using RuntimeFailure::RuntimeFailure;
};

// What the launcher told this process. Throws UsageError naming a malformed or missing variable.
struct LaunchEnvironment {
  bool launched = false;  // RANK and WORLD_SIZE are set
  int rank = 0, world_size = 1, local_rank = 0, local_world_size = 1;
  std::string master_addr;
  int master_port = 0;
  bool agent_store = false;  // torchrun's agent hosts the store (TORCHELASTIC_USE_AGENT_STORE=True)
};
LaunchEnvironment read_launch_environment();

class Distributed {
 public:
  static Distributed& instance();  // the process's one group; single-process until join()

  // Joins the group the environment names, on `device`'s backend (NCCL for CUDA, Gloo for CPU); `timeout`
  // bounds every collective. A second call (the next run of a sweep) checks the device kind is the same.
  void join(const torch::Device& device, std::chrono::milliseconds timeout);
  bool active() const { return backend_ != nullptr; }
  int rank() const { return env_.rank; }
  int world_size() const { return active() ? env_.world_size : 1; }
  bool is_main() const { return env_.rank == 0; }
  const LaunchEnvironment& environment() const { return env_; }
  std::string backend_name() const;
  std::chrono::milliseconds timeout() const { return timeout_; }

  // The device this rank trains on: CUDA ranks take GPU LOCAL_RANK; CPU stays CPU.
  torch::Device rank_device(const torch::Device& requested) const;
  // Threads for config.threads = 0: the machine's cores shared among the ranks on this machine.
  int default_threads(int hardware_threads) const;

  // Collectives (no-ops when not active). `what` names the operation in failure messages.
  void all_reduce_sum(torch::Tensor& tensor, const std::string& what);
  void all_reduce_min_max(torch::Tensor& min, torch::Tensor& max, const std::string& what);
  void broadcast_from_main(torch::Tensor& tensor, const std::string& what);
  c10::intrusive_ptr<c10d::Work> all_reduce_sum_async(torch::Tensor& tensor, const std::string& what);  // then wait()
  void wait(const c10::intrusive_ptr<c10d::Work>& work, const std::string& what);

  // Records in the store that this rank reached `phase` of step `step`; the survivors of a failure name
  // the ranks whose last heartbeat is behind theirs.
  void heartbeat(int64_t step, const std::string& phase);
  // Rank 0 runs `task` (e.g. writes a file); the others wait for it and get its result, or the same error.
  std::string on_main(const std::string& what, const std::function<std::string()>& task,
                      std::chrono::milliseconds timeout);
  // Every rank's `mine`, in rank order, on every rank (through the store: for small strings).
  std::vector<std::string> gather(const std::string& what, const std::string& mine);
  // Leaves this rank's fatal error in the store, so that the others' messages can quote it.
  void note_failure(const std::string& message) noexcept;

 private:
  Distributed() = default;
  [[noreturn]] void fail(const std::string& what, const std::exception& cause);
  std::string diagnose();
  void finish(const c10::intrusive_ptr<c10d::Work>& work) const;

  LaunchEnvironment env_;
  std::string device_type_;
  std::chrono::milliseconds timeout_{0};
  c10::intrusive_ptr<c10d::Store> store_;
  c10::intrusive_ptr<c10d::Backend> backend_;
  int64_t beat_ = 0, main_calls_ = 0, gathers_ = 0;
  int64_t step_ = 0;        // of the latest heartbeat
  bool lost_peer_ = false;  // this rank saw a collective fail: its note in the store says so
};

}  // namespace ssmax
