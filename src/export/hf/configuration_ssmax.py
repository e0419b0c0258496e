# Configurations of SSMax models exported by `ssmax-gpt export --format hf` (written into the model directory and
# loaded with trust_remote_code=True). Targets transformers 4.57.6.
#
# The Llama- and GPT-2-shaped models are the stock transformers configurations plus these keys:
#   attention_normalizer  "ssmax" or "ssmax_bias"; "softmax" only for a Llama with layers without RoPE (otherwise a
#                         softmax model is exported as plain Llama / GPT-2, no custom code)
#   ssmax_learn_s         false when s was frozen in training (model.attention.learn_s); fine-tuning keeps it frozen
#   no_rope_layers        (Llama) Llama 4's key: per layer 1 when it rotates q and k, 0 for a layer without position
#                         encoding (ssmax-gpt's model.position = none, or model.nope_every); absent: every layer rotates
#   logn_length           logn's L: c = max(1, ln n / ln L) (Qwen-1's log-n scaling)
#   attn_scale, floor_scale  llama4's a and F: c = 1 + a·ln(1 + floor(n / F)) (Llama 4's attention temperature)
#   scaled_layers         per layer 1 when logn or llama4 acts on it, 0 for plain softmax there
from transformers import GPT2Config, LlamaConfig

NORMALIZERS = ("softmax", "ssmax", "ssmax_bias", "logn", "llama4")


def _check(normalizer):
    if normalizer not in NORMALIZERS:
        raise ValueError(f"attention_normalizer {normalizer!r}: must be one of {NORMALIZERS}")


class SSMaxLlamaConfig(LlamaConfig):
    model_type = "ssmax_llama"

    def __init__(self, attention_normalizer="ssmax", ssmax_learn_s=True, no_rope_layers=None, logn_length=None,
                 attn_scale=None, floor_scale=None, scaled_layers=None, **kwargs):
        _check(attention_normalizer)
        self.attention_normalizer = attention_normalizer
        self.ssmax_learn_s = ssmax_learn_s
        self.no_rope_layers = no_rope_layers
        self.logn_length, self.attn_scale, self.floor_scale = logn_length, attn_scale, floor_scale
        self.scaled_layers = scaled_layers
        super().__init__(**kwargs)


class SSMaxGPT2Config(GPT2Config):
    model_type = "ssmax_gpt2"

    def __init__(self, attention_normalizer="ssmax", ssmax_learn_s=True, logn_length=None, attn_scale=None,
                 floor_scale=None, scaled_layers=None, **kwargs):
        _check(attention_normalizer)
        self.attention_normalizer = attention_normalizer
        self.ssmax_learn_s = ssmax_learn_s
        self.logn_length, self.attn_scale, self.floor_scale = logn_length, attn_scale, floor_scale
        self.scaled_layers = scaled_layers
        super().__init__(**kwargs)
