#include "eval/length_eval.h"

#include <spdlog/spdlog.h>

#include <algorithm>

#include "util/errors.h"

namespace ssmax {

double PositionLoss::overall() const {
  double total = 0;
  int64_t tokens = 0;
  for (size_t p = 0; p < sum.size(); ++p) {
    total += sum[p];
    tokens += count[p];
  }
  return total / static_cast<double>(tokens);
}

std::vector<LossBin> log_bins(const PositionLoss& losses) {
  std::vector<LossBin> bins;
  for (int64_t lo = 1; lo <= losses.length; lo *= 2) {
    LossBin bin;
    bin.lo = lo;
    bin.hi = std::min(2 * lo, losses.length + 1);
    double total = 0;
    for (int64_t p = bin.lo; p < bin.hi; ++p) {
      total += losses.sum[p - 1];
      bin.tokens += losses.count[p - 1];
    }
    if (bin.tokens == 0) continue;  // no document of the source reaches these positions
    bin.loss = total / static_cast<double>(bin.tokens);
    bins.push_back(bin);
  }
  return bins;
}

PositionLoss position_losses(GPT& model, const TokenSource& source, int64_t length, int64_t windows,
                             const torch::Device& device, const ProgressCallback& progress) {
  const int64_t window = length + 1;
  const int64_t slots = static_cast<int64_t>(source.size()) / window;
  if (slots == 0)
    throw RuntimeFailure(source.name() + ": holds " + std::to_string(source.size()) +
                         " tokens, fewer than one window of length + 1 = " + std::to_string(window));
  PositionLoss out;
  out.length = length;
  out.windows = std::min(windows, slots);
  if (out.windows < windows)
    spdlog::info("length {}: {} holds only {} non-overlapping windows; using them all", length, source.name(), slots);
  out.sum.assign(length, 0.0);
  // A model trained inside documents is evaluated inside documents, each prediction binned by the context it has.
  const bool by_document = model->options().model.attention.document_mask && source.has_documents();
  out.within_documents = by_document;

  // Windows per forward: logits [B, L, vocab] and attention scores [B, heads, L, L] within ~512 MiB of floats.
  const auto& m = model->options().model;
  const int64_t per_window = length * std::max<int64_t>(model->options().vocab_size, m.n_head * length);
  const int64_t batch = std::clamp<int64_t>((int64_t{1} << 27) / per_window, 1, out.windows);

  torch::NoGradGuard no_grad;
  model->eval();
  auto sums = torch::zeros({length}, torch::kDouble);
  auto counts = torch::zeros({length}, torch::kLong);
  for (int64_t first = 0; first < out.windows; first += batch) {
    const int64_t B = std::min(batch, out.windows - first);
    auto tokens = torch::empty({B, window}, torch::kLong);
    auto positions = torch::arange(length, torch::kLong).repeat({B, 1});
    for (int64_t b = 0; b < B; ++b) {
      // Slot k·slots/windows: spread over the whole source, deterministic, never overlapping.
      const int64_t slot = (first + b) * slots / out.windows;
      source.copy_to(static_cast<size_t>(slot * window), static_cast<size_t>(window),
                     tokens.data_ptr<int64_t>() + b * window);
      if (by_document)
        source.positions(static_cast<size_t>(slot * window), static_cast<size_t>(length),
                         positions.data_ptr<int64_t>() + b * length);
    }
    tokens = tokens.to(device);
    auto logits = model
                      ->forward(tokens.narrow(1, 0, length), nullptr, nullptr,
                                by_document ? positions.to(device) : torch::Tensor())
                      .to(torch::kFloat);
    auto loss = torch::nn::functional::cross_entropy(
        logits.reshape({-1, logits.size(-1)}), tokens.narrow(1, 1, length).reshape({-1}),
        torch::nn::functional::CrossEntropyFuncOptions().reduction(torch::kNone));
    const auto at = positions.reshape({-1});
    sums.index_add_(0, at, loss.reshape({-1}).to(torch::kCPU, torch::kDouble));
    counts.index_add_(0, at, torch::ones_like(at));
    if (progress) progress(first + B, out.windows);
  }
  sums = sums.contiguous();
  std::copy(sums.data_ptr<double>(), sums.data_ptr<double>() + length, out.sum.begin());
  out.count.assign(counts.data_ptr<int64_t>(), counts.data_ptr<int64_t>() + length);
  return out;
}

}  // namespace ssmax
