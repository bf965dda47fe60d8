"""Measures the accelerator at hand: matmul peak, train-step MFU, sampler tokens/s, fused attention.

    python scripts/validate_device.py [--train_layers=8] [--sample_layers=32] [--json_out=FILE]

Uses llama2_7b shapes with fewer layers where memory is short; prints one table.
"""

import json

from absl import app, flags

from mathjax.experiments.validate_device import validate

TRAIN_LAYERS = flags.DEFINE_integer("train_layers", 8, "llama2_7b layers in the train-step measurement.")
SAMPLE_LAYERS = flags.DEFINE_integer("sample_layers", 32, "llama2_7b layers in the sampler measurement.")
BATCH = flags.DEFINE_integer("train_batch", 8, "Rows per train step.")
SEQ = flags.DEFINE_integer("seq_len", 2048, "Train sequence length.")
JSON_OUT = flags.DEFINE_string("json_out", None, "Also write the results as JSON.")


def main(argv):
    del argv
    results = validate(TRAIN_LAYERS.value, SAMPLE_LAYERS.value, BATCH.value, SEQ.value)
    print("\n| measurement | result |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {json.dumps(value, default=str)} |")
    if JSON_OUT.value:
        with open(JSON_OUT.value, "w") as f:
            json.dump(results, f, indent=2, default=str)


if __name__ == "__main__":
    app.run(main)
