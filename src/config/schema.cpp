// The config schema: every key, its range or choices, and what it means. Defaults are the member initialisers in
// config.h; the config table of docs/configuration.md is generated from this list.
#include "config/schema.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <sstream>

namespace ssmax {
namespace {

#define FIELD(member) [](Config& c) -> Field { return &c.member; }
constexpr double kInf = std::numeric_limits<double>::infinity();

KeySpec range(std::string path, std::function<Field(Config&)> field, double min, double max, std::string doc,
              bool min_exclusive = false) {
  return {std::move(path), std::move(field), min, max, min_exclusive, {}, {}, std::move(doc)};
}
KeySpec choice(std::string path, std::function<Field(Config&)> field, std::vector<std::string> choices,
               std::string doc) {
  return {std::move(path), std::move(field), -kInf, kInf, false, std::move(choices), {}, std::move(doc)};
}
KeySpec any(std::string path, std::function<Field(Config&)> field, std::string doc) {
  return {std::move(path), std::move(field), -kInf, kInf, false, {}, {}, std::move(doc)};
}

// Marks a key that `train --resume` may change (config.h, OnResume).
KeySpec on_resume(KeySpec key, OnResume how = OnResume::Changeable) {
  key.on_resume = how;
  return key;
}

std::vector<std::string> normalizer_choices() { return normalizer_names(); }

}  // namespace

const std::vector<KeySpec>& schema() {
  static const std::vector<KeySpec> keys = [] {
    KeySpec device = choice("device", FIELD(device), {"auto", "cpu", "cuda", "cuda:N"},
                            "`auto` takes CUDA when LibTorch sees a device, else the CPU");
    device.matches = is_device_name;
    device.on_resume = OnResume::Changeable;
    return std::vector<KeySpec>{
        any("name", FIELD(name), "label used in logs"),
        range("seed", FIELD(seed), 0, 1.8e19,
              "seeds initialisation, data order and dropout; same config + seed ⇒ same numbers on CPU"),
        any("out_dir", FIELD(out_dir), "run directory"),
        any("init_from", FIELD(init_from),
            "a Hugging Face Llama model directory (config.json, safetensors weights, tokenizer.model) the new run "
            "starts from: it sets the model section and the tokenizer (docs/huggingface.md); `train --init-from DIR`"),
        device,
        on_resume(range("threads", FIELD(threads), 0, 1024, "LibTorch intra-op threads; `0` = all cores")),
        on_resume(
            choice("cpu_blas", FIELD(cpu_blas), {"auto", "openblas", "aten"},
                   "library of the CPU's float32 matrix products: `auto` times OpenBLAS and ATen/MKL on the model's "
                   "products once per machine and keeps the faster; `openblas` or `aten` forces one")),
        choice("data.task", FIELD(data.task), {"text", "mqar"},
               "`text`: next-token prediction on `data.sources`; `mqar`: multi-query associative recall generated "
               "from the seed (no files; the loss on the answers only; `ssmax-gpt recall` evaluates it; "
               "docs/recall.md)"),
        choice("data.mqar.mode", FIELD(data.mqar.mode), {"pair", "token"},
               "`pair`: one position holds one key–value pair, a query is its key (one hop, solvable without "
               "positions); `token`: keys and values are tokens of their own (the usual MQAR)"),
        range("data.mqar.keys", FIELD(data.mqar.keys), 1, 1 << 16,
              "distinct keys; each sequence uses a key at most once, so the longest sequence holds this many pairs"),
        range("data.mqar.values", FIELD(data.mqar.values), 2, 1 << 16, "values a key can have (chance: 1/values)"),
        range("data.mqar.pairs", FIELD(data.mqar.pairs), 0, 1 << 20,
              "key–value pairs in a training sequence; `0`: as many as `model.block_size` holds after the queries"),
        range("data.mqar.min_pairs", FIELD(data.mqar.min_pairs), 0, 1 << 20,
              "`> 0`: each training sequence draws its pairs from [min_pairs, pairs] and is padded to the block "
              "(mixed lengths); `0`: every sequence holds `pairs`"),
        range("data.mqar.queries", FIELD(data.mqar.queries), 1, 1 << 16,
              "keys asked again at the end of each sequence (distinct); the loss is on their answers"),
        any("data.sources", FIELD(data.sources),
            "text files or directories (read recursively, sorted); `*.jsonl` files are JSON Lines (one object per "
            "line, the text in `data.text_field`, each record a document); `*.gz` files (text or JSON Lines) are "
            "gunzipped"),
        any("data.dataset_dir", FIELD(data.dataset_dir), "where tokenizers and shards are cached"),
        any("data.prepared", FIELD(data.prepared),
            "a dataset directory written by `prepare` (`<dataset_dir>/<key>`, e.g. carried to a machine without the "
            "corpus): trained on as it is; `data.sources` and the tokenizer settings are then not read, except that a "
            "given `data.tokenizer.model` (`init_from` gives one) must be the tokenizer it was encoded with (the same "
            "bytes). Empty: prepare (or find) the dataset of `data.sources`"),
        range("data.tokenizer.vocab_size", FIELD(data.tokenizer.vocab_size), 260, 1 << 20,
              "sentencepiece vocabulary size"),
        choice("data.tokenizer.model_type", FIELD(data.tokenizer.model_type), {"bpe", "unigram"},
               "sentencepiece model type"),
        any("data.tokenizer.model", FIELD(data.tokenizer.model),
            "path of an existing sentencepiece `.model`; used instead of training one"),
        range("data.tokenizer.sample_mb", FIELD(data.tokenizer.sample_mb), 1, 1 << 20,
              "the tokenizer trains on a deterministic sample of the corpus's lines of at most this size (the whole "
              "corpus when smaller)"),
        range("data.val_fraction", FIELD(data.val_fraction), 0, 0.5, "share of the text held out for validation", true),
        any("data.text_field", FIELD(data.text_field),
            "the field of each JSON Lines record that holds its text; a record without it is an error naming file "
            "and line"),
        choice("data.text_documents", FIELD(data.text_documents), {"file", "blank_line"},
               "documents in plain-text sources: `file` = each file is one document; `blank_line` = a blank line "
               "also ends one, and is dropped (JSON Lines: each record is one document either way)"),
        range("data.shard_tokens", FIELD(data.shard_tokens), 1024, 1e12,
              "token ids per shard file; windows are drawn across shards, so it changes files, not batches"),
        range("model.n_layer", FIELD(model.n_layer), 1, 1000, "transformer blocks"),
        range("model.n_head", FIELD(model.n_head), 1, 1024, "attention heads; must divide `model.n_embd`"),
        range("model.n_kv_head", FIELD(model.n_kv_head), 0, 1024,
              "key/value heads (grouped-query attention, as Llama's `num_key_value_heads`): each serves "
              "n_head / n_kv_head query heads; must divide `model.n_head`; `0` = n_head (plain multi-head)"),
        range("model.n_embd", FIELD(model.n_embd), 1, 1 << 16, "width of the residual stream"),
        range("model.block_size", FIELD(model.block_size), 2, 1 << 20, "training context length"),
        range("model.dropout", FIELD(model.dropout), 0, 0.999999, "dropout probability"),
        any("model.bias", FIELD(model.bias), "biases in linear layers and LayerNorm"),
        any("model.tie_embeddings", FIELD(model.tie_embeddings), "share the token embedding with the output layer"),
        choice("model.position", FIELD(model.position), {"learned", "rope", "none"},
               "`learned` (GPT-2), `rope` (needs an even head size) or `none` (NoPE: no position encoding; causal "
               "attention alone tells the order)"),
        range("model.nope_every", FIELD(model.nope_every), 0, 1 << 16,
              "with `position` = `rope`: every k-th layer (k, 2k, … counting from 1) has no position encoding, as "
              "Llama 4's interleaved layout (iRoPE, k = 4); `0`: every layer rotates"),
        range("model.rope_theta", FIELD(model.rope_theta), 0, kInf, "RoPE base θ", true),
        choice("model.norm", FIELD(model.norm), {"layernorm", "rmsnorm"}, "normalisation layers"),
        choice("model.mlp", FIELD(model.mlp), {"gelu", "swiglu"}, "`gelu` (GPT-2, tanh approximation) or `swiglu`"),
        range("model.mlp_hidden", FIELD(model.mlp_hidden), 0, 1 << 20,
              "hidden width; `0` = 4·n_embd for gelu, ⌊8·n_embd/3⌋ for swiglu"),
        range("model.vocab_multiple", FIELD(model.vocab_multiple), 1, 4096,
              "the embedding and LM head get rows up to a multiple of this (50257 → 50304 at 64: aligned GPU "
              "products); the extra rows never reach the loss, sampling, evaluation or exports; `1` = none"),
        on_resume(choice("model.attention.normalizer", FIELD(model.attention.normalizer), normalizer_choices(),
                         "softmax(c·z) for a query that sees n keys: `softmax` c = 1, `ssmax` c = s·ln n, `ssmax_bias` "
                         "c = s·ln n + b (s, b learned per head), `logn` c = max(1, ln n / ln L) (Qwen-1), `llama4` "
                         "c = 1 + a·ln(1 + ⌊n / F⌋) (Llama 4); docs/normalizers.md"),
                  OnResume::WithNormalizerSwitch),
        on_resume(range("model.attention.s_init", FIELD(model.attention.s_init), -100, 100,
                        "initial `s` (the paper's Figure 1 value; the paper does not state its init)"),
                  OnResume::WithNormalizerSwitch),
        on_resume(
            choice("model.attention.s_init_mode", FIELD(model.attention.s_init_mode), {"value", "length"},
                   "`value`: `s` starts at `s_init`; `length`: at 1/ln(block_size), so s·ln n = 1 at the training "
                   "length (the paper's variant (e), e.g. for a softmax model switched to SSMax on import or resume)"),
            OnResume::WithNormalizerSwitch),
        on_resume(any("model.attention.learn_s", FIELD(model.attention.learn_s), "`false` freezes `s` (variant (c))"),
                  OnResume::WithNormalizerSwitch),
        on_resume(
            range("model.attention.b_init", FIELD(model.attention.b_init), -100, 100, "initial `b` for `ssmax_bias`"),
            OnResume::WithNormalizerSwitch),
        on_resume(range("model.attention.logn_length", FIELD(model.attention.logn_length), 0, 1 << 30,
                        "L of `logn`: the length from which it scales (c = 1 up to it); `0` = `model.block_size`"),
                  OnResume::WithNormalizerSwitch),
        on_resume(range("model.attention.attn_scale", FIELD(model.attention.attn_scale), 0, 100,
                        "a of `llama4` (Llama 4: 0.1)"),
                  OnResume::WithNormalizerSwitch),
        on_resume(range("model.attention.floor_scale", FIELD(model.attention.floor_scale), 0, 1 << 30,
                        "F of `llama4`: c = 1 for the first F − 1 positions (Llama 4: 8192); `0` = `model.block_size`"),
                  OnResume::WithNormalizerSwitch),
        on_resume(choice("model.attention.scaled_layers", FIELD(model.attention.scaled_layers), {"all", "nope"},
                         "the layers `logn` and `llama4` act on: `all`, or `nope`: only those without RoPE "
                         "(`model.position` = none, or `model.nope_every`), as Llama 4"),
                  OnResume::WithNormalizerSwitch),
        any("model.attention.document_mask", FIELD(model.attention.document_mask),
            "`true`: a query attends only to earlier tokens of its own document in a packed window; SSMax's n and "
            "the positions count from the document's start (needs a dataset prepared by this version; not "
            "changeable on resume)"),
        on_resume(range("optim.lr", FIELD(optim.lr), 0, 10, "peak learning rate", true)),
        on_resume(range("optim.min_lr", FIELD(optim.min_lr), 0, 10, "final learning rate; at most `optim.lr`")),
        on_resume(choice("optim.schedule", FIELD(optim.schedule), {"cosine", "constant", "linear"},
                         "`cosine` or `linear` decay to `min_lr` after warmup, or `constant`")),
        on_resume(range("optim.warmup_steps", FIELD(optim.warmup_steps), 0, 1e9, "linear warmup, in optimizer steps")),
        range("optim.weight_decay", FIELD(optim.weight_decay), 0, 10,
              "AdamW weight decay, applied to tensors of rank ≥ 2 only (never norms, biases, `s`, `b`)"),
        range("optim.beta1", FIELD(optim.beta1), 0, 1, "AdamW β₁"),
        range("optim.beta2", FIELD(optim.beta2), 0, 1, "AdamW β₂"),
        range("optim.eps", FIELD(optim.eps), 0, 1, "AdamW ε", true),
        range("optim.grad_clip", FIELD(optim.grad_clip), 0, kInf, "global gradient-norm clip; `0` disables"),
        range("train.batch_size", FIELD(train.batch_size), 1, 1 << 20, "sequences per micro-batch"),
        on_resume(range("train.grad_accum_steps", FIELD(train.grad_accum_steps), 1, 1 << 20,
                        "micro-batches per optimizer step")),
        on_resume(range("train.max_steps", FIELD(train.max_steps), 1, 1e9, "optimizer steps")),
        on_resume(range("train.log_every", FIELD(train.log_every), 1, 1e9, "console + metrics record every N steps")),
        on_resume(range("train.eval_every", FIELD(train.eval_every), 1, 1e9,
                        "validation loss every N steps (and at the end)")),
        range("train.eval_batches", FIELD(train.eval_batches), 1, 1e6, "batches in the fixed validation set"),
        on_resume(range("train.checkpoint_every", FIELD(train.checkpoint_every), 1, 1e9,
                        "checkpoint every N steps (and at the end)")),
        on_resume(range("train.keep_last", FIELD(train.keep_last), 1, 1000,
                        "newest checkpoints kept (plus the one with the best validation loss)")),
        on_resume(
            choice("train.precision", FIELD(train.precision), {"fp32", "bf16"},
                   "`bf16`: the forward pass under autocast (matmuls and attention in bf16, softmax/loss in float32); "
                   "weights, gradients and AdamW state stay float32. On the CPU through oneDNN: faster than fp32 where "
                   "the CPU has AMX or AVX-512-BF16, slower where it has neither (the log says which)")),
        on_resume(any("train.tf32", FIELD(train.tf32),
                      "CUDA only (an error on the CPU): TF32 tensor cores for float32 matmuls")),
        on_resume(
            any("train.cuda_chunked_loss", FIELD(train.cuda_chunked_loss),
                "CUDA: the LM head and its loss a chunk of rows at a time (logits in the run's precision, softmax in "
                "float32; never the full float32 logits). Off until a GPU run has measured it; on the CPU under bf16 "
                "it is always on")),
        on_resume(
            range("distributed.timeout_s", FIELD(distributed.timeout_s), 1, 86400,
                  "under torchrun: the longest any collective may wait; then every rank exits naming the rank that "
                  "died or hangs")),
        on_resume(range("distributed.bucket_mb", FIELD(distributed.bucket_mb), 0, 1 << 16,
                        "under torchrun: gradients are all-reduced in flat buckets of about this size", true)),
        on_resume(any(
            "distributed.overlap", FIELD(distributed.overlap),
            "under torchrun: start each bucket's all-reduce during backward, as soon as its gradients are complete")),
    };
  }();
  return keys;
}
#undef FIELD

const KeySpec* find_key(const std::string& path) {
  for (const auto& key : schema())
    if (key.path == path) return &key;
  return nullptr;
}

bool is_section(const std::string& path) {
  for (const auto& key : schema())
    if (key.path.rfind(path + ".", 0) == 0) return true;
  return false;
}

std::string type_name(const Field& field) {
  return std::visit(
      [](auto* p) -> std::string {
        using T = std::remove_pointer_t<decltype(p)>;
        if constexpr (std::is_same_v<T, int> || std::is_same_v<T, uint64_t>) return "an integer";
        else if constexpr (std::is_same_v<T, double>) return "a number";
        else if constexpr (std::is_same_v<T, bool>) return "true or false";
        else if constexpr (std::is_same_v<T, std::vector<std::string>>) return "a list of strings";
        else return "a string";
      },
      field);
}

std::string describe_allowed(const KeySpec& key) {
  if (!key.choices.empty()) {
    std::string list;
    for (const auto& c : key.choices) list += (list.empty() ? "" : "|") + c;
    return "one of " + list;
  }
  std::ostringstream out;
  out.precision(15);  // integer bounds such as 1048576 in full, not 1.04858e+06
  const bool has_min = std::isfinite(key.min), has_max = std::isfinite(key.max);
  if (has_min && has_max) out << (key.min_exclusive ? "(" : "[") << key.min << ", " << key.max << "]";
  else if (has_min) out << (key.min_exclusive ? "> " : ">= ") << key.min;
  return out.str();
}

bool is_device_name(const std::string& d) {
  if (d == "auto" || d == "cpu" || d == "cuda") return true;
  return d.rfind("cuda:", 0) == 0 && d.size() > 5 &&
         std::all_of(d.begin() + 5, d.end(), [](unsigned char ch) { return std::isdigit(ch); });
}

}  // namespace ssmax
