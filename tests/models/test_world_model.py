from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file

from jepaworld.models.encoder import ConvEncoder
from jepaworld.models.world_model import CheckpointError, WorldModel
from tests.conftest import tiny_model


def _frames(B: int, T: int, size: int = 64) -> torch.Tensor:
    return torch.randint(
        0, 256, (B, T, size, size, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(0)
    )


def _grid_vit(**overrides):  # a 4x4 grid of 16 px patches: 16 tokens of one channel each
    return tiny_model(
        encoder="vit", vit_patch=16, vit_dim=32, vit_depth=1, vit_heads=2, **overrides
    )


@pytest.mark.parametrize(
    ("encoder", "latent"),
    [("conv", "vector"), ("vit", "vector"), ("conv", "grid"), ("vit", "grid")],
)
def test_shapes(encoder: str, latent: str) -> None:
    torch.manual_seed(0)
    if encoder == "vit" and latent == "grid":
        cfg = _grid_vit(latent="grid")
    else:
        cfg = tiny_model(encoder=encoder, vit_dim=32, vit_depth=1, vit_heads=2, latent=latent)
    assert cfg.grid_tokens == (16 if latent == "grid" else 1)
    model = WorldModel(cfg).eval()
    z = model.encode(_frames(2, 3))
    assert z.shape == (2, 3, 16)
    acts = torch.randn(2, 4, model.step_action_dim)
    assert model.rollout(z, acts).shape == (2, 4, 16)
    assert model.predict(z, torch.randn(2, 3, model.step_action_dim)).shape == (2, 3, 16)
    loss, metrics = model.train().loss(_frames(2, 3), torch.randn(2, 2, model.step_action_dim))
    assert loss.ndim == 0 and {"pred", "rollout", "reg", "eff_rank"} <= set(metrics)


@pytest.mark.parametrize("latent", ["vector", "grid"])
def test_predictor_is_causal(latent: str) -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(latent=latent))
    for p in model.predictor.parameters():  # AdaLN starts at zero; make blocks non-trivial
        torch.nn.init.normal_(p, std=0.2)
    z, a = torch.randn(1, 5, 16), torch.randn(1, 5, model.step_action_dim)
    z2, a2 = z.clone(), a.clone()
    z2[:, 3:] += 1.0
    a2[:, 3:] += 1.0
    out, out2 = model.predict(z, a), model.predict(z2, a2)
    assert torch.allclose(out[:, :3], out2[:, :3], atol=1e-6)
    assert not torch.allclose(out[:, 3:], out2[:, 3:])


@pytest.mark.parametrize("latent", ["vector", "grid"])
def test_rollout_matches_teacher_forcing_on_its_own_predictions(latent: str) -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(latent=latent))
    for p in model.predictor.parameters():
        torch.nn.init.normal_(p, std=0.2)
    z0, acts = torch.randn(2, 1, 16), torch.randn(2, 3, model.step_action_dim)
    roll = model.rollout(z0, acts)
    seq = torch.cat([z0, roll[:, :-1]], dim=1)
    assert torch.allclose(model.predict(seq, acts), roll, atol=1e-5)


def test_grid_rollout_from_a_history_matches_teacher_forcing() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(latent="grid"))
    for p in model.predictor.parameters():
        torch.nn.init.normal_(p, std=0.2)
    z_hist, acts = torch.randn(2, 3, 16), torch.randn(2, 5, model.step_action_dim)
    roll = model.rollout(z_hist, acts[:, 2:], past_actions=acts[:, :2])  # (2, 3, 16)
    seq = torch.cat([z_hist, roll[:, :-1]], dim=1)  # (2, 5, 16)
    assert torch.allclose(model.predict(seq, acts)[:, 2:], roll, atol=1e-5)


def test_grid_tokens_of_one_frame_see_each_other_and_earlier_frames_only() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(latent="grid"))  # 16 tokens of 1 channel: z[..., n] is token n
    for p in model.predictor.parameters():
        torch.nn.init.normal_(p, std=0.2)
    z, a = torch.randn(1, 4, 16), torch.randn(1, 4, model.step_action_dim)
    z2 = z.clone()
    z2[0, 2, 5] += 1.0  # token 5 of frame 2 only
    out, out2 = model.predict(z, a), model.predict(z2, a)
    assert torch.equal(out[:, :2], out2[:, :2])  # earlier frames never see it
    # its frame's other tokens do, before it in token order too (a token-causal mask would not)
    assert not torch.allclose(out[0, 2, 4], out2[0, 2, 4])
    assert not torch.allclose(out[0, 3], out2[0, 3])  # and later frames


def test_grid_latent_checks_its_token_width_and_vector_models_keep_their_keys() -> None:
    with pytest.raises(ValueError, match="embed_dim.*16 grid tokens"):
        tiny_model(latent="grid", embed_dim=24)
    vector, grid = WorldModel(tiny_model()).state_dict(), WorldModel(tiny_model(latent="grid"))
    assert "predictor.grid_pos" not in vector and "encoder.head.weight" in vector
    assert grid.predictor.grid_pos.shape == (1, 1, 16, grid.config.pred_dim)


def test_wrong_image_size_is_a_clear_error() -> None:
    model = WorldModel(tiny_model())
    with pytest.raises(ValueError, match="48x48 but the model expects 64x64"):
        model.encode(_frames(1, 1, size=48))


def test_save_load_roundtrip(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model()).eval()
    model.save(tmp_path)
    loaded = WorldModel.from_pretrained(tmp_path)
    f = _frames(1, 2)
    assert torch.equal(model.encode(f), loaded.encode(f))


def test_missing_and_unexpected_keys_are_named(tmp_path: Path) -> None:
    WorldModel(tiny_model()).save(tmp_path)
    state = load_file(str(tmp_path / "model.safetensors"))
    del state["predictor.out.bias"]
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="missing key.*predictor.out.bias"):
        WorldModel.from_pretrained(tmp_path)
    state["predictor.out.bias"] = torch.zeros(16)
    state["extra.weight"] = torch.zeros(1)
    save_file(state, str(tmp_path / "model.safetensors"))
    with pytest.raises(CheckpointError, match="unexpected key.*extra.weight"):
        WorldModel.from_pretrained(tmp_path)


def test_checkpoint_from_another_config_is_refused(tmp_path: Path) -> None:
    WorldModel(tiny_model()).save(tmp_path)
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["model"]["embed_dim"] = 24
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(CheckpointError, match="has shape"):
        WorldModel.from_pretrained(tmp_path)


def test_corrupt_weights_and_config_name_the_file(tmp_path: Path) -> None:
    WorldModel(tiny_model()).save(tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"garbage")
    with pytest.raises(CheckpointError, match="model.safetensors: cannot read weights"):
        WorldModel.from_pretrained(tmp_path)
    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(CheckpointError, match="config.json: invalid model config"):
        WorldModel.from_pretrained(tmp_path)


def test_action_free_clips_use_the_null_action() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model()).eval()
    z = model.encode(_frames(2, 3))
    none = torch.zeros(2, 3, 0)
    assert model.predict(z, none).shape == (2, 3, 16)
    assert model.rollout(z, torch.zeros(2, 4, 0)).shape == (2, 4, 16)
    for block in model.predictor.blocks:  # AdaLN starts at zero, which blocks the gradient
        torch.nn.init.normal_(block.ada.weight, std=0.2)
    loss, _ = model.train().loss(_frames(2, 3), torch.zeros(2, 2, 0))
    loss.backward()
    assert (
        model.predictor.null_action.grad is not None
        and model.predictor.null_action.grad.abs().sum() > 0
    )


@pytest.mark.parametrize("latent", ["vector", "grid"])
def test_the_broadcast_null_action_predicts_as_the_masked_one(latent: str) -> None:
    """Zero-width actions condition every block with one row, broadcast over clips, time and grid
    tokens; clips marked action-free in a batch with actions take the null action row by row.
    Both must predict, roll out and train the predictor alike."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model(latent=latent)).eval()
    for block in model.predictor.blocks:  # AdaLN starts at zero: make the conditioning matter
        torch.nn.init.normal_(block.ada.weight, std=0.2)
    torch.nn.init.normal_(model.predictor.null_action)  # it starts at zero, as 0 * anything
    z = model.encode(_frames(3, 5))  # (B, T, D)
    A = model.step_action_dim
    masked = {"actions": torch.randn(3, 5, A), "has_actions": torch.zeros(3, dtype=torch.bool)}
    broadcast = {"actions": torch.zeros(3, 5, 0)}
    assert model.predictor.condition(**broadcast).shape == (1, 1, model.config.pred_dim)
    outputs, grads = [], []
    for kwargs in (masked, broadcast):
        model.zero_grad()
        pred = model.predict(z.detach(), **kwargs)  # (B, T, D)
        roll = model.rollout(
            z.detach()[:, :2],
            kwargs["actions"][:, :3],
            kwargs["actions"][:, :1],
            kwargs.get("has_actions"),
        )  # (B, 3, D)
        (pred.square().sum() + roll.square().sum()).backward()
        outputs.append((pred.detach(), roll.detach()))
        params = [*model.predictor.blocks.parameters(), model.predictor.null_action]
        grads.append([p.grad.clone() for p in params])
    torch.testing.assert_close(outputs[0], outputs[1], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-4, atol=1e-5)


def test_an_action_free_model_refuses_actions() -> None:
    model = WorldModel(tiny_model(action_dim=0))
    assert model.step_action_dim == 0 and model.predictor.a_in is None
    with pytest.raises(ValueError, match="action-free"):
        model.predictor.condition(torch.zeros(1, 2, 10))


def test_ema_target_gets_no_gradient_and_follows_the_encoder_by_its_momentum() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(target="ema")).train()
    assert model.target_encoder is not None
    for t, o in zip(model.target_encoder.parameters(), model.encoder.parameters(), strict=True):
        assert torch.equal(t, o) and not t.requires_grad  # starts as a copy
    loss, _ = model.loss(_frames(2, 4), torch.randn(2, 3, model.step_action_dim))
    loss.backward()
    assert all(p.grad is None for p in model.target_encoder.parameters())
    assert all(p.grad is not None for p in model.encoder.parameters())
    before = [p.clone() for p in model.target_encoder.parameters()]
    with torch.no_grad():
        for p in model.encoder.parameters():
            p.add_(1.0)
    model.update_target(0.75)
    for b, t, o in zip(
        before, model.target_encoder.parameters(), model.encoder.parameters(), strict=True
    ):
        assert torch.allclose(t, 0.75 * b + 0.25 * o, atol=1e-6)


def test_pred_loss_l1_is_the_mean_absolute_error_of_both_prediction_terms() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(pred_loss="l1", rollout_context=2)).train()
    for p in model.predictor.parameters():  # AdaLN starts at zero; make predictions non-trivial
        torch.nn.init.normal_(p, std=0.2)
    frames, acts = _frames(2, 5), torch.randn(2, 4, model.step_action_dim)
    _, metrics = model.loss(frames, acts)
    with torch.no_grad():
        z = model.encode(frames)  # (B, T, D)
        pred = model.predict(z[:, :-1], acts)  # (B, T-1, D)
        roll = model.rollout(z[:, :2], acts[:, 1:], acts[:, :1])  # (B, T-2, D)
    assert float(metrics["pred"]) == pytest.approx(float(F.l1_loss(pred, z[:, 1:])), rel=1e-5)
    assert float(metrics["rollout"]) == pytest.approx(float(F.l1_loss(roll, z[:, 2:])), rel=1e-5)
    assert float(metrics["pred"]) != pytest.approx(float(F.mse_loss(pred, z[:, 1:])), rel=1e-2)


def test_flatten_max_head_sees_an_object_wherever_it_is() -> None:
    """The conv stack is equivariant to shifts by its total stride (16 px at 4 layers) where its
    46 px receptive field stays clear of the borders' padding (so a 256 px canvas here), so the
    channels' maxima, and a head that reads only them, do not change when a small square moves by
    16 px; the flattened map's read does."""
    torch.manual_seed(0)
    enc = ConvEncoder(256, (8, 8, 8, 8), 8, head="flatten-max").eval()
    plain = ConvEncoder(256, (8, 8, 8, 8), 8).eval()
    plain.convs.load_state_dict(enc.convs.state_dict())
    with torch.no_grad():
        enc.head.linear.weight[:, : 8 * 16 * 16] = 0  # read the maxima alone
    frames = torch.zeros(2, 3, 256, 256)  # (B, 3, H, W), a grey canvas in [-1, 1]
    frames[0, 0, 100:106, 100:106] = 1.0  # a red square...
    frames[1, 0, 116:122, 116:122] = 1.0  # ...16 px further on in x and y
    with torch.no_grad():
        peak = enc.head(enc.convs(frames))  # (B, D)
        flat = plain.head(plain.convs(frames).flatten(1))  # (B, D)
    assert torch.allclose(peak[0], peak[1], atol=1e-5)
    assert not torch.allclose(flat[0], flat[1], atol=1e-2)


def test_conv_head_is_checked_and_kept_in_checkpoints(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="conv_head: must be flatten or flatten-max"):
        tiny_model(conv_head="max")
    with pytest.raises(ValueError, match="conv_head: flatten-max needs the conv encoder"):
        tiny_model(conv_head="flatten-max", latent="grid", embed_dim=16)
    model = WorldModel(tiny_model(conv_head="flatten-max"))
    assert "encoder.head.linear.weight" in model.state_dict()
    model.save(tmp_path / "ckpt")
    again = WorldModel.from_pretrained(tmp_path / "ckpt")
    assert again.config.conv_head == "flatten-max"
    assert "encoder.head.weight" in WorldModel(tiny_model()).state_dict()  # old checkpoints load


def test_ema_targets_are_what_the_loss_predicts() -> None:
    """With an EMA target, the teacher-forced loss is the error against the target encoder's
    embeddings, not the online encoder's; with "online" there is no target encoder."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model(target="ema")).train()
    with torch.no_grad():
        for p in model.target_encoder.parameters():
            p.add_(torch.randn_like(p) * 0.3)
    frames, acts = _frames(2, 4), torch.randn(2, 3, model.step_action_dim)
    _, metrics = model.loss(frames, acts)
    with torch.no_grad():
        pred = model.predict(model.encode(frames)[:, :-1], acts)  # (B, T-1, D)
        to_target = float(F.mse_loss(pred, model.encode_targets(frames)[:, 1:]))
        to_online = float(F.mse_loss(pred, model.encode(frames)[:, 1:]))
    assert float(metrics["pred"]) == pytest.approx(to_target, rel=1e-5)
    assert to_online != pytest.approx(to_target, rel=1e-2)
    assert WorldModel(tiny_model()).target_encoder is None


def test_ema_target_is_saved_and_loaded(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(target="ema"))
    model.update_target(0.0)  # any change would do; keeps it equal to the encoder
    with torch.no_grad():
        next(model.target_encoder.parameters()).add_(0.5)
    model.save(tmp_path)
    loaded = WorldModel.from_pretrained(tmp_path)
    z = _frames(1, 2)
    assert torch.equal(loaded.encode_targets(z), model.eval().encode_targets(z))
    with pytest.raises(ValueError, match='target "ema"'):
        WorldModel(tiny_model()).encode_targets(z)


@pytest.mark.parametrize("encoder", ["conv", "vit"])
def test_bfloat16_encoder_features_keep_a_float32_embedding(encoder: str) -> None:
    """Under encoder_autocast the feature layers run in bfloat16 (the embedding moves by about
    bfloat16's rounding) while the embedding itself is float32; unset, nothing changes."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model(encoder=encoder, vit_dim=32, vit_depth=1, vit_heads=2)).eval()
    frames = _frames(2, 3)
    full = model.encode(frames)
    model.encoder_autocast = torch.bfloat16
    low = model.encode(frames)
    assert low.dtype == torch.float32 and low.shape == full.shape
    err = float((low - full).abs().max())
    assert 0 < err < 0.1 * float(full.abs().max())
    model.encoder_autocast = None
    assert torch.equal(model.encode(frames), full)


def _squares(n: int, size: int = 64, side: int = 16) -> torch.Tensor:
    """n white frames (n, 1, size, size, 3) uint8, each with a black square somewhere else."""
    frames = torch.full((n, 1, size, size, 3), 255, dtype=torch.uint8)
    for i in range(n):
        y, x = (i * 13) % (size - side), (i * 29) % (size - side)
        frames[i, 0, y : y + side, x : x + side] = 0
    return frames


def test_pixel_decoder_redraws_what_the_embedding_holds() -> None:
    """Trained on the reconstruction term, encoder and decoder together redraw each frame's square
    where it is: closer to every frame than the mean frame is, which a decoder that ignored the
    embedding could not beat."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model(recon_weight=1.0)).train()
    frames = _squares(8)
    target = frames.float()
    opt = torch.optim.Adam([*model.encoder.parameters(), *model.decoder.parameters()], lr=3e-3)
    for _ in range(150):
        redrawn = model._redraw(model.encode(frames)[:, 0])  # (N, 3, H, W)
        loss = F.mse_loss(redrawn, model._images(frames))
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    decoded = model.decode(model.encode(frames)).float()  # (N, 1, H, W, 3)
    assert decoded.shape == frames.shape
    to_frame = (decoded - target).pow(2).mean(dim=(1, 2, 3, 4))  # (N,)
    to_mean = (target.mean(0, keepdim=True) - target).pow(2).mean(dim=(1, 2, 3, 4))  # (N,)
    assert bool((to_frame < 0.5 * to_mean).all()), (to_frame, to_mean)


def _loss_grads(cfg, state, params: str, frames, acts) -> list[torch.Tensor]:
    """Gradients of model.loss's total on the parameters under `params`, for a model of config
    `cfg` loaded with `state` (train mode: BatchNorm uses the batch, the same for every call)."""
    model = WorldModel(cfg).train()
    model.load_state_dict(state)
    torch.manual_seed(1)  # SIGReg's random directions (its weight is 0 here anyway)
    total, _ = model.loss(frames, acts)
    chosen = [p for n, p in model.named_parameters() if n.startswith(params)]
    return list(torch.autograd.grad(total, chosen, allow_unused=True))


def test_recon_term_is_in_the_loss_and_its_gradient_reaches_the_encoder() -> None:
    """The term is the first frame redrawn against itself, and the loss's gradient on the encoder
    grows with its weight: loss(w=4) - loss(w=2) differentiates to 2x the term's gradient."""
    torch.manual_seed(0)
    cfg = tiny_model(recon_weight=2.0, reg_weight=0.0, smooth_weight=0.0)
    model = WorldModel(cfg).train()
    frames, acts = _frames(2, 3), torch.randn(2, 2, model.step_action_dim)
    total, metrics = model.loss(frames, acts)
    parts = metrics["pred"] + metrics["rollout"]
    assert float(total) == pytest.approx(float(parts + 2.0 * metrics["recon"]), rel=1e-5)
    z = model.encode(frames)
    recon = F.mse_loss(model._redraw(z[:, 0]), model._images(frames[:, :1]))
    assert float(metrics["recon"]) == pytest.approx(float(recon), rel=1e-5)
    state = model.state_dict()
    g2 = _loss_grads(cfg, state, "encoder.", frames, acts)
    g4 = _loss_grads(dataclasses.replace(cfg, recon_weight=4.0), state, "encoder.", frames, acts)
    term = torch.autograd.grad(recon, [p for _, p in model.encoder.named_parameters()])
    diff = g4[0] - g2[0]  # the first conv
    assert float((diff - 2 * term[0]).abs().max()) < 1e-2 * float(term[0].abs().max()), (diff, term)
    assert float(term[0].abs().sum()) > 0
    assert "recon" not in WorldModel(tiny_model()).loss(frames, acts)[1]


def test_recon_model_is_saved_with_its_decoder_and_others_have_none(tmp_path: Path) -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(recon_weight=1.0)).eval()
    model.save(tmp_path)
    assert any(k.startswith("decoder.") for k in load_file(str(tmp_path / "model.safetensors")))
    loaded = WorldModel.from_pretrained(tmp_path)
    z = model.encode(_frames(1, 2))
    assert torch.equal(loaded.decode(z), model.decode(z))
    plain = WorldModel(tiny_model())
    assert plain.decoder is None
    with pytest.raises(ValueError, match="no pixel decoder"):
        plain.decode(z)
    with pytest.raises(ValueError, match="recon_weight"):
        tiny_model(recon_weight=1.0, encoder="vit")
    with pytest.raises(ValueError, match="recon_weight"):
        tiny_model(recon_weight=-1.0)


def test_recon_rollout_term_redraws_the_last_open_loop_prediction() -> None:
    """The term is the decoder's picture of the rollout's last prediction against the clip's last
    frame, and its gradient reaches the predictor (the latent terms aside)."""
    torch.manual_seed(0)
    cfg = tiny_model(recon_weight=1.0, recon_rollout_weight=3.0, smooth_weight=0.0)
    model = WorldModel(cfg).eval()  # eval: BatchNorm uses running statistics, so z is repeatable
    frames, acts = _frames(2, 4), torch.randn(2, 3, model.step_action_dim)
    total, metrics = model.loss(frames, acts)
    with torch.no_grad():
        z = model.encode(frames)
        last = model.rollout(z[:, :1], acts)[:, -1]  # (B, D)
        expected = F.mse_loss(model._redraw(last), model._images(frames[:, -1:]))
    assert float(metrics["recon_rollout"]) == pytest.approx(float(expected), rel=1e-5)
    parts = metrics["pred"] + metrics["rollout"] + 0.1 * metrics["reg"] + metrics["recon"]
    assert float(total) == pytest.approx(float(parts + 3.0 * metrics["recon_rollout"]), rel=1e-5)
    state = model.state_dict()
    g3 = _loss_grads(cfg, state, "predictor.", frames, acts)
    g6 = _loss_grads(
        dataclasses.replace(cfg, recon_rollout_weight=6.0), state, "predictor.", frames, acts
    )
    moved = [float((b - a).abs().sum()) for a, b in zip(g3, g6, strict=True) if a is not None]
    assert max(moved) > 0  # the term's weight changes the predictor's gradient
    assert "recon_rollout" not in WorldModel(tiny_model(recon_weight=1.0)).loss(frames, acts)[1]
    for bad in ({"recon_weight": 0.0}, {"rollout_weight": 0.0}, {"recon_rollout_weight": -1.0}):
        with pytest.raises(ValueError, match="recon_rollout_weight"):
            tiny_model(**{"recon_weight": 1.0, "recon_rollout_weight": 1.0, **bad})


@pytest.mark.parametrize("encoder", ["conv", "vit"])
def test_calibrated_norms_give_evaluation_the_embeddings_training_saw(encoder: str) -> None:
    """Running statistics a few of their own standard deviations off (as the average over past
    weights leaves them) shift every eval-mode embedding; after calibrate_norms the eval-mode
    embeddings are the train-mode ones of the same frames (up to the unbiased variance the running
    statistics keep), and the model's modes, norm momentum and autocast are as they were."""
    torch.manual_seed(0)
    cfg = tiny_model(encoder=encoder, vit_dim=32, vit_depth=1, vit_heads=2, target="ema")
    model = WorldModel(cfg)
    frames = [_frames(8, 8), _frames(8, 8).flip(0)]  # 128 frames in two batches
    with torch.no_grad():
        trained = torch.cat([model.encode(f) for f in frames], 1)  # (8, 16, D): batch statistics
    norm = next(m for m in model.encoder.modules() if isinstance(m, torch.nn.BatchNorm1d))
    norm.running_mean += 3 * norm.running_var.sqrt()
    model.eval()
    model.encoder_autocast = torch.bfloat16
    with torch.no_grad():
        stale = torch.cat([model.encode(f) for f in frames], 1)  # (8, 16, D)
    assert (stale - trained).abs().mean() > 1.0

    assert model.calibrate_norms(frames) == 128
    assert not model.training and not norm.training and norm.momentum == 0.1
    assert model.encoder_autocast == torch.bfloat16
    model.encoder_autocast = None
    with torch.no_grad():
        evaluated = torch.cat([model.encode(f) for f in frames], 1)  # (8, 16, D)
    assert (evaluated - trained).abs().max() < 0.05
    target_norm = next(m for m in model.target_encoder.modules() if m.__class__ is type(norm))
    assert torch.equal(target_norm.running_mean, norm.running_mean)


def test_calibrated_statistics_average_every_batch_in_float32_and_survive_bad_input() -> None:
    """The running mean is the mean of the norm's float32 inputs over all batches (two batches of
    different brightness: not the last one's); autocast set or not, the same statistics; a batch of
    the wrong shape is named and leaves the statistics as they were."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model()).eval()
    dark = _frames(4, 4) // 4
    batches = [dark, dark + 150]  # (4, 4, H, W, 3) each, uint8
    seen: list[torch.Tensor] = []
    hook = model.encoder.norm.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    model.calibrate_norms(batches)
    hook.remove()
    inputs = torch.cat(seen)  # (32, D): what the norm saw, float32
    assert inputs.dtype == torch.float32
    assert (seen[0].mean(0) - seen[1].mean(0)).abs().max() > 1e-3  # the batches differ
    stats = {k: v.clone() for k, v in model.encoder.norm.state_dict().items()}
    assert torch.allclose(stats["running_mean"], inputs.mean(0), atol=1e-6)
    model.encoder_autocast = torch.bfloat16
    model.calibrate_norms(batches)
    assert torch.equal(model.encoder.norm.running_mean, stats["running_mean"])
    with pytest.raises(ValueError, match=r"batches\[1\]: frames must be \(B, T, H, W, 3\)"):
        model.calibrate_norms([dark, dark[0]])
    with pytest.raises(ValueError, match="batches: no frames given"):
        model.calibrate_norms([])
    with pytest.raises(ValueError):  # the second batch fails in the encoder, after the first
        model.calibrate_norms([dark, _frames(1, 1, size=32)])
    after = model.encoder.norm.state_dict()
    assert all(torch.equal(after[k], v) for k, v in stats.items())


def _proprio_model(**overrides) -> WorldModel:
    """A tiny model reading state entries 2 and 0 at weight 3, standardised by known states."""
    torch.manual_seed(0)
    model = WorldModel(tiny_model(proprio=(2, 0), proprio_weight=3.0, **overrides)).eval()
    states = torch.tensor([[10.0, 7.0, 1.0], [30.0, 7.0, 5.0]])  # entry 2: mean 3, std 2.83
    model.set_proprio_stats(states)
    return model


def test_proprio_is_appended_standardised_and_scaled_after_the_image_features() -> None:
    model = _proprio_model()
    assert model.config.latent_dim == 18
    frames = _frames(1, 2)
    states = torch.tensor([[[20.0, 0.0, 3.0], [30.0, 9.0, 5.0]]])  # (B, T, S)
    z = model.encode(frames, states)  # (1, 2, 18)
    plain = model._embed(model.encoder, frames)  # (1, 2, 16): image features alone
    assert torch.equal(model.image_part(z), plain)
    sd0 = 200.0**0.5  # entry 0 of [10, 30]: mean 20, sample std 14.14
    sd2 = 8.0**0.5  # entry 2 of [1, 5]: mean 3, sample std 2.83
    want = torch.tensor([[[0.0, 0.0], [3 * 2 / sd2, 3 * 10 / sd0]]])  # entries 2 then 0
    assert torch.allclose(z[..., 16:], want, atol=1e-5)
    pred = model.rollout(z, torch.randn(1, 3, model.step_action_dim))
    assert pred.shape == (1, 3, 18)  # the predictor carries the proprioception forward


def test_a_proprio_model_names_missing_or_short_state_vectors() -> None:
    model = _proprio_model()
    with pytest.raises(ValueError, match=r"reads proprioception \(state entries \[2, 0\]"):
        model.encode(_frames(1, 2))
    with pytest.raises(ValueError, match="proprio must be state vectors .* S > 2"):
        model.encode(_frames(1, 2), torch.zeros(1, 2, 2))
    with pytest.raises(ValueError, match="states must be"):
        model.set_proprio_stats(torch.zeros(1, 3))  # one state has no spread
    plain = WorldModel(tiny_model()).eval()
    assert plain.encode(_frames(1, 2), torch.zeros(1, 2, 2)).shape == (1, 2, 16)  # ignored


def test_a_constant_proprio_entry_is_centred_not_blown_up() -> None:
    model = WorldModel(tiny_model(proprio=(1,))).eval()
    model.set_proprio_stats(torch.tensor([[0.0, 7.0], [1.0, 7.0], [2.0, 7.0]]))
    assert model.proprio_std.tolist() == [1.0] and model.proprio_mean.tolist() == [7.0]


def test_proprio_config_is_checked() -> None:
    with pytest.raises(ValueError, match="proprio: must be distinct state entries"):
        tiny_model(proprio=(0, 0))
    with pytest.raises(ValueError, match="proprio: must be distinct state entries"):
        tiny_model(proprio=(-1,))
    with pytest.raises(ValueError, match="proprio: needs the vector latent"):
        tiny_model(proprio=(0,), latent="grid")
    with pytest.raises(ValueError, match="proprio_weight: must be > 0"):
        tiny_model(proprio=(0,), proprio_weight=0.0)


def test_proprio_statistics_are_saved_and_plain_models_keep_their_keys(tmp_path: Path) -> None:
    model = _proprio_model()
    model.save(tmp_path / "p")
    loaded = WorldModel.from_pretrained(tmp_path / "p")
    assert torch.equal(loaded.proprio_std, model.proprio_std)
    states = torch.tensor([[[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]])
    assert torch.equal(loaded.encode(_frames(1, 2), states), model.encode(_frames(1, 2), states))
    assert not any("proprio" in k for k in WorldModel(tiny_model()).state_dict())


def test_proprio_is_predicted_but_not_regularised() -> None:
    """The prediction terms score the proprioception; SIGReg and smoothness see the image
    features alone, so a state that jumps between frames leaves them as they were."""
    model = _proprio_model(smooth_weight=0.1).train()
    frames, acts = _frames(2, 3), torch.randn(2, 2, model.step_action_dim)
    still = torch.zeros(2, 3, 3)
    moving = still.clone()
    moving[:, 1:, 0] = 500.0  # entry 0 jumps by 35 spreads after the first frame

    def metrics(states: torch.Tensor) -> dict[str, float]:
        torch.manual_seed(1)  # the same SIGReg directions each time
        return {k: float(v) for k, v in model.loss(frames, acts, proprio=states)[1].items()}

    a, b = metrics(still), metrics(moving)
    assert a["reg"] == pytest.approx(b["reg"]) and a["smooth"] == pytest.approx(b["smooth"])
    assert b["pred"] > a["pred"] + 1.0  # the jump is an error the predictor did not foresee


def test_sigreg_over_time_weighs_clips_that_hold_still_t_times_less() -> None:
    """Clips of one frame held still: pooled over frames SIGReg sees B distinct embeddings
    scaled by B*T samples, per step the same B scaled by B, so "time" weighs them T times less."""
    torch.manual_seed(0)
    cfg = tiny_model(reg_weight=1.0)
    model = WorldModel(cfg).train()
    frames = _frames(16, 1).expand(16, 8, 64, 64, 3)  # (B, T, H, W, 3): each clip one frame
    acts = torch.zeros(16, 7, model.step_action_dim)

    def reg(over: str) -> float:
        model.config = dataclasses.replace(cfg, sigreg_over=over)
        torch.manual_seed(1)  # the same SIGReg directions each time
        return float(model.loss(frames, acts)[1]["reg"])

    assert reg("frames") == pytest.approx(8 * reg("time"), rel=1e-4)  # T = 8
    with pytest.raises(ValueError, match="sigreg_over"):
        tiny_model(sigreg_over="batch")
