"""Makes ``mathjax`` and the vendored pure-Python packages importable on a bare machine.

  python benchmarks/device_env.py [--json_out=FILE]

Writes ``mathjax_devdeps.pth`` into the interpreter's site-packages naming the repo root and
``.devdeps/`` (see benchmarks/devdeps.txt): ``.pth`` entries are appended to ``sys.path`` after
site-packages, so installed versions always win and ``.devdeps`` only fills gaps. Where
site-packages is not writable it instead prints a PYTHONPATH folder holding links to only the
missing packages (nothing installed can be shadowed). Then reports which of the modules the
benchmarks import are found (in a fresh interpreter), with versions, and imports mathjax for real. Standard library only:
runs before anything else is importable. Prints ``PYTHONPATH=...`` as its last line when the
caller must export it (empty otherwise).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import sysconfig

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVDEPS = os.path.join(ROOT, ".devdeps")
# module -> (distribution, why). Found with find_spec (cheap); the repo's own import is real.
MODULES = {
    "jax": ("jax", "all"), "jaxlib": ("jaxlib", "all (compiled)"), "numpy": ("numpy", "all (compiled)"),
    "flax": ("flax", "model"), "optax": ("optax", "train"), "orbax.checkpoint": ("orbax-checkpoint", "checkpoints"),
    "tensorstore": ("tensorstore", "orbax (compiled)"), "absl": ("absl-py", "flags"),
    "ml_collections": ("ml_collections", "configs"), "etils": ("etils", "orbax, paths"),
    "humanize": ("humanize", "orbax"), "simplejson": ("simplejson", "orbax"), "tqdm": ("tqdm", "progress"),
    "fsspec": ("fsspec", "paths"), "sympy": ("sympy", "grader (GRPO rewards)"), "mpmath": ("mpmath", "sympy"),
    "sentencepiece": ("sentencepiece", "GRPO tokenizer (compiled; `tokenizers` fallback)"),
    "tokenizers": ("tokenizers", "HF tokenizers (compiled)"), "safetensors": ("safetensors", "HF dirs (compiled)"),
    "transformers": ("transformers", "peer benchmark"), "torch": ("torch", "peer benchmark"),
    "mathjax": ("mathjax-llm", "this repo"),
}

PROBE = r"""
import importlib.metadata as md, importlib.util, json, sys
out = {}
for arg in sys.argv[1:]:
    name, dist = arg.split("=")
    try:
        spec = importlib.util.find_spec(name)
        if spec is None:
            raise ImportError("not found")
        try:
            version = md.version(dist)
        except Exception:
            version = "?"
        out[name] = {"ok": True, "version": version, "from": str(spec.origin or list(spec.submodule_search_locations or []))}
    except Exception as e:
        out[name] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:200]}
if __import__("os").environ.get("PROBE_IMPORT"):
    try:
        import mathjax.sample, mathjax.rl.trainer  # noqa: F401  (jax, flax, optax, orbax, grader)
        out["import mathjax.sample, mathjax.rl.trainer"] = {"ok": True, "version": "", "from": mathjax.__file__}
    except Exception as e:
        out["import mathjax.sample, mathjax.rl.trainer"] = {"ok": False, "error": f"{type(e).__name__}: {e}"[:300]}
print(json.dumps(out))
"""


def probe(env: dict | None = None, real_import: bool = False) -> dict:
    env = dict(env or os.environ)
    if real_import:
        env["PROBE_IMPORT"] = "1"
    args = [f"{name}={dist}" for name, (dist, _) in MODULES.items()]
    done = subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, timeout=240,
                          env=env, cwd="/")
    if done.returncode:
        raise RuntimeError(done.stderr[-2000:])
    return json.loads(done.stdout.strip().splitlines()[-1])


def write_pth() -> str | None:
    """The .pth path written, or None when no site-packages dir is writable."""
    line = f"{ROOT}\n{DEVDEPS}\n"
    for d in [sysconfig.get_paths()["purelib"], *getattr(__import__("site"), "getsitepackages", lambda: [])()]:
        try:
            path = os.path.join(d, "mathjax_devdeps.pth")
            with open(path, "w") as f:
                f.write(line)
            return path
        except OSError:
            continue
    return None


def gap_folder(missing_tops: set[str]) -> str:
    """A folder linking only the missing top-level packages of .devdeps (and the repo's mathjax)."""
    folder = os.path.join("/tmp", "mathjax_devpath")
    os.makedirs(folder, exist_ok=True)
    names = [("mathjax", os.path.join(ROOT, "mathjax"))]
    if os.path.isdir(DEVDEPS):
        names += [(n, os.path.join(DEVDEPS, n)) for n in os.listdir(DEVDEPS)
                  if n.split(".")[0] in missing_tops and not n.endswith(".dist-info")]
    for name, src in names:
        dst = os.path.join(folder, name)
        if not os.path.lexists(dst):
            os.symlink(src, dst)
    return folder


def main() -> None:
    json_out = next((a.split("=", 1)[1] for a in sys.argv[1:] if a.startswith("--json_out=")), None)
    print(f"python {sys.version.split()[0]} at {sys.executable}; .devdeps {'present' if os.path.isdir(DEVDEPS) else 'ABSENT'}",
          flush=True)
    before = probe()
    pth = write_pth()
    pythonpath = ""
    if pth:
        print(f"wrote {pth} (repo root and .devdeps after site-packages)")
        after = probe(real_import=True)
    else:
        missing = {n.split(".")[0] for n, r in before.items() if not r["ok"]}
        pythonpath = gap_folder(missing)
        print(f"site-packages not writable: PYTHONPATH={pythonpath} (links to missing packages only)")
        after = probe({**os.environ, "PYTHONPATH": pythonpath}, real_import=True)
    for name, r in after.items():
        src = ("ok" if name not in before else "installed" if before[name]["ok"] else ".devdeps/repo") if r["ok"] \
            else "MISSING"
        detail = r.get("version", "") if r["ok"] else r["error"]
        print(f"  {name:18s} {src:13s} {detail}  [{MODULES.get(name, ('', 'check'))[1]}]")
    if json_out:
        with open(json_out, "w") as f:
            json.dump({"python": sys.version, "pth": pth, "pythonpath": pythonpath, "before": before,
                       "after": after}, f, indent=1)
    print(f"PYTHONPATH={pythonpath}")


if __name__ == "__main__":
    main()
