#include "data/needle_prompt.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <random>

#include "util/errors.h"

namespace ssmax {
namespace {

const char* const kWords[] = {"apple",  "river",  "lantern", "falcon",  "copper",  "meadow", "violet", "harbor",
                              "ember",  "cobalt", "willow",  "summit",  "thistle", "quartz", "maple",  "orchid",
                              "canyon", "pepper", "saffron", "glacier", "juniper", "marble", "tundra", "walnut"};

// Haystack pieces (sentences/lines) from `source`, starting after the first newline at or after `start`
// and wrapping around at the end, until they hold at least `tokens` tokens.
std::vector<std::vector<uint32_t>> haystack_pieces(const Tokenizer& tokenizer, const TokenSource& source, size_t start,
                                                   size_t tokens) {
  const size_t chunk = std::min<size_t>(source.size(), 2048);
  std::vector<std::vector<uint32_t>> pieces;
  size_t total = 0, position = start, read = 0;
  std::string carry;  // an unfinished line at the end of the previous chunk
  bool skipped_partial_line = false;
  while (total < tokens) {
    if (read > 4 * source.size() + tokens * 8)
      throw RuntimeFailure(source.name() + ": cannot cut a haystack of " + std::to_string(tokens) +
                           " tokens from it (no line or sentence boundaries?)");
    const size_t n = std::min(chunk, source.size() - position);
    std::string text = carry + tokenizer.decode(source.slice(position, n));
    read += n;
    position = (position + n) % source.size();
    if (!skipped_partial_line) {  // begin at a line start, not mid-sentence
      const size_t newline = text.find('\n');
      if (newline == std::string::npos) continue;
      text.erase(0, newline + 1);
      skipped_partial_line = true;
    }
    auto sentences = split_sentences(text);
    carry.clear();
    if (!sentences.empty() && sentences.back().back() != '\n' && sentences.back().back() != ' ') {
      carry = sentences.back();
      sentences.pop_back();
    }
    for (const auto& sentence : sentences) {
      auto ids = tokenizer.encode(sentence);
      total += ids.size();
      pieces.push_back(std::move(ids));
      if (total >= tokens) break;
    }
  }
  return pieces;
}

// The seed's word, number and texts, and the draw that picks the haystack start: one sequence for every caller.
NeedlePrompt draw_needle(uint64_t seed) {
  std::mt19937_64 rng(seed);
  NeedlePrompt p;
  p.word = kWords[rng() % (sizeof kWords / sizeof kWords[0])];
  p.number = std::to_string(1 + rng() % 9);
  for (int i = 0; i < 6; ++i) p.number += static_cast<char>('0' + rng() % 10);
  p.haystack_draw = rng();
  p.needle_text = "The special magic " + p.word + " number is: " + p.number + ".\n";
  p.question_text = "\nWhat is the special magic " + p.word + " number? The special magic " + p.word + " number is:";
  return p;
}

std::string too_short_message(const std::string& option, int64_t length, size_t needle, size_t question) {
  return option + " " + std::to_string(length) + ": too short for the needle (" + std::to_string(needle) +
         " tokens) and the question (" + std::to_string(question) + " tokens); use at least " +
         std::to_string(needle + question + 16);
}

}  // namespace

void check_needle_length(const Tokenizer& tokenizer, const std::string& option, int64_t length, uint64_t first_seed,
                         int trials) {
  for (int trial = 0; trial < trials; ++trial) {
    const NeedlePrompt p = draw_needle(first_seed + static_cast<uint64_t>(trial));
    const size_t needle = tokenizer.encode(p.needle_text).size(), question = tokenizer.encode(p.question_text).size();
    if (length <= static_cast<int64_t>(needle + question))
      throw UsageError(too_short_message(option, length, needle, question));
  }
}

std::vector<std::string> split_sentences(const std::string& text) {
  std::vector<std::string> out;
  size_t begin = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    const bool end_of_line = text[i] == '\n';
    const bool end_of_sentence =
        (text[i] == '.' || text[i] == '?' || text[i] == '!') && i + 1 < text.size() && text[i + 1] == ' ';
    if (!end_of_line && !end_of_sentence) continue;
    const size_t end = end_of_line ? i + 1 : i + 2;
    out.push_back(text.substr(begin, end - begin));
    begin = end;
    i = end - 1;
  }
  if (begin < text.size()) out.push_back(text.substr(begin));
  return out;
}

NeedlePrompt build_needle_prompt(const Tokenizer& tokenizer, const TokenSource& haystack, int64_t length, double depth,
                                 uint64_t seed) {
  if (!(depth >= 0 && depth <= 1)) throw UsageError("--depths: " + std::to_string(depth) + " is outside [0, 1]");
  if (haystack.size() == 0) throw RuntimeFailure(haystack.name() + ": no tokens to build a haystack from");
  NeedlePrompt p = draw_needle(seed);
  const size_t start = p.haystack_draw % haystack.size();
  const auto needle = tokenizer.encode(p.needle_text), question = tokenizer.encode(p.question_text);
  const int64_t fixed = static_cast<int64_t>(needle.size() + question.size());
  if (length <= fixed) throw UsageError(too_short_message("length", length, needle.size(), question.size()));
  p.haystack_tokens = static_cast<size_t>(length - fixed);

  auto pieces = haystack_pieces(tokenizer, haystack, start, p.haystack_tokens);
  // The surplus is cut from the front, so that every boundary after the first is a line/sentence end
  // and the haystack ends with a whole sentence before the question.
  size_t surplus = 0;
  for (const auto& piece : pieces) surplus += piece.size();
  surplus -= p.haystack_tokens;
  while (surplus > 0) {
    const size_t cut = std::min(surplus, pieces.front().size());
    pieces.front().erase(pieces.front().begin(), pieces.front().begin() + cut);
    if (pieces.front().empty()) pieces.erase(pieces.begin());
    surplus -= cut;
  }
  std::vector<size_t> boundaries{0};  // in tokens
  for (const auto& piece : pieces) boundaries.push_back(boundaries.back() + piece.size());
  const double target = depth * static_cast<double>(p.haystack_tokens);
  const size_t insert_after = static_cast<size_t>(std::min_element(boundaries.begin(), boundaries.end(),
                                                                   [&](size_t a, size_t b) {
                                                                     return std::abs(static_cast<double>(a) - target) <
                                                                            std::abs(static_cast<double>(b) - target);
                                                                   }) -
                                                  boundaries.begin());

  for (size_t i = 0; i <= pieces.size(); ++i) {
    if (i == insert_after) {
      p.needle_begin = p.ids.size();
      p.ids.insert(p.ids.end(), needle.begin(), needle.end());
      p.needle_end = p.ids.size();
    }
    if (i < pieces.size()) p.ids.insert(p.ids.end(), pieces[i].begin(), pieces[i].end());
  }
  p.ids.insert(p.ids.end(), question.begin(), question.end());
  p.depth = static_cast<double>(p.needle_begin) / static_cast<double>(p.haystack_tokens);
  return p;
}

NeedleScore score_needle_answer(const std::string& generated, const std::string& number) {
  NeedleScore score;
  size_t i = 0;
  while (i < generated.size() && std::isspace(static_cast<unsigned char>(generated[i]))) ++i;
  while (i < generated.size() && std::isdigit(static_cast<unsigned char>(generated[i])) &&
         score.digits.size() <= number.size())
    score.digits += generated[i++];
  score.exact = score.digits == number;
  size_t right = 0;
  for (size_t k = 0; k < number.size() && k < score.digits.size(); ++k) right += score.digits[k] == number[k];
  score.digit_accuracy = static_cast<double>(right) / static_cast<double>(number.size());
  return score;
}

}  // namespace ssmax
