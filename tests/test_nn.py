import math

import pytest
import torch
import torch.nn.functional as F

from sklaudio.nn import (
    MemoryBank,
    NPIDLoss,
    SpectrogramAugment,
    SpectrogramEncoder,
    build_backbone,
    estimate_nce_z,
    instance_softmax_loss,
    nce_loss,
)


@pytest.mark.parametrize("name, out", [("esresnet_tiny", 128), ("esresnet18", 512)])
def test_backbone_shapes_and_gradients(name, out):
    net = build_backbone(name, in_channels=3)
    x = torch.randn(2, 3, 41, 57, requires_grad=True)
    y = net(x)
    assert y.shape == (2, out)
    y.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert all(p.grad is not None for p in net.parameters() if p.requires_grad)


def test_esresnet50_has_attention_and_torchvision_names():
    net = build_backbone("esresnet50")
    names = dict(net.named_parameters())
    assert "layer4.2.conv3.weight" in names and "conv1.weight" in names
    assert names["conv1.weight"].shape == (64, 3, 7, 7)
    assert {f"att{i}.conv_depth.weight" for i in range(1, 6)} <= set(names)
    assert net.out_features == 2048


def test_attention_multiplies_stage_output():
    net = build_backbone("esresnet_tiny", in_channels=1).eval()
    plain = build_backbone("esresnet_tiny", in_channels=1, attention=False).eval()
    plain.load_state_dict({k: v for k, v in net.state_dict().items() if "att" not in k})
    x = torch.randn(1, 1, 32, 32)
    assert not torch.allclose(net(x), plain(x))  # the attention maps change the features


def test_unknown_backbone():
    with pytest.raises(ValueError, match="unknown backbone 'resnet9000'"):
        build_backbone("resnet9000")


def test_encoder_sums_channel_groups_and_normalises():
    enc = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=3), 16).eval()
    x = torch.randn(2, 6, 20, 30)
    z = enc(x)
    assert z.shape == (2, 16)
    torch.testing.assert_close(z.norm(dim=1), torch.ones(2))
    summed = enc.backbone(x[:, :3]) + enc.backbone(x[:, 3:])
    torch.testing.assert_close(enc.features(x), summed, rtol=1e-4, atol=1e-5)
    with pytest.raises(ValueError, match="multiple"):
        enc(torch.randn(2, 4, 20, 30))


def test_memory_bank_update_rule():
    bank = MemoryBank(5, 3, momentum=0.5, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(bank.memory.norm(dim=1), torch.ones(5))
    before = bank.memory.clone()
    f = F.normalize(torch.tensor([[1.0, 2.0, 2.0]]), dim=1)
    bank.update(torch.tensor([2]), f)
    expected = F.normalize(0.5 * before[2] + 0.5 * f[0], dim=0)
    torch.testing.assert_close(bank.memory[2], expected)
    torch.testing.assert_close(bank.memory[[0, 1, 3, 4]], before[[0, 1, 3, 4]])
    assert float(bank.nce_z) == -1.0
    assert "memory" in bank.state_dict() and "nce_z" in bank.state_dict()
    with pytest.raises(ValueError, match="momentum"):
        MemoryBank(3, 2, momentum=1.0)


def test_nce_loss_matches_hand_computation():
    logits = torch.tensor([[2.0, 0.5, -1.0], [0.0, 1.0, 0.3]])
    n_data, z = 50, 7.0
    k = 2
    pn = 1 / n_data
    expected = 0.0
    for row in logits:
        p = torch.exp(row) / z
        expected -= math.log(p[0] / (p[0] + k * pn + 1e-7))
        expected -= sum(math.log(k * pn / (pj + k * pn + 1e-7)) for pj in p[1:])
    assert float(nce_loss(logits, n_data, z)) == pytest.approx(expected / 2, rel=1e-5)


def test_nce_z_estimate():
    logits = torch.log(torch.tensor([[1.0, 3.0], [2.0, 2.0]]))
    assert float(estimate_nce_z(logits, 10)) == pytest.approx(20.0)


def test_instance_softmax_loss_is_eq1_cross_entropy():
    memory = F.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    feats = F.normalize(torch.randn(3, 4, generator=torch.Generator().manual_seed(2)), dim=1)
    idx = torch.tensor([0, 4, 5])
    t = 0.4
    probs = torch.softmax(feats @ memory.T / t, dim=1)
    expected = -torch.log(probs[torch.arange(3), idx]).mean()
    torch.testing.assert_close(instance_softmax_loss(feats, memory, idx, t), expected)


def test_npid_loss_estimates_z_once_and_learns():
    torch.manual_seed(0)
    bank = MemoryBank(20, 8)
    loss_fn = NPIDLoss(nce_k=5, nce_t=0.1)
    feats = bank.memory[:4].clone()  # features equal to their own bank rows: easy positives
    g = torch.Generator().manual_seed(0)
    good = loss_fn(feats, torch.arange(4), bank, generator=g)
    z = float(bank.nce_z)
    assert z > 0
    bad = loss_fn(feats, torch.tensor([10, 11, 12, 13]), bank, generator=g)
    assert float(bank.nce_z) == z  # estimated on the first batch only
    assert float(good) < float(bad)
    with pytest.raises(ValueError, match="loss"):
        NPIDLoss(loss="triplet")


def test_augment_is_seeded_and_off_in_eval():
    x = torch.randn(4, 1, 16, 40)
    a, b = SpectrogramAugment(seed=3).train(), SpectrogramAugment(seed=3).train()
    out_a, out_b = a(x), b(x)
    torch.testing.assert_close(out_a, out_b)
    assert not torch.equal(out_a, x)
    assert torch.equal(a.eval()(x), x)
    assert out_a.shape == x.shape


def test_augment_frequency_shift_moves_whole_bins_within_its_range():
    """Each clip is shifted up or down by at most max_freq_shift of its bins, the bins
    shifted in repeating the edge; every shift in the range occurs."""
    n, n_freq = 200, 20
    x = torch.arange(n_freq, dtype=torch.float32)[None, None, :, None].expand(n, 2, n_freq, 8)
    aug = SpectrogramAugment(
        max_shift=0, gain_db=0, n_time_masks=0, n_freq_masks=0, max_freq_shift=0.1, seed=1
    ).train()
    out = aug(x.contiguous())
    shifts = n_freq // 2 - out[:, 0, n_freq // 2, 0]  # bin f now holds bin f - shift
    assert set(shifts.tolist()) == {-2.0, -1.0, 0.0, 1.0, 2.0}  # int(0.1 * 20) bins
    expected = (torch.arange(n_freq)[None] - shifts[:, None]).clamp(0, n_freq - 1)
    torch.testing.assert_close(out, expected[:, None, :, None].expand_as(out).float())
    assert "max_freq_shift=0.1" in repr(aug)
    with pytest.raises(ValueError, match="max_freq_shift must be in"):
        SpectrogramAugment(max_freq_shift=1.5)
    old = SpectrogramAugment(seed=3).train()  # as pickled before max_freq_shift existed
    del old.__dict__["max_freq_shift"]
    torch.testing.assert_close(old(x), SpectrogramAugment(seed=3).train()(x))
    # off by default: the draws of the other augmentations are those of before
    torch.testing.assert_close(
        SpectrogramAugment(seed=3).train()(x),
        SpectrogramAugment(seed=3, max_freq_shift=0).train()(x),
    )


def test_encoder_input_norm_standardises_each_frequency_bin():
    enc = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=1), 8, n_freq=5)
    x = torch.randn(6, 1, 5, 30) * torch.arange(1.0, 6.0)[None, None, :, None] * 20 - 50
    normed = enc.train().spectrogram(x)
    torch.testing.assert_close(normed.mean(dim=(0, 1, 3)), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(normed.std(dim=(0, 1, 3)), torch.ones(5), atol=1e-2, rtol=0)


def test_nce_is_finite_for_small_temperatures_and_float32_under_autocast():
    # exp(score) / Z overflowed (NaN) for scores near 100; log space keeps every step finite
    assert torch.isfinite(nce_loss(torch.tensor([[200.0, 0, 0], [-200.0, 0, 0]]), 10, 1.0))
    bank = MemoryBank(10, 8, generator=torch.Generator().manual_seed(0))
    features = bank.memory[[0, 1]].clone().requires_grad_()
    loss = NPIDLoss(nce_k=4, nce_t=0.02)(features, torch.tensor([0, 1]), bank)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(features.grad).all()
    features = features.detach()
    with pytest.raises(ValueError, match="overflows float32.*raise the temperature"):
        fresh = MemoryBank(10, 8, generator=torch.Generator().manual_seed(0))  # Z not yet set
        NPIDLoss(nce_k=4, nce_t=0.001)(features, torch.tensor([0, 1]), fresh)  # scores of 1000
    # Z is estimated once: under bfloat16 autocast it was rounded (or inf in float16)
    exact = MemoryBank(10, 8, generator=torch.Generator().manual_seed(0))
    NPIDLoss(nce_k=4)(features, torch.tensor([0, 1]), exact, torch.Generator().manual_seed(1))
    autocast = MemoryBank(10, 8, generator=torch.Generator().manual_seed(0))
    with torch.autocast("cpu", dtype=torch.bfloat16):
        NPIDLoss(nce_k=4)(
            features, torch.tensor([0, 1]), autocast, torch.Generator().manual_seed(1)
        )
    assert float(autocast.nce_z) == pytest.approx(float(exact.nce_z), rel=1e-6)
    for bad in ({"nce_t": 0}, {"nce_t": -1.0}, {"nce_k": 0}, {"nce_k": True}):
        with pytest.raises(ValueError, match=next(iter(bad))):
            NPIDLoss(**bad)
    assert repr(NPIDLoss()) == "NPIDLoss(nce_k=64, nce_t=0.4, loss='nce')"


def test_esresnet_spectrogram_keeps_nan_and_has_finite_gradients_on_silence():
    from sklaudio.features import esresnet_spectrogram

    x = torch.randn(1, 4096)
    x[0, 2000] = float("nan")
    assert torch.isnan(esresnet_spectrogram(x, 512, 128, 400)).any()  # not a plausible 0 dB
    silence = torch.zeros(2, 3000, requires_grad=True)
    out = esresnet_spectrogram(silence, 512, 128, 400)
    assert float(out.detach().min()) == -180.0  # power 0 → 1e-18
    out.sum().backward()
    assert torch.isfinite(silence.grad).all()


def test_backbone_training_needs_two_clips_and_float64_stays_float64():
    backbone = build_backbone("esresnet_tiny", in_channels=1)
    with pytest.raises(ValueError, match="training needs batches of 2 or more clips"):
        backbone.train()(torch.randn(1, 1, 32, 37))
    assert backbone.eval()(torch.randn(1, 1, 32, 37)).shape == (1, 128)
    encoder = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=1), 8).double()
    x = torch.randn(2, 1, 32, 37, dtype=torch.float64)
    for output in ("embedding", "features", "stats"):
        assert encoder.eval()(x, output=output).dtype == torch.float64
    with pytest.raises(
        ValueError, match=r"stages must name stages 1 to 4 of the backbone, got \(5,\)"
    ):
        encoder(x, output="stats", stages=(5,))


def test_frozen_batch_norm_runs_single_clips_and_float64_waves_reach_a_float32_model():
    from sklaudio.features import log_mel_spectrogram

    backbone = build_backbone("esresnet_tiny", in_channels=1).train()
    for m in backbone.modules():  # the frozen-BN fine-tuning recipe
        if isinstance(m, torch.nn.BatchNorm2d):
            m.eval()
    assert backbone(torch.randn(1, 1, 32, 37)).shape == (1, 128)

    def frontend(w):
        return log_mel_spectrogram(w, 8000, n_fft=256, hop_length=128, n_mels=16)[:, None]

    encoder = SpectrogramEncoder(build_backbone("esresnet_tiny", in_channels=1), 8, frontend)
    waves = torch.randn(2, 4000, dtype=torch.float64)  # torch.from_numpy's usual dtype
    assert encoder.eval()(waves).dtype == torch.float32


def test_augment_and_softmax_checks():
    with pytest.raises(ValueError, match="gain_db must be a finite number >= 0, got inf"):
        SpectrogramAugment(gain_db=float("inf"))
    with pytest.raises(ValueError, match=r"max_time_mask must be in \[0, 1\], got 2"):
        SpectrogramAugment(max_time_mask=2)
    with pytest.raises(ValueError, match="n_time_masks must be an integer >= 0"):
        SpectrogramAugment(n_time_masks=-1)
    with pytest.raises(ValueError, match=r"\(n, C, F, T\), got \(2, 16, 20\)"):
        SpectrogramAugment().train()(torch.zeros(2, 16, 20))
    assert "gain_db=6.0" in repr(SpectrogramAugment())
    # the exact softmax in float32 under autocast, as NCE
    memory = F.normalize(torch.randn(6, 4, generator=torch.Generator().manual_seed(1)), dim=1)
    exact = instance_softmax_loss(memory[:3], memory, torch.tensor([0, 1, 2]), 0.07)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        mixed = instance_softmax_loss(memory[:3], memory, torch.tensor([0, 1, 2]), 0.07)
    assert mixed.dtype == torch.float32 and float(mixed) == pytest.approx(float(exact), rel=1e-6)


def test_memory_bank_needs_a_sample():
    # (sampling negatives from an empty bank failed in torch.randint)
    with pytest.raises(ValueError, match="n_samples and dim must be >= 1, got 0 and 8"):
        MemoryBank(0, 8)
    assert repr(MemoryBank(3, 2)) == "MemoryBank(n_samples=3, dim=2, momentum=0.5)"
