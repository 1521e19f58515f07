"""What the predictor foresees: probes of the true state from open-loop predicted embeddings.

`probe.py` asks what one frame's embedding holds. A planner reads predicted embeddings instead, so
this script asks what the predictor's rollouts hold: an MLP probe is fitted on the embeddings of
observed frames of the first episodes (as in probe.py), then, on the last episodes (held out from
the probe only: on a run's own training data the world model has seen them), the model
rolls out `--horizon` model steps from one observed frame with the actions that were taken, and the
probe reads the state from each predicted embedding. Beside it, in the same run: the probe on the
observed frames at the same steps (what a perfect predictor would give) and "no change" (the state
at the clip's start, the answer of a predictor that moves nothing). Clips are split by whether the
world's pushed object moved (PushT: the block's position by more than `--moved-px` or its angle by
more than `--moved-deg` over the clip), since a predictor that has not learnt contact is right
about the pusher and wrong exactly there. Errors per rollout step, median, in the state's units.
The probe has only seen observed embeddings: a prediction it reads badly may hold the block in a
form that lies off their distribution. The planner compares predictions with an observed goal's
embedding, so such a prediction misleads it as well.

With a model trained with --model.recon-weight, `--png` also writes decoded frames: for a few
moved clips, the real frames, the decoder's view of their embeddings, and of the predictions.

Usage::

    python benchmarks/rollout_probe.py --run RUN --data DATASET [--episodes 500] [--history H]

`--history H` rolls out from H observed frames and the actions between them (what `jepaworld plan
--history H` gives the predictor); the steps are counted from the last of them. Worlds without a
pushed object (Pendulum-v1: cos, sin, angular velocity; group `state` is the L2 its protocol's
tolerance reads) report all clips as one split.
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from probe import NAMED, stamp  # benchmarks/probe.py, beside this script
from targets import report_and_save  # benchmarks/targets.py, beside this script

from jepaworld.bench.probe import (
    ProbeConfig,
    embed_episodes,
    first_held_out,
    fit_probe,
    regression_targets,
    state_errors,
    summarize_errors,
    targets_to_states,
)
from jepaworld.data.episodes import EpisodeStore
from jepaworld.data.loader import ClipDataset
from jepaworld.models.world_model import WorldModel
from jepaworld.planning.protocols import refuse_proprio
from jepaworld.train import latest_checkpoint

BLOCK_XY, BLOCK_ANGLE = [2, 3], 4
"""PushT's state layout (envs/pusht.py): the pushed object's position and angle."""


def held_out_clips(
    store: EpisodeStore, first: int, count: int, length: int, stride: int
) -> dict[str, torch.Tensor]:
    """Non-overlapping clips of `length` model steps from episodes first .. count-1: frames
    (N, T, H, W, 3), actions (N, T-1, A'), states (N, T, S)."""
    clips = ClipDataset(store, length, stride)
    frames, actions, states = [], [], []
    span = (length - 1) * stride
    for e in range(first, count):
        ep = store.episode(e)
        for t0 in range(0, len(ep.frames) - span, span):
            item = clips[(e, t0)]
            frames.append(item["frames"])
            actions.append(item["actions"])
            idx = t0 + stride * np.arange(length)
            states.append(torch.from_numpy(ep.states[idx]).float())
    return {
        "frames": torch.stack(frames),  # (N, T, H, W, 3)
        "actions": torch.stack(actions),  # (N, T-1, A')
        "states": torch.stack(states),  # (N, T, S)
    }


@torch.no_grad()
def observed_and_predicted(
    model: WorldModel, clips: dict[str, torch.Tensor], history: int, batch: int = 256
) -> tuple[torch.Tensor, torch.Tensor]:
    """Embeddings of the observed frames from the last of the first `history` on (N, L+1, D), and
    the rollout from the first `history` (N, L, D), for clips of history + L frames."""
    obs, pred = [], []
    H = history
    for i in range(0, len(clips["frames"]), batch):
        z = model.encode(clips["frames"][i : i + batch])  # (B, H+L, D)
        a = clips["actions"][i : i + batch]  # (B, H+L-1, A')
        past = a[:, : H - 1] if H > 1 else None  # (B, H-1, A'): between the observed frames
        obs.append(z[:, H - 1 :])  # (B, L+1, D)
        pred.append(model.rollout(z[:, :H], a[:, H - 1 :], past))  # (B, L, D)
    return torch.cat(obs), torch.cat(pred)


def moved(states: torch.Tensor, px: float, deg: float) -> torch.Tensor:
    """(N,) bool: the block moved by more than px or turned by more than deg over the clip."""
    change = state_errors(states[:, -1], states[:, 0], [BLOCK_ANGLE])  # (N, S), angle wrapped
    shift = change[:, BLOCK_XY].norm(dim=1)  # (N,)
    return (shift > px) | (change[:, BLOCK_ANGLE] > math.radians(deg))


def per_step(
    read: Any, z: torch.Tensor | None, truth: torch.Tensor, angle_dims: list[int], groups: Any
) -> list[dict[str, Any]]:
    """Errors of the state read from z (N, L, D) (None: the clip's start state, "no change")
    against truth (N, L+1, S), per step 1..L."""
    N, L1, S = truth.shape
    out = []
    for step in range(1, L1):
        start = truth[:, 0]  # (N, S): "no change"
        guess = start if z is None else targets_to_states(read(z[:, step - 1]), S, angle_dims)
        err = state_errors(guess, truth[:, step], angle_dims)  # (N, S)
        out.append({"step": step, **summarize_errors(err, angle_dims, groups)})
    return out


def write_png(
    model: WorldModel, frames: torch.Tensor, z_obs: torch.Tensor, z_pred: torch.Tensor, path: Path
) -> None:
    """Rows per clip: real frames (N, L+1, H, W, 3), the decoded observed embeddings z_obs
    (N, L+1, D), the decoded predictions z_pred (N, L, D)."""
    rows = []
    for i in range(len(frames)):
        real = frames[i].numpy()  # (L+1, H, W, 3)
        seen = model.decode(z_obs[i : i + 1])[0].numpy()  # (L+1, H, W, 3)
        imagined = model.decode(z_pred[i : i + 1])[0].numpy()  # (L, H, W, 3)
        imagined = np.concatenate([np.full_like(real[:1], 255), imagined])  # (L+1, H, W, 3)
        for row in (real, seen, imagined):
            rows.append(np.concatenate(list(row), axis=1))  # (H, (L+1)*W, 3)
    Image.fromarray(np.concatenate(rows, axis=0)).save(path)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", type=Path, required=True)
    parser.add_argument("--data", type=Path, required=True, help="dataset with true states")
    parser.add_argument("--episodes", type=int, default=500, help="episodes read (0: all)")
    parser.add_argument("--horizon", type=int, default=5, help="rollout length, model steps")
    parser.add_argument("--history", type=int, default=1, help="observed frames it starts from")
    parser.add_argument("--moved-px", type=float, default=10.0)
    parser.add_argument("--moved-deg", type=float, default=5.0)
    parser.add_argument("--steps", type=int, default=ProbeConfig.steps, help="Adam steps a probe")
    parser.add_argument("--png", type=Path, default=None, help="decoded clips (recon models)")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/rollout_probe.json"))
    args = parser.parse_args(argv)
    store = EpisodeStore(args.data)
    env_id = store.manifest.get("env_id", "")
    if env_id not in NAMED:
        parser.error(
            f"--data {args.data}: states of {env_id!r} have no named parts ({list(NAMED)})"
        )
    angle_dims, groups = NAMED[env_id]
    if args.horizon < 1 or args.history < 1:
        parser.error(f"--horizon and --history must be >= 1, got {args.horizon}, {args.history}")
    ckpt = latest_checkpoint(args.run)
    model = WorldModel.from_pretrained(ckpt).eval()
    refuse_proprio(model, ckpt, "this probe reads rollouts from frames alone")
    if args.png is not None and model.decoder is None:
        parser.error(f"--png: {ckpt} has no pixel decoder (train with --model.recon-weight)")
    cfg = ProbeConfig(episodes=args.episodes, steps=args.steps)
    z, states, episode = embed_episodes(model.encode, store, cfg.every, cfg.episodes)
    count = int(episode.max()) + 1
    first_held = first_held_out(count, cfg.held_out)
    train = episode < first_held
    read = fit_probe(z[train], regression_targets(states[train], angle_dims), cfg.hidden, cfg)
    length = args.history + args.horizon
    clips = held_out_clips(store, first_held, count, length, model.config.frame_stride)
    z_obs, z_pred = observed_and_predicted(model, clips, args.history)
    truths = clips["states"][:, args.history - 1 :]  # (N, L+1, S): from the last observed frame
    pushed = env_id == "jepaworld/PushT-v0"
    every = torch.ones(len(truths), dtype=torch.bool)  # (N,)
    split = moved(truths, args.moved_px, args.moved_deg) if pushed else every  # (N,) bool
    result: dict[str, Any] = {
        **stamp(ckpt, args.data, cfg),
        "horizon": args.horizon,
        "history": args.history,
        "moved_if": {"px": args.moved_px, "deg": args.moved_deg} if pushed else None,
    }
    for name, rows in (("moved", split), ("still", ~split)) if pushed else (("all", split),):
        if not rows.any():
            result[name] = {"clips": 0}
            continue
        truth = truths[rows]
        result[name] = {
            "clips": int(rows.sum()),
            "predicted": per_step(read, z_pred[rows], truth, angle_dims, groups),
            "observed": per_step(read, z_obs[rows, 1:], truth, angle_dims, groups),
            "no_change": per_step(read, None, truth, angle_dims, groups),
        }
        print_table(name, result[name])
    if args.png is not None and split.any():
        pick = torch.nonzero(split)[:4, 0]
        frames = clips["frames"][pick, args.history - 1 :]  # (4, L+1, H, W, 3)
        write_png(model, frames, z_obs[pick], z_pred[pick], args.png)
    elif args.png is not None:
        print(f"--png {args.png}: no clip moved, nothing drawn")
    report_and_save(result, args.out)
    return result


def print_table(name: str, r: dict[str, Any]) -> None:
    first = r["predicted"][0]
    cols = [("groups", g) for g in first["groups"]] + [
        ("dims", d) for d, v in first["dims"].items() if v["unit"] == "deg"
    ]
    print(f"{name} clips ({r['clips']}): median {' / '.join(c for _, c in cols)} at each step")
    for kind in ("predicted", "observed", "no_change"):
        cells = ["/".join(f"{s[k][c]['median']:.2f}" for k, c in cols) for s in r[kind]]
        print(f"  {kind:<10} " + "  ".join(cells))


if __name__ == "__main__":
    main()
