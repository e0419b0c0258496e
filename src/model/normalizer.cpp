#include "model/normalizer.h"

#include <cmath>
#include <string_view>

namespace ssmax {

// The parameters' names are the ones metrics, TensorBoard, plots and reports iterate over.
static_assert(std::string_view(kNormalizerParameters[0]) == "s" && std::string_view(kNormalizerParameters[1]) == "b");

AttentionNormalizerImpl::AttentionNormalizerImpl(const NormalizerOptions& options) : options_(options) {
  // Which scalars exist is the normalizer table's (config/normalizer_kind.h); only their shape and start are here.
  const NormalizerSpec& spec = normalizer_spec(options.kind);
  if (spec.has_s) s = register_parameter("s", torch::full({options.n_head}, options.s_init), options.learn_s);
  if (spec.has_b) b = register_parameter("b", torch::full({options.n_head}, options.b_init));
}

torch::Tensor AttentionNormalizerImpl::row_scale(int64_t T, int64_t offset, const torch::TensorOptions& options) const {
  if (!scales()) return {};
  // n = offset+1 … offset+T keys, one per query row.
  return factor(torch::arange(offset + 1, offset + T + 1, options).view({1, T, 1}), options);
}

torch::Tensor AttentionNormalizerImpl::row_scale_at(const torch::Tensor& positions,
                                                    const torch::TensorOptions& options) const {
  if (!scales()) return {};
  const int64_t B = positions.size(0), T = positions.size(1);
  // The query at position p of its document sees n = p+1 keys.
  return factor((positions.to(options) + 1).view({B, 1, T, 1}), options);
}

torch::Tensor AttentionNormalizerImpl::factor(const torch::Tensor& n, const torch::TensorOptions& options) const {
  switch (options_.kind) {
    case Normalizer::SSMax:
    case Normalizer::SSMaxBias: {
      auto scale = s.to(options).view({-1, 1, 1}) * n.log();
      if (b.defined()) scale = scale + b.to(options).view({-1, 1, 1});
      return scale;
    }
    case Normalizer::Logn:  // 1 up to n = L, then log_L n
      return torch::clamp_min(n.log() / std::log(options_.logn_length), 1.0);
    case Normalizer::Llama4:  // 1 for n < F, then steps up at every multiple of F
      return 1.0 + options_.attn_scale * torch::log1p(torch::floor(n / options_.floor_scale));
    case Normalizer::Softmax:
      break;
  }
  return {};
}

torch::Tensor AttentionNormalizerImpl::scale_queries(const torch::Tensor& q, int64_t offset) const {
  if (!scales()) return q;
  return q * row_scale(q.size(2), offset, q.options());
}

}  // namespace ssmax
