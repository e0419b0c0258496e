#include "train/op_profile.h"

#include <torch/csrc/autograd/profiler_kineto.h>
#include <torch/torch.h>

#include <spdlog/fmt/fmt.h>
#include <algorithm>
#include <map>
#include <set>

#include "util/errors.h"

namespace ssmax {
namespace {

namespace profiler = torch::autograd::profiler;
using torch::profiler::impl::ActivityType;
using torch::profiler::impl::ProfilerConfig;
using torch::profiler::impl::ProfilerState;

std::set<ActivityType> activities() {
  std::set<ActivityType> kinds{ActivityType::CPU};
  if (torch::cuda::is_available()) kinds.insert(ActivityType::CUDA);
  return kinds;
}

ProfilerConfig config() { return ProfilerConfig(ProfilerState::KINETO); }

}  // namespace

OperatorProfile::OperatorProfile() {
  profiler::prepareProfiler(config(), activities());
  profiler::enableProfiler(config(), activities());
  running_ = true;
}

OperatorProfile::~OperatorProfile() {
  if (running_) profiler::disableProfiler();
}

std::vector<OperatorTime> OperatorProfile::finish(const std::string& trace_path) {
  running_ = false;
  auto result = profiler::disableProfiler();
  if (!trace_path.empty()) {
    try {
      result->save(trace_path);
    } catch (const c10::Error& e) {
      throw RuntimeFailure("cannot write the profile trace " + trace_path + ": " + e.what_without_backtrace());
    }
  }
  // Self time: events on one thread nest, so each event's time minus its direct children's. Sorting by start (the
  // longer first on ties) puts every parent before its children.
  struct Span {
    uint64_t thread, start, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& event : result->events()) {
    if (event.deviceType() != c10::DeviceType::CPU || event.isAsync()) continue;
    spans.push_back({event.startThreadId(), event.startNs(), event.startNs() + event.durationNs(), event.name()});
  }
  std::sort(spans.begin(), spans.end(), [](const Span& a, const Span& b) {
    return std::tie(a.thread, a.start, b.end) < std::tie(b.thread, b.start, a.end);
  });
  std::map<std::string, OperatorTime> by_name;
  std::vector<const Span*> open;
  for (const auto& span : spans) {
    while (!open.empty() && (open.back()->thread != span.thread || open.back()->end <= span.start)) open.pop_back();
    auto& row = by_name[span.name];
    const double ms = (span.end - span.start) / 1e6;
    row.name = span.name;
    row.calls += 1;
    row.total_ms += ms;
    row.self_ms += ms;
    if (!open.empty()) by_name[open.back()->name].self_ms -= ms;
    open.push_back(&span);
  }
  std::vector<OperatorTime> rows;
  for (auto& [name, row] : by_name) rows.push_back(row);
  std::sort(rows.begin(), rows.end(),
            [](const OperatorTime& a, const OperatorTime& b) { return a.self_ms > b.self_ms; });
  return rows;
}

std::string operator_table(const std::vector<OperatorTime>& operators, int steps, size_t limit) {
  double all = 0;
  for (const auto& row : operators) all += row.self_ms;
  const double per = std::max(steps, 1);
  std::string text = fmt::format("{:<60} {:>12} {:>7} {:>13} {:>10}\n", "operator (per step)", "self ms", "self %",
                                 "total ms", "calls");
  for (size_t i = 0; i < std::min(limit, operators.size()); ++i) {
    const auto& row = operators[i];
    std::string name = row.name.size() > 60 ? row.name.substr(0, 57) + "..." : row.name;
    text += fmt::format("{:<60} {:>12.2f} {:>6.1f}% {:>13.2f} {:>10.1f}\n", name, row.self_ms / per,
                        all > 0 ? 100 * row.self_ms / all : 0.0, row.total_ms / per, row.calls / per);
  }
  text += fmt::format("{:<60} {:>12.2f}\n", "all operators, self time", all / per);
  return text;
}

}  // namespace ssmax
