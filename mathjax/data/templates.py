"""Prompt templates shared by SFT data preparation, the sampler and synthesis.

One module so that the text a model is trained on and the text it is prompted
with can never drift apart. A template turns a question into a prompt, turns a
worked answer into the training target, and names the stop strings that end a
generation (the start of the next turn).

Where the prompt ends and the response begins
  A training example is the text ``format_prompt(question) +
  format_response(answer)``, tokenized as a whole (``mathjax.data.tokenize``),
  so the rendered conversation is exactly the template's convention (for
  ``xwin_math``: ``... ASSISTANT: <answer>``). The *boundary* between prompt
  and response is :func:`prompt_boundary`: before the prompt's trailing spaces.
  Every tokenizer we support attaches a space to the word after it
  (SentencePiece's ``▁Word`` pieces; byte-level BPE's ``" Word"``
  pre-tokens), so ``ASSISTANT: The`` tokenizes as ``ASSISTANT`` ``:``
  ``▁The``: the trailing space belongs to the response's first token. Cutting
  there puts the boundary on a token boundary, so the prompt ids the sampler
  feeds (``tokenize.encode_prompt``: the text up to the boundary) are a prefix
  of the training sequence, and the model is trained on exactly the token it
  must produce first. Encoding the prompt with its trailing space instead would
  end it in a lone ``▁`` that the whole text never contains.
"""

from __future__ import annotations

import dataclasses
import re

# The final-answer line asked for by the Xwin-Math eval prompt and produced by
# every training target: the grader's extractor looks for exactly this.
FINAL_ANSWER_PREFIX = "The answer is: "

_VICUNA_SYSTEM = (
    "A chat between a curious user and an artificial intelligence assistant. "
    "The assistant gives helpful, detailed, and polite answers to the user's questions."
)


@dataclasses.dataclass(frozen=True)
class Template:
    """A prompt format.

    Attributes:
      name: registry key.
      prompt: format string with a ``{question}`` field; the model continues it.
      stop: strings that end a generation (the next turn's marker).
    """

    name: str
    prompt: str
    stop: tuple[str, ...] = ()

    def format_prompt(self, question: str) -> str:
        """The text the model sees before its answer."""
        return self.prompt.format(question=question.strip())

    def format_response(self, answer: str) -> str:
        """The training target for a worked answer (EOS is added by the tokenizer step)."""
        return answer.strip()

    def format_example(self, question: str, answer: str) -> tuple[str, int]:
        """``(text, boundary)``: the whole conversation and where its response starts.

        ``text[:boundary]`` is what the sampler feeds for this question and
        ``text[boundary:]`` is trained on (see the module docstring).
        """
        prompt = self.format_prompt(question)
        return prompt + self.format_response(answer), prompt_boundary(prompt)


TEMPLATES: dict[str, Template] = {
    "xwin_math": Template(
        name="xwin_math",
        prompt=(
            _VICUNA_SYSTEM
            + " USER: {question} Give your solution in detail. In the end, write your "
            "final answer in the format of 'The answer is: <ANSWER>.'. ASSISTANT: "
        ),
        stop=("USER:",),
    ),
    "alpaca": Template(
        name="alpaca",
        prompt=(
            "Below is an instruction that describes a task. Write a response that "
            "appropriately completes the request.\n\n### Instruction:\n{question}\n\n"
            "### Response:\n"
        ),
        stop=("### Instruction:",),
    ),
    "plain": Template(name="plain", prompt="Question: {question}\nAnswer: ", stop=("\nQuestion:",)),
    "none": Template(name="none", prompt="{question}", stop=()),
}


def prompt_boundary(prompt: str) -> int:
    """Length of ``prompt`` without its trailing spaces: where the response's tokens start.

    Only spaces move to the response: tokenizers attach a space to the next
    word, but a newline is a token of its own (SentencePiece byte fallback) or
    ends the previous pre-token (byte-level BPE's ``":\\n"``), so it stays with
    the prompt.
    """
    return len(prompt.rstrip(" "))


def get_template(name: str) -> Template:
    """Looks a template up by name; unknown names list the known ones."""
    try:
        return TEMPLATES[name]
    except KeyError:
        raise ValueError(f"unknown template {name!r}; known: {sorted(TEMPLATES)}") from None


def final_answer_line(answer: str) -> str:
    """The closing line every training answer ends with: ``The answer is: X.``"""
    answer = answer.strip()
    return f"{FINAL_ANSWER_PREFIX}{answer}" + ("" if answer.endswith(".") else ".")


_GSM8K_FINAL = re.compile(r"\n?####\s*(.+?)\s*$", re.S)
_GSM8K_CALC = re.compile(r"<<[^<>]*>>")


def gsm8k_to_target(answer: str) -> str:
    """GSM8K's ``... #### 72`` answer -> steps ending in ``The answer is: 72.``

    The calculator annotations ``<<48/2=24>>`` are removed: models are not
    trained to emit them and the grader does not read them.
    """
    match = _GSM8K_FINAL.search(answer)
    if not match:
        raise ValueError("GSM8K answer has no '#### N' final line")
    steps = _GSM8K_CALC.sub("", answer[: match.start()]).strip()
    final = match.group(1).replace(",", "")
    return f"{steps}\n{final_answer_line(final)}"


def last_boxed(text: str) -> str | None:
    """Content of the last balanced ``\\boxed{...}`` (or ``\\fbox{...}``) in text."""
    idx = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if idx < 0:
        return None
    brace = text.find("{", idx)
    if brace < 0:
        return None
    depth = 0
    for pos in range(brace, len(text)):
        if text[pos] == "{":
            depth += 1
        elif text[pos] == "}":
            depth -= 1
            if depth == 0:
                return text[brace + 1 : pos]
    return None


def math_to_target(solution: str) -> str:
    """A MATH solution -> the solution followed by ``The answer is: <boxed>.``"""
    boxed = last_boxed(solution)
    if boxed is None:
        raise ValueError("MATH solution has no \\boxed{} answer")
    return f"{solution.strip()}\n{final_answer_line(boxed)}"
