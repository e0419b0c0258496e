# SSMax attention for transformers' Llama and GPT-2 models: the modeling code that `ssmax-gpt export --format hf`
# writes into a model directory (loaded with trust_remote_code=True). Targets transformers 4.57.6.
#
# SSMax (ssmax-gpt's src/model/normalizer.h): the query at 0-based absolute position t, which sees n = t + 1 keys, is
# scaled per head h by
#     c[h, t] = s_h * ln(n)                      (ssmax)
#     c[h, t] = s_h * ln(n) + b_h                (ssmax_bias)
#     c[t]    = max(1, ln(n) / ln(L))            (logn: Qwen-1's log-n scaling, L = logn_length)
#     c[t]    = 1 + a * ln(1 + floor(n / F))     (llama4: Llama 4's temperature, a = attn_scale, F = floor_scale)
# (logn and llama4 on the layers config.scaled_layers marks, plain softmax on the others)
# before the usual softmax(q·kᵀ/√d). A factor that multiplies a whole row of logits equals one that multiplies the
# query, so everything else (RoPE, the attention kernels, the KV cache) is transformers' own code. RoPE is a rotation
# of each head's query, so scaling before or after it is the same.
#
# A Llama layer without position encoding (config.no_rope_layers[i] == 0: NoPE, or every k-th layer as Llama 4's
# interleaving) gets the identity rotation (cos 1, sin 0) in place of transformers' RoPE tables; the rest of the layer
# is transformers' own.
#
# How: the attention module keeps s (and b), one per head, as parameters (model.safetensors holds them as
# <attention>.s and <attention>.b). Its forward computes c from the absolute positions of the rows it is given —
# position_ids (Llama) or cache_position, never the row's index in this call, so decoding with a KV cache scales the
# new token by ln(its position + 1) — and hands c to the query projection, a subclass of transformers' own
# (nn.Linear for Llama's q_proj, Conv1D for GPT-2's fused c_attn) that multiplies its query heads by it. Parameter
# names stay those of the stock models.
import math

import torch
from torch import nn
from transformers import GPT2LMHeadModel, LlamaForCausalLM
from transformers.models.gpt2.modeling_gpt2 import GPT2Attention
from transformers.models.llama.modeling_llama import LlamaAttention
from transformers.pytorch_utils import Conv1D

from .configuration_ssmax import SSMaxGPT2Config, SSMaxLlamaConfig


class _SSMaxScale(nn.Module):
    """s (and b) of one attention layer, [num_heads] each, and the factor c for a batch of positions."""

    def __init__(self, config, num_heads, layer_idx):
        super().__init__()
        self.kind = config.attention_normalizer
        layers = getattr(config, "scaled_layers", None)
        if self.kind in ("logn", "llama4") and layers is not None and not layers[layer_idx]:
            self.kind = "softmax"  # a scaling on the layers without RoPE only: plain softmax here
        self.config = config
        learned = self.kind in ("ssmax", "ssmax_bias")
        self.s = nn.Parameter(torch.ones(num_heads), requires_grad=bool(config.ssmax_learn_s)) if learned else None
        self.b = nn.Parameter(torch.zeros(num_heads)) if self.kind == "ssmax_bias" else None

    def factor(self, positions):
        """positions: [B or 1, T] absolute 0-based positions → c [B or 1, T, H or 1, 1] in float32 (at least); None
        for softmax (nothing to scale)."""
        if self.kind == "softmax":
            return None
        dtype = torch.promote_types(self.s.dtype, torch.float32) if self.s is not None else torch.float32
        n = (positions.to(dtype) + 1).unsqueeze(-1)  # n = t + 1 keys seen by the row at t: [B or 1, T, 1]
        if self.kind == "logn":
            c = torch.clamp_min(torch.log(n) / math.log(self.config.logn_length), 1.0)
        elif self.kind == "llama4":
            c = 1.0 + self.config.attn_scale * torch.log1p(torch.floor(n / self.config.floor_scale))
        else:
            c = torch.log(n) * self.s.to(dtype)
            if self.b is not None:
                c = c + self.b.to(dtype)
        return c.unsqueeze(-1)


def _positions(position_ids, cache_position, hidden_states):
    if position_ids is not None:
        return position_ids
    if cache_position is not None:
        return cache_position.unsqueeze(0)
    # No position given (a plain forward of one batch from position 0).
    return torch.arange(hidden_states.shape[1], device=hidden_states.device).unsqueeze(0)


def _scale_heads(x, factor, head_dim):
    """x: [B, T, H·d] query projections; factor: [B or 1, T, H, 1], or None (unchanged)."""
    if factor is None:
        return x
    shape = x.shape
    return (x.view(*shape[:-1], -1, head_dim) * factor).to(x.dtype).view(shape)


class _ScaledQueryLinear(nn.Linear):
    """Llama's q_proj: the projection, then each head times the factor its attention layer set for this call."""

    head_dim = None
    factor = None

    def forward(self, x):
        return _scale_heads(super().forward(x), self.factor, self.head_dim)


class _ScaledQueryConv1D(Conv1D):
    """GPT-2's fused c_attn: [q | k | v]; only the q third is scaled."""

    head_dim = None
    factor = None

    def forward(self, x):
        qkv = super().forward(x)
        q, kv = qkv.split([self.nf // 3, 2 * self.nf // 3], dim=-1)
        return torch.cat([_scale_heads(q, self.factor, self.head_dim), kv], dim=-1)


class SSMaxLlamaAttention(LlamaAttention):
    def __init__(self, config, layer_idx):
        super().__init__(config, layer_idx)
        q = self.q_proj
        self.q_proj = _ScaledQueryLinear(q.in_features, q.out_features, bias=q.bias is not None)
        self.q_proj.head_dim = self.head_dim
        self.normalizer = _SSMaxScale(config, config.num_attention_heads, layer_idx)
        layers = getattr(config, "no_rope_layers", None)
        self.rope = layers is None or bool(layers[layer_idx])

    def forward(self, hidden_states, *args, position_ids=None, cache_position=None, **kwargs):
        positions = _positions(position_ids, cache_position, hidden_states)
        self.q_proj.factor = self.normalizer.factor(positions)
        if not self.rope:  # the identity rotation: cos 1, sin 0
            if "position_embeddings" in kwargs:
                cos, sin = kwargs["position_embeddings"]
                kwargs["position_embeddings"] = (torch.ones_like(cos), torch.zeros_like(sin))
            else:
                cos, sin = args[0]
                args = ((torch.ones_like(cos), torch.zeros_like(sin)),) + tuple(args[1:])
        try:
            return super().forward(hidden_states, *args, position_ids=position_ids, cache_position=cache_position,
                                   **kwargs)
        finally:
            self.q_proj.factor = None


class SSMaxGPT2Attention(GPT2Attention):
    def __init__(self, config, layer_idx):
        super().__init__(config, is_cross_attention=False, layer_idx=layer_idx)
        self.c_attn = _ScaledQueryConv1D(3 * self.embed_dim, self.embed_dim)
        self.c_attn.head_dim = self.head_dim
        self.normalizer = _SSMaxScale(config, self.num_heads, layer_idx)

    def forward(self, hidden_states, *args, cache_position=None, position_ids=None, **kwargs):
        positions = _positions(position_ids, cache_position, hidden_states)
        self.c_attn.factor = self.normalizer.factor(positions)
        try:
            return super().forward(hidden_states, *args, cache_position=cache_position, **kwargs)
        finally:
            self.c_attn.factor = None


class SSMaxLlamaForCausalLM(LlamaForCausalLM):
    config_class = SSMaxLlamaConfig

    def __init__(self, config):
        super().__init__(config)
        for i, layer in enumerate(self.model.layers):
            layer.self_attn = SSMaxLlamaAttention(config, i)
        self.post_init()


class SSMaxGPT2LMHeadModel(GPT2LMHeadModel):
    config_class = SSMaxGPT2Config

    def __init__(self, config):
        super().__init__(config)
        for i, block in enumerate(self.transformer.h):
            block.attn = SSMaxGPT2Attention(config, i)
        self.post_init()
