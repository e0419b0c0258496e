#include "cli/option_checks.h"

namespace ssmax {
void add_runtime_options(CLI::App& app, EvalRuntimeArgs& runtime) {
  app.add_option("--device", runtime.device, "auto (CUDA if available), cpu, cuda or cuda:N")->capture_default_str();
  app.add_option("--threads", runtime.threads, "LibTorch intra-op threads; 0 = all cores")->capture_default_str();
  app.add_option("--precision", runtime.precision,
                 "fp32, or bf16: the forward passes under bf16 autocast (faster on GPUs and on CPUs with AMX or "
                 "AVX-512-BF16; logits and losses rounded accordingly)")
      ->capture_default_str();
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
