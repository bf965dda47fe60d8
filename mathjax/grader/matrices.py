"""Matrix arithmetic written in an answer, carried out on parse trees.

``2\\begin{pmatrix}1\\\\2\\end{pmatrix}`` is ``\\begin{pmatrix}2\\\\4\\end{pmatrix}``; a
sum of matrices of one shape is the entry-wise sum; a product of matrices
with matching inner sizes is the matrix product; scalar factors (and a scalar
divisor) apply to every entry. Only new expression trees are built (entries stay expressions,
compared later as values): nothing is evaluated here. Sizes are bounded by
:data:`MAX_CELLS`; anything else (shapes that do not fit, a matrix inside a
function) is returned unchanged and compared as before.
"""

from __future__ import annotations

from mathjax.grader import numeric
from mathjax.grader.trees import is_scalar

MAX_CELLS = 64
MAX_FACTORS = 3  # matrices in one product
MAX_NODES = 4000  # size of the carried-out entries, all together (nested products grow fast)


def _shape(m: tuple) -> tuple[int, int]:
    return len(m[1]), len(m[1][0])


def _matmul(a: tuple, b: tuple) -> tuple | None:
    (n, k), (k2, p) = _shape(a), _shape(b)
    if k != k2 or n * p > MAX_CELLS or n * p * k > 4 * MAX_CELLS:
        return None
    rows = []
    for i in range(n):
        row = []
        for j in range(p):
            terms = tuple(("mul", (a[1][i][t], b[1][t][j])) for t in range(k))
            row.append(terms[0] if k == 1 else ("add", terms))
        rows.append(tuple(row))
    return ("matrix", tuple(rows))


def _small(m: tuple) -> bool:
    """Whether the entries of ``m`` have at most :data:`MAX_NODES` nodes (a bounded walk)."""
    stack = [c for row in m[1] for c in row]
    seen = 0
    while stack:
        seen += 1
        if seen > MAX_NODES:
            return False
        stack.extend(numeric.children(stack.pop()))
    return True


def matrix_value(n: tuple) -> tuple:
    """``n`` with sums, negations, scalar multiples and products of matrices carried out."""
    m = _matrix_value(n)
    return m if m is n or _small(m) else n


def _matrix_value(n: tuple) -> tuple:
    kind = n[0]
    if kind == "matrix":
        return n
    if kind == "neg":
        m = _matrix_value(n[1])
        if m[0] == "matrix":
            return ("matrix", tuple(tuple(("neg", c) for c in row) for row in m[1]))
        return n
    if kind == "mul":
        factors = [_matrix_value(f) for f in n[1]]
        mats = [f for f in factors if f[0] == "matrix"]
        if not mats or len(mats) > MAX_FACTORS or not all(f[0] == "matrix" or is_scalar(f) for f in factors):
            return n
        prod = mats[0]
        for m in mats[1:]:
            prod = _matmul(prod, m)
            if prod is None:
                return n
        scalars = tuple(f for f in factors if f[0] != "matrix")
        if not scalars:
            return prod
        return ("matrix", tuple(tuple(("mul", scalars + (c,)) for c in row) for row in prod[1]))
    if kind == "div" and is_scalar(n[2]):
        m = _matrix_value(n[1])
        if m[0] == "matrix":  # \frac12 M is parsed as M / 2
            return ("matrix", tuple(tuple(("div", c, n[2]) for c in row) for row in m[1]))
        return n
    if kind == "add":
        terms = [_matrix_value(t) for t in n[1]]
        if not all(t[0] == "matrix" for t in terms):
            return n
        shape = _shape(terms[0])
        if any(_shape(t) != shape for t in terms):
            return n
        r, c = shape
        return ("matrix", tuple(tuple(("add", tuple(t[1][i][j] for t in terms)) for j in range(c)) for i in range(r)))
    return n
