"""mathjax checkpoint (or training workdir) -> Hugging Face model dir loadable by transformers and vLLM.

    python scripts/convert_mathjax_to_hf.py --checkpoint_dir=DIR --output_dir=DIR [--dtype=bfloat16]
"""

from absl import app, flags

import mathjax

CKPT = flags.DEFINE_string("checkpoint_dir", None, "mathjax checkpoint, training workdir, or HF dir.", required=True)
OUT = flags.DEFINE_string("output_dir", None, "Where to write the Hugging Face model.", required=True)
DTYPE = flags.DEFINE_enum("dtype", "float32", ["float32", "bfloat16", "float16"], "Exported tensor dtype.")
MESH = flags.DEFINE_string("mesh", None, "Mesh spec for loading (default: one device).")
SHARD = flags.DEFINE_integer("max_shard_gb", 5, "Split safetensors files above this size (GiB).")
TOKENIZER = flags.DEFINE_string("tokenizer", None, "Tokenizer dir or .model file, if the checkpoint has none.")


def main(argv):
    del argv
    model = mathjax.load(CKPT.value, dtype="float32", mesh=MESH.value)
    if TOKENIZER.value:
        model.tokenizer_path = TOKENIZER.value
    path = model.save_hf(OUT.value, dtype=DTYPE.value, max_shard_bytes=SHARD.value * 1024**3)
    print(f"wrote Hugging Face model {path}")


if __name__ == "__main__":
    app.run(main)
