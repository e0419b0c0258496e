#include "dist/gradient_sync.h"

#include <torch/csrc/autograd/functions/accumulate_grad.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>

#include <chrono>

namespace ssmax {

GradientSync::GradientSync(const std::vector<torch::Tensor>& parameters, Distributed& dist, int64_t bucket_bytes,
                           bool overlap)
    : state_(std::make_shared<State>()) {
  state_->dist = &dist;
  state_->overlap = overlap;
  auto& buckets = state_->buckets;
  // Reverse order: the last layers' gradients come first in backward, so their bucket can start first.
  std::vector<std::vector<torch::Tensor>> groups(1);
  int64_t bytes = 0;
  for (auto it = parameters.rbegin(); it != parameters.rend(); ++it) {
    const int64_t size = it->numel() * it->element_size();
    if (!groups.back().empty() && bytes + size > bucket_bytes) groups.emplace_back(), bytes = 0;
    groups.back().push_back(*it);
    bytes += size;
  }
  buckets.resize(groups.size());
  torch::NoGradGuard no_grad;
  for (size_t i = 0; i < groups.size(); ++i) {
    int64_t total = 0;
    for (const auto& p : groups[i]) total += p.numel();
    Bucket& bucket = buckets[i];
    bucket.flat = torch::zeros({total}, groups[i].front().options());
    bucket.parameters = static_cast<int>(groups[i].size());
    int64_t offset = 0;
    for (auto p : groups[i]) {
      TORCH_CHECK(p.is_contiguous() && p.dtype() == bucket.flat.dtype(),
                  "gradient buckets need contiguous float parameters");
      p.mutable_grad() = bucket.flat.narrow(0, offset, p.numel()).view(p.sizes());
      offset += p.numel();
      auto accumulator = torch::autograd::impl::grad_accumulator(p);
      accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
          [weak = std::weak_ptr<State>(state_), i](const torch::autograd::variable_list& outputs,
                                                   const torch::autograd::variable_list&) {
            auto state = weak.lock();
            if (!state || !state->armed || !state->overlap) return outputs;
            Bucket& b = state->buckets[i];
            if (++b.ready == b.parameters) state->launch(b);
            return outputs;
          }));
      accumulators_.push_back(std::move(accumulator));
    }
  }
}

void GradientSync::zero_grad() {
  for (auto& bucket : state_->buckets) bucket.flat.zero_();
}

void GradientSync::arm() {
  state_->armed = true;
  for (auto& bucket : state_->buckets) bucket.ready = 0, bucket.work.reset();
}

void GradientSync::State::launch(Bucket& bucket) {
  bucket.work = dist->all_reduce_sum_async(bucket.flat, "gradient all-reduce");
}

double GradientSync::finish() {
  const auto start = std::chrono::steady_clock::now();
  for (auto& bucket : state_->buckets)
    if (!bucket.work) state_->launch(bucket);
  for (auto& bucket : state_->buckets) state_->dist->wait(bucket.work, "gradient all-reduce");
  state_->armed = false;
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace ssmax
