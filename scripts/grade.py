"""Grades a samples file and writes report.json, report.md and pass_at_k.png.

  python scripts/grade.py --samples=samples.jsonl --output_dir=DIR [--workers=N] \
      [--control_answers=train.jsonl] [--angles=degrees|convert]

The samples file is the sampler's JSONL (one line per question with ``answer``
and ``samples[].text``). See mathjax/grader/__init__.py for the library API.

``--control_answers`` adds a question-blind control beside the model: Pass@k,
PassRatio@k and maj@k of a guesser that ignores the question and draws final
answers from that file's answer distribution, computed exactly (no sampling).
"""

import json

from absl import app, flags, logging

from mathjax import grader

_SAMPLES = flags.DEFINE_string("samples", None, "Samples JSONL to grade.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Where the report files go.", required=True)
_WORKERS = flags.DEFINE_integer("workers", None, "Worker processes (default: all cores; 0: in-process).")
_TIMEOUT = flags.DEFINE_float("timeout", grader.DEFAULT_TIMEOUT, "Hard limit (s) per symbolic comparison.")
_FALLBACK = flags.DEFINE_enum(
    "fallback", "last_number", ["last_number", "none"], "Answer when no final-answer marker is found.")
_ANGLES = flags.DEFINE_enum(
    "angles", "degrees", ["degrees", "convert"],
    "Degree-sign policy: 'degrees' drops the unit (30^\\circ == 30, != \\pi/6); 'convert' also equates a "
    "degree-marked answer with its radian value (30^\\circ == \\pi/6). A bare 30 never equals \\pi/6.")
_BOOTSTRAP = flags.DEFINE_integer("bootstrap", 1000, "Bootstrap resamples for the 95% intervals (0: none).")
_KS = flags.DEFINE_list("ks", None, "k values for Pass@k / maj@k (default: 1, 2, 4, ..., N).")
_ANALYSES = flags.DEFINE_bool("analyses", True, "Arithmetic-slip and step analyses.")
_EXTRA = flags.DEFINE_string("extra", None, "JSON object merged into report.json (e.g. greedy_accuracy).")
_PROGRESS = flags.DEFINE_bool("progress", True, "tqdm progress bars.")
_CONTROL = flags.DEFINE_string(
    "control_answers", None,
    "Question-blind control: a JSONL training set (each record's final answer, read as gold answers are) or a "
    "JSON {answer: count} table. Reports the Pass@k / PassRatio@k / maj@k of guessing from that distribution.")


def main(argv):
    del argv
    extra = json.loads(_EXTRA.value) if _EXTRA.value else {}
    report = grader.evaluate(
        _SAMPLES.value,
        _OUTPUT_DIR.value,
        workers=_WORKERS.value,
        angles=_ANGLES.value,  # recorded in report.json's grading_config
        timeout=_TIMEOUT.value,
        fallback=None if _FALLBACK.value == "none" else _FALLBACK.value,
        analyses=_ANALYSES.value,
        bootstrap=_BOOTSTRAP.value,
        ks=[int(k) for k in _KS.value] if _KS.value else None,
        extra=extra,
        progress=_PROGRESS.value,
        control_answers=_CONTROL.value,
    )
    logging.info(
        "%d questions, %d samples: Pass@k %s, PassRatio %.4f; report in %s",
        report["num_questions"], report["num_samples"],
        {k: round(v, 4) for k, v in report.get("pass_at_k", {}).items()},
        report.get("pass_ratio", 0.0), _OUTPUT_DIR.value)
    if "control" in report:
        logging.info("question-blind control: Pass@k %s, maj@k %s, PassRatio %.4f",
                     {k: round(v, 4) for k, v in report["control"]["pass_at_k"].items()},
                     {k: round(v, 4) for k, v in report["control"]["maj_at_k"].items()},
                     report["control"]["pass_ratio"])


if __name__ == "__main__":
    app.run(main)
