"""The LLaMA-family decoder (LLaMA-2/3, Mistral, Qwen2, Qwen3) in Flax Linen.

Why Linen and not NNX: every consumer of the model (the trainer's grads, the
sampler's jitted loop, orbax, the HF converter) wants parameters as a plain
pytree and the forward pass as a pure function of it. Linen's ``init/apply``
gives exactly that with no split/merge step, and its logical-partitioning boxes
carry the axis names that :mod:`mathjax.parallel.rules` maps onto the mesh.

Layers are Linen modules; the stack is composed functionally: parameters of
all layers are stacked on a leading ``layers`` axis and run with
``jax.lax.scan`` (one compiled layer, remat policy from the config) for
training and scoring. With a KV cache the layers run unrolled over per-layer
cache buffers so that decode updates them in place.
"""

from __future__ import annotations

from typing import Any, Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
from jax.ad_checkpoint import checkpoint_name

from mathjax.model import attention as attn_lib
from mathjax.model.config import ModelConfig
from mathjax.model.dense import dense
from mathjax.model.rope import apply_rope, inverse_frequencies, rope_angles
from mathjax.model.swiglu import swiglu_mlp
from mathjax.parallel.rules import active_mesh, constrain

Params = dict[str, Any]
Context = attn_lib.SegmentContext | attn_lib.CacheContext | attn_lib.SharedPrefixContext


def _normal(config: ModelConfig):
    return nn.initializers.normal(stddev=config.initializer_range)


def _param(module: nn.Module, name: str, init, shape: Sequence[int], names: Sequence[str | None]):
    dtype = jnp.dtype(module.config.param_dtype)
    return module.param(name, nn.with_logical_partitioning(init, tuple(names)), tuple(shape), dtype)


class RMSNorm(nn.Module):
    """RMSNorm computed in float32 (HF LlamaRMSNorm)."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x: jax.Array) -> jax.Array:
        # Normalizes the last axis: hidden states, or each head's vector for Qwen3's q/k norms.
        scale = _param(self, "scale", nn.initializers.ones, (x.shape[-1],), ("norm",))
        xf = x.astype(jnp.float32)
        normed = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + self.config.rms_norm_eps)
        return (scale.astype(jnp.float32) * normed).astype(jnp.dtype(self.config.dtype))


class Attention(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x, cos, sin, positions, ctx: Context, kv):
        cfg = self.config
        dtype = jnp.dtype(cfg.dtype)
        d, h, k, hd = cfg.hidden_size, cfg.num_heads, cfg.num_kv_heads, cfg.resolved_head_dim
        init = _normal(cfg)

        def project(name, heads, heads_axis):
            w = _param(self, name, init, (d, heads, hd), ("embed", heads_axis, "head_dim"))
            y = dense(x, w.reshape(d, heads * hd).astype(dtype)).reshape(*x.shape[:-1], heads, hd)
            if cfg.attention_bias:
                b = _param(self, name.replace("_proj", "_bias"), nn.initializers.zeros, (heads, hd), (heads_axis, "head_dim"))
                y = y + b.astype(dtype)
            # Named so that remat_policy=save_qkv_proj keeps these three projections
            # (before RoPE) instead of recomputing their matmuls in the backward pass.
            return checkpoint_name(y, name)

        q = project("q_proj", h, "heads")
        k_new = project("k_proj", k, "kv_heads")
        if cfg.qk_norm:
            # Qwen3: RMSNorm over each head's head_dim vector (one [head_dim] scale shared
            # by all heads), after the projection and before RoPE.
            q = RMSNorm(cfg, name="q_norm")(q)
            k_new = RMSNorm(cfg, name="k_norm")(k_new)
        q = apply_rope(q, cos, sin)
        k_new = apply_rope(k_new, cos, sin)
        v_new = project("v_proj", k, "kv_heads")
        q = constrain(q, ("batch", "length", "act_heads", None))
        window = cfg.sliding_window
        if isinstance(ctx, attn_lib.SegmentContext):
            out = attn_lib.segment_attention(q, k_new, v_new, ctx, positions, window, cfg.attention_impl)
        elif isinstance(ctx, attn_lib.CacheContext):
            out, kv = attn_lib.cached_attention(q, k_new, v_new, kv, ctx, positions, window)
        elif isinstance(ctx, attn_lib.SharedPrefixContext):
            out, kv = attn_lib.shared_prefix_attention(q, k_new, v_new, kv, ctx, positions, window)
        else:
            raise TypeError(f"unknown attention context {type(ctx).__name__}")
        wo = _param(self, "o_proj", init, (h, hd, d), ("heads", "head_dim", "embed"))
        out = dense(out.reshape(*out.shape[:-2], h * hd), wo.reshape(h * hd, d).astype(dtype))
        if cfg.attention_out_bias:
            out = out + _param(self, "o_bias", nn.initializers.zeros, (d,), ("norm",)).astype(dtype)
        return out, kv


class MLP(nn.Module):
    """SwiGLU: down(silu(gate(x)) * up(x))."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x):
        cfg = self.config
        dtype = jnp.dtype(cfg.dtype)
        init = _normal(cfg)
        d, f = cfg.hidden_size, cfg.intermediate_size
        gate = _param(self, "gate_proj", init, (d, f), ("embed", "mlp"))
        up = _param(self, "up_proj", init, (d, f), ("embed", "mlp"))
        down = _param(self, "down_proj", init, (f, d), ("mlp", "embed"))
        return swiglu_mlp(x.astype(dtype), gate, up, down, lambda h: constrain(h, ("batch", "length", "act_mlp")))


class DecoderLayer(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, x, cos, sin, positions, ctx: Context, kv=None):
        attn_out, kv = Attention(self.config, name="attn")(
            RMSNorm(self.config, name="attn_norm")(x), cos, sin, positions, ctx, kv
        )
        x = x + attn_out
        x = x + MLP(self.config, name="mlp")(RMSNorm(self.config, name="mlp_norm")(x))
        return constrain(x, ("batch", "length", "act_embed")), kv


class Embed(nn.Module):
    config: ModelConfig

    @nn.compact
    def __call__(self, tokens):
        cfg = self.config
        table = _param(self, "embedding", _normal(cfg), (cfg.vocab_size, cfg.hidden_size), ("vocab", "embed"))
        # Cast in shards, so whatever moves is in the compute dtype.
        table = table.astype(jnp.dtype(cfg.dtype))
        mesh = active_mesh()
        if mesh is not None and mesh.shape.get("fsdp", 1) > 1 and mesh.shape.get("tensor", 1) == 1:
            # Look rows up in each device's own slice of the embedding dimension (all
            # tokens are tiny to replicate), then move activations to batch sharding:
            # the table is never gathered, and its gradient is a local scatter-add
            # into the [V, D / fsdp] shard, not a replicated [V, D] float32 buffer
            # all-reduced every step.
            tokens = constrain(tokens, (None, None))
            x = constrain(jnp.take(table, tokens, axis=0), (None, None, "embed"))
            return constrain(x, ("batch", "length", "act_embed"))
        # With the vocabulary split over `tensor`, gather only the fsdp shards (as FSDP
        # does for every weight): a lookup into a table sharded on both axes forces
        # XLA into a full rematerialisation.
        table = constrain(table, ("vocab", None))
        return jnp.take(table, tokens, axis=0)


class Head(nn.Module):
    """Final norm and output projection; logits in float32."""

    config: ModelConfig

    @nn.compact
    def __call__(self, x, embedding=None):
        cfg = self.config
        x = RMSNorm(cfg, name="final_norm")(x)
        if cfg.tie_word_embeddings:
            w = embedding.T
        else:
            w = _param(self, "lm_head", _normal(cfg), (cfg.hidden_size, cfg.vocab_size), ("embed", "vocab"))
        return jnp.einsum("btd,dv->btv", x, w.astype(x.dtype), preferred_element_type=jnp.float32)


def head_inputs(config: ModelConfig, params: Params, hidden: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(normed hidden [B, T, D], projection [D, V])`` in the compute dtype: what :class:`Head` multiplies.

    For losses that fuse the projection with the softmax (``mathjax.train.fused_loss``).
    """
    head = params["head"]
    x = RMSNorm(config).apply({"params": head["final_norm"]}, hidden)
    w = params["embed"]["embedding"].T if config.tie_word_embeddings else head["lm_head"]
    # Cast in shards: whatever the loss gathers of w moves in the compute dtype.
    return x, constrain(w.astype(x.dtype), ("embed", "vocab"))


# ----------------------------------------------------------------------------
# Parameters


def _dummy_inputs(config: ModelConfig):
    tokens = jnp.zeros((1, 1), jnp.int32)
    x = jnp.zeros((1, 1, config.hidden_size), jnp.dtype(config.dtype))
    cos = sin = jnp.zeros((1, 1, config.resolved_head_dim), jnp.float32)
    ctx = attn_lib.SegmentContext(jnp.ones((1, 1), jnp.int32))
    return tokens, x, cos, sin, jnp.zeros((1, 1), jnp.int32), ctx


def init_boxed_params(config: ModelConfig, rng: jax.Array) -> Params:
    """Random parameters wrapped in ``nn.LogicallyPartitioned`` boxes (logical axis names)."""
    tokens, x, cos, sin, pos, ctx = _dummy_inputs(config)
    k_embed, k_layers, k_head = jax.random.split(rng, 3)
    embed = Embed(config).init(k_embed, tokens)["params"]

    # Init runs the layer once under vmap; fused kernels (cuDNN) have no batching
    # rule, and the parameters do not depend on the kernel, so init with XLA's.
    init_config = config.replace(attention_impl="xla")

    def init_layer(key):
        return DecoderLayer(init_config).init(key, x, cos, sin, pos, ctx)["params"]

    layers = jax.vmap(init_layer)(jax.random.split(k_layers, config.num_layers))
    # vmap stacks the values; record the new leading axis in the names too.
    layers = jax.tree_util.tree_map(
        lambda box: box.replace(names=("layers",) + tuple(box.names)),
        layers,
        is_leaf=lambda v: isinstance(v, nn.LogicallyPartitioned),
    )
    head = Head(config).init(k_head, x, embed["embedding"].value if config.tie_word_embeddings else None)["params"]
    return {"embed": embed, "layers": layers, "head": head}


def unbox(tree: Params) -> Params:
    return nn.meta.unbox(tree)


def init_params(config: ModelConfig, rng: jax.Array) -> Params:
    """Random parameters (plain arrays)."""
    return unbox(init_boxed_params(config, rng))


def logical_axes(config: ModelConfig) -> Params:
    """Tree of logical axis-name tuples, same structure as the params (no allocation)."""
    abstract = jax.eval_shape(lambda: init_boxed_params(config, jax.random.key(0)))
    return jax.tree_util.tree_map(
        lambda box: tuple(box.names), abstract, is_leaf=lambda v: isinstance(v, nn.LogicallyPartitioned)
    )


def abstract_params(config: ModelConfig) -> Params:
    """Tree of ``jax.ShapeDtypeStruct`` for the params (no allocation)."""
    return unbox(jax.eval_shape(lambda: init_boxed_params(config, jax.random.key(0))))


# ----------------------------------------------------------------------------
# Forward


_REMAT_POLICIES = {
    "full": None,  # recompute everything
    "dots": jax.checkpoint_policies.checkpoint_dots,
    "dots_no_batch": jax.checkpoint_policies.dots_with_no_batch_dims_saveable,
    "save_qkv_proj": jax.checkpoint_policies.save_only_these_names("q_proj", "k_proj", "v_proj"),
}


def _layer_fn(config: ModelConfig):
    layer = DecoderLayer(config)

    def run(x, layer_params, cos, sin, positions, ctx, kv):
        return layer.apply({"params": layer_params}, x, cos, sin, positions, ctx, kv)

    return run


def forward(
    config: ModelConfig,
    params: Params,
    tokens: jax.Array,
    positions: jax.Array | None = None,
    context: Context | None = None,
    kv_caches: Sequence[Any] | None = None,
    return_hidden: bool = False,
) -> tuple[jax.Array, Any]:
    """Runs the decoder. Returns ``(logits float32 [B, T, V], new_kv_caches)``.

    Args:
      tokens: int [B, T].
      positions: int [B, T]; default ``arange(T)`` (per-example positions for
        packed rows are supplied by the data pipeline).
      context: attention context; default: one segment per row, no padding.
      kv_caches: per-layer caches (a tuple of length ``num_layers``) for
        ``CacheContext`` / ``SharedPrefixContext``; ``None`` for no cache.
      return_hidden: return the final hidden states instead of logits.
    """
    b, t = tokens.shape
    if positions is None:
        positions = jnp.broadcast_to(jnp.arange(t, dtype=jnp.int32), (b, t))
    if context is None:
        context = attn_lib.SegmentContext(jnp.ones((b, t), jnp.int32))
    cos, sin = rope_angles(positions, inverse_frequencies(config))
    x = Embed(config).apply({"params": params["embed"]}, tokens)
    x = constrain(x, ("batch", "length", "act_embed"))
    run = _layer_fn(config)
    layers = params["layers"]
    if kv_caches is None:
        layer_names = logical_axes(config)["layers"] if active_mesh() is not None else None

        def body(carry, layer_params):
            if layer_names is not None:
                layer_params = _compute_dtype_shards(config, layer_params, layer_names)
            y, _ = run(carry, layer_params, cos, sin, positions, context, None)
            return y, None

        if config.remat_policy != "none":
            if config.remat_policy not in _REMAT_POLICIES:
                raise ValueError(f"unknown remat_policy {config.remat_policy!r}; known: none, {sorted(_REMAT_POLICIES)}")
            body = jax.checkpoint(body, policy=_REMAT_POLICIES[config.remat_policy], prevent_cse=False)
        x, _ = jax.lax.scan(body, x, layers)
        new_caches = None
    else:
        if len(kv_caches) != config.num_layers:
            raise ValueError(f"kv_caches has {len(kv_caches)} layers, model has {config.num_layers}")
        new_caches = []
        for i in range(config.num_layers):
            layer_params = layers[i] if isinstance(layers, (list, tuple)) else jax.tree_util.tree_map(lambda a: a[i], layers)
            x, kv = run(x, layer_params, cos, sin, positions, context, kv_caches[i])
            new_caches.append(kv)
        new_caches = tuple(new_caches)
    if return_hidden:
        return x, new_caches
    embedding = params["embed"]["embedding"] if config.tie_word_embeddings else None
    logits = Head(config).apply({"params": params["head"]}, x, embedding)
    return constrain(logits, ("batch", "length", "act_vocab")), new_caches


def _compute_dtype_shards(config: ModelConfig, layer_params: Params, layer_names: Params) -> Params:
    """One layer's weight matrices cast to the compute dtype in their own (FSDP) shards.

    The cast then happens before the all-gather, so FSDP moves bf16 weights (and
    reduce-scatters bf16 gradients) instead of float32 ones. The TPU compiler
    hoists such casts by itself; XLA:CPU and GPU gather what they are given.
    Vectors (norm scales, biases) stay as they are: they are never gathered.
    """
    dtype = jnp.dtype(config.dtype)

    def cast(a, names):
        if a.ndim < 2 or a.dtype == dtype:
            return a
        return constrain(a.astype(dtype), tuple(names)[1:])  # drop the scanned `layers` axis

    return jax.tree_util.tree_map(cast, layer_params, layer_names, is_leaf=lambda v: isinstance(v, tuple))


def unstack_layers(params: Params) -> Params:
    """Per-layer parameter dicts (a tuple) instead of stacked arrays; for decode loops."""
    layers = params["layers"]
    n = jax.tree_util.tree_leaves(layers)[0].shape[0]
    return {**params, "layers": tuple(jax.tree_util.tree_map(lambda a, i=i: a[i], layers) for i in range(n))}


def init_kv_caches(config: ModelConfig, batch: int, max_len: int, dtype=None) -> tuple:
    """Zeroed per-layer ``(k, v)`` caches ``[batch, max_len, kv_heads, head_dim]`` for CacheContext."""
    dtype = jnp.dtype(dtype or config.dtype)
    shape = (batch, max_len, config.num_kv_heads, config.resolved_head_dim)
    return tuple((jnp.zeros(shape, dtype), jnp.zeros(shape, dtype)) for _ in range(config.num_layers))


def kv_bytes_per_token(config: ModelConfig, dtype=None) -> int:
    """Bytes of K and V per cached token over all layers."""
    itemsize = np.dtype(jnp.dtype(dtype or config.dtype)).itemsize
    return 2 * config.num_layers * config.num_kv_heads * config.resolved_head_dim * itemsize
