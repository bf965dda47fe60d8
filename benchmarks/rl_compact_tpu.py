"""The GRPO update with zero-advantage rows left out, compiled by the TPU compiler for a real slice.

  pip install libtpu   # the TPU compiler; runs on a CPU host
  python benchmarks/rl_compact_tpu.py [--config=configs/qwen2_5_math_1_5b_grpo.py --topology=v4-32 \
      --mesh=data:1,fsdp:16,tensor:1 --rows=128]

Three compiles of the same minibatch update (``mathjax.rl.step.make_rl_step``) on
abstract inputs: the full minibatch as before this change (no loss denominators),
the full minibatch as the trainer now calls it (with ``num_samples`` /
``num_tokens``), and the half-rows bucket ``mathjax.rl.compact`` trains when half
the groups have equal rewards. Printed per chip: peak memory, and the
collectives read from the compiled HLO, with the ratios full / half.
"""

import jax
import jax.numpy as jnp
from absl import app, flags

_CONFIG = flags.DEFINE_string("config", "configs/qwen2_5_math_1_5b_grpo.py", "An RL config file.")
_TOPOLOGY = flags.DEFINE_string("topology", "v4-32", "Cloud TPU slice type.")
_MESH = flags.DEFINE_string("mesh", "data:1,fsdp:16,tensor:1", "Mesh over the slice's chips.")
_ROWS = flags.DEFINE_integer("rows", 128, "Rows of the full minibatch.")


def main(_):
    from mathjax.experiments.demo import load_config_file
    from mathjax.rl import compact
    from mathjax.rl.fit_check import _batch
    from mathjax.rl.step import is_on_policy, make_rl_step
    from mathjax.train.fit_check import _compile, _peak, collectives_of, fit_target, train_model_config
    from mathjax.train.optimizer import make_optimizer
    from mathjax.train.state import abstract_state, replicated

    c = load_config_file(_CONFIG.value)
    mesh, _ = fit_target(_MESH.value, _TOPOLOGY.value, None)
    model = train_model_config(c)
    optimizer, schedule = make_optimizer(c.optimizer, model, 10)
    state = abstract_state(model, mesh, optimizer)
    step = make_rl_step(model, optimizer, schedule, mesh, c.rl, int(c.rl.max_new_tokens), on_policy=is_on_policy(c.rl))
    rows, seq = _ROWS.value, int(c.seq_len)
    half = compact.bucket_rows(rows // 2, rows, mesh.shape["data"] * mesh.shape["fsdp"])
    processes = sorted({d.process_index for d in mesh.devices.flat})
    print(f"{c.model} on {_TOPOLOGY.value} ({mesh.size} chips, processes {processes}), mesh {dict(mesh.shape)}, "
          f"{rows} x {seq} minibatch")
    results = {}
    for name, n, denominators in (("full, no denominators", rows, False), ("full + denominators", rows, True),
                                  (f"{half} rows + denominators", half, True)):
        batch = _batch(mesh, n, seq)
        if denominators:
            batch.update({k: jax.ShapeDtypeStruct((), jnp.float32, sharding=replicated(mesh))
                          for k in compact.DENOMINATORS})
        _, compiled, _, seconds = _compile(step, state, batch)
        peak, _ = _peak(compiled)
        stats = collectives_of(compiled)
        results[name] = (peak, stats)
        ops = ", ".join(f"{k} {stats.counts[k]} ops / {stats.bytes[k] / 2**30:.2f} GiB" for k in stats.counts
                        if stats.counts[k])
        print(f"| {name} | peak {peak / 2**30:.2f} GiB/chip | {ops} | compile {seconds:.0f} s |")
    (full_peak, full), (half_peak, small) = results["full + denominators"], results[f"{half} rows + denominators"]
    print(f"full / half: peak {full_peak / half_peak:.2f}x, collective bytes "
          f"{sum(full.bytes.values()) / max(1, sum(small.bytes.values())):.2f}x")


if __name__ == "__main__":
    app.run(main)
