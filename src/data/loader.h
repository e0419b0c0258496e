#pragma once
// Batches of (input, target) windows cut from a split's token stream (its shards read as one sequence).
// Training windows are a pure function of (seed, step, micro_step): resuming at any step replays
// exactly, with no loader state to save. Validation uses one fixed set of windows, spread evenly
// over the split, identical at every evaluation. Given the split's document index (dataset format 4), a batch also
// says where each input token stands in its document; the windows are the same with or without it.
#include <torch/torch.h>

#include <future>
#include <optional>

#include "data/document_index.h"
#include "data/token_stream.h"

namespace ssmax {

struct Batch {
  torch::Tensor inputs, targets;  // [B, T] int64: a window and the same window one token on
  // [B, T] int64: each input token's position within its document, counted from the window's start (a document
  // that began before the window counts from 0 at the window's first token). Undefined without a document index,
  // and when no row holds a document start after its first token (the plain causal case).
  torch::Tensor positions;
};

class BatchLoader {
 public:
  // Throws RuntimeFailure when the stream is shorter than one window (block_size + 1 tokens), or when `documents`
  // describes a stream of another length. `documents` (may be null) must outlive the loader, like `tokens`.
  BatchLoader(const TokenStream& tokens, int64_t block_size, int64_t batch_size, uint64_t seed,
              const DocumentIndex* documents = nullptr);

  Batch train_batch(int64_t step, int64_t micro_step) const;
  // Batch `index` of the fixed validation set of `num_batches` batches.
  Batch eval_batch(int64_t index, int64_t num_batches) const;

 private:
  Batch gather(const std::vector<size_t>& starts) const;
  const TokenStream& shard_;
  const DocumentIndex* documents_;
  int64_t block_size_, batch_size_;
  uint64_t seed_;
};

// Training batches on their device, the next one made while the current step computes: the trainer names the
// micro-batch it will ask for next, a helper thread gathers it (into page-locked memory when the device is a GPU,
// so the copy can run without blocking the host) and starts the copy. Batches are a pure function of
// (step, micro_step), so a prefetched batch is the same tensor the loader would give; a request for anything
// else simply gathers it now.
class PrefetchingLoader {
 public:
  PrefetchingLoader(const BatchLoader& loader, const torch::Device& device) : loader_(loader), device_(device) {}
  ~PrefetchingLoader();  // waits for a pending gather: the loader it reads outlives nothing

  Batch train_batch(int64_t step, int64_t micro_step);
  void prefetch(int64_t step, int64_t micro_step);
  int64_t prefetched() const { return hits_; }  // requests served by a prefetch (tests, benchmarks)

 private:
  Batch to_device(Batch batch) const;
  const BatchLoader& loader_;
  torch::Device device_;
  struct Pending {
    int64_t step, micro_step;
    std::future<Batch> batch;
  };
  std::optional<Pending> pending_;
  int64_t hits_ = 0;
};

}  // namespace ssmax
