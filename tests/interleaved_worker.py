"""A few SFT steps on a mesh whose batch axis alternates between processes, as on a real TPU pod.

  python tests/interleaved_worker.py DATA TOKENIZER OUT_JSON [--order=interleave|natural]
      [--coordinator_address=H:P --num_processes=2 --process_id=I]

On a v4-32 ``jax.make_mesh`` lays the ``fsdp`` axis over processes
0,1,2,3,0,1,...; here two CPU processes of 4 devices each build an
``fsdp:8`` mesh in the order p0,p1,p0,p1,... so each process holds batch rows
0,2,4,6 (not contiguous). Process 0 writes the per-step losses and every
process's local row ids to OUT_JSON (suffixed with the process id).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("data")
    parser.add_argument("tokenizer")
    parser.add_argument("out")
    parser.add_argument("--order", default="natural", choices=["natural", "interleave"])
    parser.add_argument("--coordinator_address", default=None)
    parser.add_argument("--num_processes", type=int, default=None)
    parser.add_argument("--process_id", type=int, default=None)
    parser.add_argument("--steps", type=int, default=3)
    args = parser.parse_args()

    from mathjax.parallel.mesh import initialize_distributed

    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    import jax
    from sft_fixtures import tiny_config

    from mathjax.data import sft
    from mathjax.data.tokenizer import load_tokenizer
    from mathjax.parallel.mesh import make_mesh
    from mathjax.train import trainer
    from mathjax.train.optimizer import make_optimizer
    from mathjax.train.state import create_state
    from mathjax.train.step import make_train_step

    devices = sorted(jax.devices(), key=lambda d: (d.process_index, d.id))
    if args.order == "interleave":
        by_process = [[d for d in devices if d.process_index == p] for p in range(jax.process_count())]
        devices = [d for group in zip(*by_process) for d in group]
    config = tiny_config(args.data, args.tokenizer, mesh="data:1,fsdp:8,tensor:1", seed=3)
    mesh = make_mesh(config.mesh, devices=devices)
    tokenizer = load_tokenizer(args.tokenizer)
    model = trainer.resolve_model_config(config, tokenizer)
    layout = sft.BatchLayout(mesh, config.batch_size, config.micro_batches, config.seq_len)
    batches = sft.build_batches(config.data.train_files, tokenizer, layout, trainer._data_options(config),
                                config.seed)
    optimizer, schedule = make_optimizer(config.optimizer, model, args.steps)
    state = create_state(model, mesh, optimizer, config.seed)
    step = make_train_step(model, optimizer, schedule, mesh, layout.sharding)
    losses = []
    for i in range(args.steps):
        state, metrics = step(state, batches.global_batch(i))
        losses.append(float(metrics["loss"]))
    report = {"losses": losses, "local_row_ids": layout.local_row_ids.tolist(),
              "mesh_processes": [d.process_index for d in mesh.devices.flat]}
    with open(f"{args.out}.{jax.process_index()}", "w") as f:
        json.dump(report, f)


if __name__ == "__main__":
    main()
