#include "run/metrics.h"

#include <spdlog/spdlog.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <stdexcept>

#include "config/normalizer_kind.h"
#include "run/tensorboard.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {

using json = nlohmann::json;

template <typename T>
json optional_json(const std::optional<T>& v) {
  return v ? json(*v) : json(nullptr);
}

// An integer field. Converting a float (4e117, say) to an integer is undefined behaviour: found by
// tests/fuzz/fuzz_metrics.cpp under UBSan.
int64_t integer_field(const json& j, const char* key, int64_t fallback) {
  const auto it = j.find(key);
  if (it == j.end()) return fallback;
  if (!it->is_number_integer() || (it->is_number_unsigned() && it->get<uint64_t>() > INT64_MAX))
    throw std::invalid_argument(std::string("'") + key + "' is not an integer");
  return it->get<int64_t>();
}

std::optional<double> optional_double(const json& j, const char* key) {
  if (!j.contains(key) || j[key].is_null()) return std::nullopt;
  return j[key].get<double>();
}

json per_layer(const std::vector<std::vector<double>>& v) {
  json layers = json::array();
  for (const auto& heads : v) {
    double mean = 0;
    for (double x : heads) mean += x;
    layers.push_back({{"mean", heads.empty() ? 0.0 : mean / heads.size()}, {"heads", heads}});
  }
  return layers;
}

std::vector<std::vector<double>> per_layer_from(const json& j, const char* key) {
  std::vector<std::vector<double>> v;
  if (!j.contains(key) || !j[key].is_array()) return v;
  for (const auto& layer : j[key]) v.push_back(layer.at("heads").get<std::vector<double>>());
  return v;
}

}  // namespace

const MetricsRecord::PerLayer& MetricsRecord::parameter(const std::string& name) const {
  static const PerLayer none;
  const auto it = normalizer.find(name);
  return it == normalizer.end() ? none : it->second;
}

json MetricsRecord::to_json() const {
  json j = {{"step", step},
            {"tokens", tokens},
            {"train_loss", optional_json(train_loss)},
            {"val_loss", optional_json(val_loss)},
            {"lr", lr},
            {"grad_norm", optional_json(grad_norm)},
            {"tokens_per_s", optional_json(tokens_per_s)},
            {"ms_per_step", optional_json(ms_per_step)},
            {"elapsed_s", elapsed_s}};
  for (const auto& [name, values] : normalizer)
    if (!values.empty()) j[name] = per_layer(values);
  if (!event.empty()) j["event"] = event;
  if (world_size > 1) j["world_size"] = world_size;
  if (sync_ms) j["sync_ms"] = *sync_ms;
  if (mfu) j["mfu"] = *mfu;
  return j;
}

MetricsRecord MetricsRecord::from_json(const json& j) {
  MetricsRecord r;
  r.step = integer_field(j, "step", -1);
  if (r.step < 0) throw std::invalid_argument("'step' is missing or negative");
  r.tokens = integer_field(j, "tokens", 0);
  r.train_loss = optional_double(j, "train_loss");
  r.val_loss = optional_double(j, "val_loss");
  r.lr = j.value("lr", 0.0);
  r.grad_norm = optional_double(j, "grad_norm");
  r.tokens_per_s = optional_double(j, "tokens_per_s");
  const int64_t world_size = integer_field(j, "world_size", 1);
  if (world_size < 1 || world_size > 1000000) throw std::invalid_argument("'world_size' is out of range");
  r.world_size = static_cast<int>(world_size);
  r.sync_ms = optional_double(j, "sync_ms");
  r.ms_per_step = optional_double(j, "ms_per_step");
  r.mfu = optional_double(j, "mfu");
  r.elapsed_s = j.value("elapsed_s", 0.0);
  for (const char* name : kNormalizerParameters)
    if (auto values = per_layer_from(j, name); !values.empty()) r.normalizer[name] = std::move(values);
  r.event = j.value("event", std::string());
  return r;
}

MetricsWriter::MetricsWriter(const std::string& path, const std::string& tensorboard)
    : path_(path), out_(path, std::ios::app) {
  if (!out_) throw RuntimeFailure(path + ": cannot open for appending metrics");
  if (!tensorboard.empty()) tensorboard_ = std::make_unique<TensorBoardWriter>(tensorboard);
}

MetricsWriter::~MetricsWriter() = default;

void MetricsWriter::write(const MetricsRecord& record) {
  out_ << record.to_json().dump() << '\n';
  out_.flush();
  if (!out_) throw RuntimeFailure(path_ + ": failed to write metrics (disk full?)");
  if (!tensorboard_) return;
  tensorboard_->scalars(record.step, tensorboard_scalars(record));
  if (!tensorboard_->ok()) {
    spdlog::warn("the TensorBoard event file cannot be written; metrics go on in {} only", path_);
    tensorboard_.reset();
  }
}

MetricsFile read_metrics(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw RuntimeFailure(path + ": cannot open metrics file");
  MetricsFile file;
  std::string line;
  size_t line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    if (line.empty()) continue;
    const bool at_end = in.peek() == std::char_traits<char>::eof();
    json j = json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("step")) {
      if (at_end) {  // cut off mid-write: keep everything before it
        file.last_line_cut = true;
        break;
      }
      throw RuntimeFailure(path + ":" + std::to_string(line_number) + ": not a metrics record");
    }
    try {
      file.records.push_back(MetricsRecord::from_json(j));
    } catch (const std::exception& e) {  // a field of the wrong type: damaged, or not written by this program
      throw RuntimeFailure(path + ":" + std::to_string(line_number) + ": not a metrics record (" + e.what() + ")");
    }
  }
  return file;
}

std::string repair_metrics_file(const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code error;
  if (!fs::is_regular_file(path, error)) return "";
  uint64_t size = 0, keep = 0;
  {
    const MappedFile file = MappedFile::open(path, "metrics file", "");
    size = file.size();
    if (size == 0 || file.data()[size - 1] == '\n') return "";
    const void* newline = ::memrchr(file.data(), '\n', size);
    keep = newline ? static_cast<uint64_t>(static_cast<const unsigned char*>(newline) - file.data()) + 1 : 0;
  }
  fs::resize_file(path, keep, error);
  if (error) throw RuntimeFailure(path + ": cannot cut off its torn last line: " + error.message());
  return path + ": its last line was torn off mid-write (" + std::to_string(size - keep) +
         " bytes without a newline); cut it off, so the resumed run's records start on a line of their own";
}

}  // namespace ssmax
