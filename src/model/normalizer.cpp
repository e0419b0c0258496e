#include "model/normalizer.h"

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
  if (!s.defined()) return {};  // softmax: no factor
  // ln n for n = offset+1 … offset+T keys, one per query row.
  return factor(torch::arange(offset + 1, offset + T + 1, options).log().view({1, T, 1}), options);
}

torch::Tensor AttentionNormalizerImpl::row_scale_at(const torch::Tensor& positions,
                                                    const torch::TensorOptions& options) const {
  if (!s.defined()) return {};  // softmax: no factor
  const int64_t B = positions.size(0), T = positions.size(1);
  // The query at position p of its document sees n = p+1 keys.
  return factor((positions.to(options) + 1).log().view({B, 1, T, 1}), options);
}

torch::Tensor AttentionNormalizerImpl::factor(const torch::Tensor& log_n, const torch::TensorOptions& options) const {
  auto scale = s.to(options).view({-1, 1, 1}) * log_n;
  if (b.defined()) scale = scale + b.to(options).view({-1, 1, 1});
  return scale;
}

torch::Tensor AttentionNormalizerImpl::scale_queries(const torch::Tensor& q, int64_t offset) const {
  if (!s.defined()) return q;
  return q * row_scale(q.size(2), offset, q.options());
}

}  // namespace ssmax
