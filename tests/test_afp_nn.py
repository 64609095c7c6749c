import math

import pytest
import torch

from sklaudio.nn import (
    AudioFramePredictor,
    ConvLSTM,
    ConvLSTMCell,
    pair_kl_matrix,
    pair_loss,
    similar_pair_fraction,
)

B = torch.tensor([[0.5, 0.5], [0.5, 0.5], [0.9, 0.1]])
KL_02 = 0.5 * math.log(0.5 / 0.9) + 0.5 * math.log(0.5 / 0.1)
KL_20 = 0.9 * math.log(0.9 / 0.5) + 0.1 * math.log(0.1 / 0.5)


def test_pair_kl_matrix_by_hand():
    kl = pair_kl_matrix(B)
    expected = torch.tensor([[0, 0, KL_02], [0, 0, KL_02], [KL_20, KL_20, 0]])
    torch.testing.assert_close(kl, expected, atol=1e-6, rtol=0)


def test_pair_loss_dissimilar_branch_is_hinge_on_margin():
    # mean KL = (2·KL_02 + 2·KL_20) / 9 ≈ 0.195, so f(0, 2) ≈ 2.6 and f(2, 0) ≈ 1.9 exceed 0.5
    expected = 2 * (1.0 - KL_02) + 2 * (1.0 - KL_20)
    assert float(pair_loss(B, threshold=0.5, margin=1.0)) == pytest.approx(expected, rel=1e-5)
    assert float(pair_loss(B, threshold=0.5, margin=0.3)) == 0.0  # already margin apart


def test_pair_loss_similar_branch_is_kl():
    assert float(pair_loss(B, threshold=3.0, margin=1.0)) == pytest.approx(
        2 * KL_02 + 2 * KL_20, rel=1e-5
    )


def test_pair_loss_gradients_pull_and_push():
    logits = torch.tensor([[0.0, 0.0], [0.2, 0.0], [2.0, -2.0]], requires_grad=True)
    pair_loss(torch.softmax(logits, dim=1), threshold=0.5, margin=5.0).backward()
    # the dissimilar third clip is pushed further from the first two
    assert logits.grad[2, 0] < 0 and logits.grad[2, 1] > 0


def test_similar_pair_fraction_counts_distinct_pairs_below_threshold():
    # two tight groups of two: within-group KLs are far below the mean, across far above
    B = torch.tensor([[0.9, 0.1], [0.89, 0.11], [0.1, 0.9], [0.11, 0.89]])
    assert similar_pair_fraction(B, threshold=0.5) == pytest.approx(4 / 12)
    assert similar_pair_fraction(B, threshold=100.0) == 1.0  # every distinct pair
    assert similar_pair_fraction(B[:1], threshold=1.0) == 0.0  # no pair at all
    # it is the fraction pair_loss uses: with everything similar the loss is the KL sum
    assert float(pair_loss(B, 100.0, 1.0)) == pytest.approx(float(pair_kl_matrix(B).sum()))


@pytest.mark.parametrize(
    "threshold, margin, name",
    [(0.0, 1.0, "threshold"), (1.0, -1.0, "margin"), (float("nan"), 1.0, "threshold")],
)
def test_pair_loss_rejects_non_positive(threshold, margin, name):
    with pytest.raises(ValueError, match=f"{name} must be a finite number > 0"):
        pair_loss(B, threshold, margin)


def test_pair_kls_are_float32_under_autocast_and_never_negative():
    # near-uniform distributions (the start of phase 2): KLs of ~1e-3 are differences of
    # terms near log(128); in bfloat16 they were mostly rounding error, and negative
    dist = (torch.randn(16, 128, generator=torch.Generator().manual_seed(0)) * 0.05).softmax(1)
    exact = pair_kl_matrix(dist.double())
    with torch.autocast("cpu", dtype=torch.bfloat16):
        kl = pair_kl_matrix(dist)
        loss = pair_loss(dist, 1.0, 1.0)
    assert kl.dtype == torch.float32 and (kl >= 0).all()
    torch.testing.assert_close(kl.double(), exact, atol=1e-5, rtol=1e-3)
    assert float(loss) == pytest.approx(float(pair_loss(dist.double(), 1.0, 1.0)), rel=1e-4)
    assert torch.isfinite(pair_kl_matrix(torch.tensor([[1.0, 0.0], [0.5, 0.5]]).half())).all()


@pytest.mark.parametrize("scale, size", [(1, (6, 10)), (0.5, (3, 5)), (2, (12, 20))])
def test_convlstm_cell_resamples(scale, size):
    cell = ConvLSTMCell(2, 4, scale=scale)
    h, (h2, c) = cell(torch.randn(3, 2, 6, 10))
    assert h.shape == (3, 4, *size) and torch.equal(h, h2) and c.shape == h.shape
    assert h.abs().max() <= 1  # h = σ(o)·tanh(c)
    with pytest.raises(ValueError, match="scale"):
        ConvLSTMCell(2, 4, scale=3)


def test_convlstm_state_carries_over_steps():
    layer = ConvLSTM(1, 3).eval()
    x = torch.randn(2, 4, 1, 5, 5)
    out = layer(x)
    assert out.shape == (2, 4, 3, 5, 5)
    # the last step depends on the earlier ones through the recurrent state
    changed = x.clone()
    changed[:, 0] += 1.0
    assert not torch.allclose(layer(changed)[:, -1], out[:, -1])


def test_audio_frame_predictor_shapes_and_gradients():
    torch.manual_seed(0)
    afp = AudioFramePredictor(code_channels=16, widths=(4, 8))
    frames = torch.randn(2, 3, 20, 27, requires_grad=True)  # sizes not multiples of 8
    pred, code = afp(frames)
    assert pred.shape == (2, 20, 27)
    assert code.shape == (2, 16, 3, 4)
    feats = afp.features(code)
    assert feats.shape == (2, 16)
    loss = ((pred - torch.randn(2, 20, 27)) ** 2).mean() + pair_loss(
        torch.softmax(feats, dim=1), 0.5, 1.0
    )
    loss.backward()
    assert frames.grad is not None and torch.isfinite(frames.grad).all()
    assert all(p.grad is not None for p in afp.parameters())
    with pytest.raises(ValueError, match="n_context"):
        afp(torch.randn(2, 20, 27))


def test_convlstm_refuses_a_step_without_its_channel_axis():
    # (n, steps, H, W) with n == in_channels passed as unbatched images and broadcast
    with pytest.raises(
        ValueError, match=r"\(n, steps >= 1, channels, H, W\), got \(1, 3, 20, 13\)"
    ):
        ConvLSTM(1, 4)(torch.randn(1, 3, 20, 13))
    with pytest.raises(ValueError, match="kernel_size must be odd"):
        ConvLSTM(1, 4, kernel_size=4)
    with pytest.raises(ValueError, match="widths must hold 2"):
        AudioFramePredictor(widths=(4, 8, 16))


def test_sequence_encoder_is_callable_and_reads_one_channel():
    from sklaudio.features import frame_sequences
    from sklaudio.nn import SequenceEncoder

    predictor = AudioFramePredictor(code_channels=4, widths=(2, 2)).eval()
    encoder = SequenceEncoder(predictor, lambda s: frame_sequences(s, 8, 2, 4), n_context=3)
    x = torch.randn(2, 1, 16, 40)
    torch.testing.assert_close(encoder(x), encoder.features(x))  # usable in nn.Sequential
    with pytest.raises(ValueError, match=r"one-channel spectrograms .* got \(2, 2, 16, 40\)"):
        encoder(torch.randn(2, 2, 16, 40))
    with pytest.raises(ValueError, match=r"one step of shape \(n, in_channels, H, W\)"):
        ConvLSTMCell(1, 4)(torch.randn(1, 20, 13))
    assert "1, 4, kernel_size=3, scale=1" in repr(ConvLSTMCell(1, 4))
