"""Compares mathjax logits with transformers (PyTorch, float32); exit status 1 above the tolerance.

    python scripts/check_parity.py --hf_dir=DIR [--checkpoint_dir=DIR] [--tolerance=1e-4]
"""

import sys

from absl import app, flags

from mathjax.convert.parity import max_logit_diff

HF = flags.DEFINE_string("hf_dir", None, "Hugging Face model directory.", required=True)
CKPT = flags.DEFINE_string("checkpoint_dir", None, "mathjax checkpoint to compare (default: import hf_dir).")
TOL = flags.DEFINE_float("tolerance", 1e-4, "Maximum allowed |logit difference|.")
LENGTH = flags.DEFINE_integer("length", 32, "Random sequence length.")
MESH = flags.DEFINE_string("mesh", None, "Mesh spec for the mathjax side.")


def main(argv):
    del argv
    diff = max_logit_diff(HF.value, CKPT.value, length=LENGTH.value, mesh=MESH.value)
    ok = diff <= TOL.value
    print(f"max |logit diff| = {diff:.3e} (tolerance {TOL.value:.0e}): {'OK' if ok else 'FAIL'}")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    app.run(main)
