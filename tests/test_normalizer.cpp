// Pins the attention normalizer to its formulas: softmax(c(n)·q·kᵀ/√d), n = t+1 keys for the query at 0-based
// position t, c = 1 | s·ln n | s·ln n + b | max(1, ln n / ln L) | 1 + a·ln(1 + ⌊n / F⌋).
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "model/attention.h"
#include "model/normalizer.h"

namespace ssmax {
namespace {

NormalizerOptions options_for(Normalizer kind, int64_t heads, double s_init = 0.43, double b_init = 0.0) {
  NormalizerOptions o;
  o.kind = kind;
  o.n_head = heads;
  o.s_init = s_init;
  o.b_init = b_init;
  // Small L and F, a large a: the length-aware scalings leave 1 within a few rows.
  o.logn_length = 4;
  o.floor_scale = 3;
  o.attn_scale = 0.5;
  return o;
}

// The formula written as plainly as possible: one query row at a time, scalar factor per row.
torch::Tensor naive_attention(const torch::Tensor& q, const torch::Tensor& k, const torch::Tensor& v, Normalizer kind,
                              const torch::Tensor& s, const torch::Tensor& b, const NormalizerOptions& o = {}) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), d = q.size(3);
  std::vector<torch::Tensor> batches;
  for (int64_t bi = 0; bi < B; ++bi) {
    std::vector<torch::Tensor> heads;
    for (int64_t h = 0; h < H; ++h) {
      std::vector<torch::Tensor> rows;
      for (int64_t t = 0; t < T; ++t) {
        const double n = static_cast<double>(t + 1);
        auto logits = torch::mv(k[bi][h].slice(0, 0, t + 1), q[bi][h][t]) / std::sqrt(static_cast<double>(d));
        torch::Tensor factor = torch::ones({}, q.options());
        if (kind == Normalizer::SSMax || kind == Normalizer::SSMaxBias) factor = s[h] * std::log(n);
        if (kind == Normalizer::SSMaxBias) factor = factor + b[h];
        if (kind == Normalizer::Logn && n > o.logn_length) factor = factor * (std::log(n) / std::log(o.logn_length));
        if (kind == Normalizer::Llama4)
          factor = factor * (1 + o.attn_scale * std::log(1 + std::floor(n / o.floor_scale)));
        auto weights = torch::softmax(factor * logits, 0);
        rows.push_back(torch::mv(v[bi][h].slice(0, 0, t + 1).t(), weights));
      }
      heads.push_back(torch::stack(rows));
    }
    batches.push_back(torch::stack(heads));
  }
  return torch::stack(batches);
}

class NormalizerParity : public ::testing::TestWithParam<Normalizer> {};

TEST_P(NormalizerParity, MatchesNaiveFormulaForwardAndGradients) {
  torch::manual_seed(7);
  const Normalizer kind = GetParam();
  const int64_t B = 2, H = 3, T = 9, d = 4;
  auto dbl = torch::TensorOptions().dtype(torch::kDouble);
  auto q = torch::randn({B, H, T, d}, dbl).requires_grad_(true);
  auto k = torch::randn({B, H, T, d}, dbl).requires_grad_(true);
  auto v = torch::randn({B, H, T, d}, dbl).requires_grad_(true);
  AttentionNormalizer normalizer(options_for(kind, H));
  normalizer->to(torch::kDouble);
  if (normalizer->s.defined()) {
    torch::NoGradGuard g;
    normalizer->s.copy_(torch::tensor({0.3, 0.7, 1.4}, dbl));
  }
  if (normalizer->b.defined()) {
    torch::NoGradGuard g;
    normalizer->b.copy_(torch::tensor({-0.2, 0.5, 0.1}, dbl));
  }
  auto out = causal_attention(normalizer->scale_queries(q), k, v, 0.0, false);

  auto q2 = q.detach().clone().requires_grad_(true), k2 = k.detach().clone().requires_grad_(true),
       v2 = v.detach().clone().requires_grad_(true);
  torch::Tensor s2, b2;
  if (normalizer->s.defined()) s2 = normalizer->s.detach().clone().requires_grad_(true);
  if (normalizer->b.defined()) b2 = normalizer->b.detach().clone().requires_grad_(true);
  auto expected = naive_attention(q2, k2, v2, kind, s2, b2, options_for(kind, H));
  ASSERT_TRUE(torch::allclose(out, expected, 1e-10, 1e-12)) << (out - expected).abs().max();

  auto upstream = torch::randn_like(out);
  (out * upstream).sum().backward();
  (expected * upstream).sum().backward();
  EXPECT_TRUE(torch::allclose(q.grad(), q2.grad(), 1e-9, 1e-11));
  EXPECT_TRUE(torch::allclose(k.grad(), k2.grad(), 1e-9, 1e-11));
  EXPECT_TRUE(torch::allclose(v.grad(), v2.grad(), 1e-9, 1e-11));
  if (s2.defined()) EXPECT_TRUE(torch::allclose(normalizer->s.grad(), s2.grad(), 1e-9, 1e-11));
  if (b2.defined()) EXPECT_TRUE(torch::allclose(normalizer->b.grad(), b2.grad(), 1e-9, 1e-11));
}

// The attention module folds 1/√d and the normalizer into one scale on q: same numbers as the formula.
TEST_P(NormalizerParity, AttentionModuleMatchesNaiveFormula) {
  torch::manual_seed(9);
  const Normalizer kind = GetParam();
  const int64_t B = 2, T = 7, C = 12, H = 3;
  AttentionOptions options;
  options.n_embd = C;
  options.n_head = H;
  options.normalizer = options_for(kind, H, 0.8, 0.4);
  CausalSelfAttention attention(options);
  attention->to(torch::kDouble);
  auto x = torch::randn({B, T, C}, torch::kDouble);
  auto qkv = attention->c_attn(x).view({B, T, 3, H, C / H}).permute({2, 0, 3, 1, 4});
  auto expected = naive_attention(qkv[0], qkv[1], qkv[2], kind, attention->normalizer->s, attention->normalizer->b,
                                  options.normalizer);
  expected = attention->c_proj(expected.transpose(1, 2).reshape({B, T, C}));
  EXPECT_TRUE(torch::allclose(attention(x), expected, 1e-10, 1e-12));
}

std::string normalizer_test_name(const ::testing::TestParamInfo<Normalizer>& info) {
  return normalizer_name(info.param);
}

INSTANTIATE_TEST_SUITE_P(AllNormalizers, NormalizerParity,
                         ::testing::Values(Normalizer::Softmax, Normalizer::SSMax, Normalizer::SSMaxBias,
                                           Normalizer::Logn, Normalizer::Llama4),
                         normalizer_test_name);

// Qwen-1's logn (use_logn_attn) and Llama 4's temperature, value by value: 1 within the training length and below F,
// then log_L n, and 1 + a·ln(1 + ⌊n / F⌋) stepping at each multiple of F; the same for every head.
TEST(Normalizer, LengthAwareScalingsFollowTheirProductionFormulas) {
  NormalizerOptions logn = options_for(Normalizer::Logn, 2);
  logn.logn_length = 8;
  auto c = AttentionNormalizer(logn)->row_scale(20, 0, torch::kDouble);
  ASSERT_EQ(c.sizes(), (std::vector<int64_t>{1, 20, 1}));
  for (int64_t t = 0; t < 20; ++t)
    EXPECT_NEAR(c[0][t][0].item<double>(), t + 1 <= 8 ? 1.0 : std::log(t + 1.0) / std::log(8.0), 1e-12) << t;
  NormalizerOptions llama4 = options_for(Normalizer::Llama4, 2);
  llama4.floor_scale = 8192, llama4.attn_scale = 0.1;  // Llama 4's own
  AttentionNormalizer l4(llama4);
  auto at = [&](int64_t t) { return l4->row_scale(1, t, torch::kDouble)[0][0][0].item<double>(); };
  EXPECT_EQ(at(0), 1.0);
  EXPECT_EQ(at(8190), 1.0);                               // n = 8191 < F
  EXPECT_NEAR(at(8191), 1 + 0.1 * std::log(2.0), 1e-12);  // n = F
  EXPECT_NEAR(at(3 * 8192 - 1), 1 + 0.1 * std::log(4.0), 1e-12);
  // Per document: the factor counts from the document's start.
  auto positions = torch::tensor({0, 1, 0, 8191}, torch::kLong).view({1, 4});
  auto per_row = l4->row_scale_at(positions, torch::kDouble);
  ASSERT_EQ(per_row.sizes(), (std::vector<int64_t>{1, 1, 4, 1}));
  EXPECT_EQ(per_row[0][0][2][0].item<double>(), 1.0);
  EXPECT_NEAR(per_row[0][0][3][0].item<double>(), 1 + 0.1 * std::log(2.0), 1e-12);
  // Limited to the layers without RoPE, a layer with RoPE computes softmax: no factor at all.
  llama4.active = false;
  EXPECT_FALSE(AttentionNormalizer(llama4)->row_scale(4, 0, torch::kDouble).defined());
}

// Each row t gets its own factor s·ln(t+1): not one global n.
TEST(Normalizer, RowScaleIsPerRowLogOfKeysSeen) {
  AttentionNormalizer normalizer(options_for(Normalizer::SSMaxBias, 2, 0.5, 0.25));
  auto scale = normalizer->row_scale(5, 0, torch::kDouble);
  ASSERT_EQ(scale.sizes(), (std::vector<int64_t>{2, 5, 1}));
  for (int64_t t = 0; t < 5; ++t) EXPECT_NEAR(scale[1][t][0].item<double>(), 0.5 * std::log(t + 1.0) + 0.25, 1e-12);
  // With a KV cache the first query sits at `offset` and sees offset+1 keys.
  auto shifted = normalizer->row_scale(2, 7, torch::kDouble);
  EXPECT_NEAR(shifted[0][0][0].item<double>(), 0.5 * std::log(8.0) + 0.25, 1e-12);
  EXPECT_NEAR(shifted[0][1][0].item<double>(), 0.5 * std::log(9.0) + 0.25, 1e-12);
}

// The paper's Figure 1: input (−2, …, −2, +3) of length n; the largest output of softmax vs SSMax(s=0.43).
TEST(Normalizer, PaperFigure1) {
  const std::vector<std::tuple<int64_t, double, double>> cases = {
      {10, 0.943, 0.940}, {100, 0.600, 0.995}, {1000, 0.129, 0.9996}};
  AttentionNormalizer ssmax(options_for(Normalizer::SSMax, 1, 0.43));
  for (const auto& [n, softmax_max, ssmax_max] : cases) {
    auto z = torch::full({n}, -2.0, torch::kDouble);
    z[n - 1] = 3.0;
    // The last row of an n-row causal attention normalises over all n entries.
    double factor = ssmax->row_scale(n, 0, torch::kDouble)[0][n - 1][0].item<double>();
    double got_ssmax = torch::softmax(factor * z, 0).max().item<double>();
    double got_softmax = torch::softmax(z, 0).max().item<double>();
    const double tolerance = ssmax_max > 0.99 ? 1e-4 : 5e-4;
    EXPECT_NEAR(got_softmax, softmax_max, 5e-4) << "n=" << n;
    EXPECT_NEAR(got_ssmax, ssmax_max, tolerance) << "n=" << n;
  }
}

TEST(Normalizer, SSMaxDiffersFromSoftmaxUnlessFactorIsOne) {
  torch::manual_seed(3);
  const int64_t T = 6;
  auto q = torch::randn({1, 1, T, 8}, torch::kDouble), k = torch::randn({1, 1, T, 8}, torch::kDouble),
       v = torch::randn({1, 1, T, 8}, torch::kDouble);
  auto softmax_out = causal_attention(q, k, v, 0.0, false);
  // s = 1 is NOT softmax: the factor is ln n, not 1.
  AttentionNormalizer s_one(options_for(Normalizer::SSMax, 1, 1.0));
  auto ssmax_out = causal_attention(s_one->scale_queries(q), k, v, 0.0, false);
  EXPECT_GT((ssmax_out - softmax_out).abs().max().item<double>(), 1e-3);
  // s = 1/ln T makes the last row's factor exactly 1: that row (only) equals softmax.
  AttentionNormalizer unit_last_row(options_for(Normalizer::SSMax, 1, 1.0 / std::log(static_cast<double>(T))));
  unit_last_row->to(torch::kDouble);
  unit_last_row->s.detach().fill_(1.0 / std::log(static_cast<double>(T)));  // exact in double, not float
  auto matched = causal_attention(unit_last_row->scale_queries(q), k, v, 0.0, false);
  EXPECT_TRUE(torch::allclose(matched.select(2, T - 1), softmax_out.select(2, T - 1), 1e-12, 1e-12));
  EXPECT_GT((matched.select(2, T - 2) - softmax_out.select(2, T - 2)).abs().max().item<double>(), 1e-4);
}

TEST(Normalizer, FixedSIsNotTrainable) {
  auto options = options_for(Normalizer::SSMax, 4);
  options.learn_s = false;
  AttentionNormalizer frozen(options);
  EXPECT_FALSE(frozen->s.requires_grad());
  AttentionNormalizer learned(options_for(Normalizer::SSMax, 4));
  EXPECT_TRUE(learned->s.requires_grad());
  EXPECT_EQ(learned->named_parameters().size(), 1u);
}

TEST(Attention, CausalOutputsIgnoreLaterTokens) {
  torch::manual_seed(11);
  for (Normalizer kind : {Normalizer::Softmax, Normalizer::SSMax, Normalizer::SSMaxBias}) {
    AttentionOptions options;
    options.n_embd = 16;
    options.n_head = 2;
    options.rope = true;
    options.normalizer = options_for(kind, 2);
    CausalSelfAttention attention(options);
    auto x = torch::randn({2, 10, 16});
    auto changed = x.clone();
    changed.slice(1, 6, 10).normal_();
    auto a = attention(x), b = attention(changed);
    EXPECT_TRUE(torch::allclose(a.slice(1, 0, 6), b.slice(1, 0, 6), 1e-6, 1e-6));
    EXPECT_FALSE(torch::allclose(a.slice(1, 6, 10), b.slice(1, 6, 10), 1e-3, 1e-3));
  }
}

TEST(Attention, KVCacheMatchesFullSequence) {
  // n_kv_head 0 (= n_head), 2 and 1: plain, grouped-query and multi-query attention.
  for (int64_t kv_heads : {0, 2, 1}) {
    SCOPED_TRACE("n_kv_head " + std::to_string(kv_heads));
    torch::manual_seed(5);
    AttentionOptions options;
    options.n_embd = 16;
    options.n_head = 4;
    options.n_kv_head = kv_heads;
    options.rope = true;
    options.normalizer = options_for(Normalizer::SSMaxBias, 4, 0.6, 0.3);
    CausalSelfAttention attention(options);
    attention->eval();
    EXPECT_EQ(attention->c_attn->weight.size(0), 16 + 2 * (kv_heads ? kv_heads : 4) * 4);
    auto x = torch::randn({1, 9, 16});
    auto full = attention(x);
    KVCache cache;
    auto first = attention(x.slice(1, 0, 4), &cache);
    std::vector<torch::Tensor> parts{first};
    parts.push_back(attention(x.slice(1, 4, 7), &cache));  // a chunk of 3 after a prefix: needs the offset mask
    for (int64_t t = 7; t < 9; ++t) parts.push_back(attention(x.slice(1, t, t + 1), &cache));
    EXPECT_TRUE(torch::allclose(torch::cat(parts, 1), full, 1e-5, 1e-6));
    EXPECT_EQ(cache.k.size(1), kv_heads ? kv_heads : 4);  // the cache holds the shared heads once
  }
}

// Grouped-query attention equals plain attention whose k/v heads are the shared heads repeated per group: the
// same c_attn weights with the k and v rows copied out to every query head of the group.
TEST(Attention, GroupedQueryEqualsRepeatedKeyValueHeads) {
  torch::manual_seed(8);
  AttentionOptions grouped;
  grouped.n_embd = 16;
  grouped.n_head = 4;
  grouped.n_kv_head = 2;
  grouped.rope = true;
  grouped.normalizer = options_for(Normalizer::SSMax, 4, 0.7, 0.0);
  auto plain = grouped;
  plain.n_kv_head = 0;
  CausalSelfAttention a(grouped), b(plain);
  {
    torch::NoGradGuard no_grad;
    const int64_t d = 4;
    auto w = a->c_attn->weight;  // [16 + 2·8, 16]
    auto k = w.narrow(0, 16, 8).view({2, 1, d, 16}).expand({2, 2, d, 16}).reshape({16, 16});
    auto v = w.narrow(0, 24, 8).view({2, 1, d, 16}).expand({2, 2, d, 16}).reshape({16, 16});
    b->c_attn->weight.copy_(torch::cat({w.narrow(0, 0, 16), k, v}));
    b->c_proj->weight.copy_(a->c_proj->weight);
  }
  auto x = torch::randn({2, 7, 16});
  EXPECT_TRUE(torch::allclose(a(x), b(x), 1e-5, 1e-6));
}

TEST(Attention, FusedKernelMatchesExplicitWeights) {
  torch::manual_seed(9);
  for (int64_t prefix : {0, 3}) {
    SCOPED_TRACE("keys before the queries: " + std::to_string(prefix));
    auto q = torch::randn({2, 3, 6, 8}), k = torch::randn({2, 3, 6 + prefix, 8}),
         v = torch::randn({2, 3, 6 + prefix, 8});
    torch::Tensor weights;
    auto fused = causal_attention_prescaled(q, k, v, 0.0, false);
    auto explicit_path = causal_attention_prescaled(q, k, v, 0.0, false, &weights);
    EXPECT_TRUE(torch::allclose(fused, explicit_path, 1e-5, 1e-6));
  }
}

TEST(Attention, WeightsRowsSumToOne) {
  torch::manual_seed(2);
  auto q = torch::randn({1, 2, 7, 4}), k = torch::randn({1, 2, 7, 4}), v = torch::randn({1, 2, 7, 4});
  torch::Tensor weights;
  causal_attention(q, k, v, 0.0, false, &weights);
  EXPECT_TRUE(torch::allclose(weights.sum(-1), torch::ones({1, 2, 7}), 1e-5, 1e-6));
  EXPECT_EQ(weights[0][0][0][1].item<float>(), 0.0f);  // query 0 cannot see key 1
}

}  // namespace
}  // namespace ssmax
