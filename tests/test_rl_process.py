"""Process supervision from the grader's arithmetic check (GRPO+PS): steps, token ends, advantages by hand."""

import jax.numpy as jnp
import numpy as np
import pytest

from mathjax.rl import grpo
from mathjax.rl.process import locate_steps, process_advantages, sample_steps, token_ends


def test_locate_steps_finds_each_equation_and_its_verdict():
    text = "Leo is 14 * 4 = 68 years old. Then 68 + 2 = 70.\nThe answer is: 70."
    steps = locate_steps(text)
    assert [(text[a:b], ok) for a, b, ok in steps] == [("14 * 4 = 68", False), ("68 + 2 = 70", True)]
    assert locate_steps("No arithmetic here. The answer is: 5.") == []
    assert locate_steps("x + 3 = 5 so x = 2") == []  # algebra is not checked, so never credited


class CharTokenizer:
    """One token per character, ids = code points (decoding a prefix is a prefix)."""

    @staticmethod
    def decode(ids):
        return "".join(map(chr, ids))


class PairTokenizer:
    """Two characters per token: a step may end inside a token."""

    def __init__(self, text):
        self.pieces = [text[i : i + 2] for i in range(0, len(text), 2)]

    def decode(self, ids):
        return "".join(self.pieces[i] for i in ids)


def test_token_ends_by_bisection():
    text = "ab = 12, 3 + 4 = 7"
    ids = [ord(c) for c in text]
    assert token_ends(CharTokenizer.decode, ids, [1, 5, len(text)]) == [1, 5, len(text)]
    pairs = PairTokenizer(text)
    pids = list(range(len(pairs.pieces)))
    # character 5 ends inside token 2 ("= " covers 4-5): three tokens reach it
    assert token_ends(pairs.decode, pids, [5, 6, len(text)]) == [3, 3, len(pairs.pieces)]


def test_sample_steps_on_token_ids():
    text = "He has 3 + 4 = 8 apples, 8 * 2 = 16."
    ids = [ord(c) for c in text]
    steps = sample_steps(text, ids, CharTokenizer.decode)
    assert steps == [(text.index("8 apples") + 1, False), (len(text) - 1, True)]


def test_process_advantages_by_hand():
    # One group of 3 samples: sample 0 has steps ending at tokens 2 (right) and 4 (wrong),
    # sample 1 one right step ending at 3, sample 2 no step. Step rewards [1, 0, 1]:
    # mean 2/3, sample std (ddof=1) sqrt(1/3); right -> (1/3)/0.57735 = 0.57735, wrong -> -1.1547.
    steps = [[(2, True), (4, False)], [(3, True)], []]
    adv = process_advantages(steps, [5, 4, 3], group_size=3, eps=0.0)
    r_ok, r_bad = (1 / 3) / np.sqrt(1 / 3), (-2 / 3) / np.sqrt(1 / 3)
    # Tokens 0-1 come before both steps of sample 0: both steps' credit; tokens 2-3 only the wrong one's.
    np.testing.assert_allclose(adv[0], [r_ok + r_bad, r_ok + r_bad, r_bad, r_bad, 0.0], rtol=1e-6)
    np.testing.assert_allclose(adv[1], [r_ok, r_ok, r_ok, 0.0], rtol=1e-6)
    np.testing.assert_allclose(adv[2], [0.0, 0.0, 0.0])
    # All steps right in a group: no process signal (std 0), as GRPO's equal-reward groups.
    same = process_advantages([[(1, True)], [(2, True)]], [3, 3], group_size=2)
    assert all(not a.any() for a in same)
    with pytest.raises(ValueError, match="groups of 2"):
        process_advantages([[]] * 3, [1, 1, 1], group_size=2)


def test_policy_loss_takes_per_token_advantages():
    # Ratio 1 (on-policy): the sequence-aggregated loss is -mean over each sample's tokens of A_t.
    logp = jnp.zeros((2, 3))
    adv = jnp.asarray([[1.0, 2.0, 3.0], [-1.0, 0.0, 5.0]])
    mask = jnp.asarray([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    loss, _ = grpo.policy_loss(logp, logp, adv, mask, jnp.ones(2))
    assert float(loss) == pytest.approx(-((1 + 2) / 2 + (-1 + 0 + 5) / 3) / 2)
    # A per-sample advantage is the same as that value on every token.
    flat, _ = grpo.policy_loss(logp, logp, jnp.asarray([2.0, -1.0]), mask, jnp.ones(2))
    tiled, _ = grpo.policy_loss(logp, logp, jnp.asarray([[2.0] * 3, [-1.0] * 3]), mask, jnp.ones(2))
    assert float(flat) == pytest.approx(float(tiled))
