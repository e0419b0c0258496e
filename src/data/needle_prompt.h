#pragma once
// Needle-in-a-haystack prompts, shared by `needle` (retrieval) and `attention` (where the heads look).
//
//   <haystack lines …> The special magic <word> number is: <7 digits>.\n <… haystack lines>
//   \nWhat is the special magic <word> number? The special magic <word> number is:
//
// The haystack is held-out text (the validation split) from a seeded start: whole lines and sentences, the
// first one cut at its front to make the length exact. The needle goes in at the line/sentence boundary
// nearest to depth × haystack tokens (0 = the very start, 1 = right before the question).
// Every prompt is exactly `length` tokens. Pieces are tokenized separately and concatenated (the
// tokenizer has no dummy prefix, so the ids decode to the concatenated text).
#include <cstdint>
#include <string>
#include <vector>

#include "data/token_source.h"
#include "data/tokenizer.h"

namespace ssmax {

struct NeedlePrompt {
  std::vector<uint32_t> ids;                // the whole prompt, `length` tokens
  size_t needle_begin = 0, needle_end = 0;  // the needle's tokens: ids[needle_begin, needle_end)
  size_t haystack_tokens = 0;               // filler tokens (ids minus needle and question)
  std::string word, number;                 // the key and the answer (7 digits)
  std::string needle_text, question_text;
  double depth = 0;            // where the needle landed: needle_begin / haystack_tokens
  uint64_t haystack_draw = 0;  // the seed's draw that picks where in the source the haystack starts
};

// Deterministic in `seed`: the same seed gives the same word, number and haystack start at every length
// and depth. Throws UsageError when `length` cannot hold the needle, the question and one haystack
// token, or depth is outside [0, 1]; RuntimeFailure when the haystack source is empty.
NeedlePrompt build_needle_prompt(const Tokenizer& tokenizer, const TokenSource& haystack, int64_t length, double depth,
                                 uint64_t seed);

// Refuses (UsageError naming `option`) a length that cannot hold the needle and question of one of the seeds
// first_seed … first_seed + trials - 1: the check a command makes for each tokenizer before it loads any model.
void check_needle_length(const Tokenizer& tokenizer, const std::string& option, int64_t length, uint64_t first_seed,
                         int trials);

// Splits text after each newline and after ". ", "? ", "! " (the delimiter stays with the piece before).
std::vector<std::string> split_sentences(const std::string& text);

struct NeedleScore {
  std::string digits;         // the leading digits of the answer (after whitespace), up to 8
  bool exact = false;         // exactly the 7 digits, not followed by another digit
  double digit_accuracy = 0;  // share of the 7 positions right
};
NeedleScore score_needle_answer(const std::string& generated, const std::string& number);

}  // namespace ssmax
