// export --format hf: which models map to Llama / GPT-2 and which are refused, the tensor names and layouts, and
// the directory's publication (complete or absent, never over a user's files). transformers itself reads the
// result in tests/cli/hf_export.sh. And the import's side of the Llama layout (train --init-from: tensor shapes from
// config.json, a misshapen part named); tests/cli/hf_import.sh and hf_import_hostile.sh run the command.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>

#include "export/hf_config.h"
#include "export/hf_export.h"
#include "export/hf_import.h"
#include "export/hf_import_check.h"
#include "export/hf_import_config.h"
#include "export/hf_weights.h"
#include "export/safetensors.h"
#include "test_util.h"
#include "train/checkpoint.h"
#include "util/errors.h"
#include "util/files.h"

namespace ssmax {
namespace {
namespace fs = std::filesystem;
using json = nlohmann::json;

ModelConfig llama_shape() {
  ModelConfig m;
  m.n_layer = 2;
  m.n_head = 2;
  m.n_embd = 8;
  m.block_size = 16;
  m.position = "rope";
  m.norm = "rmsnorm";
  m.mlp = "swiglu";
  m.tie_embeddings = false;
  return m;
}

ModelConfig gpt2_shape() {
  ModelConfig m = llama_shape();
  m.position = "learned";
  m.norm = "layernorm";
  m.mlp = "gelu";
  m.tie_embeddings = true;
  return m;
}

// The UsageError message of hf_architecture, or "" when the model is exportable.
std::string refusal(const ModelConfig& m) {
  try {
    hf_architecture(m, "ckpt.pt");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

TEST(HfExport, ShapesMapToLlamaOrGpt2AndOthersAreRefusedByKey) {
  EXPECT_EQ(hf_architecture(llama_shape(), "c"), HfArchitecture::Llama);
  EXPECT_EQ(hf_architecture(gpt2_shape(), "c"), HfArchitecture::GPT2);
  auto m = llama_shape();
  m.bias = true;  // attention_bias / mlp_bias
  m.tie_embeddings = true;
  EXPECT_EQ(hf_architecture(m, "c"), HfArchitecture::Llama);
  m = gpt2_shape();
  m.bias = false;  // zero biases
  EXPECT_EQ(hf_architecture(m, "c"), HfArchitecture::GPT2);

  m = llama_shape();
  m.norm = "layernorm";
  EXPECT_NE(refusal(m).find("ckpt.pt: model.norm=layernorm with model.position=rope"), std::string::npos) << refusal(m);
  m = gpt2_shape();
  m.mlp = "swiglu";
  EXPECT_NE(refusal(m).find("model.mlp=swiglu with model.position=learned"), std::string::npos) << refusal(m);
  m = gpt2_shape();
  m.tie_embeddings = false;
  EXPECT_NE(refusal(m).find("model.tie_embeddings=false"), std::string::npos) << refusal(m);
  EXPECT_NE(refusal(m).find("exportable: Llama-shaped"), std::string::npos);
  EXPECT_EQ(refusal(m).find('\n'), std::string::npos);
  m = gpt2_shape();
  m.n_kv_head = 1;  // grouped-query attention: Llama has it, GPT-2 not
  EXPECT_NE(refusal(m).find("model.n_kv_head=1 with model.position=learned"), std::string::npos) << refusal(m);
  m = llama_shape();
  m.n_kv_head = 1;
  EXPECT_EQ(hf_architecture(m, "c"), HfArchitecture::Llama);
  EXPECT_THROW(hf_torch_dtype("f16"), UsageError);
  EXPECT_EQ(hf_torch_dtype("bf16"), "bfloat16");
}

// Grouped-query attention: c_attn's k and v rows are n_kv_head heads each, and config.json says so.
TEST(HfExport, GroupedQueryAttentionSplitsKeyValueRowsAndWritesTheirHeads) {
  auto m = llama_shape();
  m.n_kv_head = 1;
  torch::manual_seed(4);
  GPT model(GPTOptions{m, 30});
  const auto t = hf_state_dict(model, HfArchitecture::Llama);
  const auto& w = model->h[0]->as<Block>()->attn->c_attn->weight;
  const int64_t C = m.n_embd, kv = C / m.n_head;
  ASSERT_EQ(w.size(0), C + 2 * kv);
  EXPECT_TRUE(torch::equal(t.at("model.layers.0.self_attn.q_proj.weight"), w.slice(0, 0, C)));
  EXPECT_TRUE(torch::equal(t.at("model.layers.0.self_attn.k_proj.weight"), w.slice(0, C, C + kv)));
  EXPECT_TRUE(torch::equal(t.at("model.layers.0.self_attn.v_proj.weight"), w.slice(0, C + kv, C + 2 * kv)));
  const auto config = hf_model_config(m, HfArchitecture::Llama, 30, "float32", SpecialTokens{});
  EXPECT_EQ(config["num_key_value_heads"], 1);
  EXPECT_EQ(config["num_attention_heads"], m.n_head);
}

TEST(HfExport, ConfigNamesTheStockClassForSoftmaxAndTheCustomCodeForSSMax) {
  SpecialTokens specials;
  specials.unk = {0, "<unk>"};
  specials.eos = {2, "</s>"};  // no BOS: null ids, and no such token for transformers to add
  auto m = llama_shape();
  json c = hf_model_config(m, HfArchitecture::Llama, 30, "float32", specials);
  EXPECT_EQ(c["architectures"][0], "LlamaForCausalLM");
  EXPECT_TRUE(c["bos_token_id"].is_null());
  EXPECT_EQ(c["eos_token_id"], 2);
  EXPECT_EQ(c["model_type"], "llama");
  EXPECT_FALSE(c.contains("auto_map"));
  EXPECT_EQ(c["intermediate_size"], m.resolved_mlp_hidden());
  EXPECT_EQ(c["tie_word_embeddings"], false);
  EXPECT_EQ(c["rope_theta"], m.rope_theta);

  m.attention.normalizer = Normalizer::SSMaxBias;
  m.attention.learn_s = false;
  c = hf_model_config(m, HfArchitecture::Llama, 30, "bfloat16", specials);
  EXPECT_EQ(c["architectures"][0], "SSMaxLlamaForCausalLM");
  EXPECT_EQ(c["auto_map"]["AutoModelForCausalLM"], "modeling_ssmax.SSMaxLlamaForCausalLM");
  EXPECT_EQ(c["auto_map"]["AutoConfig"], "configuration_ssmax.SSMaxLlamaConfig");
  EXPECT_EQ(c["attention_normalizer"], "ssmax_bias");
  EXPECT_EQ(c["ssmax_learn_s"], false);
  EXPECT_EQ(c["torch_dtype"], "bfloat16");

  auto g = gpt2_shape();
  g.attention.normalizer = Normalizer::SSMax;
  c = hf_model_config(g, HfArchitecture::GPT2, 30, "float32", specials);
  EXPECT_EQ(c["architectures"][0], "SSMaxGPT2LMHeadModel");
  EXPECT_EQ(c["activation_function"], "gelu_new");
  EXPECT_EQ(c["n_positions"], 16);
  EXPECT_EQ(c["n_inner"], 32);
  EXPECT_TRUE(hf_tokenizer_config(g, specials)["bos_token"].is_null());
  EXPECT_EQ(hf_tokenizer_config(g, specials)["model_max_length"], 16);
  EXPECT_EQ(hf_special_tokens_map(specials), (json{{"eos_token", "</s>"}, {"unk_token", "<unk>"}}));
}

// Layers without RoPE need the modeling code even for softmax (stock Llama rotates every layer); no_rope_layers says
// which, and the import reads the pattern back into model.position / model.nope_every.
TEST(HfExport, LayersWithoutRopeAreListedAndImportedBack) {
  auto m = llama_shape();
  m.n_layer = 4;
  m.nope_every = 2;
  json c = hf_model_config(m, HfArchitecture::Llama, 30, "float32", SpecialTokens{});
  EXPECT_EQ(c["architectures"][0], "SSMaxLlamaForCausalLM");
  EXPECT_EQ(c["attention_normalizer"], "softmax");
  EXPECT_EQ(c["no_rope_layers"], (json{1, 0, 1, 0}));
  m.position = "none";
  m.nope_every = 0;
  EXPECT_EQ(hf_architecture(m, "ckpt"), HfArchitecture::Llama);
  c = hf_model_config(m, HfArchitecture::Llama, 30, "float32", SpecialTokens{});
  EXPECT_EQ(c["no_rope_layers"], (json{0, 0, 0, 0}));
  m.position = "rope";
  EXPECT_FALSE(hf_model_config(m, HfArchitecture::Llama, 30, "float32", SpecialTokens{}).contains("no_rope_layers"));

  const std::string dir = test_dir("hf-import-nope");
  auto imported = [&](const json& layers) {
    json hf = {{"architectures", {"SSMaxLlamaForCausalLM"}},
               {"attention_normalizer", "softmax"},
               {"num_hidden_layers", 4},
               {"num_attention_heads", 2},
               {"hidden_size", 16},
               {"intermediate_size", 32},
               {"max_position_embeddings", 16},
               {"rms_norm_eps", 1e-5},
               {"no_rope_layers", layers}};
    write_file_atomic(dir + "/config.json", hf.dump());
    write_file_atomic(dir + "/tokenizer.model", "placeholder");
    json root = {{"init_from", dir}};
    apply_hf_init(root, "test");
    return root["model"];
  };
  EXPECT_EQ(imported(json{1, 0, 1, 0})["nope_every"], 2);
  EXPECT_EQ(imported(json{1, 0, 1, 0})["position"], "rope");
  EXPECT_EQ(imported(json{0, 0, 0, 0})["position"], "none");
  EXPECT_FALSE(imported(json{1, 1, 1, 1}).contains("nope_every"));
  for (const json& odd : {json{0, 1, 1, 1}, json{1, 0, 0, 1}, json{1, 0}})
    EXPECT_THROW(imported(odd), UsageError) << odd.dump();
}

TEST(HfExport, LlamaTensorsAreOursSplitAndRenamed) {
  auto m = llama_shape();
  m.attention.normalizer = Normalizer::SSMaxBias;
  torch::manual_seed(3);
  GPT model(GPTOptions{m, 30});
  const auto t = hf_state_dict(model, HfArchitecture::Llama);
  const auto& attn = model->h[1]->as<Block>()->attn;
  const auto& w = attn->c_attn->weight;
  EXPECT_TRUE(torch::equal(t.at("model.layers.1.self_attn.q_proj.weight"), w.slice(0, 0, 8)));
  EXPECT_TRUE(torch::equal(t.at("model.layers.1.self_attn.k_proj.weight"), w.slice(0, 8, 16)));
  EXPECT_TRUE(torch::equal(t.at("model.layers.1.self_attn.v_proj.weight"), w.slice(0, 16, 24)));
  EXPECT_TRUE(torch::equal(t.at("model.layers.1.self_attn.normalizer.b"), attn->normalizer->b));
  EXPECT_TRUE(torch::equal(t.at("model.layers.0.mlp.gate_proj.weight"), model->h[0]->as<Block>()->mlp->c_gate->weight));
  EXPECT_TRUE(torch::equal(t.at("lm_head.weight"), model->lm_head->weight.narrow(0, 0, 30)));  // unpadded rows
  // Per layer: 2 norms, q/k/v/o, gate/up/down, s, b; plus embedding, final norm, head.
  EXPECT_EQ(t.size(), 2u * 11u + 3u);
  for (const auto& [name, tensor] : t) EXPECT_EQ(tensor.scalar_type(), torch::kFloat32) << name;
  EXPECT_EQ(hf_state_dict(model, HfArchitecture::Llama, torch::kBFloat16).at("model.norm.weight").scalar_type(),
            torch::kBFloat16);
}

TEST(HfExport, Gpt2WeightsAreTransposedAndBiasFreeModelsGetZeroBiases) {
  auto m = gpt2_shape();
  torch::manual_seed(4);
  GPT model(GPTOptions{m, 30});
  const auto t = hf_state_dict(model, HfArchitecture::GPT2);
  const auto& block = model->h[0]->as<Block>();
  EXPECT_TRUE(torch::equal(t.at("transformer.h.0.attn.c_attn.weight"), block->attn->c_attn->weight.t()));
  EXPECT_TRUE(torch::equal(t.at("transformer.h.0.mlp.c_proj.weight"), block->mlp->c_proj->weight.t()));
  EXPECT_TRUE(torch::equal(t.at("transformer.wpe.weight"), model->wpe->weight));
  EXPECT_EQ(t.at("transformer.h.0.attn.c_attn.bias").sizes(), (std::vector<int64_t>{24}));
  EXPECT_EQ(t.at("transformer.h.0.mlp.c_fc.bias").sizes(), (std::vector<int64_t>{32}));
  EXPECT_EQ(t.at("transformer.ln_f.bias").abs().sum().item<float>(), 0.0f);
  EXPECT_FALSE(t.count("lm_head.weight"));
  // Per layer: ln_1, ln_2, c_attn, c_proj, c_fc, mlp c_proj, each weight + bias; plus wte, wpe, ln_f (2).
  EXPECT_EQ(t.size(), 2u * 12u + 4u);
}

// A run directory with one checkpoint of `m` whose dataset holds a tokenizer.model (sentencepiece's default
// special tokens: unk 0, bos 1, eos 2).
std::string make_run(const std::string& dir, const ModelConfig& m) {
  Config config;
  config.model = m;
  torch::manual_seed(1);
  GPT model(GPTOptions{m, 300});
  torch::optim::AdamW optimizer(model->parameters());
  CheckpointMeta meta;
  meta.step = 3;
  meta.vocab_size = 300;
  meta.config = config_to_json(config);
  meta.dataset_dir = dir + "/data";
  fs::create_directories(dir + "/data");
  train_tokenizer({write_tiny_corpus(dir), dir + "/data/tokenizer", 300, "bpe"});
  fs::create_directories(dir + "/run/checkpoints");
  { std::ofstream(dir + "/run/config.json") << meta.config.dump(); }
  save_checkpoint(checkpoint_path(dir + "/run", 3), model, optimizer, meta);
  return dir + "/run";
}

TEST(HfExport, DirectoryIsPublishedWholeAndNeverOverAUsersFiles) {
  const std::string dir = test_dir("hf-export");
  auto m = llama_shape();
  m.attention.normalizer = Normalizer::SSMax;
  const std::string run = make_run(dir, m);
  const std::string out = dir + "/hf";
  const auto result = export_hf({run, out, "f32", false});
  EXPECT_TRUE(result.custom_code);
  EXPECT_EQ(result.architecture, "SSMaxLlamaForCausalLM");
  for (const char* f :
       {"config.json", "model.safetensors", "generation_config.json", "tokenizer.model", "tokenizer_config.json",
        "special_tokens_map.json", "modeling_ssmax.py", "configuration_ssmax.py"})
    EXPECT_TRUE(fs::is_regular_file(out + "/" + f)) << f;
  EXPECT_EQ(read_file(out + "/tokenizer.model"), read_file(dir + "/data/tokenizer.model"));
  // The embedded modeling code is the repository's file.
  EXPECT_EQ(read_file(out + "/modeling_ssmax.py"),
            read_file((fs::path(SSMAX_SOURCE_DIR) / "src/export/hf/modeling_ssmax.py").string()));
  const json tokenizer = json::parse(read_file(out + "/tokenizer_config.json"));
  EXPECT_EQ(tokenizer["add_bos_token"], false);
  EXPECT_EQ(tokenizer["bos_token"], "<s>");
  EXPECT_EQ(tokenizer["unk_token"], "<unk>");
  const json model_config = json::parse(read_file(out + "/config.json"));
  EXPECT_EQ(model_config["eos_token_id"], 2);
  EXPECT_EQ(model_config["vocab_size"], 300);

  EXPECT_THROW(export_hf({run, out, "f32", false}), UsageError);  // occupied
  EXPECT_NO_THROW(export_hf({run, out, "bf16", true}));           // --force over an earlier export
  EXPECT_EQ(json::parse(read_file(out + "/config.json"))["torch_dtype"], "bfloat16");
  fs::create_directories(dir + "/mine");
  write_file_atomic(dir + "/mine/notes.txt", "keep");
  EXPECT_THROW(export_hf({run, dir + "/mine", "f32", true}), UsageError);
  EXPECT_EQ(read_file(dir + "/mine/notes.txt"), "keep");
  fs::create_directories(dir + "/empty");
  EXPECT_EQ(export_hf({run, dir + "/empty/", "f32", false}).out_dir, dir + "/empty");  // a trailing slash

  // A refused model and a missing tokenizer leave nothing behind.
  auto refused = gpt2_shape();
  refused.tie_embeddings = false;
  const std::string other = make_run(dir + "/other", refused);
  EXPECT_THROW(export_hf({other, dir + "/refused", "f32", false}), UsageError);
  fs::remove(dir + "/data/tokenizer.model");
  EXPECT_THROW(export_hf({run, dir + "/no-tokenizer", "f32", false}), RuntimeFailure);
  for (const auto& entry : fs::directory_iterator(dir))
    EXPECT_EQ(entry.path().filename().string().find(".tmp-"), std::string::npos) << entry.path();
  EXPECT_FALSE(fs::exists(dir + "/refused"));
  EXPECT_FALSE(fs::exists(dir + "/no-tokenizer"));
}

// The import (train --init-from) reads what the export writes. The shapes config.json gives are the export's: for
// every tensor, and nothing the export writes is missing from them.
TEST(HfImport, ShapesFromConfigAreTheShapesOfTheExport) {
  auto gqa = llama_shape();
  gqa.n_kv_head = 1;
  gqa.bias = true;
  gqa.attention.normalizer = Normalizer::SSMaxBias;
  for (const auto& m : {llama_shape(), gqa}) {
    GPT model(GPTOptions{m, 30});
    const auto shapes = hf_llama_shapes(m, 30);
    for (const auto& [name, tensor] : hf_state_dict(model, HfArchitecture::Llama)) {
      ASSERT_TRUE(shapes.count(name)) << name;
      EXPECT_EQ(shapes.at(name).dims, tensor.sizes().vec()) << name;
    }
  }
}

// q, k and v are stacked into one parameter: a part of another shape is named, not left to fail inside torch::cat.
TEST(HfImport, EachPartIsCheckedBeforeTheyAreStacked) {
  const std::string dir = test_dir("hf-import-parts");
  auto m = llama_shape();
  m.n_kv_head = 1;
  torch::manual_seed(5);
  GPT exported(GPTOptions{m, 30});
  auto tensors = hf_state_dict(exported, HfArchitecture::Llama);
  write_safetensors(dir + "/model.safetensors", tensors, {});
  GPT imported(GPTOptions{m, 30});
  load_hf_weights(dir, imported);
  EXPECT_TRUE(torch::equal(imported->h[1]->as<Block>()->attn->c_attn->weight,
                           exported->h[1]->as<Block>()->attn->c_attn->weight));

  tensors["model.layers.1.self_attn.k_proj.weight"] = torch::zeros({8, 8});  // one key/value head is [4, 8]
  write_safetensors(dir + "/model.safetensors", tensors, {});
  EXPECT_EQ(error_of([&] { load_hf_weights(dir, imported); }),
            dir + "/model.safetensors: model.layers.1.self_attn.k_proj.weight is [8, 8] but " + dir +
                "/config.json makes it [4, 8] (num_key_value_heads·head_dim, hidden_size)");
}

}  // namespace
}  // namespace ssmax
