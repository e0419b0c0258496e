#pragma once
// Causal multi-head self-attention with optional RoPE; the normalizer scales q per row.
#include <torch/torch.h>

#include "model/normalizer.h"

namespace ssmax {

// Keys and values already computed for earlier positions (incremental decoding).
struct KVCache {
  torch::Tensor k, v;  // [B, n_kv_head, T_past, head_dim]; undefined when empty
  int64_t length() const { return k.defined() ? k.size(2) : 0; }
};

// Packed training windows hold several documents. With document masking a query attends only to earlier keys of
// its own document, and everything that depends on a position (SSMax's n = position + 1, RoPE's angle, learned
// position embeddings) counts from the document's start, so a document computes exactly what it computes alone.
// One layout per forward, shared by every layer.
struct DocumentLayout {
  torch::Tensor positions;  // [B, T] int64: each token's 0-based position within its document (in the window)
  torch::Tensor visible;    // [B, 1, T, T] bool: key j visible to query i ⇔ i − positions[i] ≤ j ≤ i

  // The layout of `positions` ([B, T] int64, 0 where a document starts); an empty layout (positions undefined)
  // when every row is a single document starting at the window's start: the plain causal path computes that. Checked
  // on CPU tensors only (a device tensor would make every forward wait for the device; the loader already leaves the
  // positions of such a batch out), so a plain batch on a GPU takes the masked path, with the same result.
  static DocumentLayout from_positions(const torch::Tensor& positions);
  bool empty() const { return !positions.defined(); }
};

struct AttentionOptions {
  int64_t n_embd = 256;
  int64_t n_head = 4;
  int64_t n_kv_head = 0;  // grouped-query attention: key/value heads, each shared by n_head / n_kv_head; 0 = n_head
  bool bias = false;
  double dropout = 0.0;
  bool rope = false;
  double rope_theta = 10000.0;
  NormalizerOptions normalizer;
};

class CausalSelfAttentionImpl : public torch::nn::Module {
 public:
  explicit CausalSelfAttentionImpl(const AttentionOptions& options);

  // x: [B, T, C] at absolute positions offset … offset+T-1 (offset = cache length when a cache is given), or at
  // the positions of a non-empty `documents` layout (no cache then). When `weights_out` is given, the attention
  // weights [B, n_head, T, T_keys] are stored there.
  torch::Tensor forward(const torch::Tensor& x, KVCache* cache = nullptr, torch::Tensor* weights_out = nullptr,
                        const DocumentLayout* documents = nullptr);

  void set_rope_theta(double theta) { options_.rope_theta = theta; }
  double rope_theta() const { return options_.rope_theta; }

  torch::nn::Linear c_attn{nullptr}, c_proj{nullptr};
  AttentionNormalizer normalizer{nullptr};

 private:
  // cos and sin [T, head_dim/2] for positions offset … offset+T-1, kept for the next call with the same key:
  // a training run asks for the same table every step.
  std::pair<torch::Tensor, torch::Tensor> rope_tables(int64_t T, int64_t offset, const torch::TensorOptions& options);
  // Each row's tables [B, T, head_dim/2] at its tokens' positions within their documents.
  std::pair<torch::Tensor, torch::Tensor> rope_tables_at(const torch::Tensor& positions,
                                                         const torch::TensorOptions& options);
  struct RopeTables {
    int64_t T = -1, offset = -1;
    double theta = 0;
    torch::TensorOptions options;
    torch::Tensor cos, sin;
  } rope_cache_;
  int64_t kv_heads() const { return options_.n_kv_head > 0 ? options_.n_kv_head : options_.n_head; }
  AttentionOptions options_;
};
TORCH_MODULE(CausalSelfAttention);

// softmax(q·kᵀ) v with a causal mask, where query i sits at absolute position (T_k - T_q + i), and q
// already carries every factor (1/√d and the normalizer's): scaling q costs T·d, scaling the scores T².
// `visible` ([B, 1, T, T] bool, DocumentLayout), when defined, replaces the causal mask (then T_q = T_k).
// Uses the fused kernel (torch::scaled_dot_product_attention) unless the weights are requested.
torch::Tensor causal_attention_prescaled(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v,
                                         double dropout, bool training, torch::Tensor* weights_out = nullptr,
                                         const torch::Tensor& visible = {});

// softmax(q·kᵀ/√d) v, causal: the plain softmax attention.
torch::Tensor causal_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, double dropout,
                               bool training, torch::Tensor* weights_out = nullptr);

}  // namespace ssmax
