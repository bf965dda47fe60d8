"""Reading the sampler's JSONL and the fields the grader needs from a record.

One line per question::

    {"id", "question", "answer", "prompt",
     "samples": [{"text", "num_tokens", "finish_reason"}, ...],
     "level"?, "type"?/"subject"?, "steps"?}

Large files are never loaded whole by the parent: :func:`line_offsets` finds
where each line starts and workers read their own lines (so a 1.28M-sample
file is not pickled through pipes).

Paths may be local or URIs (``gs://bucket/samples.jsonl``): :func:`open_path`
opens URIs through :mod:`etils.epath` (gcsfs for ``gs://``), as
``mathjax.io.paths`` does for the rest of the project; the grader keeps its
own small copy because it imports no other mathjax package.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Iterator
from typing import IO, Any

from mathjax.grader.extract import extract_answer
from mathjax.grader.normalize import last_boxed

Record = dict
_URI = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*://")


def is_uri(path: str | os.PathLike) -> bool:
    """True for ``scheme://...`` paths (object stores), False for local paths."""
    return bool(_URI.match(os.fspath(path)))


def open_path(path: str | os.PathLike, mode: str = "r") -> IO[Any]:
    """``open`` for local paths and URIs; text is UTF-8. URIs take modes r, w, rb, wb."""
    path = os.fspath(path)
    if not is_uri(path):
        return open(path, mode) if "b" in mode else open(path, mode, encoding="utf-8")
    if mode.replace("b", "") not in ("r", "w"):
        raise ValueError(f"{path}: mode {mode!r} is not supported on object stores")
    if path.split("://", 1)[0] not in ("gs", "s3", "az", "hf"):  # epath would take others for local names
        raise ValueError(f"{path}: unsupported storage scheme (supported: gs://, s3://, az://, hf://)")
    from etils import epath

    raw = epath.Path(path).open(mode if "b" in mode else mode + "b")
    return raw if "b" in mode else io.TextIOWrapper(raw, encoding="utf-8", newline="")


def make_dirs(path: str | os.PathLike) -> None:
    """``mkdir -p`` for local dirs; object stores have no directories to make."""
    if not is_uri(path):
        os.makedirs(path, exist_ok=True)


def join_path(base: str | os.PathLike, name: str) -> str:
    base = os.fspath(base)
    return f"{base.rstrip('/')}/{name}" if is_uri(base) else os.path.join(base, name)


def line_offsets(path: str | os.PathLike) -> list[tuple[int, int]]:
    """(offset, length) of every non-blank line of a JSONL file."""
    out = []
    pos = 0
    with open_path(path, "rb") as f:
        for line in f:
            if line.strip():
                out.append((pos, len(line)))
            pos += len(line)
    return out


def read_lines(path: str | os.PathLike, spans: list[tuple[int, int]]) -> Iterator[Record]:
    """Parse the records at the given (offset, length) spans."""
    with open_path(path, "rb") as f:
        for off, length in spans:
            f.seek(off)
            yield json.loads(f.read(length))


def read_jsonl(path: str | os.PathLike) -> list[Record]:
    """All records of a JSONL file (small files, tests)."""
    with open_path(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def gold_answer(record: Record) -> str | None:
    """The reference answer of a record.

    ``final_answer`` if present; else ``answer``, which may be bare (``"72"``,
    ``"\\\\frac{1}{2}"``) or a worked solution (GSM8K ``#### N``, a last
    ``\\\\boxed{}``, or a final ``The answer is: N.`` line); else the last box of
    ``solution`` (MATH).
    """
    fa = record.get("final_answer")
    if fa is not None and str(fa).strip():
        return str(fa).strip()
    ans = record.get("answer")
    if ans is not None:
        ans = str(ans).strip()
        if "####" in ans:
            return ans[ans.rfind("####") + 4 :].strip().split("\n")[0].strip() or None
        if "\\boxed" in ans or "\\fbox" in ans:
            return last_boxed(ans)
        if "\n" in ans or "answer is" in ans.lower():
            return extract_answer(ans, fallback=None) or ans
        return ans or None
    sol = record.get("solution")
    if sol:
        return extract_answer(str(sol), fallback=None)
    return None


def sample_texts(record: Record) -> list[str]:
    """The texts of a record's samples (strings also accepted as samples)."""
    out = []
    for s in record.get("samples") or []:
        if isinstance(s, dict):
            t = s.get("text")
            out.append(t if isinstance(t, str) else "")
        elif isinstance(s, str):
            out.append(s)
        else:
            out.append("")
    return out


def subject_of(record: Record) -> str | None:
    v = record.get("type", record.get("subject"))
    return str(v) if v is not None else None


def level_of(record: Record) -> str | None:
    v = record.get("level")
    if v is None:
        return None
    v = str(v)
    return v if v.lower().startswith("level") else f"Level {v}"


def worked_solution(record: Record) -> str | None:
    """A reference worked solution when the record has one (for step counts)."""
    for key in ("solution", "answer"):
        v = record.get(key)
        if isinstance(v, str) and ("\n" in v.strip() or len(v) > 80):
            return v
    return None
