#pragma once
// The config: every key a run can set. Types and defaults are these structs; ranges, choices and one-line docs are
// the schema table (schema.cpp), which names each field here. A JSON file is validated strictly against the table
// (unknown keys, wrong types and out-of-range values are errors that name the key), then turned into this struct.
#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "config/normalizer_kind.h"

namespace ssmax {

struct TokenizerConfig {
  int vocab_size = 4096;
  std::string model_type = "bpe";  // bpe | unigram
  std::string model;               // path of an existing sentencepiece model; overrides training one
  int sample_mb = 100;             // tokenizer trains on a deterministic sample of the corpus's lines of this size
};

// data.task = "mqar": multi-query associative recall generated from the seed (data/recall_task.h).
struct RecallTaskConfig {
  std::string mode = "pair";  // pair: one position holds a key–value pair | token: keys and values are tokens
  int keys = 512;             // distinct keys; a sequence uses each at most once, so it bounds the pairs
  int values = 16;
  int pairs = 0;      // pairs in a training sequence; 0: as many as model.block_size holds after the queries
  int min_pairs = 0;  // > 0: each training sequence draws its pairs from [min_pairs, pairs] (mixed lengths)
  int queries = 8;    // keys asked again at the end of each sequence; the loss is on their answers
};

struct DataConfig {
  std::string task = "text";  // text: the sources, tokenized | mqar: the recall task below (no sources read)
  RecallTaskConfig mqar;
  std::vector<std::string> sources{"data/kjv.txt"};  // text files or directories
  std::string dataset_dir = "data/cache";            // tokenizer and shards are cached here
  TokenizerConfig tokenizer;
  double val_fraction = 0.05;
  std::string text_field = "text";      // the field holding the text in JSON Lines sources (*.jsonl, *.jsonl.gz)
  uint64_t shard_tokens = 100000000;    // tokens per shard file (the last of a split holds the rest)
  std::string prepared;                 // a dataset directory `prepare` wrote: used as it is, sources not read
  std::string text_documents = "file";  // plain-text sources: "file" (one document each) | "blank_line" (splits)
};

struct AttentionConfig {
  Normalizer normalizer = Normalizer::Softmax;
  double s_init = kDefaultSInit;
  // "value": s starts at s_init. "length": s starts at 1/ln(block_size), so s·ln n = 1 at the training length
  // (the paper's variant (e): an SSMax model that starts as the softmax model it is converted from, at T).
  std::string s_init_mode = "value";
  bool learn_s = true;
  double b_init = 0.0;
  // Packed windows hold several documents: true keeps each query inside its own document (SSMax's n and the
  // positions count from the document's start); false lets attention run across the whole window.
  bool document_mask = false;
  // logn (Qwen-1's use_logn_attn): c = max(1, ln n / ln L), L = logn_length; 0: model.block_size.
  int logn_length = 0;
  // llama4 (Llama 4's attention temperature): c = 1 + attn_scale·ln(1 + ⌊n / floor_scale⌋); floor_scale 0:
  // model.block_size (Llama 4 itself: 0.1 and 8192).
  double attn_scale = 0.1;
  int floor_scale = 0;
  // Which layers logn and llama4 act on: "all", or "nope": the layers without RoPE only, as Llama 4 does.
  std::string scaled_layers = "all";
};

struct ModelConfig {
  int n_layer = 4;
  int n_head = 4;
  int n_kv_head = 0;  // key/value heads (grouped-query attention); 0: n_head
  int n_embd = 256;
  int block_size = 256;
  double dropout = 0.0;
  bool bias = false;
  bool tie_embeddings = true;
  std::string position = "learned";  // learned | rope | none
  int nope_every = 0;                // with rope: layers k, 2k, … (1-based) have no position encoding; 0 = none
  double rope_theta = 10000.0;
  std::string norm = "layernorm";  // layernorm | rmsnorm
  std::string mlp = "gelu";        // gelu | swiglu
  int mlp_hidden = 0;              // 0: 4*n_embd for gelu, 8*n_embd/3 for swiglu
  int vocab_multiple = 64;         // embedding and head rows padded to a multiple of this (model/gpt.h)
  AttentionConfig attention;

  int resolved_mlp_hidden() const;
  double resolved_s_init() const;  // model.attention.s_init, or 1/ln(block_size) for s_init_mode "length"
  int resolved_n_kv_head() const { return n_kv_head > 0 ? n_kv_head : n_head; }
  // Whether layer `layer` (0-based) rotates q and k: position "rope", except every nope_every-th layer (Llama 4's
  // interleaving, iRoPE: layers 4, 8, 12, … of a 1-based count have none).
  bool layer_has_rope(int layer) const {
    return position == "rope" && !(nope_every > 0 && (layer + 1) % nope_every == 0);
  }
  // Whether layer `layer` (0-based) sees no position at all (NoPE): position "none", or a RoPE model's layer without
  // the rotation. Learned positions reach every layer through its input.
  bool layer_is_nope(int layer) const { return position == "none" || (position == "rope" && !layer_has_rope(layer)); }
  bool has_nope_layers() const;
  // Whether the normalizer acts on layer `layer` (0-based): every layer, except for a parameter-free scaling limited
  // to the NoPE layers (attention.scaled_layers = "nope").
  bool layer_is_scaled(int layer) const;
  int resolved_logn_length() const { return attention.logn_length > 0 ? attention.logn_length : block_size; }
  int resolved_floor_scale() const { return attention.floor_scale > 0 ? attention.floor_scale : block_size; }
};

struct OptimConfig {
  double lr = 1e-3;
  double min_lr = 1e-4;
  std::string schedule = "cosine";  // cosine | constant | linear
  int warmup_steps = 100;
  double weight_decay = 0.1;
  double beta1 = 0.9;
  double beta2 = 0.95;
  double eps = 1e-8;
  double grad_clip = 1.0;  // 0 disables clipping
};

struct TrainConfig {
  int batch_size = 16;
  int grad_accum_steps = 1;
  int max_steps = 1000;
  int log_every = 10;
  int eval_every = 100;
  int eval_batches = 20;
  int checkpoint_every = 500;
  int keep_last = 2;
  std::string precision = "fp32";  // fp32 | bf16 (autocast; weights and optimizer state stay float32)
  bool tf32 = false;               // CUDA only: TF32 tensor cores for float32 matmuls
  bool cuda_chunked_loss = false;  // CUDA only: the LM head + loss in chunks (kernels/linear_cross_entropy.h)
};

// Data-parallel training under torchrun (src/dist/); ignored by a single process.
struct DistributedConfig {
  int timeout_s = 300;    // a collective that waits longer ends every rank with a message naming the one that stopped
  double bucket_mb = 25;  // gradients are all-reduced in flat buckets of about this size
  bool overlap = true;    // start a bucket's all-reduce during backward, as soon as its gradients are complete
};

struct Config {
  std::string name = "run";
  uint64_t seed = 1;
  std::string out_dir = "runs/run";
  std::string init_from;  // a Hugging Face Llama directory the new run starts from (export/hf_import.h); "" = none
  std::string device = "auto";    // auto | cpu | cuda | cuda:N
  int threads = 0;                // 0: all cores
  std::string cpu_blas = "auto";  // auto | openblas | aten: the library of CPU float32 products (train/cpu_blas.h)
  DataConfig data;
  ModelConfig model;
  OptimConfig optim;
  TrainConfig train;
  DistributedConfig distributed;
};

// Reads and validates a config file, then applies "--set key.path=value" overrides (typed by the
// schema). Relative paths in data.* and out_dir stay relative to the working directory.
// Throws UsageError with a one-line message naming file, key, value and what is allowed.
Config load_config(const std::string& path, const std::vector<std::string>& overrides = {});
// The same file as JSON with the overrides applied, not yet validated (train --init-from fills it in first).
nlohmann::json load_config_json(const std::string& path, const std::vector<std::string>& overrides = {});

// Validates a JSON object (same rules as a file; `origin` names it in messages).
Config config_from_json(const nlohmann::json& json, const std::string& origin);

// The fully resolved config (every key, defaults filled in), as written into a run directory.
nlohmann::json config_to_json(const Config& config);

// Applies one "key.path=value" override to a JSON config, typed by the schema.
void apply_override(nlohmann::json& json, const std::string& assignment);

// Every valid dotted key, for help texts and suggestions.
std::vector<std::string> config_keys();

// Dotted keys whose values differ between two configs (either side may lack a key).
std::vector<std::string> config_differences(const nlohmann::json& a, const nlohmann::json& b);

// A config stored by an older ssmax-gpt (a checkpoint's, a run directory's config.json), given the values that
// describe what that version did where a new key's default would describe something else (model.vocab_multiple
// is 1: no padding before padding existed), and the keys added since with their defaults (config.cpp lists them).
void upgrade_stored_config(nlohmann::json& stored);

// The schema's checks for a data section built in code rather than read from a file (prepare is given one), with
// the messages a file would get. Throws UsageError.
void check_data_config(const DataConfig& data);

// Whether `train --resume` may give a key another value than the checkpoint's (the schema's column): how long,
// how fast and where a run goes may change; what it computes may not, except that a normalizer switch (paper variant
// (f), normalizer_switch_allowed) also sets the new normalizer's own keys.
enum class OnResume { Fixed, Changeable, WithNormalizerSwitch };
// The keys a resume may change, and those a normalizer switch may change too, in schema order.
std::vector<std::string> config_keys_changeable_on_resume(OnResume which = OnResume::Changeable);

// Every key with its type, default, allowed values and meaning, from the schema table.
struct ConfigKeyInfo {
  std::string key, type;
  std::string default_value;         // as JSON
  std::string range;                 // "[1, 1000]", "> 0"; empty when unbounded or a choice
  std::vector<std::string> choices;  // the allowed strings; empty when any
  std::string doc;
  OnResume on_resume = OnResume::Fixed;
};
std::vector<ConfigKeyInfo> config_reference();

// config_reference() as a markdown table: docs/configuration.md's config table is this text (a test checks it;
// `ssmax-gpt keys --markdown` prints it).
std::string config_reference_markdown();

}  // namespace ssmax
