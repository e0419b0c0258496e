#include "data/tokenizer.h"

#include <dlfcn.h>

#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <regex>
#include <utility>

#include "util/errors.h"

namespace ssmax {

namespace {

namespace fs = std::filesystem;

constexpr const char* kShimName = "libssmax_spm.so";

// The C interface of src/data/spm_shim.cpp.
struct Shim {
  std::string path;
  const char* (*last_error)();
  void (*free_buffer)(void*);
  int (*train)(const char*);
  void* (*load)(const char*);
  void (*free_processor)(void*);
  int (*vocab_size)(void*);
  long (*encode)(void*, const char*, size_t, int32_t**);
  long (*decode)(void*, const int32_t*, size_t, char**);
  int (*special)(void*, int, char**);
};

std::string exe_dir() {
  std::error_code ec;
  const fs::path exe = fs::read_symlink("/proc/self/exe", ec);
  return ec ? std::string() : exe.parent_path().string();
}

// Where to look, in order. $SSMAX_SPM_SHIM is taken as given (an explicit choice should fail
// loudly, not be skipped); the other places are used only if the file is there.
std::string find_shim(std::string& looked) {
  if (const char* env = std::getenv("SSMAX_SPM_SHIM"); env && *env) return env;
  std::vector<std::string> candidates;
  if (const std::string dir = exe_dir(); !dir.empty()) candidates.push_back(dir + "/" + kShimName);
#ifdef SSMAX_SPM_SHIM_FALLBACK
  candidates.push_back(SSMAX_SPM_SHIM_FALLBACK);
#endif
  for (const auto& c : candidates) {
    std::error_code ec;
    if (fs::exists(c, ec)) return c;
    looked += (looked.empty() ? "" : ", ") + c;
  }
  return "";
}

template <typename Fn>
void bind(void* lib, const std::string& path, const char* name, Fn& fn) {
  void* sym = ::dlsym(lib, name);
  if (!sym) {
    throw RuntimeFailure("tokenizer library " + path + " lacks symbol " + name +
                         " (stale build?); rebuild with scripts/build.sh");
  }
  fn = reinterpret_cast<Fn>(sym);
}

Shim load_shim() {
  std::string looked;
  Shim shim{};
  shim.path = find_shim(looked);
  if (shim.path.empty()) {
    throw RuntimeFailure(std::string("cannot find the tokenizer library ") + kShimName + " (looked at " + looked +
                         "); rebuild with scripts/build.sh or set SSMAX_SPM_SHIM to its path");
  }
  // RTLD_DEEPBIND makes sentencepiece resolve protobuf symbols inside its own library first;
  // without it, libtorch's protobuf wins and sentencepiece aborts. RTLD_LOCAL keeps them from
  // leaking.
  void* lib = ::dlopen(shim.path.c_str(), RTLD_NOW | RTLD_LOCAL | RTLD_DEEPBIND);
  if (!lib) {
    const char* why = ::dlerror();
    throw RuntimeFailure("cannot load tokenizer library " + shim.path + ": " + (why ? why : "unknown error") +
                         "; rebuild with scripts/build.sh");
  }
  // Never dlclose()d: processors may outlive any scope, and unloading protobuf is not safe.
  bind(lib, shim.path, "ssmax_spm_last_error", shim.last_error);
  bind(lib, shim.path, "ssmax_spm_free_buffer", shim.free_buffer);
  bind(lib, shim.path, "ssmax_spm_train", shim.train);
  bind(lib, shim.path, "ssmax_spm_load", shim.load);
  bind(lib, shim.path, "ssmax_spm_free", shim.free_processor);
  bind(lib, shim.path, "ssmax_spm_vocab_size", shim.vocab_size);
  bind(lib, shim.path, "ssmax_spm_encode", shim.encode);
  bind(lib, shim.path, "ssmax_spm_decode", shim.decode);
  bind(lib, shim.path, "ssmax_spm_special", shim.special);
  return shim;
}

// Loaded on first use, once per process. If loading throws, the next call tries again.
const Shim& shim() {
  static const Shim instance = load_shim();
  return instance;
}

// sentencepiece reports a model it cannot load by its own source location and the check that failed ("Internal:
// src/sentencepiece_processor.cc(1102) [model_proto->ParseFromArray(...)] "): what that means for the file instead.
std::string load_failure(const std::string& status) {
  if (status.find("ParseFromArray") != std::string::npos)
    return "its bytes do not parse as one (a damaged file, or not a sentencepiece .model file)";
  static const std::regex location(R"(\S+\.cc\(\d+\) )");
  std::string text = std::regex_replace(status, location, "");
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

}  // namespace

void train_tokenizer(const TokenizerTrainOptions& options) {
  const Shim& spm = shim();
  std::string args;
  auto arg = [&args](const std::string& key, const std::string& value) { args += key + "=" + value + "\n"; };
  arg("input", options.input_file);
  arg("model_prefix", options.model_prefix);
  arg("vocab_size", std::to_string(options.vocab_size));
  arg("model_type", options.model_type);
  // Exact round trip of any text: no normalization, whitespace kept as is, unseen bytes encoded
  // as byte tokens instead of <unk>. No dummy prefix either: with it every encode() call would
  // start with a space that is not in the text, and encode(a)+encode(b) would not decode to a+b.
  arg("normalization_rule_name", "identity");
  arg("remove_extra_whitespaces", "false");
  arg("add_dummy_prefix", "false");
  arg("byte_fallback", "true");
  arg("character_coverage", "1.0");
  // Digits one per token: numbers then share statistics instead of taking whole vocabulary slots.
  arg("split_digits", "true");
  // One thread: the unigram EM adds up per-thread partial sums, so the model could depend on the
  // core count; the same corpus must give the same tokenizer (and fingerprint) on every machine.
  arg("num_threads", "1");
  // prepare already hands over a bounded sample (data.tokenizer.sample_mb, ≤ 1.6M lines at the default 100 MB);
  // sentencepiece's own cap only bites beyond that. Kept as it was: the flags are recorded in the model, and the
  // same bytes keep the fingerprints of datasets built before the sample existed.
  arg("input_sentence_size", "2000000");
  arg("shuffle_input_sentence", "true");
  // Lines up to 16 KiB count for training (the default, 4 KiB, silently skips long paragraphs).
  arg("max_sentence_length", "16384");
  // Errors come back as a status; sentencepiece's progress chatter on stderr is not wanted.
  arg("minloglevel", "2");
  if (spm.train(args.c_str()) != 0) {
    throw RuntimeFailure("tokenizer training on " + options.input_file + " failed: " + spm.last_error() +
                         " (data.tokenizer.vocab_size=" + std::to_string(options.vocab_size) +
                         ", model_type=" + options.model_type + ")");
  }
}

Tokenizer Tokenizer::load(const std::string& model_path) {
  std::error_code ec;
  if (!fs::is_regular_file(model_path, ec)) {
    throw RuntimeFailure("tokenizer model " + model_path + " does not exist");
  }
  const Shim& spm = shim();
  void* handle = spm.load(model_path.c_str());
  if (!handle) {
    throw RuntimeFailure(model_path + ": not a usable sentencepiece model: " + load_failure(spm.last_error()));
  }
  Tokenizer t;
  t.handle_ = handle;
  t.model_path_ = model_path;
  return t;
}

Tokenizer::Tokenizer(Tokenizer&& other) noexcept
    : handle_(std::exchange(other.handle_, nullptr)), model_path_(std::move(other.model_path_)) {}

Tokenizer& Tokenizer::operator=(Tokenizer&& other) noexcept {
  if (this != &other) {
    if (handle_) shim().free_processor(handle_);
    handle_ = std::exchange(other.handle_, nullptr);
    model_path_ = std::move(other.model_path_);
  }
  return *this;
}

Tokenizer::~Tokenizer() {
  // A handle exists only if the shim loaded, so shim() cannot throw here.
  if (handle_) shim().free_processor(handle_);
}

std::vector<uint32_t> Tokenizer::encode(const std::string& text) const {
  const Shim& spm = shim();
  int32_t* ids = nullptr;
  const long n = spm.encode(handle_, text.data(), text.size(), &ids);
  if (n < 0) throw RuntimeFailure(model_path_ + ": encoding failed: " + spm.last_error());
  std::vector<uint32_t> out(ids, ids + n);
  spm.free_buffer(ids);
  return out;
}

std::string Tokenizer::decode(const std::vector<uint32_t>& ids) const {
  const Shim& spm = shim();
  std::vector<int32_t> in(ids.begin(), ids.end());
  char* text = nullptr;
  const long n = spm.decode(handle_, in.data(), in.size(), &text);
  if (n < 0) throw RuntimeFailure(model_path_ + ": decoding failed: " + spm.last_error());
  std::string out(text, static_cast<size_t>(n));
  spm.free_buffer(text);
  return out;
}

int Tokenizer::vocab_size() const { return shim().vocab_size(handle_); }

SpecialTokens Tokenizer::special_tokens() const {
  const Shim& spm = shim();
  SpecialTokens out;
  for (auto [which, token] : {std::pair{0, &out.unk}, {1, &out.bos}, {2, &out.eos}}) {
    char* piece = nullptr;
    token->id = spm.special(handle_, which, &piece);
    if (piece) token->piece = piece;
    spm.free_buffer(piece);
  }
  return out;
}

}  // namespace ssmax
