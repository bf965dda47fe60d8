"""Samples a model dir on a mesh spanning all processes (a pod-wide model), through the runner.

  python tests/sample_worker.py MODEL_DIR QUESTIONS_JSONL OUT_DIR MESH [MESH ...]
      [--coordinator_address=H:P --num_processes=2 --process_id=I]

For each mesh spec, one ``runner.run`` over all devices of all processes
writes OUT_DIR/<mesh>.jsonl (a shard per process); process 0 also writes
OUT_DIR/<mesh>.compiles.json after a second, identical run in the same
process (which must compile nothing).
"""

from __future__ import annotations

import argparse
import json
import os
import sys

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

SETTINGS = dict(num_samples=5, template="xwin_math", max_new_tokens=14, seed=4, batch_size=8, progress=False)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("model")
    parser.add_argument("questions")
    parser.add_argument("out")
    parser.add_argument("meshes", nargs="+")
    parser.add_argument("--coordinator_address", default=None)
    parser.add_argument("--num_processes", type=int, default=None)
    parser.add_argument("--process_id", type=int, default=None)
    args = parser.parse_args()

    from mathjax.parallel.mesh import initialize_distributed

    initialize_distributed(args.coordinator_address, args.num_processes, args.process_id)
    import jax

    import mathjax
    from mathjax.parallel.mesh import make_mesh
    from mathjax.sample import SamplingRules, runner
    from mathjax.sample.compiled import total_compile_counts

    records = runner.read_jsonl_records(args.questions)
    rules = SamplingRules(temperature=0.9, top_k=50)
    for spec in args.meshes:
        mesh = make_mesh(spec, devices=jax.devices())
        model = mathjax.load(args.model, mesh=mesh).for_sampling()
        out = os.path.join(args.out, spec.replace(":", "").replace(",", "_") + ".jsonl")
        runner.run(model, model.tokenizer(), records, out, rules=rules, **SETTINGS)
        before = total_compile_counts()
        again = os.path.join(args.out, "again-" + os.path.basename(out))
        runner.run(model, model.tokenizer(), records, again, rules=rules, **SETTINGS)
        if jax.process_index() == 0:
            with open(out + ".compiles.json", "w") as f:
                json.dump({"before": before, "after": total_compile_counts()}, f)


if __name__ == "__main__":
    main()
