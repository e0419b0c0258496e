#include "eval/generate.h"

#include <spdlog/spdlog.h>

#include <cstdio>

#include <nlohmann/json.hpp>

#include "eval/eval_commands.h"
#include "eval/eval_model.h"
#include "run/device.h"
#include "train/precision.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

// splitmix64 → uniform [0, 1): the sampler's own RNG, so a seed gives the same text on any device.
double next_uniform(uint64_t& state) {
  uint64_t x = (state += 0x9e3779b97f4a7c15ULL);
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return static_cast<double>(x >> 11) * (1.0 / 9007199254740992.0);
}

torch::Tensor last_logits(const torch::Tensor& logits) { return logits[0][logits.size(1) - 1]; }

}  // namespace

int64_t sample_token(const torch::Tensor& logits, double temperature, int64_t top_k, uint64_t& rng_state) {
  auto row = logits.detach().to(torch::kCPU, torch::kDouble);
  if (temperature <= 0) return row.argmax().item<int64_t>();
  row = row / temperature;
  if (top_k > 0 && top_k < row.size(0)) {
    const double kth = std::get<0>(row.topk(top_k)).min().item<double>();
    row = row.masked_fill(row < kth, -std::numeric_limits<double>::infinity());
  }
  auto probs = torch::softmax(row, 0).contiguous();
  const double* p = probs.data_ptr<double>();
  const double u = next_uniform(rng_state);
  double cumulative = 0;
  int64_t last_possible = 0;
  for (int64_t i = 0; i < probs.size(0); ++i) {
    if (p[i] <= 0) continue;
    cumulative += p[i];
    last_possible = i;
    if (u < cumulative) return i;
  }
  return last_possible;  // u beyond the rounded total
}

Generation generate_tokens(GPT& model, const std::vector<int64_t>& prompt, const SamplingOptions& options,
                           const torch::Device& device, const TokenCallback& on_token) {
  if (prompt.empty()) throw UsageError("--prompt: the prompt must encode to at least one token");
  const bool learned = model->options().model.position == "learned";
  const int64_t block_size = model->options().model.block_size;
  if (learned && static_cast<int64_t>(prompt.size()) > block_size)
    throw UsageError("--prompt is " + std::to_string(prompt.size()) + " tokens, longer than model.block_size = " +
                     std::to_string(block_size) + " (learned positions cannot go further)");
  torch::NoGradGuard no_grad;
  Generation out;
  uint64_t rng = options.seed;
  std::vector<int64_t> all = prompt;
  std::vector<KVCache> caches;
  auto as_tensor = [&](const std::vector<int64_t>& ids, size_t from) {
    return torch::tensor(std::vector<int64_t>(ids.begin() + from, ids.end()), torch::kLong).view({1, -1}).to(device);
  };
  // Cached: the prompt once; afterwards only the newest token is fed.
  torch::Tensor logits = model->forward(as_tensor(all, 0), options.use_cache ? &caches : nullptr);
  for (int64_t step = 0; step < options.max_new_tokens; ++step) {
    if (step > 0) {
      // The token sampled last sits at position all.size()-1; learned positions end at block_size-1.
      if (learned && static_cast<int64_t>(all.size()) > block_size) {
        out.stopped_at_block_size = true;
        break;
      }
      logits = options.use_cache ? model->forward(as_tensor(all, all.size() - 1), &caches)
                                 : model->forward(as_tensor(all, 0));
    }
    const int64_t token = sample_token(last_logits(logits), options.temperature, options.top_k, rng);
    all.push_back(token);
    out.tokens.push_back(token);
    if (on_token) on_token(out.tokens);
    if (token == options.stop_token) {
      out.stopped_at_document_end = true;
      break;
    }
  }
  return out;
}

namespace {

// Text up to (not including) a trailing U+FFFD: an incomplete UTF-8 character that the next byte token
// may complete, so it is held back rather than printed.
std::string complete_prefix(std::string text) {
  static const std::string replacement = "\xEF\xBF\xBD";
  while (text.size() >= 3 && text.compare(text.size() - 3, 3, replacement) == 0) text.resize(text.size() - 3);
  return text;
}

// --dump: what another implementation of the model (an `export --format hf` directory in transformers) must
// reproduce. The logits are one forward pass over the prompt without a cache, as the reference path.
void write_generation_dump(const std::string& path, GPT& model, const std::vector<int64_t>& prompt,
                           const std::vector<int64_t>& generated, const torch::Device& device) {
  torch::NoGradGuard no_grad;
  const auto logits = model->forward(torch::tensor(prompt, torch::kLong).view({1, -1}).to(device))[0]
                          .to(torch::kCPU, torch::kFloat32)
                          .contiguous();
  nlohmann::json rows = nlohmann::json::array();
  for (int64_t t = 0; t < logits.size(0); ++t) {
    const float* row = logits[t].data_ptr<float>();
    rows.push_back(std::vector<float>(row, row + logits.size(1)));
  }
  const nlohmann::json dump = {{"prompt_ids", prompt}, {"generated_ids", generated}, {"prompt_logits", rows}};
  write_file_atomic(path, dump.dump() + "\n");
}

}  // namespace

int run_generate(const GenerateArgs& args) {
  check_arguments(args);
  const Evaluation evaluation(args.runtime, args.swap, {args.checkpoint});
  EvalModel m = load_eval_model(args.checkpoint, evaluation.load);
  const PreparedDataset dataset = eval_dataset(m);
  const Tokenizer tokenizer = Tokenizer::load(dataset.tokenizer_model);
  const auto prompt_ids = tokenizer.encode(args.prompt);
  const std::vector<int64_t> prompt(prompt_ids.begin(), prompt_ids.end());
  spdlog::info("{} (step {}), {} prompt tokens, up to {} new, temperature {}, top-k {}, seed {}", m.checkpoint,
               m.meta.step, prompt.size(), args.max_new_tokens, args.temperature, args.top_k, args.seed);

  // Decode everything generated so far and print only what is new: pieces do not decode independently
  // (byte-fallback characters span several tokens).
  std::string shown = complete_prefix(args.prompt);
  std::fwrite(shown.data(), 1, shown.size(), stdout);
  std::fflush(stdout);
  auto show = [&](const std::vector<int64_t>& generated, bool final) {
    std::vector<uint32_t> ids(prompt_ids);
    ids.insert(ids.end(), generated.begin(), generated.end());
    std::string text = tokenizer.decode(ids);
    if (!final) text = complete_prefix(text);
    if (text.size() > shown.size() && text.compare(0, shown.size(), shown) == 0) {
      std::fwrite(text.data() + shown.size(), 1, text.size() - shown.size(), stdout);
      std::fflush(stdout);
      shown = text;
    }
  };
  SamplingOptions sampling;
  sampling.max_new_tokens = args.max_new_tokens;
  sampling.temperature = args.temperature;
  sampling.top_k = args.top_k;
  sampling.seed = args.seed;
  // The prompt is one document (positions from 0, as every document in training); the text ends with it.
  sampling.stop_token = dataset.document_end_token;
  const Generation result =
      generate_tokens(m.model, prompt, sampling, m.device, [&](const std::vector<int64_t>& g) { show(g, false); });
  show(result.tokens, true);
  std::fputc('\n', stdout);
  std::fflush(stdout);
  if (!args.dump_path.empty()) write_generation_dump(args.dump_path, m.model, prompt, result.tokens, m.device);
  if (result.stopped_at_block_size)
    spdlog::warn("stopped after {} new tokens: model.block_size = {} and learned positions cannot go further",
                 result.tokens.size(), m.block_size());
  if (result.stopped_at_document_end)
    spdlog::info("stopped after {} new tokens: the model ended the document", result.tokens.size());
  return 0;
}

}  // namespace ssmax
