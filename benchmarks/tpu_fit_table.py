"""The deployment guide's TPU memory table, from the TPU compiler (libtpu) instead of arithmetic.

  pip install libtpu
  JAX_PLATFORMS=cpu python benchmarks/tpu_fit_table.py            # every TPU row of docs/deployment.md
  JAX_PLATFORMS=cpu python benchmarks/tpu_fit_table.py --only=7b   # rows whose model matches

For each recommended (model, slice, mesh, rows, micro-batches, remat) row it
compiles the real train step for that Cloud TPU slice on this host
(``train_fit_check(..., topology=...)``) and prints one markdown row: state,
XLA's temporaries and peak per chip against the chip's HBM, and the step's
collectives per chip. A row that does not fit prints DOES NOT FIT; the guide
keeps only rows that fit. Sequence length 2048, as in the configs.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

from absl import app, flags  # noqa: E402

_ONLY = flags.DEFINE_string("only", "", "Only rows whose model name contains this (e.g. 7b, 70b).")
_JSON = flags.DEFINE_string("json", "", "Also write the rows as JSON lines here.")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@dataclasses.dataclass(frozen=True)
class Row:
    model: str  # llama2_7b, ...
    topology: str
    mesh: str
    rows_per_shard: int  # rows per data x fsdp shard per micro-batch
    micro_batches: int
    remat: str


ROWS = (
    Row("llama2_7b", "v4-32", "data:1,fsdp:-1,tensor:1", 2, 2, "dots"),
    Row("llama2_7b", "v5litepod-16", "data:1,fsdp:-1,tensor:1", 4, 1, "full"),
    Row("llama2_7b", "v5p-8", "data:1,fsdp:-1,tensor:1", 4, 4, "none"),
    Row("llama2_7b", "v6e-8", "data:1,fsdp:-1,tensor:1", 8, 1, "full"),
    Row("llama2_13b", "v4-32", "data:1,fsdp:-1,tensor:1", 4, 1, "full"),
    Row("llama2_13b", "v5litepod-32", "data:1,fsdp:-1,tensor:1", 2, 1, "full"),
    Row("llama2_13b", "v5p-16", "data:1,fsdp:-1,tensor:1", 4, 2, "dots"),
    Row("llama2_13b", "v6e-16", "data:1,fsdp:-1,tensor:1", 4, 1, "full"),
    Row("llama2_70b", "v4-128", "data:1,fsdp:-1,tensor:1", 1, 1, "full"),
    Row("llama2_70b", "v5litepod-256", "data:1,fsdp:64,tensor:4", 1, 1, "full"),
    Row("llama2_70b", "v5p-64", "data:1,fsdp:-1,tensor:1", 2, 1, "full"),
    Row("llama2_70b", "v6e-64", "data:1,fsdp:-1,tensor:1", 1, 1, "full"),
    Row("mistral_7b", "v4-32", "data:1,fsdp:-1,tensor:1", 2, 2, "dots"),
    Row("mistral_7b", "v6e-8", "data:1,fsdp:-1,tensor:1", 8, 1, "full"),
)


def _config(model: str):
    spec = importlib.util.spec_from_file_location(model, os.path.join(REPO, "configs", f"{model}_sft.py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.get_config()


def main(argv):
    del argv
    sys.path.insert(0, REPO)
    from mathjax.parallel.hlo import format_bytes
    from mathjax.parallel.mesh import parse_mesh_spec
    from mathjax.parallel.topology import slice_type
    from mathjax.train.fit_check import GiB, train_fit_check

    print("| model | slice | chips | `mesh` | rows / shard / micro-batch | `micro_batches` | `remat_policy` | "
          "params + optimizer | temporaries | peak / HBM (GiB per chip) | all-gather + permute per step | "
          "all-reduce | reduce-scatter | compile |")
    print("|---|---|---:|---|---:|---:|---|---:|---:|---|---:|---:|---:|---:|")
    out = open(_JSON.value, "w") if _JSON.value else None
    for row in ROWS:
        if _ONLY.value and _ONLY.value not in row.model:
            continue
        chips = slice_type(row.topology).chips
        sizes = parse_mesh_spec(row.mesh, chips)
        config = _config(row.model)
        config.mesh = row.mesh
        config.micro_batches = row.micro_batches
        config.remat_policy = row.remat
        config.batch_size = row.rows_per_shard * sizes["data"] * sizes["fsdp"] * row.micro_batches
        t = time.perf_counter()
        report = train_fit_check(config, topology=row.topology)
        seconds = time.perf_counter() - t
        state = report.memory[f"params ({config.param_dtype})"] + report.memory["optimizer state"]
        c = report.collectives
        verdict = "" if report.fits else " DOES NOT FIT" + (" (compiler refused)" if report.compiler_refused else "")
        moved = (format_bytes(c.bytes["all-gather"] + c.bytes["collective-permute"]), format_bytes(c.bytes["all-reduce"]),
                 format_bytes(c.bytes["reduce-scatter"])) if c is not None else ("-", "-", "-")
        print(f"| {row.model} | {row.topology} | {chips} | `{row.mesh}` | {row.rows_per_shard} | {row.micro_batches} | "
              f"`{row.remat}` | {state / GiB:.1f} | {report.memory['activations + temporaries'] / GiB:.1f} | "
              f"{report.peak_bytes / GiB:.1f} / {report.device_memory / GiB:.0f}{verdict} | "
              f"{moved[0]} | {moved[1]} | {moved[2]} | {seconds:.0f} s |",
              flush=True)
        if out:
            import json

            out.write(json.dumps({**dataclasses.asdict(row), "batch_size": config.batch_size,
                                  **report.as_dict()}, default=str) + "\n")
            out.flush()
    if out:
        out.close()


if __name__ == "__main__":
    app.run(main)
