// The tokenizer shim's inputs (src/data/spm_shim.cpp, the only code that touches sentencepiece): a model file, text
// to encode, ids to decode. The first byte picks which; the rest is the input. A small model is trained once on
// generated text. Property: the shim returns a result or -1/NULL with a message; it never crashes or aborts.
#include <cstring>
#include <string>

#include "fuzz_common.h"

extern "C" {
const char* ssmax_spm_last_error(void);
void ssmax_spm_free_buffer(void* buffer);
int ssmax_spm_train(const char* args);
void* ssmax_spm_load(const char* model_path);
void ssmax_spm_free(void* handle);
int ssmax_spm_vocab_size(void* handle);
long ssmax_spm_encode(void* handle, const char* text, size_t len, int32_t** ids);
long ssmax_spm_decode(void* handle, const int32_t* ids, size_t n, char** text);
}

using namespace ssmax;

namespace {

void* trained_model() {
  static void* model = [] {
    std::string text;
    const char* words[] = {"in", "the", "beginning", "was", "a", "word", "and", "light", "over", "waters", "ünïcödé"};
    uint32_t state = 1;
    for (int line = 0; line < 2000; ++line) {
      for (int w = 0; w < 12; ++w) {
        state = state * 1664525u + 1013904223u;
        text += words[(state >> 16) % 11];
        text += ' ';
      }
      text += '\n';
    }
    const std::string corpus = fuzz::write_scratch("corpus.txt", text);
    const std::string model_path = fuzz::scratch_dir() + "/model.model";
    const std::string args =
        "input=" + corpus + "\nmodel_prefix=" + fuzz::scratch_dir() +
        "/model\nvocab_size=100\nmodel_type=bpe\nnormalization_rule_name=identity\nminloglevel=2\n";
    if (ssmax_spm_train(args.c_str()) != 0) fuzz::finding("cannot train the fixture model", ssmax_spm_last_error());
    void* handle = ssmax_spm_load(model_path.c_str());
    if (!handle) fuzz::finding("cannot load the fixture model", ssmax_spm_last_error());
    return handle;
  }();
  return model;
}

void round_trip(void* model, const std::string& text) {
  int32_t* ids = nullptr;
  const long n = ssmax_spm_encode(model, text.data(), text.size(), &ids);
  if (n < 0) return;
  char* decoded = nullptr;
  if (ssmax_spm_decode(model, ids, static_cast<size_t>(n), &decoded) < 0) {
    ssmax_spm_free_buffer(ids);
    fuzz::finding("ids from encode do not decode", ssmax_spm_last_error());
  }
  ssmax_spm_free_buffer(decoded);
  ssmax_spm_free_buffer(ids);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const std::string input = fuzz::as_string(data + 1, size - 1);
  void* model = trained_model();
  switch (data[0] % 3) {
    case 0: {  // a damaged model file
      const std::string path = fuzz::write_scratch("damaged.model", input);
      void* handle = ssmax_spm_load(path.c_str());
      if (!handle) {
        fuzz::check_message(ssmax_spm_last_error());
        return 0;
      }
      if (ssmax_spm_vocab_size(handle) > 0) round_trip(handle, "in the beginning was a word");
      ssmax_spm_free(handle);
      return 0;
    }
    case 1:  // any text
      round_trip(model, input);
      return 0;
    default: {  // any ids, in or outside the vocabulary
      std::vector<int32_t> ids(input.size() / 4);
      if (!ids.empty()) std::memcpy(ids.data(), input.data(), ids.size() * 4);
      char* text = nullptr;
      if (ssmax_spm_decode(model, ids.data(), ids.size(), &text) < 0) fuzz::check_message(ssmax_spm_last_error());
      else ssmax_spm_free_buffer(text);
      return 0;
    }
  }
}
