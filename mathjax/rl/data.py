"""RL prompts: the SFT trainer's records (``question``, ``answer`` ending in a final answer), in a fixed order.

The gold is the final answer of ``answer`` as the grader reads gold answers
(``#### 72``, ``The answer is: 72``, a last ``\\boxed{}``). Step ``s`` takes
prompts ``[s * P, (s + 1) * P)`` of the concatenation of per-epoch
permutations drawn from the seed, so a resumed run sees exactly the prompts
the uninterrupted one would have, with nothing but the step to remember.
"""

from __future__ import annotations

import json

import numpy as np

from mathjax import grader
from mathjax.io import paths


def read_records(files: str, question_field: str = "question", answer_field: str = "answer") -> list[dict]:
    """Records with ``id``, ``question``, ``gold`` from comma-separated JSONL files; errors name file:line."""
    records = []
    for path in filter(None, (p.strip() for p in files.split(","))):
        if not paths.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
        with paths.open_file(path) as f:
            for line_no, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f"{path}:{line_no}: invalid JSON: {e}") from None
                question, answer = row.get(question_field), row.get(answer_field)
                if not isinstance(question, str) or not isinstance(answer, (str, int, float)):
                    raise ValueError(f"{path}:{line_no}: needs a string {question_field!r} and an {answer_field!r}")
                gold = grader.gold_from_solution(str(answer)) if isinstance(answer, str) else str(answer)
                if gold is None:
                    gold = str(answer).strip() if "\n" not in str(answer).strip() else None
                if not gold:
                    raise ValueError(f"{path}:{line_no}: no final answer in {answer_field!r} (expected e.g. "
                                     "'#### 72', 'The answer is: 72' or a \\boxed{{}})")
                records.append({"id": str(row.get("id", f"{paths.basename(path)}:{line_no}")),
                                "question": question, "gold": gold})
    if not records:
        raise ValueError(f"no records in {files!r}")
    return records


def step_records(records: list[dict], step: int, per_step: int, seed: int) -> list[dict]:
    """The prompts of rollout step ``step`` (see the module docstring)."""
    n = len(records)
    orders: dict[int, np.ndarray] = {}  # a step spans at most a few epochs: draw each once
    out = []
    for k in range(step * per_step, (step + 1) * per_step):
        epoch, index = divmod(k, n)
        if epoch not in orders:
            orders[epoch] = np.random.default_rng([seed, epoch]).permutation(n)
        out.append(records[int(orders[epoch][index])])
    return out
