"""Every SFT key with its default (see mathjax/train/config.py); a starting point for new configs.

  python scripts/train_sft.py --config=configs/base_sft.py --config.model=tiny ...
"""

from mathjax.train.config import base_config


def get_config():
    return base_config()
