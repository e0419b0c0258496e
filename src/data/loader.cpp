#include "data/loader.h"

#include "util/errors.h"
#include "util/hash.h"

namespace ssmax {
namespace {

uint64_t mix(uint64_t x) { return splitmix64(x); }  // one call per window keeps the order a pure function

}  // namespace

BatchLoader::BatchLoader(const TokenStream& shard, int64_t block_size, int64_t batch_size, uint64_t seed,
                         const DocumentIndex* documents)
    : shard_(shard), documents_(documents), block_size_(block_size), batch_size_(batch_size), seed_(seed) {
  if (documents && documents->stream_tokens() != shard.size())
    throw RuntimeFailure(documents->path() + ": indexes a stream of " + std::to_string(documents->stream_tokens()) +
                         " tokens, but " + shard.name() + " holds " + std::to_string(shard.size()) +
                         " (delete the dataset directory and run `ssmax-gpt prepare CONFIG`)");
  if (shard.size() < static_cast<size_t>(block_size) + 1)
    throw RuntimeFailure(shard.name() + ": holds " + std::to_string(shard.size()) +
                         " tokens, fewer than one window of model.block_size + 1 = " + std::to_string(block_size + 1) +
                         " (use more text, a larger data.val_fraction, or a smaller block_size)");
}

Batch BatchLoader::gather(const std::vector<size_t>& starts) const {
  const int64_t B = static_cast<int64_t>(starts.size()), T = block_size_;
  auto window = torch::empty({B, T + 1}, torch::kLong);
  auto* out = window.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; ++b) shard_.copy_to(starts[b], T + 1, out + b * (T + 1));
  Batch batch{window.narrow(1, 0, T).contiguous(), window.narrow(1, 1, T).contiguous(), {}};
  if (documents_) {
    batch.positions = torch::empty({B, T}, torch::kLong);
    auto* pos = batch.positions.data_ptr<int64_t>();
    bool boundary = false;
    for (int64_t b = 0; b < B; ++b) {
      documents_->positions(starts[b], T, pos + b * T);
      for (int64_t t = 0; t < T && !boundary; ++t) boundary = pos[b * T + t] != t;
    }
    // Every row one document from its first token: the plain causal case, said here where it costs nothing rather
    // than asked of the device in every forward.
    if (!boundary) batch.positions = torch::Tensor();
  }
  return batch;
}

Batch BatchLoader::train_batch(int64_t step, int64_t micro_step) const {
  const uint64_t positions = shard_.size() - block_size_;  // valid starts: 0 … size − T − 1
  std::vector<size_t> starts(batch_size_);
  uint64_t key = mix(mix(mix(seed_) ^ static_cast<uint64_t>(step)) ^ static_cast<uint64_t>(micro_step));
  for (int64_t b = 0; b < batch_size_; ++b) starts[b] = mix(key ^ static_cast<uint64_t>(b)) % positions;
  return gather(starts);
}

Batch BatchLoader::eval_batch(int64_t index, int64_t num_batches) const {
  const uint64_t last_start = shard_.size() - block_size_ - 1;
  const uint64_t windows = static_cast<uint64_t>(num_batches * batch_size_);
  std::vector<size_t> starts(batch_size_);
  for (int64_t b = 0; b < batch_size_; ++b) {
    uint64_t k = static_cast<uint64_t>(index * batch_size_ + b);
    starts[b] = windows > 1 ? (k * last_start) / (windows - 1) : 0;
  }
  return gather(starts);
}

PrefetchingLoader::~PrefetchingLoader() {
  if (pending_ && pending_->batch.valid()) pending_->batch.wait();
}

Batch PrefetchingLoader::to_device(Batch batch) const {
  if (device_.is_cpu()) return batch;
  // From page-locked memory a non_blocking copy is queued on the stream and the host goes on; the caching host
  // allocator keeps the pinned block until the copy has run.
  const auto move = [&](const torch::Tensor& t) {
    return t.defined() ? t.pin_memory().to(device_, /*non_blocking=*/true) : t;
  };
  return {move(batch.inputs), move(batch.targets), move(batch.positions)};
}

Batch PrefetchingLoader::train_batch(int64_t step, int64_t micro_step) {
  if (pending_ && pending_->step == step && pending_->micro_step == micro_step) {
    Batch batch = pending_->batch.get();
    pending_.reset();
    ++hits_;
    return batch;
  }
  if (pending_) pending_->batch.wait();  // a stale prefetch (the trainer changed its plan): drop it
  pending_.reset();
  return to_device(loader_.train_batch(step, micro_step));
}

void PrefetchingLoader::prefetch(int64_t step, int64_t micro_step) {
  if (pending_) pending_->batch.wait();
  pending_.emplace(Pending{step, micro_step, std::async(std::launch::async, [this, step, micro_step] {
                             return to_device(loader_.train_batch(step, micro_step));
                           })});
}

}  // namespace ssmax
