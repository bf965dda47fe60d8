"""gs:// paths everywhere, against a GCS emulator started here (gcp-storage-emulator, in memory).

gcsfs/etils.epath (files), tensorstore (orbax's arrays) and google-cloud-storage (tensorboardX)
all reach the emulator: the path layer, data files, the sampler's output files, grader reports,
synthesis runs, model checkpoints and HF exports, and a 2-process training run that is SIGKILLed
after a checkpoint and resumes from the bucket with the losses of the uninterrupted run and
nothing written to local disk.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import threading

import numpy as np
import pytest

from mathjax.io import appends, paths
from sft_fixtures import arithmetic_records, make_tokenizer, write_jsonl

BUCKET = "mathjax-test"
ROOT = f"gs://{BUCKET}"


class Emulator:
    """The running emulator and the environment that points every client at it."""

    def __init__(self, port: int):
        url = f"http://127.0.0.1:{port}"
        self.env = {
            "STORAGE_EMULATOR_HOST": url,  # gcsfs and google-cloud-storage
            "FSSPEC_GCS_TOKEN": "anon",  # gcsfs: no credential lookup (read when fsspec is imported)
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",  # no gRPC bucket-type probe (60 s timeout here)
            "TENSORSTORE_GCS_HTTP_URL": url,  # tensorstore's gcs driver (orbax arrays)
            "GOOGLE_AUTH_TOKEN_FOR_TESTING": "emulator",  # tensorstore: a fixed bearer token, no metadata server
        }


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _reset_gcs_clients() -> None:
    """Forgets cached filesystem instances, which hold the endpoint they were made with."""
    import gcsfs.core
    from etils.epath import backend

    gcsfs.core.GCSFileSystem.clear_instance_cache()
    backend.fsspec_backend._get_filesystem.cache_clear()


def _add_generation_headers(mp: pytest.MonkeyPatch) -> None:
    """Media downloads from the emulator get GCS's ``x-goog-generation`` header, which it leaves out.

    Without it tensorstore reads an existing object as generation 0 and its next conditional write
    fails with "Malformed StorageGeneration". OCDBT rereads a checkpoint item's manifest when the
    item's arrays are committed in more than one batch (timing-dependent: often on a loaded host),
    so orbax saves to the emulator failed at random before this.
    """
    from gcp_storage_emulator.handlers import objects

    download = objects.download

    def with_generation(request, response, storage, *args, **kwargs):
        download(request, response, storage, *args, **kwargs)
        if response.status.value < 300:
            obj = storage.get_file_obj(request.params["bucket_name"], request.params["object_id"])
            response["x-goog-generation"] = str(obj["generation"])
            response["x-goog-metageneration"] = str(obj.get("metageneration") or 1)

    mp.setattr(objects, "download", with_generation)  # objects.get(alt=media) calls it by name


@pytest.fixture(scope="module")
def gcs():
    import fsspec
    import gcsfs.core

    create_server = pytest.importorskip("gcp_storage_emulator.server",
                                        reason="pip install gcp-storage-emulator (a test dependency)").create_server

    port = _free_port()
    server = create_server("127.0.0.1", port, in_memory=True, default_bucket=BUCKET)
    server.start()
    # The emulator prints a traceback whenever a client hangs up first (gcsfs does); not a failure.
    server._api._httpd.handle_error = lambda request, client_address: None
    emulator = Emulator(port)
    with pytest.MonkeyPatch.context() as mp:
        _add_generation_headers(mp)
        for key, value in emulator.env.items():
            mp.setenv(key, value)
        # This process imported fsspec/gcsfs before the variables were set: apply them directly.
        for proto in ("gs", "gcs"):
            mp.setitem(fsspec.config.conf, proto, {**fsspec.config.conf.get(proto, {}), "token": "anon"})
            fsspec.register_implementation(proto, gcsfs.core.GCSFileSystem, clobber=True)
        _reset_gcs_clients()
        yield emulator
        _reset_gcs_clients()
    server.stop()


def test_path_layer(gcs):
    d = f"{ROOT}/layer"
    assert not paths.exists(d) and paths.is_remote(d) and paths.normalize(d + "/") == d
    assert paths.join(d, "a", "b.txt") == f"{d}/a/b.txt" and paths.dirname(f"{d}/x") == d
    assert paths.dirname(ROOT) == ROOT and paths.splitext(f"{d}/x.jsonl") == (f"{d}/x", ".jsonl")
    paths.makedirs(d)  # nothing to make on an object store
    paths.write_text(f"{d}/a.txt", "héllo\n")
    assert paths.read_text(f"{d}/a.txt") == "héllo\n" and paths.getsize(f"{d}/a.txt") == 7
    assert paths.isdir(d) and paths.isfile(f"{d}/a.txt") and not paths.isfile(d)
    with paths.open_file(f"{d}/sub/b.txt", "w") as f:
        f.write("line 1\nline 2\n")
    with paths.open_file(f"{d}/sub/b.txt") as f:
        assert list(f) == ["line 1\n", "line 2\n"]
    assert paths.listdir(d) == ["a.txt", "sub"] and paths.walk_files(d) == ["a.txt", "sub/b.txt"]
    with pytest.raises(ValueError, match="AppendFile"):
        paths.open_file(f"{d}/a.txt", "a")  # gcsfs would silently overwrite
    with pytest.raises(FileNotFoundError, match="layer/nothing"):
        paths.listdir(f"{d}/nothing")
    paths.truncate(f"{d}/sub/b.txt", 7)
    assert paths.read_text(f"{d}/sub/b.txt") == "line 1\n"
    paths.copy_tree(d, f"{ROOT}/layer-copy")
    assert paths.walk_files(f"{ROOT}/layer-copy") == ["a.txt", "sub/b.txt"]
    with paths.local_copy(d) as local:
        assert os.path.basename(local) == "layer" and open(os.path.join(local, "sub", "b.txt")).read() == "line 1\n"
    assert not os.path.exists(local)  # removed with the block
    paths.rmtree(f"{ROOT}/layer-copy")
    assert not paths.exists(f"{ROOT}/layer-copy")


def test_append_and_atomic_writes(gcs):
    log = f"{ROOT}/append/log.jsonl"
    with appends.AppendFile(log, interval=3600) as f:
        f.write("1\n")
        f.commit()
        assert not paths.exists(log)  # buffered until the interval passes or sync()
        f.sync()
        assert paths.read_text(log) == "1\n"
        f.write("2\n")
        f.commit()
    assert paths.read_text(log) == "1\n2\n"  # close() uploads the rest
    with appends.AppendFile(log, interval=0) as f:  # an upload (GCS compose) per commit
        for i in (3, 4):
            f.write(f"{i}\n")
            f.commit()
            assert paths.read_text(log).endswith(f"{i}\n")
    assert paths.read_text(log) == "1\n2\n3\n4\n"
    target = f"{ROOT}/append/atomic.txt"
    with pytest.raises(RuntimeError):
        with paths.atomic_writer(target) as f:
            f.write("half")
            raise RuntimeError("killed mid-write")
    with paths.atomic_writer(target) as f:
        f.write("whole\n")
    assert paths.read_text(target) == "whole\n"
    assert paths.listdir(f"{ROOT}/append") == ["atomic.txt", "log.jsonl"]  # no temporary objects left


def test_metrics_and_tensorboard_in_the_bucket(gcs):
    from mathjax.train import metrics

    workdir = f"{ROOT}/metrics-run"
    writer = metrics.MetricsWriter(workdir, enabled=True, tensorboard=True)
    for step in (1, 2, 3):
        writer.write(step, {"loss": 1.0 / step})
    assert not paths.exists(writer.path)  # uploaded in batches (every 30 s) ...
    writer.flush()  # ... and whenever the trainer is about to checkpoint
    assert [json.loads(line)["step"] for line in paths.read_text(writer.path).splitlines()] == [1, 2, 3]
    writer.close()
    assert paths.listdir(f"{workdir}/tb")[0].startswith("events.out.tfevents")  # tensorboardX, through the path layer
    resumed = metrics.MetricsWriter(workdir, resume_step=2, enabled=True, tensorboard=False)
    resumed.write(3, {"loss": 0.25})
    resumed.close()
    assert [json.loads(line)["loss"] for line in paths.read_text(writer.path).splitlines()] == [1.0, 0.5, 0.25]


def test_data_files_and_eval_sets(gcs, tmp_path):
    from mathjax.data import sources

    records = arithmetic_records(5)
    paths.copy_file(write_jsonl(tmp_path / "test.jsonl", records), f"{ROOT}/data/test.jsonl")
    source = sources.open_source(f"{ROOT}/data/test.jsonl")
    assert isinstance(source, sources.JsonlSource) and len(source) == 5
    assert [r["id"] for _, r in source.read([1, 3])] == ["arith-1", "arith-3"]
    assert source.location(2) == f"{ROOT}/data/test.jsonl:3"
    evals = sources.load_eval_set(f"{ROOT}/data", "test")  # a directory holding test.jsonl
    assert [r["answer"] for r in evals] == [r["final_answer"] for r in records]
    with pytest.raises(FileNotFoundError, match="missing.jsonl"):
        sources.JsonlSource(f"{ROOT}/data/missing.jsonl")


def test_sampler_files_shards_and_merge(gcs):
    from mathjax.sample import runner

    out = f"{ROOT}/samples/out.jsonl"
    shards = [runner.shard_path(out, i, 2) for i in range(2)]
    assert shards[1] == f"{ROOT}/samples/out.shard-00001-of-00002.jsonl"
    paths.write_text(shards[0], json.dumps({"id": "a"}) + "\n" + json.dumps({"id": "c"}) + "\n" + '{"id": "e", "sa')
    paths.write_text(shards[1], json.dumps({"id": "b"}) + "\n")
    assert [r["id"] for r in runner.read_output(shards[0])] == ["a", "c"]  # torn last line cut off...
    assert paths.read_text(shards[0]).endswith('"c"}\n')  # ...in the bucket too
    meta = {"num_samples": 4, "process_count": 2}
    runner._check_meta(shards[0], meta)
    with pytest.raises(ValueError, match="different sampling settings"):
        runner._check_meta(shards[0], {**meta, "num_samples": 8})
    assert runner.find_shards(out) == shards
    assert runner.merge(out, order=["a", "b", "c"]) == 3
    assert [json.loads(line)["id"] for line in paths.read_text(out).splitlines()] == ["a", "b", "c"]
    paths.write_text(f"{ROOT}/samples/q.jsonl", json.dumps({"id": 1, "question": "2+2?"}) + "\n")
    assert runner.read_jsonl_records(f"{ROOT}/samples/q.jsonl")[0]["question"] == "2+2?"


def test_grader_report(gcs):
    from mathjax import grader
    from mathjax.grader import samples_io

    samples = f"{ROOT}/grade/samples.jsonl"
    rows = [{"id": i, "answer": str(i), "samples": [{"text": f"The answer is: {i}."}, {"text": "The answer is: 0."}]}
            for i in range(1, 4)]
    paths.write_text(samples, "".join(json.dumps(r) + "\n" for r in rows))
    assert samples_io.read_jsonl(samples) == rows
    report = grader.evaluate(samples, f"{ROOT}/grade/report", workers=1, bootstrap=0, progress=False)
    assert report["pass_at_k"]["1"] == pytest.approx(0.5)
    written = json.loads(paths.read_text(f"{ROOT}/grade/report/report.json"))
    assert written["num_questions"] == 3
    assert paths.listdir(f"{ROOT}/grade/report") == ["graded.jsonl", "pass_at_k.png", "report.json", "report.md"]
    assert paths.read_bytes(f"{ROOT}/grade/report/pass_at_k.png")[:4] == b"\x89PNG"


def test_model_comparison_written_to_the_bucket(gcs):
    from mathjax.experiments import compare_models as cm

    result = {"questions": 2, "k": 4, "temperature": 0.7, "control": "SFT",
              "models": {name: {"greedy": 0.5, "pass_ratio": 0.25, "majority": 0.5, "pass_at_k": 1.0,
                                "slip_share": 0.0} for name in ("SFT", "GRPO")},
              "vs_control": {"GRPO": {m: [0.0, 0.0] for m in ("greedy", "pass_ratio", "majority", "pass_at_k")}}}
    files = cm.write(result, f"{ROOT}/compare/out")
    assert files["json"].startswith("gs://")
    assert json.loads(paths.read_text(files["json"])) == result
    assert "| GRPO | 50.0% (+0.0 ± 0.0) |" in paths.read_text(files["markdown"])
    assert paths.listdir(f"{ROOT}/compare/out") == ["compare.json", "compare.md"]


def test_synthesis_run_resumes_from_the_bucket(gcs, tmp_path):
    from mathjax import synth
    from test_synth_fakes import Crash, FakeGenerator, make_plan

    seeds_list, plan = make_plan(12)
    seeds = synth.load_seeds(write_jsonl(tmp_path / "seeds.jsonl", seeds_list))
    opts = synth.SynthOptions(num_answers=3)
    local = synth.run(seeds, FakeGenerator(plan), str(tmp_path / "local"), opts, progress=False).stats
    out = f"{ROOT}/synth"
    with pytest.raises(Crash):
        synth.run(seeds, FakeGenerator(plan, crash_after=16), out, opts, progress=False)
    assert paths.read_text(f"{out}/stages/2_verified.jsonl").count("\n") == 4  # uploaded as the run stopped
    resumed = FakeGenerator(plan)
    stats = synth.run(seeds, resumed, out, opts, progress=False).stats
    assert resumed.calls[0][1] == 0 and resumed.calls[1][1] == 12 - 1 - 4  # nothing redone
    assert stats["kept"] == local["kept"] and stats["dropped"] == local["dropped"]
    with open(tmp_path / "local" / "synthetic.jsonl", encoding="utf-8") as f:
        assert paths.read_text(f"{out}/synthetic.jsonl") == f.read()


def test_model_checkpoint_export_and_init_from(gcs, tmp_path):
    import jax

    import mathjax
    from mathjax.convert.hf import save_hf
    from mathjax.model import checkpoint as model_ckpt
    from mathjax.model.config import get_preset
    from mathjax.parallel.mesh import make_mesh
    from mathjax.train import checkpoint as ckpt

    tokenizer = f"{ROOT}/model/tok.model"
    paths.copy_file(make_tokenizer(str(tmp_path / "tok")), tokenizer)
    config = get_preset("tiny", vocab_size=416, hidden_size=32, intermediate_size=64, num_layers=1, num_heads=2,
                        num_kv_heads=1)
    model = mathjax.from_random(config, seed=1)
    assert model_ckpt.save_checkpoint(f"{ROOT}/model/ckpt/", config, model.params, tokenizer) == f"{ROOT}/model/ckpt"
    assert model_ckpt.is_mathjax_checkpoint(f"{ROOT}/model/ckpt")
    mesh = make_mesh("fsdp:-1")
    _, restored = model_ckpt.load_checkpoint(f"{ROOT}/model/ckpt", mesh)
    leaves = jax.tree_util.tree_leaves
    assert all(np.array_equal(a, b) for a, b in zip(leaves(model.params), leaves(restored)))
    save_hf(f"{ROOT}/model/hf", config, model.params, "float32", tokenizer)
    names = paths.listdir(f"{ROOT}/model/hf")
    assert {"config.json", "generation_config.json", "model.safetensors", "tokenizer.json"} <= set(names)
    numerics = {"dtype": "float32", "param_dtype": "float32"}
    for source in (f"{ROOT}/model/hf", f"{ROOT}/model/ckpt"):  # init_from: HF dir (range-read), checkpoint
        loaded, params, tok_path = ckpt.load_initial_model(source, mesh, "float32", numerics)
        assert loaded.hidden_size == 32 and tok_path == source
        assert all(np.allclose(a, b) for a, b in zip(leaves(model.params), leaves(params)))
    assert ckpt.load_tokenizer_from(f"{ROOT}/model/hf").vocab_size == ckpt.load_tokenizer_from(tokenizer).vocab_size


def test_hf_import_reads_the_bucket_in_place_once_per_tensor(gcs, tmp_path, monkeypatch):
    """A remote HF dir is range-read (no local copy), each tensor once, on an 8-device fsdp x tensor mesh."""
    import jax

    import mathjax
    from mathjax.convert import hf as hf_lib
    from mathjax.convert.safetensors_io import SafetensorsDir
    from mathjax.model.config import get_preset
    from mathjax.parallel.mesh import make_mesh

    config = get_preset("tiny", vocab_size=128, hidden_size=32, intermediate_size=64, num_layers=2, num_heads=4,
                        num_kv_heads=2)
    model = mathjax.from_random(config, seed=3)
    hf_lib.save_hf(f"{ROOT}/import/hf", config, model.params, "float32")
    monkeypatch.setattr(paths, "local_copy", lambda *a, **k: pytest.fail("the checkpoint was copied locally"))
    opened = []
    original = SafetensorsDir.__init__

    def spy(self, model_dir):
        original(self, model_dir)
        opened.append(self)

    monkeypatch.setattr(SafetensorsDir, "__init__", spy)
    mesh = make_mesh("data:1,fsdp:4,tensor:2")  # every tensor is split or replicated over 8 devices
    loaded = mathjax.load(f"{ROOT}/import/hf", mesh=mesh)
    leaves = jax.tree_util.tree_leaves
    assert all(np.array_equal(a, b) for a, b in zip(leaves(model.params), leaves(loaded.params)))
    (files,) = opened
    assert files.reads == len(files.location)  # once per tensor; per device it was 8 times as many
    assert _local_files(str(tmp_path)) == []


# ---------------------------------------------------------------------------
# End to end: 2 processes train into the bucket, are SIGKILLed, resume elsewhere.


def _bucket_metrics(workdir: str) -> list[dict]:
    return [json.loads(line) for line in paths.read_text(paths.join(workdir, "metrics.jsonl")).splitlines()]


def _local_files(*roots) -> list[str]:
    return sorted(os.path.relpath(os.path.join(d, f), r) for r in roots for d, _, fs in os.walk(r) for f in fs)


@pytest.mark.slow
def test_two_process_run_in_the_bucket_resumes_after_sigkill(gcs, tmp_path):
    from test_distributed_startup import run_workers, start_workers

    data = f"{ROOT}/e2e/data"
    paths.copy_file(make_tokenizer(str(tmp_path / "src")), f"{data}/tok.model")
    paths.copy_file(write_jsonl(tmp_path / "src" / "train.jsonl", arithmetic_records(96)), f"{data}/train.jsonl")
    workdir = f"{ROOT}/e2e/run"
    spec = {"data.train_files": f"{data}/train.jsonl", "tokenizer": f"{data}/tok.model", "steps": 6,
            "checkpoint_every": 3, "seed": 5,
            "compilation_cache_dir": str(tmp_path / "jax_cache")}  # JAX's, not the run's
    local_tmp = tmp_path / "tmp"
    cwds = [tmp_path / "cwd1", tmp_path / "cwd2"]
    for d in [local_tmp, *cwds]:
        d.mkdir()
    # Metrics lines reach the bucket as they are written (not every 30 s), so the killed run's own
    # lines past the checkpoint are the uninterrupted run's to compare the resumed steps with.
    env = {**gcs.env, "TMPDIR": str(local_tmp), "MATHJAX_REMOTE_APPEND_SECONDS": "0"}

    # Step 6 is the last one: both processes stop there, once checkpoint 3 is complete, and are killed.
    procs = start_workers(workdir, spec, [["--hold_at_step=6", "--wait_for_checkpoint=3"]] * 2, env, str(cwds[0]))
    holding, outputs = threading.Barrier(3, timeout=300), [[], []]

    def read(i: int) -> None:
        for line in procs[i].stdout:
            outputs[i].append(line)
            if line.startswith("HOLDING"):
                holding.wait()
                return
        holding.abort()  # exited without holding: fail now, not at the timeout

    readers = [threading.Thread(target=read, args=(i,), daemon=True) for i in range(2)]
    for t in readers:
        t.start()
    try:
        holding.wait()
    except threading.BrokenBarrierError:
        pytest.fail("workers never held at step 6:\n" + "".join(outputs[0][-40:] + outputs[1][-40:]))
    finally:
        for p in procs:
            p.send_signal(signal.SIGKILL)
            p.wait(timeout=60)
            p.stdout.close()
    assert [p.returncode for p in procs] == [-signal.SIGKILL] * 2
    uninterrupted = _bucket_metrics(workdir)
    assert [m["step"] for m in uninterrupted] == [1, 2, 3, 4, 5, 6]
    assert paths.listdir(f"{workdir}/checkpoints") == ["3"]

    again = run_workers(workdir, spec, [[], []], env, str(cwds[1]))
    for rc, out in again:
        assert rc == 0, out[-3000:]
        assert "FIRST_STEP 4" in out and 'RESULT {"step": 6, "preempted": false}' in out
    resumed = _bucket_metrics(workdir)
    key = [(m["step"], m["loss"], m["grad_norm"]) for m in uninterrupted]
    assert [(m["step"], m["loss"], m["grad_norm"]) for m in resumed] == key  # exact, and no step twice
    names = paths.walk_files(workdir)
    assert {"train_config.json", "mathjax_config.json", "metrics.jsonl", "tokenizer/tokenizer.model",
            "checkpoints/3/commit_success.txt", "checkpoints/6/commit_success.txt"} <= set(names)
    assert not [n for n in names if ".tmp" in n or ".append-" in n]
    # Nothing of the run on local disk: the working dirs and TMPDIR are empty (no ./gs:/ tree).
    assert _local_files(local_tmp, *cwds) == []
