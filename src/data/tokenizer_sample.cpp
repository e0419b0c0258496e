#include "data/tokenizer_sample.h"

#include <algorithm>

#include "util/files.h"

namespace ssmax {
namespace {

constexpr uint64_t kLineOverhead = 64;  // a kept line's bookkeeping, charged to the budget with its text
constexpr uint64_t kSeed = 20240601;

uint64_t mix(uint64_t x) {  // splitmix64
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

size_t cut_point(std::string_view line) { return character_start(line, kMaxSampleLine, 0); }

}  // namespace

LineSample::LineSample(uint64_t budget_bytes)
    : budget_(budget_bytes), max_line_pieces_(std::max<uint64_t>(1, budget_bytes / kLineShare / kMaxSampleLine)) {}

void LineSample::add(std::string_view text) {
  // In slices, so that a line without end (a JSON Lines record comes in one call) is never held whole.
  constexpr size_t kSlice = 4 * kMaxSampleLine;
  while (!text.empty()) {
    const size_t n = std::min(text.size(), kSlice);
    lines_.add(text.substr(0, n), [this](std::string_view line) { take(line); });
    text.remove_prefix(n);
    take_pieces(lines_.unfinished());
  }
}

void LineSample::finish() {
  lines_.finish([this](std::string_view line) { take(line); });
}

// The unfinished line's sentences, cut where take() would cut them; past the per-line bound, its text is dropped.
void LineSample::take_pieces(std::string& line) {
  while (line.size() > kMaxSampleLine && line_pieces_ < max_line_pieces_) {
    const size_t cut = cut_point(line);
    offer(std::string_view(line).substr(0, cut));
    line.erase(0, cut);
    ++line_pieces_;
  }
  if (line_pieces_ < max_line_pieces_) return;
  left_out_ += line.size();
  line.clear();
}

// A line's end: all of it, or what follows the sentences take_pieces() already offered.
void LineSample::take(std::string_view line) {
  for (; line.size() > kMaxSampleLine && line_pieces_ < max_line_pieces_; ++line_pieces_) {
    const size_t cut = cut_point(line);
    offer(line.substr(0, cut));
    line.remove_prefix(cut);
  }
  if (line_pieces_ < max_line_pieces_) {
    offer(line);
  } else {
    left_out_ += line.size();
  }
  line_pieces_ = 0;
}

void LineSample::offer(std::string_view line) {
  const uint64_t index = index_++;
  const uint64_t priority = mix(kSeed ^ mix(index));
  const uint64_t cost = line.size() + kLineOverhead;
  if (cost_ + cost > budget_ && (kept_.empty() || priority >= kept_.front().priority)) {
    ++evicted_;
    return;
  }
  kept_.push_back({priority, index, std::string(line)});
  std::push_heap(kept_.begin(), kept_.end());
  cost_ += cost;
  text_bytes_ += line.size();
  while (cost_ > budget_ && !kept_.empty()) {
    std::pop_heap(kept_.begin(), kept_.end());
    cost_ -= kept_.back().text.size() + kLineOverhead;
    text_bytes_ -= kept_.back().text.size();
    kept_.pop_back();
    ++evicted_;
  }
}

void LineSample::write(const std::string& path) const {
  std::vector<const Line*> lines;
  lines.reserve(kept_.size());
  for (const Line& line : kept_) lines.push_back(&line);
  std::sort(lines.begin(), lines.end(), [](const Line* a, const Line* b) { return a->index < b->index; });
  std::string text;
  for (const Line* line : lines) text += line->text + '\n';
  write_file_atomic(path, text);  // a full disk is an error naming the file and the reason
}

}  // namespace ssmax
