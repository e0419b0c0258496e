#pragma once
// `export --format hf`: a checkpoint as a Hugging Face model directory that transformers loads with
// AutoModelForCausalLM / AutoTokenizer.from_pretrained(DIR) — docs/huggingface.md. Torch-free header.
//
//   config.json, generation_config.json        export/hf_config.h
//   model.safetensors                          export/hf_weights.h (float32, or bfloat16 with dtype "bf16")
//   tokenizer.model, tokenizer_config.json,    the run's sentencepiece model, read by LlamaTokenizer(Fast)
//   special_tokens_map.json
//   modeling_ssmax.py, configuration_ssmax.py  SSMax models only (trust_remote_code=True): src/export/hf/*.py,
//                                              embedded in the binary at build time
#include <cstdint>
#include <string>

namespace ssmax {

struct HfExportOptions {
  std::string checkpoint;  // a checkpoint file or a run directory
  std::string out_dir;
  std::string dtype = "f32";  // f32 | bf16
  bool force = false;         // replace an earlier export in out_dir
};

struct HfExportResult {
  std::string checkpoint, out_dir, architecture;  // architecture: config.json's class name
  int64_t step = 0;
  size_t tensors = 0;
  bool custom_code = false;  // needs trust_remote_code=True
};

// The directory is written under <out_dir>.tmp-<pid> and renamed into place when complete: a failure leaves no
// half-written directory under out_dir's name. An existing out_dir must be empty, or (with force) an earlier
// export (it holds config.json): another directory is never removed. UsageError for a model transformers cannot
// express (naming the config key), a bad dtype or out_dir; RuntimeFailure for I/O.
HfExportResult export_hf(const HfExportOptions& options);

}  // namespace ssmax
