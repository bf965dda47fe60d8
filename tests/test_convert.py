"""HF <-> mathjax conversion: bit-exact round trips, shard files, dtypes, clear errors, no partial output."""

import json
import os
import subprocess
import sys

import ml_dtypes
import numpy as np
import pytest

import mathjax
from hf_fixtures import hf_logits, make_hf_model
from mathjax.convert.safetensors_io import SafetensorsDir

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _tensors(model_dir):
    files = SafetensorsDir(model_dir)
    return {name: np.array(files.get(name)) for name in files.location}


@pytest.mark.parametrize("variant", ["llama_gqa", "qwen2", "llama_bias_tied", "qwen3", "qwen3_untied_bias"])
def test_hf_to_mathjax_to_hf_is_bit_exact(variant, tmp_path):
    src = tmp_path / "hf"
    make_hf_model(variant).save_pretrained(src, safe_serialization=True)
    ckpt = tmp_path / "ckpt"
    mathjax.load(str(src)).save(str(ckpt))
    out = tmp_path / "hf_out"
    mathjax.load(str(ckpt)).save_hf(str(out), dtype="float32")
    before, after = _tensors(src), _tensors(out)
    assert sorted(before) == sorted(after)
    for name in before:
        assert before[name].dtype == after[name].dtype == np.float32, name
        assert np.array_equal(before[name], after[name]), name


def test_export_loads_in_transformers_with_same_logits(tmp_path):
    import transformers

    src = tmp_path / "hf"
    make_hf_model("mistral").save_pretrained(src)
    model = mathjax.load(str(src))
    out = tmp_path / "exported"
    model.save_hf(str(out))
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    assert reloaded.config.sliding_window == 8
    tokens = np.random.default_rng(1).integers(0, 97, size=(1, 24))
    assert np.abs(hf_logits(reloaded, tokens) - model.logits(tokens)).max() < 1e-4
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["eos_token_id"] == model.config.eos_token_id


@pytest.mark.parametrize("variant", ["qwen3", "qwen3_untied_bias"])
def test_qwen3_export_loads_in_transformers_with_same_logits(variant, tmp_path):
    import transformers

    src = tmp_path / "hf"
    make_hf_model(variant).save_pretrained(src)
    model = mathjax.load(str(src))
    out = tmp_path / "exported"
    model.save_hf(str(out))
    hf_config = json.loads((out / "config.json").read_text())
    assert hf_config["architectures"] == ["Qwen3ForCausalLM"] and hf_config["use_sliding_window"] is False
    reloaded = transformers.AutoModelForCausalLM.from_pretrained(out, attn_implementation="eager").eval()
    assert type(reloaded).__name__ == "Qwen3ForCausalLM"
    assert reloaded.config.head_dim == model.config.resolved_head_dim
    assert set(reloaded.config.layer_types) == {"full_attention"}
    tokens = np.random.default_rng(1).integers(0, 97, size=(1, 24))
    assert np.abs(hf_logits(reloaded, tokens) - model.logits(tokens)).max() < 1e-4


def test_sharded_export_with_index_and_bf16(tmp_path):
    src = tmp_path / "hf"
    make_hf_model("llama_mha").save_pretrained(src)
    out = tmp_path / "bf16"
    mathjax.load(str(src)).save_hf(str(out), dtype="bfloat16", max_shard_bytes=20_000)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(set(index["weight_map"].values()))
    assert len(shards) > 1 and shards[0].startswith("model-00001-of-")
    exported = _tensors(out)
    original = _tensors(src)
    for name, value in original.items():
        assert exported[name].dtype == ml_dtypes.bfloat16
        np.testing.assert_array_equal(exported[name], value.astype(ml_dtypes.bfloat16))
    assert json.loads((out / "config.json").read_text())["torch_dtype"] == "bfloat16"


def test_missing_tensor_error_names_tensor_and_writes_nothing(tmp_path):
    from safetensors.numpy import save_file

    src = tmp_path / "hf"
    make_hf_model("llama_mha").save_pretrained(src)
    tensors = _tensors(src)
    del tensors["model.layers.1.mlp.up_proj.weight"]
    os.remove(src / "model.safetensors")
    save_file(tensors, str(src / "model.safetensors"))
    with pytest.raises(ValueError, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        mathjax.load(str(src))


def test_shape_mismatch_error_names_file_and_tensor(tmp_path):
    src = tmp_path / "hf"
    make_hf_model("llama_mha").save_pretrained(src)
    cfg = json.loads((src / "config.json").read_text())
    cfg["intermediate_size"] = 100
    (src / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match=r"model\.safetensors: tensor 'model\.layers\.0\.mlp\.gate_proj\.weight'"):
        mathjax.load(str(src))


def test_unused_tensor_is_an_error(tmp_path):
    from safetensors.numpy import save_file

    src = tmp_path / "hf"
    make_hf_model("llama_mha").save_pretrained(src)
    tensors = _tensors(src)
    tensors["model.layers.0.self_attn.o_proj.bias"] = np.zeros(64, np.float32)
    save_file(tensors, str(src / "model.safetensors"))
    with pytest.raises(ValueError, match=r"'model\.layers\.0\.self_attn\.o_proj\.bias' is not used"):
        mathjax.load(str(src))


def test_unknown_architecture_and_missing_dir(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "gpt2"}))
    with pytest.raises(ValueError, match="unsupported model_type 'gpt2'"):
        mathjax.load(str(tmp_path))
    with pytest.raises(FileNotFoundError):
        mathjax.load(str(tmp_path / "nope"))


def test_scripts_convert_both_ways_and_check_parity(tmp_path):
    src = tmp_path / "hf"
    make_hf_model("llama_gqa").save_pretrained(src)
    env = {**os.environ, "PYTHONPATH": ROOT}
    run = lambda *args: subprocess.run([sys.executable, *args], cwd=ROOT, env=env, capture_output=True, text=True)
    r = run("scripts/convert_hf_to_mathjax.py", f"--hf_dir={src}", f"--output_dir={tmp_path / 'ck'}")
    assert r.returncode == 0, r.stderr
    r = run("scripts/convert_mathjax_to_hf.py", f"--checkpoint_dir={tmp_path / 'ck'}", f"--output_dir={tmp_path / 'back'}", "--dtype=float32")
    assert r.returncode == 0, r.stderr
    r = run("scripts/check_parity.py", f"--hf_dir={tmp_path / 'back'}", f"--checkpoint_dir={tmp_path / 'ck'}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "max |logit diff|" in r.stdout
    # A failed conversion leaves no output dir behind.
    r = run("scripts/convert_hf_to_mathjax.py", f"--hf_dir={tmp_path / 'missing'}", f"--output_dir={tmp_path / 'bad'}")
    assert r.returncode != 0 and not (tmp_path / "bad").exists()
