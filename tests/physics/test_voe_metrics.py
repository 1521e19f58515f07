from __future__ import annotations

import numpy as np
import pytest
import torch

from jepaworld.models.world_model import WorldModel
from jepaworld.physics.surprise import look_mean, shift_x, surprise, token_surprise
from jepaworld.physics.voe import auroc, bootstrap_ci, relative_accuracy, video_score
from tests.conftest import tiny_model


def test_relative_accuracy_on_known_scores() -> None:
    assert relative_accuracy(np.array([0.1, 0.2, 0.3]), np.array([0.5, 0.6, 0.7])) == 1.0
    assert relative_accuracy(np.array([0.5, 0.6, 0.7]), np.array([0.1, 0.2, 0.3])) == 0.0
    assert (
        relative_accuracy(np.array([1.0, 0.2]), np.array([1.0, 0.9])) == 0.75
    )  # a tie counts half
    with pytest.raises(ValueError, match="equal, non-empty"):
        relative_accuracy(np.array([1.0]), np.array([1.0, 2.0]))


def test_auroc_on_a_hand_computed_example() -> None:
    # impossible {0.4, 0.8} vs possible {0.1, 0.5, 0.6}: pairs won 1 + 3 = 4 of 6
    assert auroc(np.array([0.1, 0.5, 0.6]), np.array([0.4, 0.8])) == pytest.approx(4 / 6)
    assert auroc(np.array([0.3]), np.array([0.3])) == 0.5


def test_bootstrap_interval_contains_the_estimate_and_narrows_with_more_pairs() -> None:
    rng = np.random.default_rng(0)

    def width(n: int) -> float:
        possible = rng.normal(0, 1, n)
        impossible = possible + rng.normal(0.5, 1, n)
        lo, hi = bootstrap_ci(possible, impossible, relative_accuracy, resamples=500)
        est = relative_accuracy(possible, impossible)
        assert lo <= est <= hi
        return hi - lo

    assert width(400) < width(25)


def test_video_score_reductions() -> None:
    s = np.array([0.0, 0.1, 0.9, 0.2])
    assert video_score(s) == 0.9 and video_score(s, "mean") == pytest.approx(0.3)
    with pytest.raises(ValueError, match="reduce"):
        video_score(s, "median")


class ConstantMotionModel:
    """A known predictor: embeddings are the frame's mean brightness; it predicts 'no change'."""

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        return frames.float().mean(dim=(-1, -2, -3), keepdim=False).unsqueeze(-1)  # (B, T, 1)

    def predict(self, z: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        return z


def test_surprise_peaks_where_the_unpredictable_happens() -> None:
    video = torch.full((12, 8, 8, 3), 100, dtype=torch.uint8)
    video[7:] = 160  # a sudden change at frame 7
    s = surprise(ConstantMotionModel(), video, context=3)
    assert s.shape == (12,)
    assert int(s.argmax()) == 7 and float(s[7]) == pytest.approx(60.0)
    assert float(s[:7].abs().max()) == 0.0 and float(s[8:].abs().max()) == 0.0


def test_surprise_runs_on_the_world_model_with_null_actions() -> None:
    torch.manual_seed(0)
    model = WorldModel(tiny_model(max_len=6)).eval()
    video = torch.randint(0, 256, (10, 64, 64, 3), dtype=torch.uint8)
    s = surprise(model, video, context=5)
    assert s.shape == (10,) and float(s[0]) == 0.0 and bool((s[1:] > 0).all())
    with pytest.raises(ValueError, match="video must be"):
        surprise(model, video[0])


def test_surprise_over_a_horizon_spreads_a_change_over_the_windows_that_predict_it() -> None:
    video = torch.full((12, 8, 8, 3), 100, dtype=torch.uint8)
    video[7:] = 160
    s = surprise(ConstantMotionModel(), video, context=3, horizon=3)
    # the window ending at t-1 predicts frames t..t+2 as frame t-1: errors 0 or 60 on each
    assert s[5:9].tolist() == pytest.approx([20.0, 40.0, 60.0, 0.0])
    assert float(s[:5].abs().max()) == 0.0 and float(s[9:].abs().max()) == 0.0
    with pytest.raises(ValueError, match="horizon"):
        surprise(ConstantMotionModel(), video, horizon=0)


class LeftHalfModel(ConstantMotionModel):
    """Sees only the left half of the frame: its mean brightness; 'no change'."""

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        W = frames.shape[-2]
        return frames[..., : W // 2, :].float().mean(dim=(-1, -2, -3)).unsqueeze(-1)  # (B, T, 1)


def test_flip_averages_the_surprise_of_the_video_and_of_the_video_flipped() -> None:
    video = torch.full((12, 8, 8, 3), 100, dtype=torch.uint8)
    video[7:, :, 4:] = 160  # the right half brightens at frame 7
    plain = surprise(LeftHalfModel(), video, context=3)
    assert float(plain.abs().max()) == 0.0  # the left half never changes
    flipped = surprise(LeftHalfModel(), video, context=3, flip=True)
    assert float(flipped[7]) == pytest.approx(30.0)  # the flipped video's left half: 60, halved
    assert float(flipped[:7].abs().max()) == 0.0 and float(flipped[8:].abs().max()) == 0.0
    video[:, :2] = 30  # the top rows differ: per-row means see a flip of rows, not of columns
    both = look_mean(lambda v: v.float().mean(dim=(2, 3)), video, flip=True)  # (T, H) row means
    assert torch.equal(both, video.float().mean(dim=(2, 3)))  # blind to a left-right flip


def test_shift_moves_the_content_sideways_and_repeats_the_edge_column() -> None:
    video = torch.zeros(2, 3, 8, 3, dtype=torch.uint8)  # (T, H, W, C)
    video[:, :, 0], video[:, :, 7] = 7, 9  # the edge columns
    video[:, :, 4] = 200  # a bright column at x = 4
    right, left = shift_x(video, 2), shift_x(video, -3)
    assert right[0, 0, :, 0].tolist() == [7, 7, 7, 0, 0, 0, 200, 0]  # moved 2 right, edge kept
    assert left[0, 0, :, 0].tolist() == [0, 200, 0, 0, 9, 9, 9, 9]  # moved 3 left, edge repeated
    assert torch.equal(shift_x(video, 0), video)


def test_shifts_average_the_surprise_over_the_moved_videos(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A model that sees only the left half is surprised by a change at x = 3 or 4 exactly in
    the looks that move it into its half: with shifts (-1, 0, 1) the change at x = 4 counts once
    in three (moved left), and with the flip as well in three of six."""
    video = torch.full((12, 8, 8, 3), 100, dtype=torch.uint8)
    video[7:, :, 4] = 220  # column 4 brightens at frame 7
    assert float(surprise(LeftHalfModel(), video, context=3).abs().max()) == 0.0
    err = 120 * 8 * 3 / (8 * 4 * 3)  # the left half's mean change when the column enters it
    moved = surprise(LeftHalfModel(), video, context=3, shifts=(-1, 0, 1))
    assert float(moved[7]) == pytest.approx(err / 3)
    both = surprise(LeftHalfModel(), video, context=3, flip=True, shifts=(-1, 0, 1))
    # in the half: unflipped moved left (to 3); flipped, unmoved (to 3) and moved right (to 2)
    assert float(both[7]) == pytest.approx(err * 3 / 6)
    assert float(both[:7].abs().max()) == 0.0 and float(both[8:].abs().max()) == 0.0
    for frames in (24, 5):  # batches of two looks; one look at a time (the video is longer)
        monkeypatch.setattr("jepaworld.physics.surprise.LOOK_BATCH_FRAMES", frames)
        alone = surprise(LeftHalfModel(), video, context=3, flip=True, shifts=(-1, 0, 1))
        assert torch.allclose(alone, both), frames
    assert torch.equal(surprise(LeftHalfModel(), video, 3, shifts=(np.int64(-1), 0, 1)), moved)
    for bad in [(), (0, 0), (8,), (1.5,), 3, "0"]:
        with pytest.raises(ValueError, match="shifts: must"):
            surprise(LeftHalfModel(), video, context=3, shifts=bad)


def test_a_frame_by_frame_score_cannot_separate_a_matched_set() -> None:
    """Per-frame brightness sees the ball vanish (a plain pair differs), but on a matched set its
    possible and impossible scores are exactly equal (a tie, 0.5), whatever the reduction: only
    prediction across frames can tell them apart."""
    from jepaworld.envs.physics_scenes import MATCHED_SETS, make_pair
    from jepaworld.physics.evaluate import pair_scores

    def brightness(video: torch.Tensor) -> np.ndarray:
        return video.float().mean(dim=(1, 2, 3)).numpy()  # (T,)

    for prop in MATCHED_SETS:
        pair = make_pair(prop, seed=4)
        for reduce in ("mean", "max"):
            possible, impossible = pair_scores(pair, brightness, reduce)
            assert possible == impossible, (prop, reduce)
            assert relative_accuracy(np.array([possible]), np.array([impossible])) == 0.5
        alone = video_score(brightness(torch.from_numpy(pair.possible)), "mean")
        assert alone != pytest.approx(
            video_score(brightness(torch.from_numpy(pair.impossible)), "mean"), rel=1e-6
        )


class QuadrantModel(ConstantMotionModel):
    """Four tokens: the mean brightness of each quadrant of the frame, row-major; 'no change'."""

    def encode(self, frames: torch.Tensor) -> torch.Tensor:
        B, T, H, W, _ = frames.shape
        q = frames.float().reshape(B, T, 2, H // 2, 2, W // 2, 3)  # (B, T, 2, H/2, 2, W/2, 3)
        return q.mean(dim=(3, 5, 6)).reshape(B, T, 4)  # (B, T, 4)


def test_token_surprise_finds_the_token_where_the_change_is() -> None:
    video = torch.full((12, 8, 8, 3), 100, dtype=torch.uint8)
    video[7:, :4, 4:] = 180  # the top-right quadrant (token 1) changes at frame 7
    per_token = token_surprise(QuadrantModel(), video, context=3, tokens=4)
    assert per_token.shape == (12, 4) and float(per_token[7, 1]) == pytest.approx(80.0)
    assert float(per_token.abs().sum()) == pytest.approx(80.0)  # nowhere else, at no other frame
    whole = surprise(QuadrantModel(), video, context=3)
    assert torch.allclose(per_token.mean(dim=1), whole)
    for bad in (0, 3, 2.0):
        with pytest.raises(ValueError, match="tokens"):
            token_surprise(QuadrantModel(), video, tokens=bad)
