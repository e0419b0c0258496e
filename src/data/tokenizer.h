#pragma once
// sentencepiece tokenizer, reached through libssmax_spm.so (src/data/spm_shim.cpp).
//
// Why the indirection: Debian's libsentencepiece bundles protobuf-lite 3.14 and libtorch uses the
// system protobuf 3.21; one binary linking both segfaults before main(). The shim alone links
// sentencepiece and is loaded with dlopen(RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND).
// Shim lookup order: $SSMAX_SPM_SHIM, the directory of the running executable, the build directory.
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ssmax {

struct TokenizerTrainOptions {
  std::string input_file;    // one sentence per line
  std::string model_prefix;  // writes PREFIX.model and PREFIX.vocab
  int vocab_size = 4096;
  std::string model_type = "bpe";  // bpe | unigram
};

// Trains with settings that round-trip text exactly (identity normalization, no whitespace
// collapsing, byte fallback). Throws RuntimeFailure with sentencepiece's message on failure.
void train_tokenizer(const TokenizerTrainOptions& options);

struct SpecialToken {
  int id = -1;  // -1: the model has none
  std::string piece;
};
struct SpecialTokens {
  SpecialToken unk, bos, eos;
};

class Tokenizer {
 public:
  // Throws RuntimeFailure naming the file if it is missing or not a sentencepiece model.
  static Tokenizer load(const std::string& model_path);
  Tokenizer(Tokenizer&&) noexcept;
  Tokenizer& operator=(Tokenizer&&) noexcept;
  ~Tokenizer();

  std::vector<uint32_t> encode(const std::string& text) const;
  std::string decode(const std::vector<uint32_t>& ids) const;
  int vocab_size() const;
  // The model's unknown, begin- and end-of-sequence tokens (encode() adds none of them to text).
  SpecialTokens special_tokens() const;
  const std::string& model_path() const { return model_path_; }

 private:
  Tokenizer() = default;
  void* handle_ = nullptr;
  std::string model_path_;
};

}  // namespace ssmax
