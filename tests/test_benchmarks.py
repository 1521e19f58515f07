"""CLI smoke runs of benchmarks/perf.py (its quick budget), benchmarks/probe.py,
benchmarks/physics_probe.py and benchmarks/constancy_breakdown.py; benchmarks/pusht.py's failure
breakdown on hand-made episodes."""

from __future__ import annotations

import importlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from jepaworld.models.world_model import WorldModel
from jepaworld.train import native_bfloat16
from tests.conftest import tiny_model

ROOT = Path(__file__).resolve().parents[1]


def test_perf_quick_writes_sane_json(tmp_path: Path) -> None:
    out = tmp_path / "results" / "perf.json"
    # one thread: with two threads on a CPU shared with other jobs, OpenMP waits can make tiny
    # ops orders of magnitude slower; the smoke test checks the script, not the machine
    cmd = [sys.executable, "benchmarks/perf.py", "--quick", "--threads", "1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "matmul peak" in proc.stdout and "plan E=1" in proc.stdout
    r = json.loads(out.read_text())

    assert {"environment", "quick", "budget", "matmul", "train", "plan", "peak_rss_mib"} <= set(r)
    env = r["environment"]
    assert env["threads"] == 1 and env["device"] == "cpu" and r["quick"] is True
    assert env["torch"] and env["python"] and env["timestamp"]
    assert r["matmul"]["gflops"] > 0

    train = r["train"]
    assert train["flops_per_step"] > 1e9  # the default model: ~0.15 GFLOP per clip, fwd + bwd
    for name in ("model_only", "with_loader"):
        t = train[name]
        assert t["seconds_per_step"] > 0 and t["samples_per_s"] > 0
        assert t["frames_per_s"] == pytest.approx(t["samples_per_s"] * train["clip_frames"])
        assert 0 < t["fraction_of_peak"] < math.inf

    encoders = r["train_by_encoder"]
    names = {"default", "wide-conv", "vit"}
    if native_bfloat16(torch.device("cpu")):  # each also with a bfloat16 encoder, vs both peaks
        assert r["matmul_bf16"]["gflops"] > 0 and r["matmul_bf16"]["dtype"] == "bfloat16"
        bf16 = {f"{n}, bf16 encoder" for n in names}
        assert all(0 < encoders[n]["fraction_of_bf16_peak"] < math.inf for n in bf16)
        assert all(encoders[n]["encoder_dtype"] == "bfloat16" for n in bf16)
        names |= bf16
    assert set(encoders) == names
    assert encoders["wide-conv"]["flops_per_step"] > 2 * encoders["default"]["flops_per_step"]
    assert all(0 < e["fraction_of_peak"] < math.inf for e in encoders.values())
    assert "train by encoder: vit" in proc.stdout

    plan = r["plan"]
    assert (plan["samples"], plan["elites"], plan["iterations"], plan["horizon"]) == (
        300,
        30,
        30,
        5,
    )
    single = plan["single"]
    assert 0 < single["p50_s"] <= single["p95_s"]
    assert single["target_s"] == 0.5
    assert single["pass"] == (single["p50_s"] <= 0.5)
    batch = plan["batch"]
    assert batch["seconds_per_problem"] * batch["problems"] == pytest.approx(
        batch["seconds_per_batch"]
    )
    assert 10 < r["peak_rss_mib"] < 64_000


def test_probe_script_scores_checkpoint_and_untrained_encoder(
    tiny_run: Path, tiny_data: Path, tmp_path: Path
) -> None:
    out = tmp_path / "probe.json"
    cmd = [sys.executable, "benchmarks/probe.py", "--run", str(tiny_run), "--data", str(tiny_data)]
    cmd += ["--steps", "50", "--group", "xy:0,1", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["groups"] == {"xy": [0, 1]} and r["angle_dims"] == []
    assert len(r["checkpoint_sha256"]) == 64 and len(r["data_manifest_sha256"]) == 64
    for name in ("checkpoint", "untrained"):
        assert r[name]["episodes"] == {"train": 5, "held_out": 1}
        assert {"linear", "mlp", "mean"} <= set(r[name])
        assert r[name]["mlp"]["groups"]["xy"]["median"] >= 0
    assert "checkpoint (" in proc.stdout and "untrained (" in proc.stdout
    bad = subprocess.run(
        [*cmd[:6], "--group", "xy:0,a", "--out", str(out)],
        cwd=ROOT, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert bad.returncode != 0 and "--group 'xy:0,a'" in bad.stderr


def test_physics_probe_script_probes_a_grid_checkpoint_and_its_token_under_the_ball(
    tmp_path: Path,
) -> None:
    run, out = tmp_path / "run", tmp_path / "look.json"
    torch.manual_seed(0)
    WorldModel(tiny_model(latent="grid")).save(run / "checkpoints" / "step_00000001")
    cmd = [sys.executable, "benchmarks/physics_probe.py", "--run", str(run), "--videos", "5"]
    cmd += ["--steps", "20", "--out", str(out)]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    probes = r["probes"]
    assert {"model", "model_token", "untrained", "untrained_token", "majority"} <= set(probes)
    assert all(0 <= probes["model_token"][k] <= 1 for k in ("colour", "shape"))
    assert probes["samples"]["held_out"] > 0 and len(r["checkpoint_sha256"]) == 64
    assert "model_token" in proc.stdout


def constancy_breakdown(run: Path, out: Path, context: int, prop: str = "constancy") -> dict:
    cmd = [sys.executable, "benchmarks/constancy_breakdown.py", "--run", str(run)]
    cmd += ["--sets", "3", "--context", str(context), "--out", str(out), "--property", prop]
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(out.read_text())


def test_constancy_breakdown_reports_the_four_videos_of_each_set_per_frame(tmp_path: Path) -> None:
    run = tmp_path / "run"
    torch.manual_seed(0)
    WorldModel(tiny_model(latent="grid", action_dim=0)).save(run / "checkpoints" / "step_00000001")
    short = constancy_breakdown(run, tmp_path / "short.json", context=4)
    assert short["protocol"]["pairs"] == 3 and short["protocol"]["context"] == 4
    assert short["tokens"] > 1 and {row["kind"] for row in short["rows"]} == {"colour", "shape"}
    assert sum(row["sets"] for row in short["rows"] if row["offset"] == 0) == 3  # each set once
    for row in short["rows"]:  # sets 0-2 hide the ball for 4+ frames: a 4-frame window is blind
        assert row["AA"] == row["BA"] and row["BB"] == row["AB"], row  # ... to the earlier look
        assert all(row[v] > 0 for v in ("AA", "BB", "AB", "BA")) and 0 <= row["share_above_0"] <= 1
        total = row["AB"] + row["BA"] - row["AA"] - row["BB"]  # means of sums: the sum of means
        assert math.isclose(row["impossible_minus_possible"], total, abs_tol=2e-5)
    cmd = [
        sys.executable,
        "benchmarks/constancy_breakdown.py",
        "--run",
        str(run),
        "--context",
        "30",
    ]
    bad = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert bad.returncode != 0 and "--context: 30 frames" in bad.stderr and "max_len" in bad.stderr


def test_the_breakdown_reads_permanence_sets_as_a_ball_there_or_not(tmp_path: Path) -> None:
    run = tmp_path / "run"
    torch.manual_seed(0)
    WorldModel(tiny_model(action_dim=0)).save(run / "checkpoints" / "step_00000001")
    r = constancy_breakdown(run, tmp_path / "perm.json", context=15, prop="permanence")
    assert r["property"] == "permanence" and r["tokens"] == 1  # a vector: the whole embedding
    assert {row["kind"] for row in r["rows"]} == {"presence"}
    assert [row["sets"] for row in r["rows"] if row["offset"] == 0] == [3]
    for row in r["rows"]:
        total = row["AB"] + row["BA"] - row["AA"] - row["BB"]
        assert math.isclose(row["impossible_minus_possible"], total, abs_tol=2e-5)


def test_pusht_failure_breakdown_sorts_failures_by_what_they_missed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    pusht = importlib.import_module("pusht")  # benchmarks/pusht.py
    goal = [100.0, 100.0, 300.0, 300.0, 1.0]

    def episode(final: list[float], success: bool = False) -> dict:
        return {"goal": goal, "final_state": final, "success": success}

    episodes = [
        episode(goal, success=True),  # successes are not failures
        episode([400.0, 100.0, 300.0, 300.0, 1.0]),  # pusher 300 px off: ran away
        episode([110.0, 100.0, 300.0, 320.0, 1.0]),  # 10 + 20 px: L2 22.4, a near miss
        episode([100.0, 100.0, 300.0, 300.0, 1.5]),  # right place, 29 degrees off
        episode([100.0, 505.0, 300.0, 300.0, 1.0]),  # ran away to the bottom edge, 7 px from it
    ]
    b = pusht.failure_breakdown(episodes)
    assert (b["failures"], b["runaway"], b["near_miss"], b["angle_missed"]) == (4, 2, 2, 1)
    assert b["position_missed"] == 3  # the angle-only failure is within 20 px
    assert b["pusher_at_edge"] == 1  # the runaway at (400, 100) is 100 px from the top edge
    assert b["median_pusher_px"] == pytest.approx(155.0)  # of 0, 10, 300, 405
    assert b["median_block_px"] == pytest.approx(0.0)
    assert b["median_angle_deg"] == pytest.approx(0.0)
    none = pusht.failure_breakdown(episodes[:1])
    assert none["failures"] == 0 and none["median_block_px"] is None


def test_rollout_probe_reads_predictions_beside_observed_frames_and_no_change(
    tmp_path: Path,
) -> None:
    """On a tiny PushT dataset and a tiny model with a pixel decoder: the "no change" row is the
    true block displacement (computed here from the states), every row has one entry per rollout
    step, and the decoded PNG has 3 rows of horizon + 1 frames per clip."""
    pytest.importorskip("gym_pusht")
    from jepaworld.data.collect import CollectConfig, collect
    from jepaworld.data.episodes import EpisodeStore
    from jepaworld.train import train
    from tests.conftest import tiny_train

    data = tmp_path / "pusht"
    collect(CollectConfig(out=data, env="jepaworld/PushT-v0", episodes=5, episode_length=21))
    run = tmp_path / "run"
    train(tiny_train(data, run, steps=2, model=tiny_model(recon_weight=1.0)))
    out, png = tmp_path / "roll.json", tmp_path / "roll.png"
    cmd = [sys.executable, "benchmarks/rollout_probe.py", "--run", str(run), "--data", str(data)]
    cmd += ["--horizon", "2", "--steps", "20", "--moved-px", "-1", "--png", str(png)]
    proc = subprocess.run([*cmd, "--out", str(out)], cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    stride = WorldModel.from_pretrained(run / "checkpoints" / "step_00000002").config.frame_stride
    span = 2 * stride  # clips of 3 model steps, held out: the last of the 5 episodes
    states = EpisodeStore(data).episode(4).states
    starts = range(0, len(states) - span, span)
    shift = [math.dist(states[t + stride][2:4], states[t][2:4]) for t in starts]
    moved = r["moved"]  # with --moved-px -1 every clip counts as moved
    assert moved["clips"] == len(shift) >= 1 and r["still"] == {"clips": 0}
    first = moved["no_change"][0]["groups"]["block_xy"]["mean"]
    assert first == pytest.approx(sum(shift) / len(shift), abs=1e-3)
    for kind in ("predicted", "observed", "no_change"):
        assert [s["step"] for s in moved[kind]] == [1, 2]
    from PIL import Image

    w, h = Image.open(png).size
    assert w == 3 * 64 and h == 3 * 64 * min(4, moved["clips"])


def test_rollout_probe_moved_wraps_angles_and_per_step_scores_each_step(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    rp = importlib.import_module("rollout_probe")  # benchmarks/rollout_probe.py
    from jepaworld.bench.probe import regression_targets

    def clip(block_end: list[float]) -> list[list[float]]:  # (L+1 = 2, S = 5)
        return [[0.0, 0.0, 100.0, 100.0, math.radians(179)], [50.0, 0.0, *block_end]]

    states = torch.tensor(
        [
            clip([100.0, 100.0, math.radians(-179)]),  # turned 2 degrees across the wrap: still
            clip([100.0, 112.0, math.radians(179)]),  # moved 12 px
            clip([100.0, 100.0, math.radians(170)]),  # turned 9 degrees
        ]
    )
    assert rp.moved(states, px=10.0, deg=5.0).tolist() == [False, True, True]
    # a reader that returns the true state of the step it is given scores zero at every step
    angle, groups = [4], {"block_xy": [2, 3], "pusher_xy": [0, 1]}
    z = regression_targets(states[:, 1], angle).unsqueeze(1)  # (N, L=1, Y) as "embeddings"
    exact = rp.per_step(lambda y: y, z, states, angle, groups)
    assert [s["step"] for s in exact] == [1]
    assert exact[0]["groups"]["block_xy"]["mean"] == pytest.approx(0.0, abs=1e-3)
    assert exact[0]["dims"]["4"]["mean"] == pytest.approx(0.0, abs=1e-3)
    still = rp.per_step(None, None, states, angle, groups)  # "no change": the start state
    assert still[0]["groups"]["pusher_xy"]["mean"] == pytest.approx(50.0)
    assert still[0]["groups"]["block_xy"]["mean"] == pytest.approx(4.0)  # (0 + 12 + 0) / 3
    assert still[0]["dims"]["4"]["mean"] == pytest.approx((2 + 0 + 9) / 3, abs=1e-3)


def test_physics_benchmark_pretrains_the_preset_with_only_the_options_given(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    physics = importlib.import_module("physics")  # benchmarks/physics.py
    from jepaworld.physics.pretrain import PRETRAIN_STEPS, video_model

    preset = physics.pretrain_config(tmp_path, None, {}, None)
    assert preset.steps == PRETRAIN_STEPS and preset.seed == 0 and preset.model == video_model()
    assert preset.data == tmp_path / "scenes" and preset.out == tmp_path / "run"
    args = physics.argparse.Namespace(recon_weight=30.0, reg_weight=None, sigreg_over=None)
    variant = physics.pretrain_config(tmp_path, 2700, physics.model_options(args), 1)
    assert variant.steps == 2700 and variant.seed == 1 and variant.model.recon_weight == 30.0
    others = {k: v for k, v in vars(variant.model).items() if k != "recon_weight"}
    assert others == {k: v for k, v in vars(video_model()).items() if k != "recon_weight"}
    args = physics.argparse.Namespace(recon_weight=None, reg_weight=0.3, sigreg_over="time")
    per_step = physics.pretrain_config(tmp_path, None, physics.model_options(args), None)
    assert per_step.model == physics.dataclasses.replace(
        video_model(), reg_weight=0.3, sigreg_over="time"
    )
    stage = physics.predictor_config(tmp_path, preset, 900, 24)
    assert stage.init == preset.out and stage.out == tmp_path / "run_predictor"
    assert stage.freeze_encoder and stage.cache_latents
    assert (stage.steps, stage.clip_frames) == (900, 24)
    assert (stage.data, stage.model, stage.seed) == (preset.data, preset.model, preset.seed)
    assert stage.hide_frames == 0.0
    assert physics.predictor_config(tmp_path, preset, 900, 24, 0.5).hide_frames == 0.5
    for bad in (
        ["--predictor-hide-frames", "0.5"],
        ["--predictor-steps", "9", "--predictor-hide-frames", "2"],
    ):
        with pytest.raises(SystemExit):  # refused before any work
            physics.main(bad)


def test_pendulum_oracle_steps_as_gymnasium_does_and_passes_through_a_goal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    gym = pytest.importorskip("gymnasium")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    oracle = importlib.import_module("pendulum_oracle")  # benchmarks/pendulum_oracle.py
    env = gym.make("Pendulum-v1")
    env.reset(seed=0)
    g = torch.Generator().manual_seed(0)
    for _ in range(20):  # states and torques beyond the limits too (clipped by both)
        th, thdot = (float(v) for v in torch.rand(2, generator=g) * 20 - 10)
        u = float(torch.rand(1, generator=g) * 6 - 3)
        env.unwrapped.state = np.array([th, thdot])
        obs, *_ = env.step(np.array([u], dtype=np.float32))
        mine = oracle.observe(*oracle.pendulum_step(*torch.tensor([th, thdot, u]).double()))
        assert torch.allclose(mine, torch.from_numpy(obs).double(), atol=1e-5)

    # the state 10 steps of full torque away from upright at rest (gymnasium's angle 0), where doing
    # nothing stays, far from it: planning to reach it at any step gets there, in the real env
    start = [1.0, 0.0, 0.0]  # (cos, sin, speed): upright at rest
    zero = torch.zeros((), dtype=torch.float64)
    th, thdot = zero, zero
    for _ in range(10):
        th, thdot = oracle.pendulum_step(th, thdot, zero + 2.0)
    goal = oracle.observe(th, thdot)
    assert (oracle.observe(zero, zero) - goal).norm() > 1.0
    goal = goal.tolist()
    protocol = {
        "budget": 30,
        "tolerance": 0.2,
        "planner": {
            "frame_stride": 5, "horizon": 3, "samples": 64, "elites": 8, "iterations": 5,
            "init_std": 1.0, "min_std": 0.05, "momentum": 0.0, "intermediate_weight": 0.1,
        },
    }  # fmt: skip
    episodes = [
        {"seed": 0, "start": start, "goal": goal},
        {"seed": 1, "start": goal, "goal": goal},  # there from the start: success at step 0
    ]
    reached, there = oracle.run_oracle(episodes, protocol, "any_step")
    assert reached["success"] and reached["best"] <= 0.2 and 0 < reached["steps"] < 30
    assert there == {"seed": 1, "success": True, "steps": 0, "best": 0.0}


def test_pendulum_oracle_model_step_costs_are_zero_on_the_actions_that_made_the_goal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The model-step costs score the states after each model step only: the torques that made a
    goal clip (the observations after model steps 2 and 3) cost 0 under any_model_step and
    angle_clip, other torques more; a clip shifted half a model step in time costs more than 0
    under angle_clip though it lies on the same trajectory, as a model step never lands there."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    oracle = importlib.import_module("pendulum_oracle")  # benchmarks/pendulum_oracle.py
    stride, start = 4, torch.tensor([[2.0, 1.0]], dtype=torch.float64)  # (E=1, 2): angle, speed
    made = torch.tensor([0.5, -1.0, 2.0, 0.0], dtype=torch.float64).view(1, 1, 4, 1)  # (E, S, L, 1)
    obs = oracle.simulate(start, made, stride)[0, 0]  # (L*stride, 3)
    clip = obs[[2 * stride - 1, 3 * stride - 1]][None]  # (E, G=2, 3): after model steps 2 and 3
    other = made.flip(2)
    for kind in ("any_model_step", "angle_clip"):
        cost = oracle.state_cost(start, clip, stride, kind, 0.1)
        assert float(cost(made)) == pytest.approx(0.0, abs=1e-12)
        assert float(cost(other)) > 1e-3
    between = obs[[2 * stride - 1 + stride // 2, 3 * stride - 1 + stride // 2]][None]  # (1, 2, 3)
    assert float(oracle.state_cost(start, between, stride, "angle_clip", 0.1)(made)) > 1e-3


def test_rollout_probe_with_history_starts_from_the_last_observed_frame(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """--history H: the rollout gets the first H embeddings, the H-1 actions between them and the
    actions after the last; the observed row starts at frame H-1."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    rp = importlib.import_module("rollout_probe")  # benchmarks/rollout_probe.py
    calls = []

    class Recorder:
        def encode(self, frames: torch.Tensor) -> torch.Tensor:  # (B, T, 1, 1, 1) -> (B, T, 1)
            return frames.float().flatten(2)

        def rollout(self, z, actions, past=None):  # (B, H, 1), (B, L, 1), (B, H-1, 1)
            calls.append((z, actions, past))
            return torch.zeros(z.shape[0], actions.shape[1], 1)

    T = 6
    clips = {
        "frames": torch.arange(T).view(1, T, 1, 1, 1),  # frame t holds t
        "actions": 10 + torch.arange(T - 1).float().view(1, T - 1, 1),  # action t holds 10 + t
    }
    obs, pred = rp.observed_and_predicted(Recorder(), clips, history=3)
    z, future, past = calls[0]
    assert z.flatten().tolist() == [0, 1, 2] and past.flatten().tolist() == [10, 11]
    assert future.flatten().tolist() == [12, 13, 14]
    assert obs.flatten().tolist() == [2, 3, 4, 5] and pred.shape == (1, 3, 1)
    rp.observed_and_predicted(Recorder(), clips, history=1)
    assert calls[1][0].flatten().tolist() == [0] and calls[1][2] is None


def test_pendulum_oracle_replays_goal_clips_and_refuses_a_goal_it_cannot_replay(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """goal_clips rebuilds each episode's clip from its seed with the protocol's policy: the last
    state is the stored goal, the first a model step before it; a stored goal the replay does not
    reach (another policy or version) is refused, naming the seed."""
    pytest.importorskip("pygame", reason="Pendulum renders with pygame (the [classic] extra)")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    oracle = importlib.import_module("pendulum_oracle")  # benchmarks/pendulum_oracle.py
    from jepaworld.bench.protocols import TrajectoryProtocol
    from jepaworld.bench.trajectory_eval import held_out_goal

    protocol = TrajectoryProtocol.for_env("Pendulum-v1")
    seed = protocol.seed + 7
    _, (_, states) = held_out_goal(protocol, seed, 16)  # (G=2, 3)
    record = {**protocol.to_dict(), "planner": protocol.planner.__dict__}
    clips = oracle.goal_clips([{"seed": seed, "goal": states[-1].tolist()}], record)
    assert clips.shape == (1, 2, 3) and torch.allclose(clips[0], torch.from_numpy(states).double())
    older = {k: v for k, v in record.items() if k != "goal_frames"}  # versions 1-2: one image
    one = oracle.goal_clips([{"seed": seed, "goal": states[-1].tolist()}], older)
    assert one.shape == (1, 1, 3)
    with pytest.raises(SystemExit, match=f"episode seed {seed}: its goal replayed as"):
        oracle.goal_clips([{"seed": seed, "goal": [1.0, 0.0, 0.0]}], record)
    with pytest.raises(ValueError, match="kind: must be one of"):
        oracle.state_cost(torch.zeros(1, 2), clips, 5, "final_state", 0.1)


def test_pusht_oracle_rolls_out_as_the_env_steps_and_costs_the_actions_that_made_the_goal(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A rollout from a snapshot of the episode's world ends where the env's own steps end, with
    a push that turns the block; and the held actions that made a goal cost less than others."""
    pytest.importorskip("gym_pusht", reason="the [pusht] extra")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    oracle = importlib.import_module("pusht_oracle")  # benchmarks/pusht_oracle.py
    from jepaworld.envs.pusht import PushTEnv, _import_gym_pusht

    env, scratch = PushTEnv(), _import_gym_pusht()(obs_type="state")
    scratch.reset(seed=0)
    start = [200.0, 300.0, 300.0, 300.0, 1.0]  # the pusher left of the block
    _, info = env.reset(options={"start": start})
    made = np.array([[1.0, 0.1]] * 3 + [[0.5, -1.0]] * 2)  # (L=5, 2), held 5 steps each
    snap = oracle.snapshot(env._sim)
    oracle.restore(scratch, oracle.snapshot(env._sim))  # a rollout elsewhere first: no memory of it
    for a in made[::-1]:
        oracle.step_world(scratch, a, 40.0)
    oracle.restore(scratch, snap)
    for a in made.repeat(5, axis=0):
        oracle.step_world(scratch, a, 40.0)
        _, _, _, _, info = env.step(a)
    mine = [*scratch.agent.position, *scratch.block.position, scratch.block.angle]
    assert np.allclose(mine, info["state"], atol=0.5)
    assert abs(info["state"][4] - start[4]) > 0.05  # the push turned the block
    goal = np.asarray(info["state"], np.float64)
    other = made * np.array([1.0, -1.0])  # the same pushes mirrored in y
    acts = torch.tensor(np.stack([made, other]), dtype=torch.float32)[None]  # (1, S=2, L, 2)
    costs = oracle.plan_costs(scratch, snap, acts, goal=goal, stride=5, w=0.0, scale=40.0)
    assert costs.shape == (1, 2) and costs[0, 0] < 1.0 < costs[0, 1]
    turned = goal + np.array([0, 0, 0, 0, 0.5])  # the same positions, the block turned further
    kw = dict(goal=turned, stride=5, w=0.0, scale=40.0)
    assert oracle.plan_costs(scratch, snap, acts, **kw)[0, 0] > 100.0  # (0.5 rad x 57 px)^2
    assert oracle.plan_costs(scratch, snap, acts, **kw, angle_px=0.0)[0, 0] < 1.0  # blind to it


def test_plan_ensemble_plans_with_every_member_and_records_each_checkpoint(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    pytest.importorskip("pygame", reason="Pendulum renders with pygame (the [classic] extra)")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    ens = importlib.import_module("plan_ensemble")  # benchmarks/plan_ensemble.py
    from jepaworld.bench.protocols import PlannerSettings, TrajectoryProtocol
    from jepaworld.data.collect import CollectConfig, collect
    from jepaworld.train import train
    from tests.conftest import tiny_train

    collect(CollectConfig(out=tmp_path / "d", env="Pendulum-v1", episodes=3, episode_length=30))
    runs = [tmp_path / f"run{seed}" for seed in (0, 1)]
    for seed, run in enumerate(runs):
        train(tiny_train(tmp_path / "d", run, steps=2, seed=seed, model=tiny_model(action_dim=1)))
    small = TrajectoryProtocol(
        env_id="Pendulum-v1", state_dims=2, tolerance=0.2, budget=10, goal_frames=2,
        planner=PlannerSettings(samples=16, elites=4, iterations=2, horizon=2),
    )  # fmt: skip
    rolled: set[int] = set()  # which models the planner rolled out
    rollout = WorldModel.rollout

    def spy(self: WorldModel, *args: Any, **kwargs: Any) -> torch.Tensor:
        rolled.add(id(self))
        return rollout(self, *args, **kwargs)

    monkeypatch.setattr(WorldModel, "rollout", spy)
    argv = ["--runs", *map(str, runs), "--env", "Pendulum-v1", "--out", str(tmp_path / "e")]
    r = ens.evaluate(ens.parse_args([*argv, "--episodes", "2", "--weights", "1", "3"]), small)
    assert len(rolled) == 2  # every member, not the first alone
    assert [m["run"] for m in r["members"]] == [str(run) for run in runs]
    shas = [m["checkpoint_sha256"] for m in r["members"]]
    assert len(set(shas)) == 2 and all(len(sha) == 64 for sha in shas)
    assert r["weights"] == [1.0, 3.0] and r["episodes"] == 2
    seeds = [e["seed"] for e in r["per_episode"]]
    assert seeds == [e["seed"] for e in r["baselines"]["random"]["per_episode"]]
    with pytest.raises(SystemExit):
        ens.parse_args([*argv, "--weights", "1"])  # one weight for two runs
    with pytest.raises(SystemExit):
        ens.parse_args([*argv, "--turned"])  # turned looks are of one run
    with pytest.raises(SystemExit):  # gravity points down: a turned pendulum is no pendulum
        ens.parse_args(["--runs", str(runs[0]), "--env", "Pendulum-v1", "--out", "e", "--turned"])
    assert "Pendulum-v1 does not declare the square's symmetries" in capsys.readouterr().err


def test_state_dynamics_costs_rank_the_push_toward_the_goal_and_wrap_the_angle(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The learned-state planner's cost on a hand-made model (the pusher moves by the held action
    x 10 px per env step, nothing else moves): toward the goal costs least, and a goal angle one
    turn away costs nothing."""
    pytest.importorskip("gym_pusht", reason="the [pusht] extra")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sd = importlib.import_module("pusht_state_dynamics")  # benchmarks/pusht_state_dynamics.py

    def pusher_only(s: torch.Tensor, a: torch.Tensor) -> torch.Tensor:
        moved = a.reshape(len(a), -1, 2).sum(1) * 10  # (S, 2): `stride` held actions
        return torch.cat([s[:, :2] + moved, s[:, 2:]], 1)

    state = torch.tensor([100.0, 100.0, 300.0, 300.0, 0.5])
    goal = torch.tensor([200.0, 100.0, 300.0, 300.0, 0.5 + 2 * math.pi])  # 100 px right
    plans = torch.tensor([[[1.0, 0.0]] * 2, [[-1.0, 0.0]] * 2, [[0.0, 1.0]] * 2])  # (S=3, L=2, 2)
    costs = sd.model_costs(pusher_only, state, goal, plans[None], stride=5, w=0.0)
    assert costs.shape == (1, 3) and costs[0, 0] < 1e-3 < costs[0, 2] < costs[0, 1]


def test_state_dynamics_reads_transitions_turns_them_and_plans(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pytest.importorskip("gym_pusht", reason="the [pusht] extra")
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    sd = importlib.import_module("pusht_state_dynamics")  # benchmarks/pusht_state_dynamics.py
    from jepaworld.bench.protocols import PlannerSettings, TrajectoryProtocol
    from jepaworld.data.collect import CollectConfig, collect
    from jepaworld.data.episodes import EpisodeStore
    from jepaworld.envs.pusht import turn_state

    data = tmp_path / "d"
    collect(CollectConfig(out=data, env="jepaworld/PushT-v0", episodes=2, episode_length=12))
    starts, acts, ends = sd.transitions(data, 5)
    store = EpisodeStore(data)
    s, a = store.states(1), store.episode(1).actions
    assert len(starts) == 2 * (len(s) - 5)
    i = len(s) - 5 + 3  # episode 1, t = 3
    assert torch.allclose(starts[i], torch.tensor(s[3], dtype=torch.float32))
    assert torch.allclose(acts[i], torch.tensor(a[3:8].reshape(-1), dtype=torch.float32))
    assert torch.allclose(ends[i], torch.tensor(s[8], dtype=torch.float32))
    turned = sd.turned_copies(starts, acts, ends)
    n = len(starts)
    assert all(len(t) == 8 * n for t in turned) and torch.equal(turned[0][:n], starts)
    from jepaworld.data.augment import element_matrix

    assert np.allclose(turned[2][3 * n + i], turn_state(s[8], element_matrix(3).numpy()), atol=1e-3)

    protocol = TrajectoryProtocol(
        env_id="jepaworld/PushT-v0", state_dims=4, tolerance=20.0, angle_dim=4,
        angle_tolerance=math.pi / 9, policy="scripted", name="pusht-goal", version="1",
        planner=PlannerSettings(samples=16, elites=4, iterations=2, horizon=2),
    )  # fmt: skip
    episode = {"seed": 7, "start": s[0].tolist(), "goal": s[10].tolist(), "success": False}
    results = tmp_path / "results.json"
    results.write_text(json.dumps({"protocol": protocol.to_dict(), "per_episode": [episode]}))
    argv = ["--data", str(data), "--results", str(results), "--heldout", str(data)]
    out = sd.main([*argv, "--steps", "5", "--width", "16", "--out", str(tmp_path / "o.json")])
    assert out["episodes"] == 1 and out["training"]["transitions"] == n
    assert set(out["heldout_one_step"]) == {"transitions", "model", "nothing_moved"}
    assert json.loads((tmp_path / "o.json").read_text())["per_episode"][0]["seed"] == 7
