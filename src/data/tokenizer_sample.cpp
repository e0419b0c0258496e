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

// Where to cut a long line: at kMaxSampleLine, backed up to the start of a UTF-8 character.
size_t cut_point(std::string_view line) {
  size_t cut = kMaxSampleLine;
  while (cut > 0 && (static_cast<unsigned char>(line[cut]) & 0xC0) == 0x80) --cut;
  return cut == 0 ? kMaxSampleLine : cut;
}

}  // namespace

void LineSample::add(std::string_view text) {
  lines_.add(text, [this](std::string_view line) { take(line); });
  // A line without end would grow without bound: cut it now, as take() would.
  std::string& partial = lines_.unfinished();
  while (partial.size() > 4 * kMaxSampleLine) {
    const size_t cut = cut_point(partial);
    offer(std::string_view(partial).substr(0, cut));
    partial.erase(0, cut);
  }
}

void LineSample::finish() {
  lines_.finish([this](std::string_view line) { take(line); });
}

void LineSample::take(std::string_view line) {
  while (line.size() > kMaxSampleLine) {
    const size_t cut = cut_point(line);
    offer(line.substr(0, cut));
    line.remove_prefix(cut);
  }
  offer(line);
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
