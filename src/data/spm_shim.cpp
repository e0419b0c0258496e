// libssmax_spm.so: the only code that touches sentencepiece, behind a plain C interface.
//
// Debian's libsentencepiece bundles its own protobuf, which clashes with libtorch's; a process that
// links both crashes before main(). This library alone links sentencepiece and is dlopen()ed with
// RTLD_DEEPBIND by src/data/tokenizer.cpp, so only C types cross the boundary. Errors are reported
// through a thread-local message (ssmax_spm_last_error); buffers handed out are malloc()ed and
// released with ssmax_spm_free_buffer.
#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <fstream>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

namespace {

thread_local std::string g_last_error;

int fail(const std::string& message) {
  g_last_error = message;
  return -1;
}

// Feeds the trainer the lines of a file (without their newline), as its own file reader would.
class LineIterator : public sentencepiece::SentenceIterator {
 public:
  explicit LineIterator(const std::string& path) : in_(path, std::ios::binary), path_(path) {
    if (!in_)
      status_ =
          sentencepiece::util::Status(sentencepiece::util::StatusCode::kNotFound, path + ": cannot open for reading");
    Next();
  }
  bool done() const override { return done_; }
  void Next() override {
    done_ = !status_.ok() || !std::getline(in_, line_);
    if (done_ && in_.bad()) {
      status_ = sentencepiece::util::Status(sentencepiece::util::StatusCode::kInternal, path_ + ": read error");
    }
  }
  const std::string& value() const override { return line_; }
  sentencepiece::util::Status status() const override { return status_; }

 private:
  std::ifstream in_;
  std::string path_, line_;
  bool done_ = false;
  sentencepiece::util::Status status_;
};

}  // namespace

extern "C" {

const char* ssmax_spm_last_error(void) { return g_last_error.c_str(); }

void ssmax_spm_free_buffer(void* buffer) { std::free(buffer); }

// `args` holds one "key=value" per line (sentencepiece trainer flags without the dashes). Lines,
// not spaces, separate them so that paths containing spaces survive. Returns 0 or -1.
//
// "input" and "model_prefix" are handled here, not by sentencepiece: it would record both paths
// inside the model, so the same corpus trained in two directories would give different bytes (and
// dataset fingerprints). Lines come through an iterator instead and the model is written by us.
int ssmax_spm_train(const char* args) {
  try {
    std::unordered_map<std::string, std::string> kwargs;
    const char* p = args;
    while (*p) {
      const char* end = std::strchr(p, '\n');
      if (!end) end = p + std::strlen(p);
      const std::string line(p, end);
      if (!line.empty()) {
        const auto eq = line.find('=');
        if (eq == std::string::npos) return fail("bad trainer argument '" + line + "'");
        kwargs[line.substr(0, eq)] = line.substr(eq + 1);
      }
      p = *end ? end + 1 : end;
    }
    const std::string input = kwargs["input"], prefix = kwargs["model_prefix"];
    kwargs.erase("input");
    kwargs.erase("model_prefix");
    if (input.empty() || prefix.empty()) return fail("trainer needs input= and model_prefix=");
    LineIterator lines(input);
    if (!lines.status().ok()) return fail(lines.status().ToString());
    // Sentence sampling (when the corpus exceeds input_sentence_size) draws from this generator;
    // a fixed seed keeps the trained model a function of the corpus alone.
    sentencepiece::SetRandomGeneratorSeed(20240601u);
    std::string model;
    const auto status = sentencepiece::SentencePieceTrainer::Train(kwargs, &lines, &model);
    if (!status.ok()) return fail(status.ToString());
    if (!lines.status().ok()) return fail(lines.status().ToString());
    const std::string path = prefix + ".model";
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(model.data(), static_cast<std::streamsize>(model.size()));
    out.close();
    if (!out) return fail(path + ": cannot write the trained model");
    return 0;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Returns an opaque processor, or NULL with the reason in ssmax_spm_last_error().
void* ssmax_spm_load(const char* model_path) {
  try {
    // Owned until it loads: a damaged model can make Load throw (found by tests/fuzz/fuzz_tokenizer.cpp: a leak).
    auto processor = std::make_unique<sentencepiece::SentencePieceProcessor>();
    const auto status = processor->Load(model_path);
    if (!status.ok()) {
      fail(status.ToString());
      return nullptr;
    }
    return processor.release();
  } catch (const std::exception& e) {
    fail(e.what());
    return nullptr;
  }
}

void ssmax_spm_free(void* handle) { delete static_cast<sentencepiece::SentencePieceProcessor*>(handle); }

int ssmax_spm_vocab_size(void* handle) {
  return static_cast<sentencepiece::SentencePieceProcessor*>(handle)->GetPieceSize();
}

// A special token of the model: which = 0 unk, 1 bos, 2 eos. Returns its id and puts its piece (malloc()ed,
// NUL-terminated) at *piece, or returns -1 (*piece NULL) when the model has none (e.g. trained with bos_id=-1).
int ssmax_spm_special(void* handle, int which, char** piece) {
  try {
    *piece = nullptr;
    const auto* processor = static_cast<const sentencepiece::SentencePieceProcessor*>(handle);
    const int id = which == 0 ? processor->unk_id() : which == 1 ? processor->bos_id() : processor->eos_id();
    if (id < 0 || id >= processor->GetPieceSize()) return -1;
    const std::string text = processor->IdToPiece(id);
    *piece = static_cast<char*>(std::malloc(text.size() + 1));
    if (!*piece) return fail("out of memory");
    std::memcpy(*piece, text.c_str(), text.size() + 1);
    return id;
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Encodes text[0, len) into a malloc()ed array at *ids; returns the count, or -1. Thread-safe.
long ssmax_spm_encode(void* handle, const char* text, size_t len, int32_t** ids) {
  try {
    *ids = nullptr;
    std::vector<int> out;
    const auto* processor = static_cast<const sentencepiece::SentencePieceProcessor*>(handle);
    const auto status = processor->Encode(absl::string_view(text, len), &out);
    if (!status.ok()) return fail(status.ToString());
    *ids = static_cast<int32_t*>(std::malloc(std::max<size_t>(1, out.size()) * sizeof(int32_t)));
    if (!*ids) return fail("out of memory");
    for (size_t i = 0; i < out.size(); ++i) (*ids)[i] = out[i];
    return static_cast<long>(out.size());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

// Decodes ids[0, n) into a malloc()ed buffer at *text (NUL-terminated); returns its length, or -1.
long ssmax_spm_decode(void* handle, const int32_t* ids, size_t n, char** text) {
  try {
    *text = nullptr;
    const auto* processor = static_cast<const sentencepiece::SentencePieceProcessor*>(handle);
    const int size = processor->GetPieceSize();
    std::vector<int> in(ids, ids + n);
    for (int id : in) {
      // sentencepiece aborts the process on an out-of-range id; refuse it here instead.
      if (id < 0 || id >= size) {
        return fail("token id " + std::to_string(id) + " outside vocabulary of " + std::to_string(size));
      }
    }
    std::string out;
    const auto status = processor->Decode(in, &out);
    if (!status.ok()) return fail(status.ToString());
    *text = static_cast<char*>(std::malloc(out.size() + 1));
    if (!*text) return fail("out of memory");
    std::memcpy(*text, out.data(), out.size());
    (*text)[out.size()] = '\0';
    return static_cast<long>(out.size());
  } catch (const std::exception& e) {
    return fail(e.what());
  }
}

}  // extern "C"
