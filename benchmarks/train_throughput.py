"""Training throughput: mathjax's jitted train step vs. `transformers` (PyTorch) on the same model and batch.

  python benchmarks/train_throughput.py                       # bench_58m, fp32, batch 8 x 512
  python benchmarks/train_throughput.py --config=configs/bench_58m.py --config.batch_size=16 --steps=5

Prints tokens/s and MFU for mathjax and, when torch is installed, for
`transformers.LlamaForCausalLM` trained with AdamW in float32 on the same
tokens (same config, same loss, gradient clipping, one optimizer step per
batch), then their ratio. Both sides time ``--steps`` steps after
``--warmup`` untimed ones (compilation, allocator warm-up), each side in its
own worker process, alternating step by step (``--noisolate``: both in this
process). On CPU the MFU
denominator is ``--config.peak_flops_cpu`` or, when 0, a measured large
float32 matmul rate on this host (reported as such).
"""

from __future__ import annotations

import json
import os
import statistics
import time

from absl import app, flags
from ml_collections import config_flags

_CONFIG = config_flags.DEFINE_config_file(
    "config", os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "configs", "bench_58m.py"),
    "Training config (model, batch_size, micro_batches, seq_len, numerics, optimizer).")
_STEPS = flags.DEFINE_integer("steps", 5, "Timed steps per side (the sides alternate step by step).")
_WARMUP = flags.DEFINE_integer("warmup", 1, "Untimed steps first per side (compilation, allocator warm-up).")
_TORCH = flags.DEFINE_bool("torch", True, "Also time transformers (PyTorch) when installed.")
_JSON = flags.DEFINE_string("json_out", "", "Also write the results here as JSON.")
_ISOLATE = flags.DEFINE_bool(
    "isolate", True,
    "Run each side in its own worker process (still alternating step by step). In one shared process the "
    "sides share one malloc heap and torch's step ran about 2 s faster there than on its own "
    "(see the README); --noisolate runs both in this process.")
_CPU_DEVICES = flags.DEFINE_integer(
    "cpu_devices", 0, "On CPU, split the host into this many XLA devices (data parallel over cores); 0 = XLA's default.")


def _cpus() -> int:
    """CPUs this process may run on (respects taskset/cgroups, unlike os.cpu_count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - non-Linux
        return os.cpu_count() or 1


def _batch(config, vocab: int):
    import numpy as np

    rng = np.random.default_rng(0)
    b, t, m = config.batch_size, config.seq_len, config.micro_batches
    tokens = rng.integers(3, vocab, size=(b, t + 1)).astype(np.int32)
    return {
        "tokens": tokens[:, :-1],
        "targets": tokens[:, 1:],
        "loss_mask": np.ones((b, t), np.int32),
        "segment_ids": np.ones((b, t), np.int32),
        "positions": np.broadcast_to(np.arange(t, dtype=np.int32), (b, t)).copy(),
    }, m


def build_mathjax(config, batch, micro: int):
    """``(step_fn, info)``: one jitted train step on the batch per call (blocks until done)."""
    import jax

    from mathjax.data.sft import BatchLayout
    from mathjax.model.config import get_preset
    from mathjax.parallel.mesh import make_mesh
    from mathjax.train import metrics as metrics_lib
    from mathjax.train.optimizer import make_optimizer
    from mathjax.train.state import create_state
    from mathjax.train.step import make_train_step
    from mathjax.train.trainer import model_overrides, numerics

    mesh = make_mesh(config.mesh)
    model = get_preset(config.model, **model_overrides(config), **numerics(config))
    layout = BatchLayout(mesh, config.batch_size, micro, config.seq_len)
    optimizer, schedule = make_optimizer(config.optimizer, model, total_steps=1000)
    holder = {"state": create_state(model, mesh, optimizer, config.seed)}
    train_step = make_train_step(model, optimizer, schedule, mesh, layout.sharding, int(config.loss_chunk))
    global_batch = {k: jax.device_put(v.reshape(layout.global_shape), layout.sharding) for k, v in batch.items()}

    def step() -> float:
        holder["state"], m = train_step(holder["state"], global_batch)
        return float(m["loss"])  # blocks

    device = jax.devices()[0]
    peak = metrics_lib.peak_flops_per_device(device, model.dtype, config.peak_flops_cpu)
    peak_note = "table" if device.platform != "cpu" else "config.peak_flops_cpu"
    if peak is None and device.platform == "cpu":
        peak, peak_note = metrics_lib.measured_cpu_peak(2048, 5) / jax.local_device_count(), "measured f32 matmul"
    info = {"name": "mathjax", "params": model.num_params(), "flops_per_token": model.flops_per_token(config.seq_len),
            "devices": mesh.size, "device": device.device_kind, "peak_flops_per_device": peak,
            "peak_source": peak_note}
    return step, info


def build_torch(config, batch):
    """``(step_fn, info)`` for transformers' LlamaForCausalLM + torch AdamW, float32."""
    import torch
    import transformers

    from mathjax.model.config import get_preset
    from mathjax.train.trainer import model_overrides

    torch.set_num_threads(_cpus())
    torch.manual_seed(0)
    cfg = get_preset(config.model, **model_overrides(config))
    hf = transformers.AutoConfig.for_model(**{k: v for k, v in cfg.to_hf_dict().items() if k != "architectures"})
    model = transformers.LlamaForCausalLM(hf).float().train()
    opt = config.optimizer
    optimizer = torch.optim.AdamW(model.parameters(), lr=opt.lr, betas=(opt.b1, opt.b2), eps=opt.eps,
                                  weight_decay=opt.weight_decay)
    tokens = torch.from_numpy(batch["tokens"]).long()
    targets = torch.from_numpy(batch["targets"]).long()
    micro = config.micro_batches

    def step() -> float:
        optimizer.zero_grad(set_to_none=True)
        total = 0.0
        for x, y in zip(tokens.chunk(micro), targets.chunk(micro)):
            logits = model(input_ids=x).logits
            loss = torch.nn.functional.cross_entropy(logits.float().view(-1, logits.shape[-1]), y.reshape(-1))
            (loss / micro).backward()
            total += loss.item() / micro
        if opt.clip_norm > 0:
            torch.nn.utils.clip_grad_norm_(model.parameters(), opt.clip_norm)
        optimizer.step()
        return total

    info = {"name": f"transformers {transformers.__version__} / torch {torch.__version__}",
            "threads": torch.get_num_threads(), "attn_implementation": model.config._attn_implementation}
    return step, info


def _timed(step) -> tuple[float, float]:
    t = time.perf_counter()
    loss = step()
    return time.perf_counter() - t, loss


def _build(name: str, config, batch, micro: int):
    return build_mathjax(config, batch, micro) if name == "mathjax" else build_torch(config, batch)


class _InProcess:
    """One side built in this process."""

    def __init__(self, name: str, config, batch, micro: int):
        self._step, self.info = _build(name, config, batch, micro)

    def step(self) -> tuple[float, float]:
        return _timed(self._step)

    def close(self) -> None:
        pass


def _serve(name: str, config, batch, micro: int, conn) -> None:
    """Worker process: build one side, then time one step per request until told to stop."""
    try:
        step, info = _build(name, config, batch, micro)
        conn.send(("ok", info))
        while conn.recv():
            conn.send(("ok", _timed(step)))
    except Exception as e:  # report to the parent instead of hanging it
        conn.send(("error", f"{type(e).__name__}: {e}"))
        raise


class _Worker:
    """One side in its own (spawned) process; the timing happens inside the worker."""

    def __init__(self, name: str, config, batch, micro: int):
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # a fresh interpreter: no shared heap, no forked JAX state
        self._conn, child = ctx.Pipe()
        self._proc = ctx.Process(target=_serve, args=(name, config, batch, micro, child), daemon=True)
        self._proc.start()
        self.name = name
        self.info = self._reply()

    def _reply(self):
        try:
            status, value = self._conn.recv()
        except EOFError:
            raise RuntimeError(f"{self.name} worker died (exit code {self._proc.exitcode})") from None
        if status != "ok":
            raise RuntimeError(f"{self.name} worker failed: {value}")
        return value

    def step(self) -> tuple[float, float]:
        self._conn.send(True)
        return self._reply()

    def close(self) -> None:
        if self._proc.is_alive():
            try:
                self._conn.send(False)
            except (BrokenPipeError, OSError):
                pass
            self._proc.join(timeout=60)
            if self._proc.is_alive():
                self._proc.kill()


def _summary(info: dict, times: list[float], loss: float, tokens: int, flops_per_token: float,
             peak_total: float | None) -> dict:
    med = statistics.median(times)
    tps = tokens / med
    return {**info, "step_s": med, "step_s_min": min(times), "step_s_all": times, "tokens_per_sec": tps,
            "loss": loss, "mfu": flops_per_token * tps / peak_total if peak_total else None}


def _line(r: dict) -> str:
    mfu = f"{100 * r['mfu']:.1f}%" if r.get("mfu") is not None else "n/a"
    return (f"{r['name']:<40} {r['tokens_per_sec']:>9,.0f} tok/s  {r['step_s']:.3f} s/step (median; min "
            f"{r['step_s_min']:.3f})  MFU {mfu}  loss {r['loss']:.3f}")


def main(argv):
    del argv
    if _CPU_DEVICES.value:  # before JAX initialises its backends
        os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") +
                                   f" --xla_force_host_platform_device_count={_CPU_DEVICES.value}").strip()
    config = _CONFIG.value
    batch, micro = _batch(config, _vocab(config))
    tokens = config.batch_size * config.seq_len
    print(f"model {config.model} ({_params(config) / 1e6:.1f}M params), batch {config.batch_size} x {config.seq_len}, "
          f"micro_batches {micro}, compute {config.compute_dtype}, params {config.param_dtype}, "
          f"remat {config.remat_policy}, loss_chunk {config.loss_chunk}, mesh {config.mesh}, {_cpus()} CPUs, "
          f"XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}", flush=True)
    names = ["mathjax"]
    if _TORCH.value:
        try:
            import torch  # noqa: F401
            import transformers  # noqa: F401
        except ImportError:
            print("torch/transformers not installed: no comparison")
        else:
            names.append("torch")
    sides = {name: (_Worker if _ISOLATE.value else _InProcess)(name, config, batch, micro) for name in names}
    ours_info = sides["mathjax"].info
    peak_total = (ours_info["peak_flops_per_device"] or 0) * ours_info["devices"] or None
    try:
        for side in sides.values():
            for _ in range(_WARMUP.value):
                side.step()
        # Alternate the two sides step by step so that load from other processes
        # on a shared host hits both alike; report medians.
        times = {name: [] for name in sides}
        losses = {}
        for _ in range(_STEPS.value):
            for name, side in sides.items():
                dt, losses[name] = side.step()
                times[name].append(dt)
    finally:
        for side in sides.values():
            side.close()
    results = {"config": json.loads(config.to_json_best_effort())}
    for name, side in sides.items():
        info = side.info
        results[name] = _summary(info, times[name], losses[name], tokens, ours_info["flops_per_token"], peak_total)
        extra = ""
        if name == "mathjax" and peak_total:
            extra = f"  (peak {ours_info['peak_flops_per_device'] / 1e9:.0f} GFLOP/s per device, {ours_info['peak_source']})"
        elif name == "torch":
            extra = f"  ({info['threads']} threads, attention {info['attn_implementation']})"
        print(_line(results[name]) + extra)
    if "torch" in results:
        ratio = results["mathjax"]["tokens_per_sec"] / results["torch"]["tokens_per_sec"]
        ratio_min = results["torch"]["step_s_min"] / results["mathjax"]["step_s_min"]
        print(f"ratio mathjax / transformers tokens/s: {ratio:.2f}x (median), {ratio_min:.2f}x (best step)")
        results["ratio"] = ratio
    if _JSON.value:
        with open(_JSON.value, "w") as f:
            json.dump(results, f, indent=2, default=str)


def _vocab(config) -> int:
    from mathjax.model.config import get_preset
    from mathjax.train.trainer import model_overrides

    return get_preset(config.model, **model_overrides(config)).vocab_size


def _params(config) -> int:
    from mathjax.model.config import get_preset
    from mathjax.train.trainer import model_overrides

    return get_preset(config.model, **model_overrides(config)).num_params()


if __name__ == "__main__":
    app.run(main)
