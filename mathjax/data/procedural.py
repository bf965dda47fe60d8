"""GSM8K-style procedural word problems with exact, checkable step-by-step answers.

Made for the laptop demo: a model of a few million parameters must be able to
learn these in minutes, so texts are short, numbers small (``max_number``) and
the difficulty knob is the number of reasoning steps, i.e. the number of
equations in the worked answer.

Record schema (one dict per problem; what :func:`write_jsonl` writes):

* ``id``: ``"proc-<split>-s<seed>-<index>"``.
* ``question``: the word problem.
* ``answer``: the worked solution, the SFT trainer's default target field. One
  equation per line, written ``12 * 3 = 36`` with ASCII ``+ - * /`` and
  integers only, then ``templates.final_answer_line`` (``The answer is: 36.``).
* ``final_answer``: the bare gold answer for grading, an integer string.
* ``steps``: number of reasoning steps (= equations in ``answer``).
* ``kind``: template family (see ``FAMILIES``).

All arithmetic is exact (``int``; fractions and percentages are only used where
they divide evenly), the final answer is the result of the last equation, and
the output is a pure function of the arguments (``random.Random`` seeded with a
string, so it does not depend on ``PYTHONHASHSEED``).

Train/test split: a problem's *skeleton* is its sequence of equations (names,
objects and wording removed). It belongs to the test split iff
``sha256(skeleton)`` falls in the lowest ``test_fraction`` of the hash range;
generation draws candidates and keeps those of the requested split. So train and
test never share a question, nor even an equation chain, whatever the seeds and
sizes (as long as both splits use the same ``test_fraction``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import random
import re
from collections.abc import Callable, Iterable, Mapping, Sequence

from mathjax.data.templates import final_answer_line

SPLITS = ("train", "test")
DEFAULT_TEST_FRACTION = 0.1
_MAX_MISSES = 20_000


@dataclasses.dataclass(frozen=True)
class Limits:
    """Number ranges. ``max_number`` bounds the numbers a question states freely
    (start counts, prices, rates, quantities; group sizes in ``parts`` problems
    go up to ``5 * max_number``); ``max_value`` bounds every value
    computed along the way (and derived question numbers such as a bill or a
    target that must exceed a total)."""

    max_number: int = 20
    max_value: int = 1000


@dataclasses.dataclass(frozen=True)
class Problem:
    """A generated problem before it becomes a record."""

    kind: str
    question: str
    lines: tuple[str, ...]  # one equation per line
    equations: tuple[str, ...]  # "12 * 3 = 36", the split skeleton
    answer: int


# Templates write "<n> dollars" whatever n is; singular units are fixed here
# once rather than threading a plural helper through every template.
_ONE_PLURAL = re.compile(r"(?<![\d/.])\b1 (dollar|year|page|mile|hour|day)s\b")


def _singulars(text: str) -> str:
    return _ONE_PLURAL.sub(r"1 \1", text)


class _Builder:
    """Collects solution lines; each ``eq`` call is one reasoning step."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.equations: list[str] = []

    def eq(self, template: str, expr: str, value: int) -> int:
        equation = f"{expr} = {value}"
        self.equations.append(equation)
        self.lines.append(_singulars(template.format(eq=equation)))
        return value

    def problem(self, kind: str, question: str, answer: int) -> Problem:
        return Problem(kind, _singulars(question), tuple(self.lines), tuple(self.equations), answer)


# ---------------------------------------------------------------------------
# Vocabulary. Plain ASCII, short words: the tokenizer and the tiny model see
# only these.

_NAMES = (
    ("Ann", "she"), ("Mia", "she"), ("Lily", "she"), ("Emma", "she"), ("Sara", "she"),
    ("Nora", "she"), ("Zoe", "she"), ("Lucy", "she"), ("Ava", "she"), ("Ella", "she"),
    ("Rosa", "she"), ("Maya", "she"), ("Jade", "she"), ("Ruby", "she"), ("Kim", "she"),
    ("Ben", "he"), ("Tom", "he"), ("Sam", "he"), ("Leo", "he"), ("Max", "he"),
    ("Jack", "he"), ("Noah", "he"), ("Omar", "he"), ("Liam", "he"), ("Eli", "he"),
    ("Ryan", "he"), ("Owen", "he"), ("Luke", "he"), ("Ivan", "he"), ("Adam", "he"),
)
_OBJ = {"she": "her", "he": "him"}
_POSS = {"she": "her", "he": "his"}

_THINGS = (  # (singular, plural)
    ("apple", "apples"), ("marble", "marbles"), ("sticker", "stickers"), ("pencil", "pencils"),
    ("cookie", "cookies"), ("card", "cards"), ("shell", "shells"), ("book", "books"),
    ("stamp", "stamps"), ("toy car", "toy cars"), ("egg", "eggs"), ("candy", "candies"),
    ("balloon", "balloons"), ("flower", "flowers"), ("ribbon", "ribbons"),
)
_GOODS = (
    ("notebook", "notebooks"), ("pen", "pens"), ("book", "books"), ("cake", "cakes"),
    ("shirt", "shirts"), ("toy", "toys"), ("ticket", "tickets"), ("plant", "plants"),
    ("mug", "mugs"), ("hat", "hats"), ("ball", "balls"), ("game", "games"),
    ("bag", "bags"), ("lamp", "lamps"), ("pie", "pies"),
)
_BILLS = (5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10000)
_PERCENTS = tuple(range(5, 100, 5))


def _n(count: int, noun: tuple[str, str]) -> str:
    return f"{count} {noun[0] if count == 1 else noun[1]}"


def _times(k: int) -> str:
    return {2: "twice", 3: "three times"}.get(k, f"{k} times")


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


# ---------------------------------------------------------------------------
# Chain engine: a running value changed by one operation per step. Each op
# returns (operand description, expression, new value) or None if it does not
# fit the current value and limits.

_Op = tuple[str, tuple, str, int]  # (op name, params for wording, expression, result)


def _pick_op(rng: random.Random, x: int, lim: Limits, ops: Mapping[str, float], floor: int = 1) -> _Op | None:
    """Draws one feasible operation on ``x``; results stay in [floor, max_value]."""
    m, top = lim.max_number, lim.max_value
    names = list(ops)
    weights = [ops[k] for k in names]
    for _ in range(8):
        op = rng.choices(names, weights)[0]
        if op == "add":
            b = rng.randint(1, m)
            if x + b <= top:
                return op, (b,), f"{x} + {b}", x + b
        elif op == "sub":
            if x - 1 >= floor:
                b = rng.randint(1, min(m, x - floor))
                return op, (b,), f"{x} - {b}", x - b
        elif op == "mul":
            k = rng.randint(2, max(2, min(5, m)))
            if x * k <= top:
                return op, (k,), f"{x} * {k}", x * k
        elif op == "div":
            ks = [k for k in range(2, min(10, m) + 1) if x % k == 0 and x // k >= floor]
            if ks:
                k = rng.choice(ks)
                return op, (k,), f"{x} / {k}", x // k
        elif op == "frac":
            fr = [(p, q) for q in range(2, 11) if x % q == 0 for p in range(1, q) if math.gcd(p, q) == 1]
            fr = [(p, q) for p, q in fr if x * p // q >= floor]
            if fr:
                p, q = rng.choice(fr)
                expr = f"{x} / {q}" if p == 1 else f"{x} * {p} / {q}"
                return op, (p, q), expr, x * p // q
        elif op == "pct":
            rs = [r for r in _PERCENTS if (x * r) % 100 == 0 and x * r // 100 >= floor]
            if rs:
                r = rng.choice(rs)
                return op, (r,), f"{x} * {r} / 100", x * r // 100
    return None


_CHAIN_OPS = {"add": 3.0, "sub": 3.0, "mul": 1.5, "div": 1.0, "frac": 1.0, "pct": 0.7}


def _inventory(rng: random.Random, steps: int, lim: Limits) -> Problem | None:
    """Someone's count of things goes through ``steps`` changes."""
    (name, he), (friend, _) = rng.sample(_NAMES, 2)
    thing = rng.choice(_THINGS)
    x = rng.randint(2, lim.max_number)
    sents = [f"{name} has {_n(x, thing)}."]
    b = _Builder()
    for _ in range(steps):
        op = _pick_op(rng, x, lim, _CHAIN_OPS)
        if op is None:
            return None
        kind, p, expr, y = op
        H = _cap(he)
        sents.append(rng.choice({
            "add": (f"{H} buys {{0}} more.", f"{H} finds {{0}} more.",
                    f"{friend} gives {_OBJ[he]} {{0}} more."),
            "sub": (f"{H} gives {{0}} to {friend}.", f"{H} loses {{0}}.", f"{H} sells {{0}} of them."),
            "mul": (f"Then {he} ends up with {{times}} as many.",),
            "div": (f"{H} splits them equally into {{0}} boxes and keeps one box.",),
            "frac": (f"{H} keeps only {{0}}/{{1}} of them.",),
            "pct": (f"{H} keeps only {{0}}% of them.",),
        }[kind]).format(*p, times=_times(p[0])))
        x = b.eq(f"{name} has {{eq}} {thing[0] if y == 1 else thing[1]}.", expr, y)
    sents.append(f"How many {thing[1]} does {name} have now?")
    return b.problem("inventory", " ".join(sents), x)


def _savings(rng: random.Random, steps: int, lim: Limits) -> Problem | None:
    """Someone's money goes through ``steps`` earnings and spendings."""
    name, he = rng.choice(_NAMES)
    item = rng.choice(_GOODS)[0]
    x = rng.randint(2, lim.max_number)
    sents = [f"{name} has {x} dollars."]
    b = _Builder()
    his, H = _POSS[he], _cap(he)
    for _ in range(steps):
        op = _pick_op(rng, x, lim, _CHAIN_OPS)
        if op is None:
            return None
        kind, p, expr, y = op
        sents.append(rng.choice({
            "add": (f"{H} earns {{0}} dollars.", f"{H} gets {{0}} dollars as a gift."),
            "sub": (f"{H} spends {{0}} dollars on a {item}.", f"{H} pays {{0}} dollars for lunch."),
            "mul": (f"Then {his} money grows to {{times}} as much.",),
            "div": (f"{H} splits {his} money equally into {{0}} jars and keeps one jar.",),
            "frac": (f"{H} keeps {{0}}/{{1}} of {his} money and spends the rest.",),
            "pct": (f"{H} keeps {{0}}% of {his} money and spends the rest.",),
        }[kind]).format(*p, times=_times(p[0])))
        x = b.eq(f"{name} has {{eq}} dollars.", expr, y)
    sents.append(f"How many dollars does {name} have now?")
    return b.problem("savings", " ".join(sents), x)


_AGE_OPS = {"add": 3.0, "sub": 3.0, "mul": 1.5, "div": 1.5}


def _ages(rng: random.Random, steps: int, lim: Limits) -> Problem | None:
    """Each next person's age is stated relative to the previous one."""
    if steps + 1 > len(_NAMES):
        return None
    people = [n for n, _ in rng.sample(_NAMES, steps + 1)]
    x = rng.randint(2, lim.max_number)
    sents = [f"{people[0]} is {x} years old."]
    b = _Builder()
    age_lim = Limits(lim.max_number, min(lim.max_value, 120))
    for prev, cur in zip(people, people[1:]):
        op = _pick_op(rng, x, age_lim, _AGE_OPS)
        if op is None:
            return None
        kind, p, expr, y = op
        sents.append({
            "add": f"{cur} is {{0}} years older than {prev}.",
            "sub": f"{cur} is {{0}} years younger than {prev}.",
            "mul": f"{cur} is {{times}} as old as {prev}.",
            "div": f"{prev} is {{times}} as old as {cur}.",
        }[kind].format(*p, times=_times(p[0])))
        x = b.eq(f"{cur} is {{eq}} years old.", expr, y)
    sents.append(f"How old is {people[-1]}?")
    return b.problem("ages", " ".join(sents), x)


# ---------------------------------------------------------------------------
# Sum-of-products engine: k parts (rate * amount), k - 1 additions and, for an
# even step count, one subtraction from a stated amount (change, what is left).
# 2k - 1 (+ 1) steps, so any step count is reachable.


@dataclasses.dataclass(frozen=True)
class _Theme:
    kind: str
    first: str  # first part, fields: name, q, r, unit (plural unit noun)
    more: str  # later parts
    part_line: str  # solution line for a part, {eq}
    sum_line: str  # solution line for an addition, {eq}, {So}: 'So far' or 'In total'
    total_q: str  # question asking for the total
    rest_intro: str  # sentence stating the amount to subtract from, {a}
    rest_q: str  # question asking for what is left
    rest_line: str  # solution line for the subtraction, {eq}
    max_amount: int = 10  # bound on the multiplier (quantities, hours, days)


_THEMES = (
    _Theme(
        "shopping",
        first="{name} buys {qn} for {r} {dollars} each",
        more="{qn} for {r} {dollars} each",
        part_line="The {unit} cost {{eq}} dollars.",
        sum_line="{So} they cost {{eq}} dollars.",
        total_q="How many dollars does {he} spend in total?",
        rest_intro="{He} pays with a {a} dollar bill.",
        rest_q="How many dollars of change does {he} get?",
        rest_line="The change is {{eq}} dollars.",
    ),
    _Theme(
        "travel",
        first="{name} drives at {r} miles per hour for {qn}",
        more="at {r} miles per hour for {qn}",
        part_line="{He} drives {{eq}} miles.",
        sum_line="{So} {he} drives {{eq}} miles.",
        total_q="How many miles does {he} drive in total?",
        rest_intro="{His} trip is {a} miles long.",
        rest_q="How many miles of the trip are left?",
        rest_line="There are {{eq}} miles left.",
    ),
    _Theme(
        "reading",
        first="{name} reads {r} {pages} a day for {qn}",
        more="{r} {pages} a day for {qn}",
        part_line="{He} reads {{eq}} pages.",
        sum_line="{So} {he} reads {{eq}} pages.",
        total_q="How many pages does {he} read in total?",
        rest_intro="{His} book has {a} pages.",
        rest_q="How many pages are left to read?",
        rest_line="There are {{eq}} pages left.",
    ),
    _Theme(
        "baking",
        first="{name} bakes {qn} with {r} {cookies} on each",
        more="{qn} with {r} {cookies} on each",
        part_line="{He} bakes {{eq}} cookies.",
        sum_line="{So} {he} bakes {{eq}} cookies.",
        total_q="How many cookies does {he} bake in total?",
        rest_intro="{He} needs {a} cookies for a party.",
        rest_q="How many more cookies does {he} need to bake?",
        rest_line="{He} needs {{eq}} more cookies.",
    ),
)
_THEME_UNITS = {
    "shopping": None,  # each part has its own goods noun
    "travel": ("hour", "hours"),
    "reading": ("day", "days"),
    "baking": ("tray", "trays"),
}


def _sum_of_products(theme: _Theme) -> Callable[[random.Random, int, Limits], Problem | None]:
    def make(rng: random.Random, steps: int, lim: Limits) -> Problem | None:
        name, he = rng.choice(_NAMES)
        k, rest = (steps + 1) // 2, steps % 2 == 0
        fields = {"he": he, "He": _cap(he), "His": _cap(_POSS[he])}
        nouns = rng.sample(_GOODS, k) if _THEME_UNITS[theme.kind] is None else [_THEME_UNITS[theme.kind]] * k
        b = _Builder()
        clauses, parts = [], []
        for i, noun in enumerate(nouns):
            q = rng.randint(2, max(2, min(theme.max_amount, lim.max_number)))
            r = rng.randint(1, lim.max_number)
            if q * r > lim.max_value:
                return None
            fmt = theme.first if i == 0 else theme.more
            clauses.append(fmt.format(
                name=name, qn=_n(q, noun), r=r, dollars="dollar" if r == 1 else "dollars",
                pages="page" if r == 1 else "pages", cookies="cookie" if r == 1 else "cookies"))
            unit = noun[1] if theme.kind == "shopping" else ""
            parts.append(b.eq(theme.part_line.format(unit=unit, **fields), f"{q} * {r}", q * r))
        total = parts[0]
        for i, part in enumerate(parts[1:], 2):
            if total + part > lim.max_value:
                return None
            so = "In total" if i == k else "So far"
            total = b.eq(theme.sum_line.format(So=so, **fields), f"{total} + {part}", total + part)
        body = clauses[0] if k == 1 else ", ".join(clauses[:-1]) + (", then " if theme.kind != "shopping" else " and ") + clauses[-1]
        sents = [body + "."]
        if rest:
            if theme.kind == "shopping":
                bills = [x for x in _BILLS if x > total and x <= max(lim.max_value, total + 1)]
                if not bills:
                    return None
                a = rng.choice(bills[:2])
            else:
                if total + 1 > lim.max_value:
                    return None
                a = rng.randint(total + 1, min(lim.max_value, total + max(lim.max_number, 2)))
            sents += [theme.rest_intro.format(a=a, **fields), theme.rest_q.format(**fields)]
            total = b.eq(theme.rest_line.format(**fields), f"{a} - {total}", a - total)
        else:
            sents.append(theme.total_q.format(**fields))
        return b.problem(theme.kind, " ".join(sents), total)

    return make


# ---------------------------------------------------------------------------
# Parts engine (1 to 4 steps): a fraction of a group, the rest, a percentage of
# the rest, and the rest of that.

_GROUPS = (  # (container sentence, whole, part A, part B, trait of B, question noun for not-trait)
    ("There are {n} students in a class.", "students", "girls", "boys", "play soccer"),
    ("A basket has {n} fruits.", "fruits", "apples", "oranges", "are ripe"),
    ("A parking lot has {n} cars.", "cars", "red", "blue", "are electric"),
    ("A farm has {n} animals.", "animals", "cows", "sheep", "are black"),
)


def _parts(rng: random.Random, steps: int, lim: Limits) -> Problem | None:
    if steps > 4:
        return None
    intro, whole, a_name, b_name, trait = rng.choice(_GROUPS)
    qs = [q for q in range(2, 11) if q * 2 <= max(lim.max_number, 4)]
    if not qs:
        return None
    q = rng.choice(qs)
    # A group of 20 is too small for a fraction and then a percentage of the
    # rest to come out whole, so group sizes go up to 5 * max_number.
    n = q * rng.randint(1, max(1, min(lim.max_value, 5 * lim.max_number) // q))
    p = rng.choice([p for p in range(1, q) if math.gcd(p, q) == 1])
    is_adj = whole == "cars"  # "red cars" rather than "red"
    a_noun = f"{a_name} {whole}" if is_adj else a_name
    b_noun = f"{b_name} {whole}" if is_adj else b_name
    sents = [intro.format(n=n), f"{p}/{q} of them are {a_name} and the rest are {b_name}."]
    if n * p // q < 2 or n - n * p // q < 2:  # keeps "There are 1 boys" out
        return None
    b = _Builder()
    a_cnt = b.eq(f"There are {{eq}} {a_noun}.", f"{n} / {q}" if p == 1 else f"{n} * {p} / {q}", n * p // q)
    if steps == 1:
        sents.append(f"How many {a_noun} are there?")
        return b.problem("parts", " ".join(sents), a_cnt)
    b_cnt = b.eq(f"There are {{eq}} {b_noun}.", f"{n} - {a_cnt}", n - a_cnt)
    if steps == 2:
        sents.append(f"How many {b_noun} are there?")
        return b.problem("parts", " ".join(sents), b_cnt)
    rs = [r for r in _PERCENTS if (b_cnt * r) % 100 == 0 and 2 <= b_cnt * r // 100 <= b_cnt - 2]
    if not rs:
        return None
    r = rng.choice(rs)
    t_cnt = b.eq(f"There are {{eq}} {b_noun} that {trait}.", f"{b_cnt} * {r} / 100", b_cnt * r // 100)
    sents.append(f"{r}% of the {b_noun} {trait}.")
    if steps == 3:
        sents.append(f"How many {b_noun} {trait}?")
        return b.problem("parts", " ".join(sents), t_cnt)
    neg = trait.replace("are ", "are not ") if trait.startswith("are ") else "do not " + trait
    rest = b.eq(f"There are {{eq}} {b_noun} that {neg}.", f"{b_cnt} - {t_cnt}", b_cnt - t_cnt)
    sents.append(f"How many {b_noun} {neg}?")
    return b.problem("parts", " ".join(sents), rest)


# ---------------------------------------------------------------------------

FAMILIES: dict[str, tuple[Callable[[random.Random, int, Limits], Problem | None], int]] = {
    "inventory": (_inventory, 99),
    "savings": (_savings, 99),
    "ages": (_ages, len(_NAMES) - 1),
    **{t.kind: (_sum_of_products(t), 99) for t in _THEMES},
    "parts": (_parts, 4),
}
"""Family name -> (generator, largest step count it supports)."""


def skeleton_is_test(equations: Sequence[str], test_fraction: float = DEFAULT_TEST_FRACTION) -> bool:
    """Whether a problem with this equation chain belongs to the test split."""
    digest = hashlib.sha256("\n".join(equations).encode()).digest()
    return int.from_bytes(digest[:8], "big") < test_fraction * 2**64


def _step_distribution(min_steps: int, max_steps: int, step_weights) -> tuple[list[int], list[float]]:
    if not 1 <= min_steps <= max_steps:
        raise ValueError(f"need 1 <= min_steps <= max_steps, got {min_steps}, {max_steps}")
    values = list(range(min_steps, max_steps + 1))
    if step_weights is None:
        weights = [1.0] * len(values)
    elif isinstance(step_weights, Mapping):
        weights = [float(step_weights.get(s, 0.0)) for s in values]
    else:
        weights = [float(w) for w in step_weights]
        if len(weights) != len(values):
            raise ValueError(f"step_weights has {len(weights)} entries for steps {min_steps}..{max_steps}")
    if any(w < 0 for w in weights) or sum(weights) <= 0:
        raise ValueError(f"step_weights must be >= 0 with a positive sum, got {weights}")
    return values, weights


def to_record(problem: Problem, id_: str) -> dict:
    """The JSONL record (schema in the module docstring)."""
    final = str(problem.answer)
    return {
        "id": id_,
        "question": problem.question,
        "answer": "\n".join(problem.lines + (final_answer_line(final),)),
        "final_answer": final,
        "steps": len(problem.equations),
        "kind": problem.kind,
    }


def generate(
    n: int,
    split: str = "train",
    seed: int = 0,
    min_steps: int = 1,
    max_steps: int = 6,
    step_weights: Sequence[float] | Mapping[int, float] | None = None,
    max_number: int = 20,
    max_value: int = 1000,
    kinds: Iterable[str] | None = None,
    test_fraction: float = DEFAULT_TEST_FRACTION,
) -> list[dict]:
    """Generates ``n`` distinct problems of one split (records as in the module docstring).

    Args:
      n: number of problems.
      split: ``"train"`` or ``"test"``; the two are disjoint for any seeds.
      seed: the output is a pure function of all arguments.
      min_steps, max_steps: range of reasoning steps (equations) per problem.
      step_weights: relative frequency of each step count, either a sequence
        aligned with ``range(min_steps, max_steps + 1)`` or ``{steps: weight}``;
        uniform when None.
      max_number: largest number a question states freely (see ``Limits``).
      max_value: largest value computed along the way.
      kinds: families to draw from (default: all of ``FAMILIES``); a step count
        is drawn first, then a family that supports it.
      test_fraction: share of equation chains reserved for the test split; use
        the same value for both splits.

    Raises:
      ValueError: bad arguments, or the settings admit too few distinct problems.
    """
    if split not in SPLITS:
        raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if max_number < 2 or max_value < max_number:
        raise ValueError(f"need 2 <= max_number <= max_value, got {max_number}, {max_value}")
    kinds = list(FAMILIES) if kinds is None else list(kinds)
    unknown = set(kinds) - set(FAMILIES)
    if unknown or not kinds:
        raise ValueError(f"unknown kinds {sorted(unknown)}; known: {sorted(FAMILIES)}")
    values, weights = _step_distribution(min_steps, max_steps, step_weights)
    by_steps = {s: [k for k in kinds if FAMILIES[k][1] >= s] for s in values}
    if empty := [s for s, fam in by_steps.items() if not fam and weights[values.index(s)] > 0]:
        raise ValueError(f"no family in {kinds} supports {empty} steps")

    lim = Limits(max_number, max_value)
    want_test = split == "test"
    # A string seed makes random.Random hash it with sha512: stable across runs.
    rng = random.Random(f"mathjax.procedural/{split}/{seed}")
    records: list[dict] = []
    seen: set[str] = set()
    misses = 0  # consecutive draws that gave nothing new: the space is exhausted
    while len(records) < n:
        if misses > _MAX_MISSES:
            raise ValueError(
                f"only {len(records)} of {n} distinct {split} problems found ({_MAX_MISSES} draws "
                "in a row gave nothing new); widen max_number/max_value/steps or ask for fewer")
        misses += 1
        steps = rng.choices(values, weights)[0]
        make = FAMILIES[rng.choice(by_steps[steps])][0]
        problem = make(rng, steps, lim)
        if problem is None or problem.question in seen:
            continue
        if skeleton_is_test(problem.equations, test_fraction) != want_test:
            continue
        misses = 0
        seen.add(problem.question)
        records.append(to_record(problem, f"proc-{split}-s{seed}-{len(records)}"))
    return records


def write_jsonl(records: Iterable[Mapping], path: str | os.PathLike) -> None:
    """Writes records as JSON lines, atomically (temp file, then rename)."""
    path = os.fspath(path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        for rec in records:
            f.write(json.dumps(rec, ensure_ascii=False) + "\n")
    os.replace(tmp, path)
