"""Where SFT and evaluation records come from: JSONL files and Hugging Face ``datasets``.

A *source* is an indexable list of raw records (dicts). Sources are read by
index so that each process of a multi-host run parses only the records it
trains on (see :mod:`mathjax.data.sft`): a JSONL file is scanned once for line
offsets and then only the wanted lines are parsed.

*Presets* name the field layout and answer conversion of known data sets:

=============  ================  ===================  =====================================
preset         question field    answer field         training target
=============  ================  ===================  =====================================
``gsm8k``      ``question``      ``answer``           ``templates.gsm8k_to_target``
``math``       ``problem``       ``solution``         ``templates.math_to_target``
``procedural`` ``question``      ``answer``           the answer as is (already ends with
                                                      ``The answer is: N.``)
``text``       (none)            ``text``             the whole document (pretraining: every
                                                      token is trained on; template ``none``)
(none)         configurable      configurable         the answer as is
=============  ================  ===================  =====================================

A malformed record raises :class:`BadRecordError` naming the file and line (or
hub dataset and row); with ``skip_bad_lines`` it is skipped and counted.

:func:`load_eval_set` serves the sampler: benchmark questions with their bare
gold answers.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import Any

import numpy as np

from mathjax.data import templates
from mathjax.io import paths

# Hub ids used when a preset is asked for by name without files.
HUB_DATASETS: dict[str, tuple[tuple[str, str | None], ...]] = {
    "gsm8k": (("openai/gsm8k", "main"), ("gsm8k", "main")),
    "math": (
        ("hendrycks/competition_math", None),
        ("lighteval/MATH", "all"),
        ("EleutherAI/hendrycks_math", None),
    ),
}


class BadRecordError(ValueError):
    """A record that cannot be used; ``location`` is ``file:line`` or ``dataset[split] row i``."""

    def __init__(self, location: str, message: str):
        super().__init__(f"{location}: {message}")
        self.location = location


@dataclasses.dataclass(frozen=True)
class Preset:
    """Field names and answer conversion of a known data set."""

    name: str
    question_field: str | None  # None: no prompt, the answer field is the whole document
    answer_field: str
    to_target: Callable[[str], str] | None  # raw answer -> training target; None = as is


PRESETS: dict[str, Preset] = {
    "gsm8k": Preset("gsm8k", "question", "answer", templates.gsm8k_to_target),
    "math": Preset("math", "problem", "solution", templates.math_to_target),
    "procedural": Preset("procedural", "question", "answer", None),
    "text": Preset("text", None, "text", None),
}

DEFAULT_QUESTION_FIELD = "question"
DEFAULT_ANSWER_FIELD = "answer"


def resolve_fields(
    dataset: str = "", question_field: str = DEFAULT_QUESTION_FIELD, answer_field: str = DEFAULT_ANSWER_FIELD
) -> Preset:
    """The fields and conversion to use: a preset's, unless a field was changed from its default."""
    if not dataset:
        return Preset("custom", question_field or DEFAULT_QUESTION_FIELD, answer_field or DEFAULT_ANSWER_FIELD, None)
    if dataset not in PRESETS:
        raise ValueError(f"unknown dataset preset {dataset!r}; known: {sorted(PRESETS)} (or '' for custom fields)")
    preset = PRESETS[dataset]
    return dataclasses.replace(
        preset,
        question_field=(question_field if question_field not in ("", DEFAULT_QUESTION_FIELD)
                        and preset.question_field is not None else preset.question_field),
        answer_field=answer_field if answer_field not in ("", DEFAULT_ANSWER_FIELD) else preset.answer_field,
    )


# ---------------------------------------------------------------------------
# Record sources.


class RecordSource:
    """An indexable list of raw records."""

    name: str

    def __len__(self) -> int:
        raise NotImplementedError

    def location(self, index: int) -> str:
        """Human-readable place of record ``index`` (for error messages)."""
        raise NotImplementedError

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        """Yields ``(index, record)`` for sorted ``indices``; a record may be a
        :class:`BadRecordError` instance when it cannot be parsed."""
        raise NotImplementedError


class JsonlSource(RecordSource):
    """A JSONL file (local or a URI such as ``gs://...``); blank lines are ignored, every other line is one record."""

    def __init__(self, path: str):
        self.name = path
        if not paths.isfile(path):
            raise FileNotFoundError(f"{path}: no such file")
        offsets, lines = [], []
        with paths.open_file(path, "rb") as f:
            pos = 0
            for lineno, line in enumerate(f, 1):
                if line.strip():
                    offsets.append(pos)
                    lines.append(lineno)
                pos += len(line)
        self._offsets = np.asarray(offsets, np.int64)
        self._lines = np.asarray(lines, np.int64)

    def __len__(self) -> int:
        return len(self._offsets)

    def location(self, index: int) -> str:
        return f"{self.name}:{int(self._lines[index])}"

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        # Indices come sorted, so remote reads stay sequential (gcsfs reads ahead in blocks).
        with paths.open_file(self.name, "rb") as f:
            for i in indices:
                f.seek(int(self._offsets[i]))
                raw = f.readline()
                try:
                    record = json.loads(raw)
                except (json.JSONDecodeError, UnicodeDecodeError) as e:
                    yield i, BadRecordError(self.location(i), f"invalid JSON ({e})")
                    continue
                if not isinstance(record, dict):
                    yield i, BadRecordError(self.location(i), f"expected a JSON object, got {type(record).__name__}")
                    continue
                yield i, record


class HFSource(RecordSource):
    """A Hugging Face ``datasets.Dataset`` (hub id, local dataset dir, or data files)."""

    def __init__(self, dataset, name: str):
        self._ds = dataset
        self.name = name

    @classmethod
    def load(cls, path: str, config_name: str | None = None, split: str = "train") -> "HFSource":
        """``path``: a hub id, a local dataset directory, or a ``.json/.jsonl/.parquet/.csv`` file."""
        import datasets

        ext = paths.splitext(path)[1].lower()
        builders = {".json": "json", ".jsonl": "json", ".parquet": "parquet", ".csv": "csv"}
        # `datasets` reads fsspec URIs (gs://...) itself.
        if ext in builders and paths.isfile(path):
            ds = datasets.load_dataset(builders[ext], data_files={split: path}, split=split)
        elif paths.isdir(path) and paths.exists(paths.join(path, "dataset_info.json")):
            ds = datasets.load_from_disk(path)
            if isinstance(ds, datasets.DatasetDict):
                ds = ds[split]
        else:
            ds = datasets.load_dataset(path, config_name or None, split=split)
        return cls(ds, f"{path}[{split}]")

    def __len__(self) -> int:
        return len(self._ds)

    def location(self, index: int) -> str:
        return f"{self.name} row {index}"

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        if len(indices) == 0:
            return
        rows = self._ds.select(list(indices))
        for i, record in zip(indices, rows):
            yield i, dict(record)


class ConcatSource(RecordSource):
    """Several sources indexed one after another."""

    def __init__(self, sources: Sequence[RecordSource]):
        self.sources = list(sources)
        self.name = ",".join(s.name for s in self.sources)
        self._starts = np.cumsum([0] + [len(s) for s in self.sources])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def _split(self, index: int) -> tuple[int, int]:
        k = int(np.searchsorted(self._starts, index, side="right") - 1)
        return k, index - int(self._starts[k])

    def location(self, index: int) -> str:
        k, i = self._split(index)
        return self.sources[k].location(i)

    def read(self, indices: Sequence[int]) -> Iterator[tuple[int, Any]]:
        indices = np.asarray(indices, np.int64)
        for k, source in enumerate(self.sources):
            lo, hi = self._starts[k], self._starts[k + 1]
            mine = indices[(indices >= lo) & (indices < hi)]
            for i, record in source.read((mine - lo).tolist()):
                yield int(i + lo), record


def split_paths(paths: str | Sequence[str] | None) -> list[str]:
    """``"a.jsonl,b.jsonl"`` or a list -> list of paths (empty entries dropped)."""
    if not paths:
        return []
    if isinstance(paths, str):
        paths = paths.split(",")
    return [p.strip() for p in paths if p and p.strip()]


def open_source(path: str, split: str = "train", hf_config: str | None = None) -> RecordSource:
    """A JSONL file, another data file or dataset dir (via ``datasets``), or a hub id; files may be URIs."""
    if paths.is_remote(path) and not paths.exists(path):
        raise FileNotFoundError(f"{path}: no such file or directory")  # not a hub id either
    if path.endswith(".jsonl") and paths.isfile(path):
        return JsonlSource(path)
    if path.endswith(".json") and paths.isfile(path):
        # A .json file is either JSON lines or one JSON array; try lines first.
        with paths.open_file(path, "rb") as f:
            head = f.read(1024).lstrip()
        if not head.startswith(b"["):
            return JsonlSource(path)
    return HFSource.load(path, hf_config, split)


def open_sources(
    files: str | Sequence[str] | None = None, hf_dataset: str = "", hf_config: str = "", split: str = "train"
) -> RecordSource:
    """All the training (or eval) records as one source."""
    parts = [open_source(p, split, hf_config or None) for p in split_paths(files)]
    if hf_dataset:
        parts.append(HFSource.load(hf_dataset, hf_config or None, split))
    if not parts:
        raise ValueError("no data: set data.train_files (JSONL) and/or data.hf_dataset")
    return parts[0] if len(parts) == 1 else ConcatSource(parts)


# ---------------------------------------------------------------------------
# Records -> (question, target) pairs.


@dataclasses.dataclass
class ReadStats:
    """Counts of records read and skipped."""

    read: int = 0
    bad: int = 0
    first_bad: str = ""
    bad_indices: list[int] = dataclasses.field(default_factory=list)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def to_pair(record: dict, fields: Preset, location: str) -> tuple[str, str]:
    """(question, training target) of one raw record, or BadRecordError naming ``location``."""
    values = [] if fields.question_field is not None else [""]
    for field in (fields.question_field, fields.answer_field):
        if field is None:
            continue
        if field not in record:
            raise BadRecordError(location, f"missing field {field!r} (has {sorted(record)[:8]})")
        value = record[field]
        if not isinstance(value, str) or not value.strip():
            raise BadRecordError(location, f"field {field!r} must be a non-empty string, got {value!r:.60}")
        values.append(value)
    question, answer = values
    if fields.to_target is not None:
        try:
            answer = fields.to_target(answer)
        except ValueError as e:
            raise BadRecordError(location, f"{fields.name} answer: {e}") from None
    return question, answer


def read_pairs(
    source: RecordSource, indices: Iterable[int], fields: Preset, skip_bad: bool, stats: ReadStats | None = None
) -> Iterator[tuple[int, str, str]]:
    """Yields ``(index, question, target)`` for the given record indices.

    Raises BadRecordError on the first bad record unless ``skip_bad``; skipped
    ones are counted in ``stats``.
    """
    stats = stats if stats is not None else ReadStats()
    for i, record in source.read(sorted(int(i) for i in indices)):
        try:
            if isinstance(record, BadRecordError):
                raise record
            question, target = to_pair(record, fields, source.location(i))
        except BadRecordError as e:
            if not skip_bad:
                raise
            stats.bad += 1
            stats.bad_indices.append(i)
            stats.first_bad = stats.first_bad or str(e)
            continue
        stats.read += 1
        yield i, question, target


# ---------------------------------------------------------------------------
# Evaluation sets for the sampler.


def _gsm8k_final(answer: str) -> str:
    match = templates._GSM8K_FINAL.search(answer)
    if not match:
        raise ValueError("GSM8K answer has no '#### N' final line")
    return match.group(1).replace(",", "").strip()


def _detect_kind(record: dict) -> str:
    if "problem" in record and "solution" in record:
        return "math"
    if "question" in record and "final_answer" in record:
        return "final_answer"
    if "question" in record and isinstance(record.get("answer"), str) and "####" in record["answer"]:
        return "gsm8k"
    if "question" in record and "answer" in record:
        return "plain"
    raise ValueError(f"unrecognised record fields {sorted(record)}")


def _eval_record(record: dict, kind: str, index: int, prefix: str) -> dict:
    """One raw record -> ``{"id", "question", "answer" (bare gold answer), ...extras}``."""
    if kind == "math":
        solution = record["solution"]
        gold = templates.last_boxed(solution)
        if gold is None:
            raise ValueError("MATH solution has no \\boxed{} answer")
        out = {"id": str(record.get("unique_id") or record.get("id") or f"{prefix}-{index}"),
               "question": record["problem"], "answer": gold.strip(), "solution": solution}
        for extra in ("level", "type", "subject"):
            if extra in record:
                out[extra] = record[extra]
        return out
    question = record["question"]
    if kind == "gsm8k":
        out = {"id": str(record.get("id") or f"{prefix}-{index}"), "question": question,
               "answer": _gsm8k_final(record["answer"]), "solution": record["answer"]}
    elif kind == "final_answer":
        out = {"id": str(record.get("id") or f"{prefix}-{index}"), "question": question,
               "answer": str(record["final_answer"]).strip()}
        if isinstance(record.get("answer"), str):
            out["solution"] = record["answer"]
    else:
        out = {"id": str(record.get("id") or f"{prefix}-{index}"), "question": question,
               "answer": str(record["answer"]).strip()}
    for key, value in record.items():
        if key not in out and key not in ("answer", "final_answer", "question"):
            out[key] = value
    return out


def _iter_raw(source: RecordSource) -> Iterator[tuple[int, dict]]:
    for i, record in source.read(range(len(source))):
        if isinstance(record, BadRecordError):
            raise record
        yield i, record


def _load_math_hub(split: str):
    """MATH from the hub: the original id first, then known mirrors (all subjects joined)."""
    import datasets

    errors = []
    for hub_id, config in HUB_DATASETS["math"]:
        try:
            if hub_id == "EleutherAI/hendrycks_math":
                subjects = datasets.get_dataset_config_names(hub_id)
                parts = [datasets.load_dataset(hub_id, s, split=split) for s in subjects]
                return HFSource(datasets.concatenate_datasets(parts), f"{hub_id}[{split}]")
            return HFSource.load(hub_id, config, split)
        except Exception as e:  # noqa: BLE001 - try the next mirror, report all at the end
            errors.append(f"{hub_id}: {type(e).__name__}: {e}")
    raise RuntimeError("could not load MATH from the hub:\n  " + "\n  ".join(errors))


def load_eval_set(name_or_path: str, split: str = "test", limit: int | None = None) -> list[dict]:
    """Benchmark questions with their bare gold answers, for sampling and grading.

    Args:
      name_or_path: ``"gsm8k"`` (hub ``openai/gsm8k``, config ``main``),
        ``"math"`` (hub ``hendrycks/competition_math`` or a mirror), a JSONL
        file, or a directory holding ``{split}.jsonl``. A file's layout is
        detected from its fields: ``problem``/``solution`` (MATH; gold = last
        ``\\boxed{}``), ``question`` + ``final_answer`` (procedural data; the
        bare answer is preferred), ``question``/``answer`` with ``#### N``
        (GSM8K), or ``question``/``answer`` (answer taken as the gold answer).
      split: hub split, or file name inside a directory.
      limit: keep the first ``limit`` records.

    Returns:
      Records ``{"id", "question", "answer", ...}``; extra fields kept (e.g.
      ``level``, ``type``, ``steps``, ``kind``, and ``solution`` for the full
      reference answer).

    Raises:
      ValueError: a malformed record, naming the file and line.
    """
    if paths.isdir(name_or_path) and paths.isfile(paths.join(name_or_path, f"{split}.jsonl")):
        name_or_path = paths.join(name_or_path, f"{split}.jsonl")
    if paths.exists(name_or_path):
        source = open_source(name_or_path, split)
        prefix = paths.splitext(paths.basename(name_or_path))[0]
    elif name_or_path == "gsm8k":
        source, prefix = HFSource.load(*HUB_DATASETS["gsm8k"][0], split=split), f"gsm8k-{split}"
    elif name_or_path == "math":
        source, prefix = _load_math_hub(split), f"math-{split}"
    else:
        source, prefix = HFSource.load(name_or_path, None, split), name_or_path.replace("/", "_")
    out: list[dict] = []
    kind = None
    for i, record in _iter_raw(source):
        if limit is not None and len(out) >= limit:
            break
        try:
            kind = kind or _detect_kind(record)
            out.append(_eval_record(record, kind, i, prefix))
        except (KeyError, ValueError, TypeError) as e:
            raise BadRecordError(source.location(i), str(e)) from None
    return out
