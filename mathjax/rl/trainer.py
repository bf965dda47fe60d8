"""The GRPO-family RL loop: rollout with the sampler, reward with the grader, clipped policy updates.

Each step: the prompts of the step (``data.step_records``) get ``group_size``
samples from the current policy (``rollout.collect``); with several minibatch
updates per rollout the trainer recomputes their log-probs under the sampling
params (``old_logp``: the PPO ratio's denominator), with one update the update's
own forward pass gives them (gradient stopped: no second pass). Either way their
gap to the sampler's own log-probs is logged, since numerics of the two paths
differ. The frozen reference's log-probs come too when ``kl_coef > 0``; then
``updates_per_rollout`` minibatch updates. Checkpoints are the SFT
trainer's (orbax, async, keep-K) with the rollout step as the data position;
the reference is the initial model, reloaded on resume; sampling seeds derive
from (seed, step). So a run killed at any point and resumed from its last
checkpoint repeats exactly what the uninterrupted run would have done.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from typing import Any

import jax
import numpy as np

from mathjax.api import Model
from mathjax.io import paths
from mathjax.parallel.mesh import make_mesh
from mathjax.rl import compact as compact_lib
from mathjax.rl import data as rl_data
from mathjax.rl import rollout as rollout_lib
from mathjax.rl.evaluate import question_results
from mathjax.rl.rewards import parse_weights
from mathjax.rl.step import BATCH_KEYS, is_on_policy, make_logprob_fn, make_rl_step, row_sharding
from mathjax.sample import SamplingRules
from mathjax.sample.host_arrays import replicated, to_global
from mathjax.train import checkpoint as ckpt
from mathjax.train import metrics as metrics_lib
from mathjax.train.optimizer import make_optimizer
from mathjax.train.state import abstract_state, create_state
from mathjax.train.trainer import Preemption, numerics, resolve_model_config


@dataclasses.dataclass
class RLResult:
    workdir: str
    step: int
    last_metrics: dict[str, Any]
    preempted: bool


def _step_seed(seed: int, step: int) -> int:
    return (int(seed) * 1_000_003 + int(step)) % (2**31)


def evaluate(policy: Model, tokenizer, records: list[dict], template: str, max_new_tokens: int, k: int,
             rules: SamplingRules, seed: int, batch_size: int) -> dict[str, float]:
    """Greedy accuracy and Pass@k (k samples at the rollout temperature) on held-out records, by the grader."""
    return question_results(policy, tokenizer, records, template, max_new_tokens, k, rules, seed,
                            batch_size).summary()


def train_rl(config, workdir: str, progress: bool = False) -> RLResult:
    """Runs (or resumes) RL as described by ``config`` (``configs/*_grpo.py``) in ``workdir``."""
    workdir = paths.normalize(workdir)
    rl = config.rl
    paths.makedirs(workdir)
    mesh = make_mesh(config.mesh)
    model_numerics = numerics(config)
    manager = ckpt.CheckpointManager(workdir, keep=config.keep_checkpoints, async_save=config.get("async_checkpoint", True))
    latest = manager.latest_step()
    if not config.init_from and latest is None:
        raise ValueError("config.init_from is required: the SFT workdir or model dir RL starts from")

    # ---- model, tokenizer; the initial params are also the frozen reference ----
    base, init_params, tokenizer_path = (None, None, None)
    if config.init_from and (latest is None or rl.kl_coef):
        base, init_params, tokenizer_path = ckpt.load_initial_model(config.init_from, mesh, config.param_dtype,
                                                                    model_numerics)
    if latest is not None:
        base = ckpt.read_model_config(workdir)
        tokenizer_path = config.tokenizer or ckpt.workdir_tokenizer_path(workdir) or tokenizer_path
    tokenizer_path = config.tokenizer or tokenizer_path
    if not tokenizer_path:
        raise ValueError("no tokenizer: set config.tokenizer or init_from a model dir/workdir that has one")
    tokenizer = ckpt.load_tokenizer_from(tokenizer_path)
    model_config = resolve_model_config(config, tokenizer, base)
    compute_config = model_config  # its dtype is the compute dtype; params stay param_dtype
    view = rollout_lib.make_policy_view(compute_config, mesh)
    # The reference feeds the trainer's log-prob pass (stacked layers), not the sampler.
    ref_view = (rollout_lib.make_reference(compute_config, mesh)(init_params)
                if (rl.kl_coef and init_params is not None) else None)

    # ---- data ----
    train_records = rl_data.read_records(config.data.train_files, config.data.question_field,
                                         config.data.answer_field)
    eval_records = None
    if config.data.eval_files:
        eval_records = rl_data.read_records(config.data.eval_files, config.data.question_field,
                                            config.data.answer_field)
        if rl.eval_max_questions:
            eval_records = eval_records[: int(rl.eval_max_questions)]
    group, per_step, updates = int(rl.group_size), int(rl.prompts_per_step), int(rl.updates_per_rollout)
    rows = per_step * group
    if rows % updates:
        raise ValueError(f"prompts_per_step x group_size = {rows} does not split into {updates} minibatches")
    steps = int(config.steps)

    # ---- state ----
    optimizer, schedule = make_optimizer(config.optimizer, model_config, steps * updates)
    if latest is not None:
        state, data_state = manager.restore(latest, abstract_state(model_config, mesh, optimizer))
        start = int(data_state.get("rl_step", -1))
        if start != latest:
            raise ValueError(f"{manager.directory}: checkpoint {latest} holds rollout step {start}")
        logging.info("resumed from %s step %d", manager.directory, latest)
    else:
        state = create_state(model_config, mesh, optimizer, config.seed, init_params)
        start = 0
    init_params = None
    if rl.kl_coef and ref_view is None:
        raise ValueError("kl_coef > 0 needs config.init_from (the frozen reference) on resume too")
    resolved = json.loads(config.to_json_best_effort())
    resolved["resolved"] = {"steps": steps, "tokenizer": tokenizer_path, "mesh": dict(mesh.shape),
                            "model": json.loads(model_config.to_json()), "num_processes": jax.process_count()}
    ckpt.write_workdir_metadata(workdir, model_config, tokenizer_path, resolved)

    rules = SamplingRules(temperature=float(rl.temperature), top_p=float(rl.top_p), top_k=int(rl.top_k))
    weights = parse_weights(rl.rewards)
    max_new = int(rl.max_new_tokens)
    rollout_batch = int(rl.rollout_batch_size) or rows
    logprob_fn = make_logprob_fn(compute_config, mesh, float(rl.temperature or 1.0))
    # One update per rollout: the update's params sampled the batch, so the old log-probs are the
    # update's own (gradient stopped) and their separate forward pass is skipped.
    on_policy = is_on_policy(rl)
    skip_rows = compact_lib.applies(rl)
    row_shards = mesh.shape["data"] * mesh.shape["fsdp"]
    rl_step = make_rl_step(model_config, optimizer, schedule, mesh, rl, max_new, on_policy=on_policy)
    writer = metrics_lib.MetricsWriter(workdir, resume_step=start, tensorboard=config.get("tensorboard", True))
    preemption = Preemption()
    is_main = jax.process_index() == 0
    eval_every = int(config.get("eval_every", 0) or 0)
    last: dict[str, Any] = {}
    preempted = False
    t_start = time.perf_counter()

    def policy_model(params) -> Model:
        return Model(config=compute_config, params=params, mesh=mesh, tokenizer_path=tokenizer_path)

    def evaluate_policy(params) -> dict[str, float]:
        return evaluate(policy_model(view(params)), tokenizer, eval_records, config.data.template, max_new,
                        int(rl.eval_samples), rules, config.seed, rollout_batch)

    def put(x: np.ndarray):
        return to_global(x, row_sharding(mesh, x.shape))

    try:
        if eval_records is not None and start == 0 and rl.get("eval_at_start", False):
            # The starting policy's line (step 0): the baseline every later eval line is read against.
            m0 = evaluate_policy(state.params)
            writer.write(0, m0)
            if is_main:
                print(f"step 0/{steps} | eval greedy {m0['eval_greedy_accuracy']:.3f}", flush=True)
        for step in range(start, steps):
            t0 = time.perf_counter()
            records = rl_data.step_records(train_records, step, per_step, config.seed)
            policy = policy_model(view(state.params))
            ro = rollout_lib.collect(
                policy, tokenizer, records, group_size=group, rules=rules, max_new_tokens=max_new,
                seq_len=int(config.seq_len), template=config.data.template, seed=_step_seed(config.seed, step),
                batch_size=rollout_batch, reward_weights=weights, advantage=rl.advantage,
                drop_equal_groups=bool(rl.drop_equal_groups), overlong_buffer=int(rl.overlong_buffer),
                overlong_factor=float(rl.overlong_factor), question_prefix=f"{step}/",
                process_coef=float(rl.get("process_coef", 0.0)))
            if rl.get("trim_padding", True):
                ro = ro.trimmed()
            del policy  # the per-layer copy is only for sampling
            # Whole-batch log-prob passes: the old policy's with several updates, the reference's with KL.
            needs_pass = not on_policy or ref_view is not None
            tokens, targets = (put(ro.tokens), put(ro.targets)) if needs_pass else (None, None)
            if on_policy:  # the step's own log-probs are the old ones; the sampler's give the gap metric
                old_logp = ro.sampler_logp
            else:
                old_logp = np.asarray(jax.device_get(logprob_fn(state.params, tokens, targets)))
                on = ro.mask > 0
                gap = float(np.abs(old_logp - ro.sampler_logp)[on].mean()) if on.any() else 0.0
            ref_logp = (np.asarray(jax.device_get(logprob_fn(ref_view, tokens, targets))) if ref_view is not None
                        else np.zeros_like(old_logp))
            batch = {"tokens": ro.tokens, "targets": ro.targets, "mask": ro.mask, "old_logp": old_logp,
                     "ref_logp": ref_logp, "advantages": ro.advantages, "weight": ro.weight}
            size = rows // updates
            update_metrics = []
            trained_rows = 0
            for u in range(updates):
                mb = {k: batch[k][u * size : (u + 1) * size] for k in BATCH_KEYS}
                if skip_rows:  # rows with zero advantage add nothing to the loss or its gradient
                    keep = compact_lib.informative_rows(mb["advantages"], mb["mask"], mb["weight"])
                    mb = compact_lib.compact(mb, keep, seq_len=int(config.seq_len), row_multiple=row_shards)
                trained_rows += len(mb["weight"])
                dev = {k: put(np.ascontiguousarray(mb[k])) for k in BATCH_KEYS}
                dev.update({k: replicated(mb[k], mesh) for k in compact_lib.DENOMINATORS if k in mb})
                state, m = rl_step(state, dev)
                update_metrics.append(m)
            update_metrics = [{k: float(v) for k, v in jax.device_get(m).items()} for m in update_metrics]
            m = {k: float(np.mean([x[k] for x in update_metrics])) for k in update_metrics[0]}
            if on_policy:
                gap = m.pop("logprob_gap")
            m.update(ro.metrics(group))
            m["update_row_fraction"] = trained_rows / rows
            seconds = time.perf_counter() - t0
            trained = float(ro.mask.sum())
            m.update({"logprob_gap": gap, "step_seconds": seconds, "tokens_per_sec": (ro.generated_tokens + trained) / seconds,
                      "update_seconds": seconds - ro.seconds})
            done = step + 1
            if eval_records is not None and (done == steps or (eval_every and done % eval_every == 0)):
                m.update(evaluate_policy(state.params))
            elapsed = time.perf_counter() - t_start
            m["eta_seconds"] = elapsed / (done - start) * (steps - done)
            writer.write(done, m)
            last = m
            if is_main:
                line = (f"step {done}/{steps} | reward {m['reward_mean']:.3f} | pass {m['pass_rate']:.3f} | "
                        f"len {m['response_length']:.0f} | clip {m['clip_fraction']:.3f} | kl {m['kl']:.4f} | "
                        f"gap {gap:.4f} | {m['tokens_per_sec']:,.0f} tok/s | "
                        f"eta {metrics_lib.format_duration(m['eta_seconds'])}")
                if "eval_greedy_accuracy" in m:
                    line += f" | eval greedy {m['eval_greedy_accuracy']:.3f}"
                print(line, flush=True)
            preempted = preemption.reached(manager, done)
            if preempted or done == steps or (config.checkpoint_every and done % int(config.checkpoint_every) == 0):
                writer.flush()  # metrics up to a checkpoint are durable before it exists
                manager.save(done, state, {"rl_step": done})
            if preempted:
                break
        manager.wait_until_finished()
        if not preempted and config.get("export_hf_dir"):
            from mathjax.convert.hf import save_hf

            save_hf(config.export_hf_dir, model_config, state.params, config.export_dtype, tokenizer_path)
    finally:
        preemption.restore()
        writer.close()
        manager.close()
    return RLResult(workdir=workdir, step=int(jax.device_get(state.step)) // max(updates, 1), last_metrics=last,
                    preempted=preempted)
