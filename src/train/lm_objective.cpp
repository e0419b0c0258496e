// Pretraining's objective: next-token loss on every position of windows cut from the token shards.
#include <memory>

#include <optional>

#include "data/document_index.h"
#include "data/loader.h"
#include "data/token_stream.h"
#include "train/session.h"
#include "util/errors.h"

namespace ssmax {
namespace {

class LanguageModelObjective : public TrainingObjective {
 public:
  LanguageModelObjective(const PreparedDataset& dataset, const Config& config)
      : unigram_entropy_(dataset.unigram_entropy_nats),
        train_shard_(TokenStream::open(dataset.train_shards)),
        val_shard_(TokenStream::open(dataset.val_shards)) {
    for (const TokenStream* shard : {&train_shard_, &val_shard_})
      if (shard->vocab_size() != static_cast<uint32_t>(dataset.vocab_size))
        throw RuntimeFailure("tokenizer/shard vocabulary mismatch: " + shard->name() + " was encoded with vocab " +
                             std::to_string(shard->vocab_size()) + " but the tokenizer has " +
                             std::to_string(dataset.vocab_size) + " (delete " + dataset.dir + " and prepare again)");
    if (config.model.attention.document_mask) {
      // Boundaries are never guessed: a dataset from before format 4 does not know them.
      if (dataset.train_documents.empty() || dataset.val_documents.empty())
        throw UsageError("model.attention.document_mask = true needs document boundaries, which the dataset at " +
                         dataset.dir +
                         " does not record (prepared by an older ssmax-gpt); prepare it again "
                         "(`ssmax-gpt prepare CONFIG` builds a new one beside it), or set it to false");
      train_documents_.emplace(DocumentIndex::open(dataset.train_documents, train_shard_.size()));
      val_documents_.emplace(DocumentIndex::open(dataset.val_documents, val_shard_.size()));
    }
    const int64_t block = config.model.block_size, batch = config.train.batch_size;
    const DocumentIndex* train_documents = train_documents_ ? &*train_documents_ : nullptr;
    const DocumentIndex* val_documents = val_documents_ ? &*val_documents_ : nullptr;
    train_loader_ = std::make_unique<BatchLoader>(train_shard_, block, batch, config.seed, train_documents);
    val_loader_ = std::make_unique<BatchLoader>(val_shard_, block, batch, config.seed, val_documents);
  }

  TrainBatch train_batch(int64_t step, int micro, const torch::Device& device) override {
    auto [x, y, positions] = prefetcher(device).train_batch(step, micro);
    return {x, y, positions, {}};
  }

  torch::Tensor train_loss(GPT& model, const TrainBatch& batch) override {
    return model->loss(batch.inputs, batch.targets, batch.positions);
  }

  void prefetch(int64_t step, int micro, const torch::Device& device) override {
    prefetcher(device).prefetch(step, micro);
  }

  double validation_loss(GPT& model, int batches, const torch::Device& device) override {
    return validation_loss_sum(model, batches, 0, 1, device) / batches;
  }

  double validation_loss_sum(GPT& model, int batches, int rank, int world, const torch::Device& device) override {
    double total = 0;
    for (int i = rank; i < batches; i += world) {
      auto [x, y, positions] = val_loader_->eval_batch(i, batches);
      total += model->loss(x.to(device), y.to(device), positions.defined() ? positions.to(device) : positions)
                   .item<double>();
    }
    return total;
  }

  std::string baseline_note() const override {
    return " (unigram entropy " + std::to_string(unigram_entropy_).substr(0, 5) + ")";
  }

 private:
  PrefetchingLoader& prefetcher(const torch::Device& device) {
    if (!prefetcher_ || prefetcher_device_ != device) {
      prefetcher_.reset();
      prefetcher_ = std::make_unique<PrefetchingLoader>(*train_loader_, device);
      prefetcher_device_ = device;
    }
    return *prefetcher_;
  }

  double unigram_entropy_;
  TokenStream train_shard_, val_shard_;                           // the loaders keep references to these
  std::optional<DocumentIndex> train_documents_, val_documents_;  // with model.attention.document_mask only
  std::unique_ptr<BatchLoader> train_loader_, val_loader_;
  std::unique_ptr<PrefetchingLoader> prefetcher_;  // after the loader it reads: destroyed (and joined) first
  torch::Device prefetcher_device_{torch::kCPU};
};

}  // namespace

double TrainingObjective::validation_loss_sum(GPT&, int, int, int, const torch::Device&) {
  throw UsageError("this objective trains in one process only; run it without torchrun");
}

std::unique_ptr<TrainingObjective> language_model_objective(const PreparedDataset& dataset, const Config& config) {
  return std::make_unique<LanguageModelObjective>(dataset, config);
}

}  // namespace ssmax
