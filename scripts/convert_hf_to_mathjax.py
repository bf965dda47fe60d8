"""Hugging Face model dir -> mathjax checkpoint (streamed onto the mesh, written atomically).

    python scripts/convert_hf_to_mathjax.py --hf_dir=DIR --output_dir=DIR [--mesh=fsdp:-1]
"""

from absl import app, flags

import mathjax

HF_DIR = flags.DEFINE_string("hf_dir", None, "Hugging Face model directory (config.json + *.safetensors).", required=True)
OUT = flags.DEFINE_string("output_dir", None, "Where to write the mathjax checkpoint.", required=True)
MESH = flags.DEFINE_string("mesh", None, "Mesh spec, e.g. 'fsdp:-1' (default: one device).")
DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"], "Stored parameter dtype.")


def main(argv):
    del argv
    model = mathjax.load(HF_DIR.value, dtype=DTYPE.value, mesh=MESH.value)
    path = model.save(OUT.value)
    print(f"wrote mathjax checkpoint {path} ({model.config.num_params() / 1e6:.1f}M params)")


if __name__ == "__main__":
    app.run(main)
