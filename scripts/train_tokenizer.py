"""Trains a small SentencePiece BPE tokenizer and saves it as a Hugging Face tokenizer dir.

  python scripts/train_tokenizer.py --inputs=data/proc/train.jsonl \
      --output_dir=data/proc/tokenizer --vocab_size=1024 --template=xwin_math

See mathjax/data/tokenizer.py for the settings (byte fallback, split digits,
<unk>=0 <s>=1 </s>=2 <pad>=3, no dummy prefix).
"""

from absl import app, flags, logging

from mathjax.data import tokenizer

_INPUTS = flags.DEFINE_list("inputs", None, "JSONL (or .txt) files to train on.", required=True)
_OUTPUT_DIR = flags.DEFINE_string("output_dir", None, "Tokenizer directory to write.", required=True)
_VOCAB_SIZE = flags.DEFINE_integer("vocab_size", 1024, "Vocabulary size (upper bound, > 260).")
_FIELDS = flags.DEFINE_list("fields", ["question", "answer"], "JSONL fields to read.")
_TEMPLATE = flags.DEFINE_string(
    "template", None, "Prompt template applied to questions (e.g. xwin_math), so its words get tokens.")
_MAX_LINES = flags.DEFINE_integer("max_lines", 1_000_000, "Cap on training lines (even subsample).")
_NUM_THREADS = flags.DEFINE_integer("num_threads", 1, "SentencePiece trainer threads.")


def main(argv):
    del argv
    tok = tokenizer.train_tokenizer(
        _INPUTS.value, _OUTPUT_DIR.value, vocab_size=_VOCAB_SIZE.value, fields=_FIELDS.value,
        template=_TEMPLATE.value, max_lines=_MAX_LINES.value, num_threads=_NUM_THREADS.value)
    logging.info("wrote a %d-token tokenizer to %s", tok.vocab_size, _OUTPUT_DIR.value)


if __name__ == "__main__":
    app.run(main)
