"""The pod path without a pod: real TPU topologies from libtpu, their device order, and what a step sends.

* HLO collective counting, checked on programs whose traffic is known by construction;
* the data layout against the device-to-process maps of real slices (v4-32, v5litepod-64, v6e-16);
* two CPU processes whose mesh interleaves them (as a v4-32's does) give the losses of one process;
* ``--dry_run_topology``: LLaMA-2 7B/13B/70B train steps compiled by the TPU compiler for a v4-32.
"""

from __future__ import annotations

import json
import math
import os
import socket
import subprocess
import sys

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

from mathjax.data.layout import BatchLayout
from mathjax.parallel import hlo
from mathjax.parallel.mesh import make_mesh

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
HAS_LIBTPU = __import__("importlib.util").util.find_spec("libtpu") is not None
needs_libtpu = pytest.mark.skipif(not HAS_LIBTPU, reason="pip install libtpu (the TPU compiler) for topology checks")


def _scan_gather(mesh, layers=5, d=64):
    """x @ w[l] for each layer, each w[l] stored fsdp-sharded and gathered whole inside the loop."""
    def f(x, w):
        def body(c, wl):
            wl = jax.lax.with_sharding_constraint(wl, NamedSharding(mesh, P(None, None)))
            return jnp.tanh(c @ wl), None
        return jax.lax.scan(body, x, w)[0]

    x = jax.ShapeDtypeStruct((8 * 4, d), jnp.float32, sharding=NamedSharding(mesh, P(mesh.axis_names[0], None)))
    w = jax.ShapeDtypeStruct((layers, d, d), jnp.float32,
                             sharding=NamedSharding(mesh, P(None, mesh.axis_names[0], None)))
    return jax.jit(f).lower(x, w).compile()


def test_scan_body_collectives_count_once_per_iteration():
    mesh = jax.make_mesh((8,), ("fsdp",), axis_types=(jax.sharding.AxisType.Auto,))
    stats = hlo.collectives(_scan_gather(mesh).as_text())
    # 5 layers, each gathering a whole [64, 64] float32 weight.
    assert stats.counts["all-gather"] == 5
    assert stats.bytes["all-gather"] == 5 * 64 * 64 * 4
    assert stats.dynamic_loops == 0
    assert any(line.startswith("all-gather: 5 ops, 80.00 KiB") for line in stats.lines())


def test_dynamic_while_counts_its_body_once():
    mesh = jax.make_mesh((8,), ("data",), axis_types=(jax.sharding.AxisType.Auto,))
    rows = NamedSharding(mesh, P("data"))

    def f(x):
        def body(c):
            total = jnp.sum(c[1])  # a cross-device reduction every iteration
            return c[0] + 1, c[1] * 0.5 + total
        return jax.lax.while_loop(lambda c: jnp.max(c[1]) > 1e-3, body, (0, x))[1]

    compiled = jax.jit(f).lower(jax.ShapeDtypeStruct((64,), jnp.float32, sharding=rows)).compile()
    stats = hlo.collectives(compiled.as_text())
    assert stats.dynamic_loops == 1
    assert 1 <= stats.counts["all-reduce"] <= 3  # the sum (and the loop test's max), once each


def test_type_bytes_and_tuples():
    assert hlo.type_bytes("bf16[4,8]{1,0:T(8,128)(2,1)}") == 64
    assert hlo.type_bytes("(f32[2]{0}, s32[], pred[3])") == 8 + 4 + 3
    with pytest.raises(ValueError, match="ENTRY"):
        hlo.parse_computations("HloModule m\n")


# ---------------------------------------------------------------------------
# Real topologies (libtpu's model of the slice; no TPU needed).


@needs_libtpu
@pytest.mark.parametrize("name,chips,hosts", [("v4-32", 16, 4), ("v5litepod-64", 64, 16), ("v6e-16", 16, 4),
                                              ("v4-8", 4, 1), ("v5p-128", 64, 16)])
def test_slice_devices_and_hosts(name, chips, hosts):
    from mathjax.parallel.topology import slice_type, topology_devices

    devices = topology_devices(name)
    assert len(devices) == chips == slice_type(name).chips
    assert len({d.process_index for d in devices}) == hosts == slice_type(name).hosts
    assert {d.platform for d in devices} == {"tpu"}
    assert "TPU_WORKER_HOSTNAMES" not in os.environ  # the quieting env does not leak into cluster detection


def test_unknown_slice_type_lists_known_ones():
    from mathjax.parallel.topology import slice_type

    with pytest.raises(ValueError, match="unknown TPU accelerator type 'v4-31'.*v4-32"):
        slice_type("v4-31")
    assert slice_type("v5e-16").name == "v5litepod-16"


@needs_libtpu
@pytest.mark.parametrize("name,spec,batch", [
    ("v4-32", "data:1,fsdp:16,tensor:1", 32),
    ("v4-32", "data:2,fsdp:4,tensor:2", 16),
    ("v5litepod-64", "data:4,fsdp:16,tensor:1", 128),
    ("v6e-16", "data:1,fsdp:4,tensor:4", 8),
])
def test_layout_rows_follow_the_pod_device_order(name, spec, batch):
    from mathjax.parallel.topology import topology_devices

    mesh = make_mesh(spec, devices=topology_devices(name))
    grid = mesh.devices  # [data, fsdp, tensor]
    shards = grid.shape[0] * grid.shape[1]
    per_shard = batch // shards
    # Ground truth from the mesh itself: batch shard (i, j) -> the processes of its devices.
    owners = {i * grid.shape[1] + j: {d.process_index for d in grid[i, j].flat}
              for i in range(grid.shape[0]) for j in range(grid.shape[1])}
    processes = sorted({d.process_index for d in grid.flat})
    layouts = {p: BatchLayout(mesh, batch, 1, 16, process_index=p) for p in processes}
    primary = []
    for p, layout in layouts.items():
        expected = [r for shard, procs in owners.items() if p in procs
                    for r in range(shard * per_shard, (shard + 1) * per_shard)]
        assert layout.local_row_ids.tolist() == sorted(expected)
        assert layout.local_shape == (1, len(expected), 16)
        primary += layout.primary_slots.tolist()
    assert sorted(primary) == list(range(batch))  # every slot counted by exactly one process
    if name == "v4-32" and spec.startswith("data:1,fsdp:16"):
        rows = layouts[0].local_row_ids
        assert np.any(np.diff(rows) > 1)  # the case a contiguous-only layout refused


def test_non_contiguous_rows_assemble_in_one_process():
    """Devices permuted along the batch axis: every device still gets exactly its rows."""
    devices = jax.devices()
    order = [devices[i] for i in (0, 4, 1, 5, 2, 6, 3, 7)]
    mesh = make_mesh("data:1,fsdp:8,tensor:1", devices=order)
    layout = BatchLayout(mesh, 16, 2, 4)
    local = {"tokens": np.arange(2 * 8 * 4, dtype=np.int32).reshape(2, 8, 4)}
    array = layout.to_global(local)["tokens"]
    np.testing.assert_array_equal(np.asarray(array), local["tokens"])
    for shard in array.addressable_shards:
        np.testing.assert_array_equal(np.asarray(shard.data), local["tokens"][shard.index])
    with pytest.raises(ValueError, match=r"batch\['tokens'\] has shape \(2, 7, 4\)"):
        layout.to_global({"tokens": np.zeros((2, 7, 4), np.int32)})


def _env(devices: int) -> dict:
    env = dict(os.environ)
    env["XLA_FLAGS"] = f"--xla_force_host_platform_device_count={devices}"
    env["JAX_PLATFORMS"] = "cpu"
    env["PYTHONPATH"] = os.pathsep.join(p for p in (REPO, env.get("PYTHONPATH")) if p)
    return env


@pytest.mark.slow
def test_two_interleaved_processes_match_one(tmp_path):
    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    from sft_fixtures import arithmetic_records, make_tokenizer, write_jsonl

    tok = make_tokenizer(str(tmp_path))
    data = write_jsonl(tmp_path / "train.jsonl", arithmetic_records(64))
    worker = [sys.executable, os.path.join(REPO, "tests", "interleaved_worker.py"), data, tok]
    one = subprocess.run(worker + [str(tmp_path / "one")], env=_env(8), capture_output=True, text=True, timeout=300)
    assert one.returncode == 0, one.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen(worker + [str(tmp_path / "two"), "--order=interleave",
                                        f"--coordinator_address=127.0.0.1:{port}", "--num_processes=2",
                                        f"--process_id={i}"], env=_env(4), stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True) for i in range(2)]
    outs = [p.communicate(timeout=300)[0] for p in procs]
    for p, out in zip(procs, outs):
        assert p.returncode == 0, out[-3000:]
    single = json.loads((tmp_path / "one.0").read_text())
    multi = [json.loads((tmp_path / f"two.{i}").read_text()) for i in range(2)]
    assert multi[0]["mesh_processes"] == [0, 1] * 4
    assert multi[0]["local_row_ids"] == [0, 2, 4, 6] and multi[1]["local_row_ids"] == [1, 3, 5, 7]
    np.testing.assert_allclose(multi[0]["losses"], single["losses"], rtol=1e-5)
    np.testing.assert_allclose(multi[1]["losses"], single["losses"], rtol=1e-5)
    assert single["losses"][-1] < single["losses"][0]


# ---------------------------------------------------------------------------
# --dry_run_topology: the TPU compiler on this host.


@needs_libtpu
def test_tpu_compile_of_the_scan_sees_every_layer():
    """The TPU compiler's HLO has no known_trip_count: trip counts come from the loop condition."""
    from mathjax.parallel.topology import topology_devices

    mesh = jax.make_mesh((4,), ("fsdp",), axis_types=(jax.sharding.AxisType.Auto,), devices=topology_devices("v4-8"))
    stats = hlo.collectives(_scan_gather(mesh, layers=6, d=512).as_text())
    full = 6 * 512 * 512 * 4
    received = stats.bytes["all-gather"] + stats.bytes["collective-permute"]
    # The TPU compiler may gather in bf16 (default matmul precision): half the float32 bytes.
    assert full / 2 * 3 / 4 <= received <= full * 1.01, stats.lines()
    assert stats.counts["all-gather"] + stats.counts["collective-permute"] >= 6  # one per layer at least
    assert stats.dynamic_loops == 0


def _dry_run(*args: str, timeout: int = 400) -> subprocess.CompletedProcess:
    env = _env(1)
    return subprocess.run([sys.executable, *args], env=env, capture_output=True, text=True, timeout=timeout, cwd=REPO)


@needs_libtpu
@pytest.mark.slow
# 13B takes the same path as 7B (fits, FSDP gathers); its row is in benchmarks/tpu_fit_table.py.
@pytest.mark.parametrize("model,fits", [("llama2_7b", True), ("llama2_70b", False)])
def test_train_dry_run_topology_v4_32(model, fits, tmp_path):
    out = _dry_run("scripts/train_sft.py", f"--config=configs/{model}_sft.py", f"--workdir={tmp_path}", "--dry_run",
                   "--dry_run_topology=v4-32")
    assert out.returncode == (0 if fits else 1), out.stdout[-2000:] + out.stderr[-3000:]
    text = out.stdout
    assert "(16 x tpu)" in text and "attention splash" in text  # the config's mesh over the slice's 16 chips
    if "TPU compiler refused" not in text:
        for kind in hlo.KINDS:
            assert any(line.strip().startswith(f"{kind}: ") and " ops, " in line for line in text.splitlines())
        gathered = [line for line in text.splitlines()
                    if line.strip().startswith(("all-gather:", "collective-permute:"))]
        assert any(not line.strip().endswith(" 0 B") for line in gathered)  # FSDP moves weights every step
    else:
        assert not fits
    verdict = text.strip().splitlines()[-1]
    assert ("DOES NOT FIT" in verdict) != fits and (": fits, " in verdict) == fits
    if not fits:  # by our accounting against the chip's HBM, or refused by the TPU compiler itself
        assert ("of 32.0 GiB" in text and "largest part" in verdict) or "CompileTimeHbmOom" in verdict


@needs_libtpu
def test_sample_dry_run_topology_spans_hosts(tmp_path):
    """A 2-layer model of 7B's shapes sampled on a v4-32 mesh (data:4, tensor:4) spanning its 4 hosts."""
    from mathjax.model.config import get_preset

    config = get_preset("llama2_7b", num_layers=2)
    (tmp_path / "config.json").write_text(json.dumps({
        "architectures": ["LlamaForCausalLM"], "model_type": "llama", "hidden_size": config.hidden_size,
        "intermediate_size": config.intermediate_size, "num_hidden_layers": 2,
        "num_attention_heads": config.num_heads, "num_key_value_heads": config.num_kv_heads,
        "vocab_size": config.vocab_size, "max_position_embeddings": 4096, "rms_norm_eps": 1e-5}))
    out = _dry_run("scripts/sample.py", f"--model={tmp_path}", "--dry_run", "--dry_run_topology=v4-32",
                   "--mesh=data:4,tensor:4", "--dtype=bfloat16", "--batch_size=64", "--num_samples=16",
                   "--max_new_tokens=128", "--dry_run_prompt_len=128")
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    assert out.stdout.count("(16 x tpu)") == 2
    assert "sample decode on v4-32" in out.stdout and "all-reduce: " in out.stdout


def test_missing_libtpu_is_one_clear_line(monkeypatch):
    from mathjax.parallel import topology

    monkeypatch.setitem(sys.modules, "libtpu", None)
    with pytest.raises(RuntimeError, match=r"pip install libtpu"):
        topology.topology_devices("v4-32")


@needs_libtpu
def test_exit_1_with_one_line_when_it_does_not_fit(tmp_path):
    out = _dry_run("scripts/train_sft.py", "--config=configs/tiny.py", f"--workdir={tmp_path}", "--dry_run",
                   "--dry_run_topology=v4-8", "--config.model_overrides.vocab_size=512",
                   "--device_memory_gib=0.0001")
    assert out.returncode == 1, out.stdout[-2000:] + out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1].startswith("train tiny on v4-8: DOES NOT FIT")
    assert math.isfinite(float(out.stdout.split("total (XLA peak estimate)")[1].split()[0]))


# ---------------------------------------------------------------------------
# Memory and traffic of the train step (issue: FSDP in the compute dtype, no replicated [V, D] float32).


def _seven_b_config(layers: int, remat: str = "full"):
    import importlib.util

    spec = importlib.util.spec_from_file_location("c", os.path.join(REPO, "configs", "llama2_7b_sft.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    config = module.get_config()
    config.model_overrides.num_layers = layers
    config.remat_policy = remat
    return config


@needs_libtpu
def test_tpu_step_moves_no_float32_vocab_table():
    """LLaMA-2 7B shapes (2 layers) on a v4-32: the embedding gradient is not all-reduced whole."""
    import re

    from mathjax.train import fit_check

    captured = {}

    def grab(compiled):
        captured["text"] = compiled.as_text()
        return hlo.collectives(captured["text"])

    original = fit_check.collectives_of
    fit_check.collectives_of = grab
    try:
        report = fit_check.train_fit_check(_seven_b_config(2), topology="v4-32")
    finally:
        fit_check.collectives_of = original
    comps, _ = hlo.parse_computations(captured["text"])
    big_f32 = []
    for ops in comps.values():
        for op in ops:
            kind = hlo._kind(op.opcode)
            for dtype, dims in re.findall(r"(\w+)\[([0-9,]+)\]", op.type) if kind else []:
                shape = [int(d) for d in dims.split(",")]
                if dtype == "f32" and math.prod(shape) >= 32000 * 4096 // 16 * 2:
                    big_f32.append((kind, shape))
                if kind == "all-gather" and len(shape) >= 2 and dtype.startswith(("f", "bf")):
                    assert dtype == "bf16", (op.name, op.type)  # weights gathered in the compute dtype
    assert big_f32 == []  # was: all-reduce f32[32000,4096] (500 MiB) every step
    assert report.collectives.bytes["all-reduce"] < 1024**2


def test_save_qkv_proj_saves_the_projections():
    """The policy names q/k/v; it must save them (less recompute than `full`, more than `dots`)."""
    from mathjax.train import fit_check

    def flops(remat):
        config = _seven_b_config(2, remat)
        config.model_overrides.update(hidden_size=256, intermediate_size=512, num_heads=4, num_kv_heads=4,
                                      vocab_size=512)
        config.seq_len, config.batch_size, config.mesh = 128, 8, "data:1,fsdp:8,tensor:1"
        return fit_check.train_fit_check(config).flops_per_step

    full, qkv, none = flops("full"), flops("save_qkv_proj"), flops("none")
    d, t, b, layers = 256, 128, 8, 2
    qkv_matmuls = 2 * b * t * d * (3 * d) * layers  # the forward q/k/v projections no longer recomputed
    assert full - qkv == pytest.approx(qkv_matmuls, rel=1e-6)
    assert none < qkv < full
