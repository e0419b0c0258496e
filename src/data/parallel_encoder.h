#pragma once
// Encodes chunks of text pieces on worker threads while the caller keeps reading the corpus. Chunks come back in
// the order they were submitted, so the token stream does not depend on the thread count; at most 2 × threads
// chunks are in flight, which bounds memory whatever the corpus size.
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "data/tokenizer.h"

namespace ssmax {

class ParallelEncoder {
 public:
  // Called on the submitting thread with each chunk's pieces encoded, in submission order.
  using Deliver = std::function<void(std::vector<std::vector<uint32_t>>& encoded)>;
  ParallelEncoder(const Tokenizer& tokenizer, int threads, Deliver deliver);
  ~ParallelEncoder();  // stops the workers; undelivered work is dropped
  ParallelEncoder(const ParallelEncoder&) = delete;
  ParallelEncoder& operator=(const ParallelEncoder&) = delete;

  // Queues a chunk; delivers finished chunks (oldest first) while too many are in flight. Rethrows a worker's error.
  void submit(std::vector<std::string> pieces);
  void finish();  // delivers everything still in flight
  int threads() const { return static_cast<int>(workers_.size()); }

 private:
  struct Job {
    std::vector<std::string> pieces;
    std::vector<std::vector<uint32_t>> encoded;
    bool done = false;
    std::exception_ptr error;
  };
  void work();
  void deliver_oldest();

  const Tokenizer& tokenizer_;
  Deliver deliver_;
  std::mutex mutex_;
  std::condition_variable work_ready_, job_done_;
  std::deque<std::shared_ptr<Job>> queue_;      // not yet taken by a worker
  std::deque<std::shared_ptr<Job>> in_flight_;  // submitted, not yet delivered, oldest first
  bool stopping_ = false;
  std::vector<std::thread> workers_;
};

}  // namespace ssmax
