#include "train/cpu_blas.h"

#include <spdlog/spdlog.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <sstream>
#include <thread>
#include <vector>

#include "dist/distributed.h"
#include "kernels/linear_cross_entropy.h"
#include "util/machine_cache.h"
#include "util/machine_load.h"
#include "util/system_info.h"

namespace ssmax {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

// c [m, n] (+)= a [m, k] · b [k, n], the operands laid out as the model's calls lay them out.
struct Product {
  torch::Tensor c, a, b;
  bool accumulate = false;
  double weight = 1;  // how many times a training step runs it
  double flops() const { return 2.0 * a.size(0) * a.size(1) * b.size(1); }
};

// Rows timed per layer product: enough for the libraries to reach their speed, few enough to keep the timing short.
constexpr int64_t kTimedRows = 2048;

torch::Tensor filled(std::initializer_list<int64_t> sizes) { return torch::full(sizes, 0.25f); }

// The forward and both backward products of a linear layer [in → out] over `rows` rows (kernels/gemm.h:
// LinearFunction).
void add_linear(std::vector<Product>& products, int64_t rows, int64_t in, int64_t out, double weight) {
  const auto x = filled({rows, in}), w = filled({out, in}), g = filled({rows, out});
  products.push_back({torch::empty({rows, out}), x, w.t(), false, weight});  // y = x·Wᵀ
  products.push_back({torch::empty({rows, in}), g, w, false, weight});       // dx = g·W
  products.push_back({torch::empty({out, in}), g.t(), x, false, weight});    // dW = gᵀ·x
}

std::vector<Product> step_products(const ModelConfig& m, int64_t vocab, int64_t rows) {
  std::vector<Product> products;
  const int64_t timed = std::min(rows, kTimedRows), d = m.n_embd, hidden = m.resolved_mlp_hidden();
  const double per_layer = static_cast<double>(m.n_layer) * rows / timed;
  add_linear(products, timed, d, 3 * d, per_layer);  // q, k, v
  add_linear(products, timed, d, d, per_layer);      // attention output
  add_linear(products, timed, d, hidden, per_layer * (m.mlp == "swiglu" ? 2 : 1));
  add_linear(products, timed, hidden, d, per_layer);
  // The fused head + loss (kernels/linear_cross_entropy.h): per chunk of rows, the logits, dx and dW accumulated.
  const int64_t chunk = linear_cross_entropy_chunk_rows(rows, vocab);
  const double chunks = static_cast<double>(rows) / chunk;
  const auto x = filled({chunk, d}), w = filled({vocab, d}), logits = filled({chunk, vocab});
  products.push_back({torch::empty({chunk, vocab}), x, w.t(), false, chunks});
  products.push_back({torch::empty({chunk, d}), logits, w, false, chunks});
  products.push_back({filled({vocab, d}), logits.t(), x, true, chunks});
  return products;
}

// Seconds of one pass over every product, each weighted; `best` keeps each product's fastest time so far.
double timed_pass(CpuBlas blas, std::vector<Product>& products, std::vector<double>& best) {
  double total = 0;
  for (size_t i = 0; i < products.size(); ++i) {
    auto& p = products[i];
    const auto start = Clock::now();
    gemm_out_with(blas, p.c, p.a, p.b, p.accumulate);
    const double s = std::chrono::duration<double>(Clock::now() - start).count();
    best[i] = std::min(best[i], s);
    total += p.weight * s;
  }
  return total;
}

double gflops(const std::vector<Product>& products, const std::vector<double>& best) {
  double flops = 0, seconds = 0;
  for (size_t i = 0; i < products.size(); ++i) {
    flops += products[i].weight * products[i].flops();
    seconds += products[i].weight * best[i];
  }
  return flops / seconds / 1e9;
}

// Passes of the timing beyond the warm-up, at most: a larger model's products (or a slow CPU) time fewer.
constexpr int kTimedPasses = 3;
constexpr double kBudgetSeconds = 3;

BlasChoice measure(const ModelConfig& m, int64_t vocab, int64_t rows) {
  torch::NoGradGuard no_grad;
  LoadWatch load;
  const auto start = Clock::now();
  auto products = step_products(m, vocab, rows);
  const CpuBlas libraries[] = {CpuBlas::kOpenBlas, CpuBlas::kAten};
  std::vector<double> best[2] = {std::vector<double>(products.size(), 1e30),
                                 std::vector<double>(products.size(), 1e30)};
  double warm[2], slowest[2] = {0, 0};
  for (int l = 0; l < 2; ++l) warm[l] = timed_pass(libraries[l], products, best[l]);
  // A library twice as slow on the warm-up pass cannot win: it is not timed again (on a CPU where one library runs
  // generic kernels that saves most of the measurement). The passes stop early once the budget is spent.
  for (int rep = 0; rep < kTimedPasses; ++rep)
    for (int l = 0; l < 2; ++l) {
      if (warm[l] > 2 * warm[1 - l]) continue;
      if (rep > 0 && std::chrono::duration<double>(Clock::now() - start).count() + warm[l] > kBudgetSeconds) continue;
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
      auto pass_best = std::vector<double>(products.size(), 1e30);
      slowest[l] = std::max(slowest[l], timed_pass(libraries[l], products, pass_best));
      for (size_t i = 0; i < products.size(); ++i) best[l][i] = std::min(best[l][i], pass_best[i]);
    }
  BlasChoice choice;
  choice.openblas_gflops = gflops(products, best[0]);
  choice.aten_gflops = gflops(products, best[1]);
  choice.blas = choice.openblas_gflops > choice.aten_gflops ? CpuBlas::kOpenBlas : CpuBlas::kAten;
  choice.how = "measured";
  const int winner = choice.blas == CpuBlas::kOpenBlas ? 0 : 1;
  double fastest = 0;
  for (size_t i = 0; i < products.size(); ++i) fastest += products[i].weight * best[winner][i];
  choice.conditions.spread = slowest[winner] > 0 ? std::max(0.0, slowest[winner] - fastest) / fastest : 0;
  choice.conditions.others_cores = load.others_cores();
  choice.conditions.threads = at::get_num_threads();
  return choice;
}

std::string cache_key(const ModelConfig& m, int64_t vocab, int64_t rows) {
  std::ostringstream key;
  key << cpu_speed_identity() << " | blas for d" << m.n_embd << " h" << m.resolved_mlp_hidden()
      << (m.mlp == "swiglu" ? " swiglu" : "") << " L" << m.n_layer << " V" << vocab << " rows " << rows;
  return key.str();
}

json to_json(const BlasChoice& c) {
  json j = c.conditions.to_json();
  j["blas"] = cpu_blas_name(c.blas);
  j["openblas_gflops"] = c.openblas_gflops;
  j["aten_gflops"] = c.aten_gflops;
  return j;
}

std::optional<BlasChoice> from_json(const json& j) {
  try {
    BlasChoice c;
    const auto blas = cpu_blas_from_name(j.at("blas").get<std::string>());
    if (!blas) return std::nullopt;
    c.blas = *blas;
    c.openblas_gflops = j.at("openblas_gflops").get<double>();
    c.aten_gflops = j.at("aten_gflops").get<double>();
    c.conditions = MeasurementConditions::from_json(j);
    return c;
  } catch (const std::exception&) {
    return std::nullopt;  // damaged: measured again
  }
}

// A new measurement of a figure that was taken under load: each library keeps the best it ever showed (load only
// slows a library down), and the choice moves only when the other library is clearly faster by those figures, so that
// two libraries within noise of each other do not trade places from run to run.
BlasChoice merge(const BlasChoice& previous, BlasChoice now) {
  now.openblas_gflops = std::max(now.openblas_gflops, previous.openblas_gflops);
  now.aten_gflops = std::max(now.aten_gflops, previous.aten_gflops);
  const double kept = previous.blas == CpuBlas::kOpenBlas ? now.openblas_gflops : now.aten_gflops;
  const double other = previous.blas == CpuBlas::kOpenBlas ? now.aten_gflops : now.openblas_gflops;
  now.blas =
      other > 1.1 * kept ? (previous.blas == CpuBlas::kOpenBlas ? CpuBlas::kAten : CpuBlas::kOpenBlas) : previous.blas;
  now.conditions.measurements = previous.conditions.measurements + 1;
  return now;
}

// The cached choice, or a new measurement when there is none or the cached one is not settled (util/machine_load.h).
BlasChoice cached_or_measured(const ModelConfig& model, int64_t vocab, int64_t rows, bool quiet) {
  const std::string key = cache_key(model, vocab, rows);
  std::optional<BlasChoice> cached;
  if (auto stored = machine_cache_get(key)) cached = from_json(*stored);
  if (cached && cached->conditions.settled(hardware_threads())) {
    cached->how = "cached";
    return *cached;
  }
  spdlog::log(
      quiet ? spdlog::level::debug : spdlog::level::info,
      "timing this model's matrix products through OpenBLAS and ATen/MKL to choose the faster (once per "
      "machine, thread count and model shape{})",
      cached ? fmt::format("; again, as the last timing was taken under load: {}", cached->conditions.describe()) : "");
  BlasChoice choice = measure(model, vocab, rows);
  if (cached) {
    choice = merge(*cached, choice);
    if (choice.blas != cached->blas)
      spdlog::log(quiet ? spdlog::level::debug : spdlog::level::warn,
                  "CPU matrix products: {} now, not {}: the earlier timing was taken under load (runs before and after "
                  "this one differ in rounding)",
                  cpu_blas_name(choice.blas), cpu_blas_name(cached->blas));
  }
  choice.how = choice.conditions.settled(hardware_threads())
                   ? "measured"
                   : fmt::format("measured under load, {} of {}: {}", choice.conditions.measurements,
                                 MeasurementConditions::kMaxMeasurements, choice.conditions.describe());
  // A settled choice that another process stored meanwhile wins: every run on this machine makes one choice.
  if (auto stored = from_json(machine_cache_put(key, to_json(choice), /*keep_if=*/
                                                [](const json& existing) {
                                                  auto c = from_json(existing);
                                                  return c && c->conditions.settled(hardware_threads());
                                                }));
      stored && stored->blas != choice.blas) {
    choice = *stored;
    choice.how = "cached by another process that measured at the same time";
  }
  return choice;
}

// "OpenBLAS 0.3.21" from its build description "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH … (path)".
std::string openblas_short() {
  std::istringstream words(openblas_description());
  std::string name, version;
  words >> name >> version;
  return name + " " + version;
}

// OpenBLAS's kernel families that use no AVX2: on a CPU that has it they are a fallback (OpenBLAS does not know the
// CPU, or OPENBLAS_CORETYPE asks for them because newer kernels misbehave there).
bool generic_kernels_on_a_wider_cpu(const std::string& core) {
  static const char* kPreAvx2[] = {"Prescott",   "Core2",       "Penryn",    "Dunnington", "Nehalem",     "Atom",
                                   "Katmai",     "Opteron",     "Barcelona", "Bobcat",     "Sandybridge", "Bulldozer",
                                   "Piledriver", "Steamroller", "Excavator", "Generic",    "generic"};
  if (!cpu_has_flag("avx2")) return false;
  return std::any_of(std::begin(kPreAvx2), std::end(kPreAvx2), [&](const char* name) { return core == name; });
}

}  // namespace

const char* cpu_blas_name(CpuBlas blas) { return blas == CpuBlas::kOpenBlas ? "openblas" : "aten"; }

std::optional<CpuBlas> cpu_blas_from_name(const std::string& name) {
  if (name == "openblas") return CpuBlas::kOpenBlas;
  if (name == "aten") return CpuBlas::kAten;
  return std::nullopt;
}

std::string describe_blas_choice(const BlasChoice& c) {
  const std::string openblas = openblas_short() + (openblas_core().empty() ? "" : ", " + openblas_core() + " kernels");
  if (c.openblas_gflops <= 0 || c.aten_gflops <= 0)
    return (c.blas == CpuBlas::kOpenBlas ? openblas_description() : aten_blas_description()) + " (" + c.how + ")";
  const bool ob = c.blas == CpuBlas::kOpenBlas;
  return fmt::format("{}: {:.0f} GFLOP/s on this model's products ({}: {:.0f}; {})",
                     ob ? openblas : aten_blas_description(), ob ? c.openblas_gflops : c.aten_gflops,
                     ob ? aten_blas_description() : openblas, ob ? c.aten_gflops : c.openblas_gflops, c.how);
}

BlasChoice choose_cpu_blas(const std::string& setting, const ModelConfig& model, int64_t vocab, int64_t rows,
                           std::optional<CpuBlas> resumed_with, bool quiet) {
  BlasChoice choice;
  if (!openblas_loaded()) {
    choice.how = "OpenBLAS: " + openblas_description();
  } else if (!openblas_usable()) {
    choice.how = "SSMAX_UNFUSED names gemm";
  } else if (setting != "auto") {
    choice.blas = setting == "openblas" ? CpuBlas::kOpenBlas : CpuBlas::kAten;
    choice.how = "cpu_blas = " + setting;
  } else if (resumed_with) {
    choice.blas = *resumed_with;
    choice.how = "as before the checkpoint, for a bit-identical continuation";
  } else {
    // Under torchrun rank 0 chooses and every rank uses its choice: ranks timing at once would load each other, and
    // ranks that chose differently would round differently.
    const json decided = json::parse(Distributed::instance().on_main(
        "choosing the CPU's BLAS",
        [&] {
          const BlasChoice c = cached_or_measured(model, vocab, rows, quiet);
          json j = to_json(c);
          j["how"] = c.how;
          return j.dump();
        },
        std::chrono::minutes(5)));
    choice = *from_json(decided);
    choice.how = decided["how"].get<std::string>();
  }
  use_cpu_blas(choice.blas);
  // Said once per process: `bench` builds a session per normalizer, each making the same choice.
  static std::string said;
  const std::string description = describe_blas_choice(choice);
  const auto level = quiet || description == said ? spdlog::level::debug : spdlog::level::info;
  said = description;
  spdlog::log(level, "CPU matrix products: {}", description);
  if (openblas_loaded() && generic_kernels_on_a_wider_cpu(openblas_core())) {
    const char* coretype = std::getenv("OPENBLAS_CORETYPE");
    spdlog::log(
        level, "OpenBLAS runs its generic {} kernels on this CPU, which has AVX2{} ({}); {}", openblas_core(),
        cpu_has_flag("avx512f") ? " and AVX-512" : "",
        coretype ? std::string("OPENBLAS_CORETYPE=") + coretype + " is set in the environment"
                 : "this OpenBLAS does not know the CPU",
        setting == "auto" ? "the timing above decided which library runs" : "set cpu_blas = \"auto\" to time both");
  }
  return choice;
}

}  // namespace ssmax
