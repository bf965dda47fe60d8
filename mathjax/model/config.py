"""Model configuration for the LLaMA family, presets, and Hugging Face config round trips.

One frozen dataclass covers LLaMA-2 (MHA and GQA), Mistral, Llama-3 (with its
RoPE scaling), Qwen2 (q/k/v bias, optionally tied embeddings) and Qwen3 dense
(per-head q/k RMSNorm, explicit head_dim): they differ only in the fields
below, so one model implementation serves all of them.
"""

from __future__ import annotations

import dataclasses
import json
from typing import Any

_HF_ARCHITECTURES = {
    "llama": "LlamaForCausalLM",
    "mistral": "MistralForCausalLM",
    "qwen2": "Qwen2ForCausalLM",
    "qwen3": "Qwen3ForCausalLM",
}


@dataclasses.dataclass(frozen=True)
class ModelConfig:
    """Architecture and numerics of a LLaMA-family decoder.

    Numerics: parameters are stored in ``param_dtype`` (float32 by default, so
    optimizer updates do not lose precision); matmuls run in ``dtype`` (set
    ``bfloat16`` on accelerators); norms, softmax, RoPE and logits are float32.
    """

    vocab_size: int = 32000
    hidden_size: int = 4096
    intermediate_size: int = 11008
    num_layers: int = 32
    num_heads: int = 32
    num_kv_heads: int = 32
    head_dim: int | None = None  # None -> hidden_size // num_heads
    rope_theta: float = 10000.0
    rope_scaling: dict | None = None  # HF style: {"rope_type": "llama3"|"linear", "factor": ...}
    rms_norm_eps: float = 1e-5
    max_position_embeddings: int = 4096
    tie_word_embeddings: bool = False
    attention_bias: bool = False  # bias on q/k/v projections (Qwen2; LLaMA attention_bias=True)
    attention_out_bias: bool = False  # bias on o_proj (LLaMA/Qwen3 attention_bias=True only)
    qk_norm: bool = False  # per-head RMSNorm on q and k after projection, before RoPE (Qwen3)
    sliding_window: int | None = None  # Mistral; None = full causal attention
    model_type: str = "llama"
    bos_token_id: int | None = 1
    eos_token_id: int | list[int] | None = 2
    pad_token_id: int | None = None
    initializer_range: float = 0.02
    # Numerics and execution (not part of the HF architecture).
    dtype: str = "float32"
    param_dtype: str = "float32"
    remat_policy: str = "none"  # none | full | dots | dots_no_batch | save_qkv_proj
    attention_impl: str = "auto"  # auto | xla | blockwise | cudnn | splash

    def __post_init__(self):
        if self.num_heads % self.num_kv_heads:
            raise ValueError(
                f"num_heads={self.num_heads} is not a multiple of num_kv_heads={self.num_kv_heads}"
            )
        if self.model_type not in _HF_ARCHITECTURES:
            raise ValueError(f"unknown model_type {self.model_type!r}; known: {sorted(_HF_ARCHITECTURES)}")
        if self.rope_scaling is not None:
            kind = self.rope_scaling.get("rope_type", self.rope_scaling.get("type"))
            if kind not in ("llama3", "linear", "default"):
                raise ValueError(f"unsupported rope_scaling type {kind!r} (supported: llama3, linear)")

    def __hash__(self) -> int:  # rope_scaling is a dict; hash the canonical JSON instead
        return hash(self.to_json())

    @property
    def resolved_head_dim(self) -> int:
        return self.head_dim if self.head_dim is not None else self.hidden_size // self.num_heads

    def replace(self, **changes: Any) -> "ModelConfig":
        return dataclasses.replace(self, **changes)

    def num_params(self) -> int:
        """Parameter count (embeddings included)."""
        d, hd = self.hidden_size, self.resolved_head_dim
        attn = d * hd * (self.num_heads * 2 + self.num_kv_heads * 2)
        if self.attention_bias:
            attn += hd * (self.num_heads + 2 * self.num_kv_heads)
        if self.attention_out_bias:
            attn += d
        if self.qk_norm:
            attn += 2 * hd
        mlp = 3 * d * self.intermediate_size
        per_layer = attn + mlp + 2 * d
        head = 0 if self.tie_word_embeddings else d * self.vocab_size
        return self.vocab_size * d + self.num_layers * per_layer + d + head

    def flops_per_token(self, seq_len: int) -> float:
        """Training FLOPs per token (forward + backward = 3x forward), attention included."""
        d, hd = self.hidden_size, self.resolved_head_dim
        # The input embedding is a lookup, not a matmul (a tied one still serves
        # once as the output projection); norms are elementwise.
        matmul_params = self.num_params() - (self.num_layers * 2 + 1) * d
        if self.qk_norm:
            matmul_params -= self.num_layers * 2 * hd
        if not self.tie_word_embeddings:
            matmul_params -= self.vocab_size * d
        # Causal attention: q.k and p.v, each 2*seq*hd per head, halved by causality.
        attn = self.num_layers * 2 * 2 * self.num_heads * hd * seq_len / 2
        return 3.0 * (2.0 * matmul_params + attn)

    # ----- Hugging Face config.json -----

    def to_hf_dict(self) -> dict:
        """A ``config.json`` dict that ``transformers`` and vLLM load unchanged."""
        out = {
            "architectures": [_HF_ARCHITECTURES[self.model_type]],
            "model_type": self.model_type,
            "vocab_size": self.vocab_size,
            "hidden_size": self.hidden_size,
            "intermediate_size": self.intermediate_size,
            "num_hidden_layers": self.num_layers,
            "num_attention_heads": self.num_heads,
            "num_key_value_heads": self.num_kv_heads,
            "head_dim": self.resolved_head_dim,
            "hidden_act": "silu",
            "max_position_embeddings": self.max_position_embeddings,
            "rms_norm_eps": self.rms_norm_eps,
            # Old-style keys: read by vLLM and by every transformers release (v5
            # converts them into `rope_parameters` on load).
            "rope_theta": self.rope_theta,
            "rope_scaling": dict(self.rope_scaling) if self.rope_scaling else None,
            "tie_word_embeddings": self.tie_word_embeddings,
            "initializer_range": self.initializer_range,
            "bos_token_id": self.bos_token_id,
            "eos_token_id": self.eos_token_id,
            "pad_token_id": self.pad_token_id,
            "use_cache": True,
            "torch_dtype": "float32",
        }
        if self.qk_norm != (self.model_type == "qwen3"):
            raise ValueError(f"qk_norm={self.qk_norm} has no Hugging Face {self.model_type!r} architecture "
                             "(q/k norms are Qwen3's, and Qwen3 always has them)")
        if self.model_type in ("llama", "qwen3"):
            if self.attention_bias != self.attention_out_bias:
                raise ValueError(f"{self.model_type}'s attention_bias covers q/k/v and o_proj together")
            out["attention_bias"] = self.attention_bias
        if self.model_type == "llama":
            out["mlp_bias"] = False
        if self.model_type == "mistral":
            out["sliding_window"] = self.sliding_window
        if self.model_type == "qwen2":
            if self.attention_out_bias:
                raise ValueError("Qwen2 has no o_proj bias")
            out["use_sliding_window"] = False
            out["sliding_window"] = None
        if self.model_type == "qwen3":
            out["use_sliding_window"] = False
            out["sliding_window"] = None
            out["max_window_layers"] = self.num_layers
        return out

    @classmethod
    def from_hf_dict(cls, hf: dict, source: str = "config.json", **overrides: Any) -> "ModelConfig":
        """Builds a config from a Hugging Face ``config.json`` dict.

        Accepts both the old (``rope_theta`` + ``rope_scaling``) and the
        transformers-v5 (``rope_parameters``) spellings.
        """
        model_type = hf.get("model_type")
        if model_type not in _HF_ARCHITECTURES:
            raise ValueError(
                f"{source}: unsupported model_type {model_type!r}; supported: {sorted(_HF_ARCHITECTURES)}"
            )
        if hf.get("hidden_act", "silu") not in ("silu", "swish"):
            raise ValueError(f"{source}: unsupported hidden_act {hf.get('hidden_act')!r}")
        if hf.get("mlp_bias"):
            raise ValueError(f"{source}: mlp_bias=True is not supported")
        rope_params = dict(hf.get("rope_parameters") or {})
        rope_theta = float(hf.get("rope_theta", rope_params.pop("rope_theta", 10000.0)))
        rope_params.pop("rope_theta", None)
        scaling = hf.get("rope_scaling") or rope_params or None
        if scaling is not None:
            scaling = dict(scaling)
            kind = scaling.get("rope_type", scaling.get("type", "default"))
            scaling = None if kind == "default" else {**scaling, "rope_type": kind}
            if scaling is not None:
                scaling.pop("type", None)
        attention_bias = bool(hf.get("attention_bias", model_type == "qwen2"))
        # LLaMA's and Qwen3's attention_bias also put a bias on o_proj; Qwen2's q/k/v bias does not.
        attention_out_bias = attention_bias and model_type != "qwen2"
        sliding = hf.get("sliding_window") if model_type == "mistral" else None
        if model_type in ("qwen2", "qwen3") and (
            hf.get("use_sliding_window") or "sliding_attention" in (hf.get("layer_types") or ())
        ):
            raise ValueError(f"{source}: {model_type} sliding-window layers (use_sliding_window=True) are not supported")
        num_heads = int(hf["num_attention_heads"])
        try:
            cfg = cls(
                vocab_size=int(hf["vocab_size"]),
                hidden_size=int(hf["hidden_size"]),
                intermediate_size=int(hf["intermediate_size"]),
                num_layers=int(hf["num_hidden_layers"]),
                num_heads=num_heads,
                num_kv_heads=int(hf.get("num_key_value_heads") or num_heads),
                # Qwen3Config's default head_dim is 128, whatever hidden/heads is.
                head_dim=hf.get("head_dim", 128 if model_type == "qwen3" else None),
                rope_theta=rope_theta,
                rope_scaling=scaling,
                rms_norm_eps=float(hf.get("rms_norm_eps", 1e-6)),
                max_position_embeddings=int(hf.get("max_position_embeddings", 4096)),
                tie_word_embeddings=bool(hf.get("tie_word_embeddings", False)),
                attention_bias=attention_bias,
                attention_out_bias=attention_out_bias,
                qk_norm=model_type == "qwen3",
                sliding_window=sliding,
                model_type=model_type,
                bos_token_id=hf.get("bos_token_id"),
                eos_token_id=hf.get("eos_token_id"),
                pad_token_id=hf.get("pad_token_id"),
                initializer_range=float(hf.get("initializer_range", 0.02)),
            )
        except KeyError as e:
            raise ValueError(f"{source}: missing key {e.args[0]!r}") from None
        if cfg.head_dim == cfg.hidden_size // cfg.num_heads:
            cfg = cfg.replace(head_dim=None)
        return cfg.replace(**overrides)

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, source: str = "mathjax_config.json") -> "ModelConfig":
        data = json.loads(text)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"{source}: unknown config keys {sorted(unknown)}")
        return cls(**data)


def _llama2(**kw: Any) -> ModelConfig:
    return ModelConfig(vocab_size=32000, rms_norm_eps=1e-5, max_position_embeddings=4096, **kw)


def _qwen3(**kw: Any) -> ModelConfig:
    # head_dim is 128 at every size; spelled out only where it differs from hidden/heads,
    # as from_hf_dict does, so that a preset equals its own config.json round trip.
    head_dim = 128 if kw["hidden_size"] // kw["num_heads"] != 128 else None
    return ModelConfig(
        model_type="qwen3", vocab_size=151936, head_dim=head_dim, rope_theta=1000000.0, rms_norm_eps=1e-6,
        max_position_embeddings=40960, qk_norm=True, bos_token_id=151643, eos_token_id=151645, **kw,
    )


PRESETS: dict[str, ModelConfig] = {
    "llama2_7b": _llama2(hidden_size=4096, intermediate_size=11008, num_layers=32, num_heads=32, num_kv_heads=32),
    "llama2_13b": _llama2(hidden_size=5120, intermediate_size=13824, num_layers=40, num_heads=40, num_kv_heads=40),
    "llama2_70b": _llama2(hidden_size=8192, intermediate_size=28672, num_layers=80, num_heads=64, num_kv_heads=8),
    "mistral_7b": ModelConfig(
        model_type="mistral", vocab_size=32000, hidden_size=4096, intermediate_size=14336, num_layers=32,
        num_heads=32, num_kv_heads=8, rms_norm_eps=1e-5, max_position_embeddings=32768,
        sliding_window=4096, rope_theta=10000.0,
    ),
    "llama3_8b": ModelConfig(
        vocab_size=128256, hidden_size=4096, intermediate_size=14336, num_layers=32, num_heads=32,
        num_kv_heads=8, rope_theta=500000.0, rms_norm_eps=1e-5, max_position_embeddings=131072,
        rope_scaling={"rope_type": "llama3", "factor": 8.0, "low_freq_factor": 1.0,
                      "high_freq_factor": 4.0, "original_max_position_embeddings": 8192},
        bos_token_id=128000, eos_token_id=128001,
    ),
    "qwen2_7b": ModelConfig(
        model_type="qwen2", vocab_size=152064, hidden_size=3584, intermediate_size=18944, num_layers=28,
        num_heads=28, num_kv_heads=4, rope_theta=1000000.0, rms_norm_eps=1e-6,
        max_position_embeddings=32768, attention_bias=True, bos_token_id=None, eos_token_id=151643,
    ),
    # Qwen2.5-Math-1.5B (the base most open R1-style RL recipes start from).
    "qwen2_5_math_1_5b": ModelConfig(
        model_type="qwen2", vocab_size=151936, hidden_size=1536, intermediate_size=8960, num_layers=28,
        num_heads=12, num_kv_heads=2, rope_theta=10000.0, rms_norm_eps=1e-6, max_position_embeddings=4096,
        attention_bias=True, tie_word_embeddings=True, bos_token_id=151643, eos_token_id=151643,
    ),
    # Qwen3 dense (the hybrid-thinking releases; eos is <|im_end|>): q/k RMSNorm, head_dim 128
    # whatever the width, no q/k/v bias, embeddings tied up to 4B.
    "qwen3_0_6b": _qwen3(hidden_size=1024, intermediate_size=3072, num_layers=28, num_heads=16, num_kv_heads=8,
                         tie_word_embeddings=True),
    "qwen3_1_7b": _qwen3(hidden_size=2048, intermediate_size=6144, num_layers=28, num_heads=16, num_kv_heads=8,
                         tie_word_embeddings=True),
    "qwen3_4b": _qwen3(hidden_size=2560, intermediate_size=9728, num_layers=36, num_heads=32, num_kv_heads=8,
                       tie_word_embeddings=True),
    "qwen3_8b": _qwen3(hidden_size=4096, intermediate_size=12288, num_layers=36, num_heads=32, num_kv_heads=8,
                       tie_word_embeddings=False),
    # The embedded default: trains on a laptop CPU in minutes.
    "tiny": ModelConfig(
        vocab_size=1024, hidden_size=256, intermediate_size=704, num_layers=4, num_heads=8,
        num_kv_heads=4, rms_norm_eps=1e-5, max_position_embeddings=1024,
    ),
    # The benchmarks' model: 58M parameters with the LLaMA-2 vocabulary.
    "bench_58m": _llama2(hidden_size=512, intermediate_size=1408, num_layers=8, num_heads=8, num_kv_heads=8),
}


def get_preset(name: str, **overrides: Any) -> ModelConfig:
    """A preset by name, with optional field overrides."""
    if name not in PRESETS:
        raise ValueError(f"unknown model preset {name!r}; known: {sorted(PRESETS)}")
    return PRESETS[name].replace(**overrides)


def read_hf_config(model_dir: str) -> ModelConfig:
    """Reads ``model_dir/config.json`` into a ModelConfig."""
    from mathjax.io import paths  # local or gs://

    path = paths.join(model_dir, "config.json")
    if not paths.exists(path):
        raise FileNotFoundError(f"{path}: not found (expected a Hugging Face model directory)")
    try:
        hf = json.loads(paths.read_text(path))
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: invalid JSON: {e}") from None
    return ModelConfig.from_hf_dict(hf, source=path)
