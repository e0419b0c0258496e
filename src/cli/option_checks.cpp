#include "cli/option_checks.h"

#include <memory>

namespace ssmax {
void add_runtime_options(CLI::App& app, EvalRuntimeArgs& runtime) {
  app.add_option("--device", runtime.device, "auto (CUDA if available), cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", runtime.threads, "LibTorch intra-op threads; 0 = all cores")->capture_default_str();
  app.add_option("--precision", runtime.precision,
                 "fp32, or bf16: the forward passes under bf16 autocast (faster on GPUs and on CPUs with AMX or "
                 "AVX-512-BF16; logits and losses rounded accordingly)")
      ->capture_default_str();
}

std::function<void()> add_normalizer_swap_options(CLI::App& app, NormalizerSwap& swap) {
  auto name = std::make_shared<std::string>();
  app.add_option("--normalizer", *name,
                 "Evaluate with this normalizer in place of the trained one, keeping every trained parameter: ssmax "
                 "or ssmax_bias swapped into a softmax model (the paper's variant (e); s = 1/ln(block_size), so "
                 "s·ln n = 1 at the training length), ssmax_bias into an ssmax one, or a scaling that production "
                 "models apply at inference only: logn (Qwen-1: max(1, ln n / ln L)) or llama4 (Llama 4: "
                 "1 + a·ln(1 + ⌊n / F⌋)) on a softmax model");
  app.add_option("--s", swap.s, "With --normalizer ssmax|ssmax_bias: s instead of 1/ln(block_size)");
  app.add_option("--b", swap.b, "With --normalizer ssmax_bias: b (default 0)");
  app.add_option("--logn-length", swap.logn_length, "With --normalizer logn: L (default: the training length)")
      ->check(decimal_digits());
  app.add_option("--attn-scale", swap.attn_scale, "With --normalizer llama4: a (default 0.1, Llama 4's)");
  app.add_option("--floor-scale", swap.floor_scale, "With --normalizer llama4: F (default: the training length)")
      ->check(decimal_digits());
  app.add_option("--scaled-layers", swap.scaled_layers,
                 "With --normalizer logn|llama4: all (default), or nope: only the layers without RoPE (Llama 4)");
  return [name, &swap] {
    if (!name->empty()) swap.normalizer = parse_normalizer(*name, "--normalizer");
  };
}

CLI::Validator decimal_digits() {
  return CLI::Validator(
      [](std::string& text) -> std::string {
        // A leading zero too: CLI11 would read "0256" as octal.
        const bool decimal = !text.empty() && text.find_first_not_of("0123456789") == std::string::npos &&
                             (text.size() == 1 || text[0] != '0');
        return decimal ? "" : "'" + text + "' is not a decimal number (digits only, no leading zero)";
      },
      "DECIMAL");
}

}  // namespace ssmax
