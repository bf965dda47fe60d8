"""Installs the project on every worker: code (git clone, or a tarball of the local tree) + `pip install -e .[tpu]`.

    python scripts/tpu/install.py --name=sft --zone=us-central2-b [--repo_url=URL --ref=main] [--dry_run]

Safe to re-run: it updates the code and the venv (~/mathjax/.venv) in place.
"""

from absl import flags

import common
from mathjax.launch import tpu

INSTALL = common.define_install_flags()

flags.adopt_module_key_flags(common)  # --help lists the shared flags too


def main(argv):
    del argv
    common.execute(tpu.install_plan(common.target(), INSTALL()))


if __name__ == "__main__":
    common.run(main)
