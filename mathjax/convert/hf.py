"""Hugging Face <-> mathjax parameter conversion, streamed tensor by tensor.

The mapping is a pure reshape/transpose because the model keeps HF's
rotate-half RoPE layout. Import builds every parameter directly in its
shards: each host reads every tensor it needs once (memory-mapped locally,
range-read from ``gs://``), converts it once, and cuts the slices its own
devices hold, so no host stages the checkpoint on disk or holds the whole
model. Export pulls one tensor at a time to the host and streams it into
bounded safetensors shards.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.experimental import multihost_utils
from jax.sharding import Mesh

from mathjax.convert.safetensors_io import SafetensorsDir, write_sharded
from mathjax.io import paths
from mathjax.model import llama
from mathjax.model.config import ModelConfig, read_hf_config
from mathjax.model.partition import param_shardings

TOKENIZER_FILES = (
    "tokenizer.model",
    "tokenizer.json",
    "tokenizer_config.json",
    "special_tokens_map.json",
    "added_tokens.json",
    "vocab.json",
    "merges.txt",
)


@dataclasses.dataclass(frozen=True)
class TensorMap:
    """One parameter: where it lives on both sides and how to transform it."""

    path: tuple[str, ...]  # mathjax param path
    hf_name: str  # HF tensor name; "{i}" is the layer index for per-layer tensors
    to_mathjax: Callable[[np.ndarray], np.ndarray]
    to_hf: Callable[[np.ndarray], np.ndarray]
    per_layer: bool


def tensor_maps(config: ModelConfig) -> list[TensorMap]:
    """The full HF <-> mathjax mapping for a config (order = HF export order)."""
    d, h, k, hd = config.hidden_size, config.num_heads, config.num_kv_heads, config.resolved_head_dim

    def proj_in(heads):  # HF [heads*hd, d] <-> ours [d, heads, hd]
        return (lambda w: w.T.reshape(d, heads, hd)), (lambda w: w.reshape(d, heads * hd).T)

    def bias(heads):
        return (lambda b: b.reshape(heads, hd)), (lambda b: b.reshape(heads * hd))

    transpose = (lambda w: w.T), (lambda w: w.T)
    same = (lambda w: w), (lambda w: w)
    o_proj = (lambda w: w.T.reshape(h, hd, d)), (lambda w: w.reshape(h * hd, d).T)
    layer = "model.layers.{i}."
    maps = [TensorMap(("embed", "embedding"), "model.embed_tokens.weight", *same, False)]
    entries = [
        (("attn_norm", "scale"), "input_layernorm.weight", same),
        (("attn", "q_proj"), "self_attn.q_proj.weight", proj_in(h)),
        (("attn", "k_proj"), "self_attn.k_proj.weight", proj_in(k)),
        (("attn", "v_proj"), "self_attn.v_proj.weight", proj_in(k)),
    ]
    if config.attention_bias:
        entries += [
            (("attn", "q_bias"), "self_attn.q_proj.bias", bias(h)),
            (("attn", "k_bias"), "self_attn.k_proj.bias", bias(k)),
            (("attn", "v_bias"), "self_attn.v_proj.bias", bias(k)),
        ]
    if config.qk_norm:  # Qwen3: one [head_dim] scale each, shared by all heads
        entries += [
            (("attn", "q_norm", "scale"), "self_attn.q_norm.weight", same),
            (("attn", "k_norm", "scale"), "self_attn.k_norm.weight", same),
        ]
    entries += [(("attn", "o_proj"), "self_attn.o_proj.weight", o_proj)]
    if config.attention_out_bias:
        entries += [(("attn", "o_bias"), "self_attn.o_proj.bias", same)]
    entries += [
        (("mlp_norm", "scale"), "post_attention_layernorm.weight", same),
        (("mlp", "gate_proj"), "mlp.gate_proj.weight", transpose),
        (("mlp", "up_proj"), "mlp.up_proj.weight", transpose),
        (("mlp", "down_proj"), "mlp.down_proj.weight", transpose),
    ]
    maps += [TensorMap(("layers",) + p, layer + n, *fns, True) for p, n, fns in entries]
    maps.append(TensorMap(("head", "final_norm", "scale"), "model.norm.weight", *same, False))
    if not config.tie_word_embeddings:
        maps.append(TensorMap(("head", "lm_head"), "lm_head.weight", *transpose, False))
    return maps


def _get(tree, path):
    for key in path:
        tree = tree[key]
    return tree


def _set(tree, path, value):
    for key in path[:-1]:
        tree = tree.setdefault(key, {})
    tree[path[-1]] = value


def _resolve_mesh(mesh) -> Mesh:
    from mathjax.parallel.mesh import make_mesh

    if mesh is None:
        return Mesh(np.asarray(jax.devices()[:1]).reshape(1, 1, 1), ("data", "fsdp", "tensor"))
    return make_mesh(mesh)


def load_hf_params(model_dir: str, config: ModelConfig | None = None, mesh=None, dtype=None):
    """Reads a HF checkpoint dir straight into sharded mathjax params.

    Returns ``(config, params)``. Every tensor's shape is checked before any
    device memory is used; errors name the file and tensor.
    """
    config = config or read_hf_config(model_dir)
    mesh = _resolve_mesh(mesh)
    files = SafetensorsDir(model_dir)
    abstract = llama.abstract_params(config)
    shardings = param_shardings(config, mesh)
    dtype = jnp.dtype(dtype or config.param_dtype)
    maps = tensor_maps(config)
    # Validate everything first so a bad checkpoint fails before allocating.
    used = set()
    for m in maps:
        expected = _get(abstract, m.path).shape
        per_tensor = expected[1:] if m.per_layer else expected
        for i in range(config.num_layers) if m.per_layer else [None]:
            name = m.hf_name.format(i=i)
            used.add(name)
            if name not in files:
                if m.hf_name == "lm_head.weight" and "lm_head.weight" not in files:
                    raise ValueError(f"{model_dir}: tensor 'lm_head.weight' missing (tie_word_embeddings is false)")
                raise ValueError(f"{model_dir}: tensor {name!r} missing from the safetensors files")
            got = m.to_mathjax(np.empty(files.shape(name), np.bool_)).shape
            if got != per_tensor:
                raise ValueError(
                    f"{files.location[name]}: tensor {name!r} has shape {files.shape(name)}, "
                    f"config {model_dir}/config.json implies {tuple(m.to_hf(np.empty(per_tensor, np.bool_)).shape)}"
                )
    # A tensor we would silently drop means the config does not describe the checkpoint.
    ignorable = {"lm_head.weight"} if config.tie_word_embeddings else set()  # some tied exports keep a copy
    unused = sorted(
        n for n in files.location if n not in used and n not in ignorable and not n.endswith("rotary_emb.inv_freq")
    )
    if unused:
        raise ValueError(
            f"{files.location[unused[0]]}: tensor {unused[0]!r} is not used by the {config.model_type} "
            f"architecture in {model_dir}/config.json ({len(unused)} unused tensors)"
        )
    params: dict = {}
    for m in maps:
        shape = _get(abstract, m.path).shape
        _set(params, m.path, _load_sharded(files, m, config.num_layers, shape, _get(shardings, m.path), dtype))
    return config, params


def _load_sharded(files: SafetensorsDir, m: TensorMap, num_layers: int, shape: tuple[int, ...], sharding,
                  dtype) -> jax.Array:
    """One parameter, built from this host's shards; each source tensor is read and converted once.

    ``make_array_from_callback`` asks for one slice per local device, and a
    transposed HF tensor has no cheap slice: each call converted (copied) the
    whole tensor again, and devices holding the same slice (replicated over
    `tensor` or `data`) read it again. Here the host reads each tensor it needs
    once, cuts every distinct local slice from it, and places the copies.
    """
    index_map = sharding.addressable_devices_indices_map(shape)
    distinct: dict[tuple, list] = {}
    for device, index in index_map.items():
        key = tuple(sl.indices(n)[:2] for sl, n in zip(index, shape))
        distinct.setdefault(key, []).append(device)
    blocks = {key: np.empty(tuple(b - a for a, b in key), dtype) for key in distinct}
    layers = range(num_layers) if m.per_layer else [None]
    needed = set()
    for key in distinct:
        needed.update(range(*key[0]) if m.per_layer else [None])
    for i in layers:
        if i not in needed:
            continue  # none of this host's devices holds this layer
        full = m.to_mathjax(files.get(m.hf_name.format(i=i) if m.per_layer else m.hf_name))
        for key, block in blocks.items():
            if m.per_layer:
                if not key[0][0] <= i < key[0][1]:
                    continue
                block[i - key[0][0]] = full[tuple(slice(a, b) for a, b in key[1:])]
            else:
                block[...] = full[tuple(slice(a, b) for a, b in key)]
    key_of = {device: key for key, devices in distinct.items() for device in devices}
    shards = [jax.device_put(blocks[key_of[device]], device) for device in index_map]
    return jax.make_array_from_single_device_arrays(shape, sharding, shards)


def _to_host(x: jax.Array) -> np.ndarray:
    if not x.is_fully_addressable:
        x = multihost_utils.process_allgather(x, tiled=True)
    return np.asarray(jax.device_get(x))


def save_hf(
    output_dir: str,
    config: ModelConfig,
    params: llama.Params,
    dtype: str = "float32",
    tokenizer_source: str | None = None,
    max_shard_bytes: int = 5 * 1024**3,
) -> str:
    """Writes a HF model dir (safetensors + config + generation config + tokenizer).

    Local: written into a temporary sibling dir and renamed at the end, so a
    failed or killed export never leaves a half-written model behind. Object
    stores (``gs://...``) cannot rename a directory: the dir is refilled in
    place with ``config.json`` written last, so a partial export is not a
    loadable model dir. Only process 0 writes; every process must call (the
    gathers are collective).
    """
    np_dtype = np.dtype(jnp.dtype(dtype))
    if np_dtype not in (np.dtype(np.float32), np.dtype(jnp.bfloat16), np.dtype(np.float16)):
        raise ValueError(f"export dtype must be float32, bfloat16 or float16, got {dtype!r}")
    maps = tensor_maps(config)
    entries, producers = [], {}
    for m in maps:
        stacked = _get(params, m.path)
        for i in range(config.num_layers) if m.per_layer else [None]:
            name = m.hf_name.format(i=i)
            src = stacked[i] if m.per_layer else stacked
            shape = m.to_hf(np.empty(src.shape, np.bool_)).shape
            entries.append((name, shape, np_dtype))
            producers[name] = lambda src=src, m=m: m.to_hf(_to_host(src).astype(np.float32)).astype(np_dtype)
    is_writer = jax.process_index() == 0
    output_dir = paths.normalize(output_dir)
    remote = paths.is_remote(output_dir)
    parent = paths.dirname(output_dir)
    tmp = None
    if is_writer:
        paths.makedirs(parent)
        if remote:
            paths.rmtree(output_dir)
        tmp = output_dir if remote else tempfile.mkdtemp(prefix=".tmp-export-", dir=parent)
    try:
        if is_writer:
            write_sharded(tmp, entries, lambda name: producers[name](), max_shard_bytes)
            if tokenizer_source:
                copy_tokenizer(tokenizer_source, tmp)
            generation = {"_from_model_config": True, "bos_token_id": config.bos_token_id,
                          "eos_token_id": config.eos_token_id, "pad_token_id": config.pad_token_id}
            paths.write_text(paths.join(tmp, "generation_config.json"), json.dumps(
                {k: v for k, v in generation.items() if v is not None or k == "eos_token_id"}, indent=2))
            hf_config = config.to_hf_dict()
            hf_config["torch_dtype"] = str(np_dtype.name) if np_dtype != np.dtype(jnp.bfloat16) else "bfloat16"
            paths.write_text(paths.join(tmp, "config.json"), json.dumps(hf_config, indent=2))  # last: marks it complete
            if not remote:
                paths.rmtree(output_dir)
                os.rename(tmp, output_dir)
        else:
            for name, _, _ in entries:  # take part in the collective gathers
                producers[name]()
    except BaseException:
        if tmp and not remote:
            paths.rmtree(tmp)
        raise
    return output_dir


def copy_tokenizer(source: str, output_dir: str) -> None:
    """Copies HF tokenizer files from a dir, or writes them from a SentencePiece ``.model`` file (local or remote)."""
    if paths.isdir(source):
        for fname in TOKENIZER_FILES:
            if paths.exists(paths.join(source, fname)):
                paths.copy_file(paths.join(source, fname), paths.join(output_dir, fname))
    elif paths.isfile(source):
        from mathjax.data.tokenizer import load_tokenizer

        with paths.local_copy(source) as local:
            tokenizer = load_tokenizer(local)
        # Tokenizer.save replaces its target dir and writes local files only:
        # save aside, then add the files to output_dir (local or remote).
        with tempfile.TemporaryDirectory() as tmp:
            tokenizer.save(os.path.join(tmp, "tokenizer"))
            paths.copy_tree(os.path.join(tmp, "tokenizer"), output_dir)
    else:
        raise FileNotFoundError(f"{source}: tokenizer not found")


def has_tokenizer(path: str) -> bool:
    return paths.isdir(path) and any(paths.exists(paths.join(path, f)) for f in ("tokenizer.model", "tokenizer.json"))

