import os
import warnings

import numpy as np
import pytest
import soundfile as sf
from sklearn.exceptions import NotFittedError

from sklaudio.io import (
    AudioReader,
    cut_short,
    fix_length,
    list_audio_files,
    read_audio,
    resample,
)


def _write(path, data, sr, **kw):
    sf.write(str(path), data, sr, **kw)
    return str(path)


@pytest.fixture
def tone():
    t = np.arange(16000) / 16000
    return (0.5 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


@pytest.mark.parametrize(
    "ext, subtype, atol",
    [
        ("wav", "FLOAT", 0),
        ("wav", "PCM_16", 1e-4),
        ("flac", "PCM_16", 1e-4),
        ("ogg", "VORBIS", None),
    ],
)
def test_read_audio_formats(tmp_path, tone, ext, subtype, atol):
    path = _write(tmp_path / f"a.{ext}", tone, 16000, subtype=subtype)
    y, sr = read_audio(path)
    assert sr == 16000 and y.dtype == np.float32 and y.ndim == 1
    if atol is None:  # lossy: same length and similar energy
        assert abs(len(y) - len(tone)) < 1024
        assert np.isclose(np.std(y), np.std(tone), rtol=0.1)
    else:
        np.testing.assert_allclose(y, tone, atol=atol)


def test_read_audio_stereo_mono_offset_duration(tmp_path):
    left = np.linspace(-1, 1, 8000, dtype=np.float32)
    stereo = np.stack([left, -0.5 * left], axis=1)
    path = _write(tmp_path / "s.wav", stereo, 8000, subtype="FLOAT")
    y, _ = read_audio(path, mono=False)
    assert y.shape == (2, 8000)
    np.testing.assert_allclose(y[1], -0.5 * left)
    y, _ = read_audio(path)
    np.testing.assert_allclose(y, 0.25 * left, atol=1e-7)
    y, _ = read_audio(path, mono=False, offset=0.5, duration=0.25)
    assert y.shape == (2, 2000)
    np.testing.assert_allclose(y[0], left[4000:6000])


def test_resample_rational_preserves_frequency(tmp_path):
    t = np.arange(48000) / 48000
    x = np.sin(2 * np.pi * 440 * t).astype(np.float32)
    y = resample(x, 48000, 44100)
    assert y.shape == (44100,) and y.dtype == np.float32
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 440  # 1 s of signal: bin k is k Hz
    path = _write(tmp_path / "a.wav", x, 48000, subtype="FLOAT")
    z, sr = read_audio(path, sample_rate=44100)
    assert sr == 44100
    np.testing.assert_allclose(z, y, atol=1e-6)


def test_resample_rejects_bad_rates():
    with pytest.raises(ValueError, match="orig_sr"):
        resample(np.zeros(10), 0, 10)
    with pytest.raises(ValueError, match="target_sr"):
        resample(np.zeros(10), 10, 2.5)


def test_read_audio_bad_inputs(tmp_path, tone):
    with pytest.raises(FileNotFoundError, match="nope.wav"):
        read_audio(tmp_path / "nope.wav")
    with pytest.raises(IsADirectoryError, match=str(tmp_path.name)):
        read_audio(tmp_path)
    empty = tmp_path / "empty.wav"
    empty.write_bytes(b"")
    with pytest.raises(ValueError, match="empty.wav.*empty"):
        read_audio(empty)
    garbage = tmp_path / "garbage.ogg"
    garbage.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(ValueError, match="garbage.ogg"):
        read_audio(garbage)
    text = tmp_path / "notes.txt"
    text.write_text("not audio at all\n" * 50)
    with pytest.raises(ValueError, match="notes.txt"):
        read_audio(text)
    nan = tone.copy()
    nan[100] = np.nan
    path = _write(tmp_path / "nan.wav", nan, 16000, subtype="FLOAT")
    with pytest.raises(ValueError, match="nan.wav.*NaN"):
        read_audio(path)
    ok = _write(tmp_path / "ok.wav", tone, 16000)
    with pytest.raises(ValueError, match="offset"):
        read_audio(ok, offset=5.0)
    for kwargs, name in [
        ({"sample_rate": 0}, "sample_rate"),
        ({"duration": 0}, "duration"),
        ({"duration": -1.0}, "duration"),
        ({"offset": -1}, "offset"),
    ]:
        with pytest.raises(ValueError, match=name):
            read_audio(ok, **kwargs)


def test_read_audio_truncated_flac_and_zero_sample_ogg(tmp_path, tone):
    for ext in ("flac", "ogg"):
        path = _write(tmp_path / f"full.{ext}", tone, 16000)
        data = open(path, "rb").read()
        cut = tmp_path / f"cut.{ext}"
        cut.write_bytes(data[: len(data) // 2])
        with pytest.raises(ValueError, match=f"cut.{ext}"):
            read_audio(cut)


@pytest.mark.parametrize("subtype", ["VORBIS", "OPUS"])
def test_read_audio_refuses_an_ogg_stream_cut_short_and_accepts_trailing_bytes(tmp_path, subtype):
    # libsndfile reads such a file as a shorter clip, from its last complete page
    x = (np.random.default_rng(0).normal(size=(48000, 2)) * 0.1).astype(np.float32)
    sf.write(tmp_path / "full.ogg", x, 16000, subtype=subtype)
    data = (tmp_path / "full.ogg").read_bytes()
    assert read_audio(tmp_path / "full.ogg")[0].shape == (48000,)
    pages = [i for i in range(1, len(data)) if data.startswith(b"OggS", i)]
    assert len(pages) > 3
    for end in (pages[len(pages) // 2] + 100, pages[-1] + 30, len(data) - 10):
        cut = tmp_path / f"cut{end}.ogg"
        cut.write_bytes(data[:end])
        with pytest.raises(ValueError, match=f"cut{end}.ogg.* is truncated: it ends in an"):
            read_audio(cut)
    for end in (pages[len(pages) // 2], pages[-1]):  # exactly between pages
        cut = tmp_path / f"between{end}.ogg"
        cut.write_bytes(data[:end])
        # also what a writer that omits the end-of-stream flag (Android's) gives: a warning
        assert cut_short(cut) is None
        with pytest.warns(UserWarning, match=f"between{end}.ogg' ends without an Ogg end-of"):
            assert read_audio(cut)[0].shape[0] < 48000
    # an ID3 tag or padding after the last page is not a cut
    for name, extra in [("id3", b"TAG" + bytes(125)), ("pad", bytes(16))]:
        path = tmp_path / f"{name}.ogg"
        path.write_bytes(data + extra)
        assert cut_short(path) is None
        version = tuple(int(v) for v in sf.__libsndfile_version__.split(".")[:3])
        if version >= (1, 2, 2):
            assert read_audio(path)[0].shape == (48000,)
        else:  # libsndfile 1.2.0 reports billions of frames for such a file
            with pytest.raises(ValueError, match=f"{name}.ogg.* more than memory holds"):
                read_audio(path)


def test_waveform_lists_of_different_shapes_and_channel_counts_are_named(tmp_path):
    with pytest.raises(ValueError, match=r"the 2 waveforms of X differ in shape \(\(8000,\) to"):
        AudioReader(sample_rate=8000, duration=1).fit_transform(
            [np.zeros(16000, np.float32), np.zeros(8000, np.float32)]
        )
    stereo = _write(tmp_path / "stereo.wav", np.zeros((800, 2), np.float32), 8000)
    mono = _write(tmp_path / "mono.wav", np.zeros(800, np.float32), 8000)
    with pytest.raises(ValueError, match=r"channels \(1 in '.*mono.wav', 2 in '.*stereo.wav'\)"):
        AudioReader(sample_rate=8000, duration=0.1, mono=False).fit_transform([stereo, mono])


@pytest.mark.parametrize("subtype, dtype", [("PCM_16", np.int16), ("PCM_U8", np.uint8)])
def test_integer_pcm_arrays_give_what_their_file_gives(tmp_path, subtype, dtype):
    import scipy.io.wavfile

    from sklaudio import NPIDEmbedder, SpectrogramTransformer

    x = np.random.default_rng(0).normal(size=(2, 4000)) * 0.2
    paths = [_write(tmp_path / f"{i}.wav", clip, 8000, subtype=subtype) for i, clip in enumerate(x)]
    pcm = np.stack([scipy.io.wavfile.read(p)[1] for p in paths])
    assert pcm.dtype == dtype
    decoded = AudioReader(sample_rate=8000).fit_transform(paths)
    # an array, a list of one array per file (wavfile.read per file), the other byte order
    for same in (pcm, list(pcm), pcm.astype(pcm.dtype.newbyteorder(">"))):
        np.testing.assert_array_equal(AudioReader(sample_rate=8000).fit_transform(same), decoded)
    st = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=16)
    np.testing.assert_array_equal(st.fit_transform(pcm), st.fit_transform(decoded))
    emb = NPIDEmbedder(
        frontend=st, loss="softmax", embedding_dim=4, batch_size=2, max_epochs=1, device="cpu"
    ).fit(decoded)
    np.testing.assert_allclose(emb.transform(pcm), emb.transform(decoded), atol=1e-6)
    int64 = np.ones((1, 8), dtype=np.int64)  # not a PCM format: taken as it is
    assert AudioReader(sample_rate=8000).fit_transform(int64).max() == 1.0


@pytest.mark.parametrize("dtype", [np.int64, np.uint16])
def test_integer_arrays_sklaudio_does_not_scale_warn_when_they_exceed_one(dtype):
    from sklaudio import SpectrogramTransformer

    samples = np.array([[0, 30000, 20, 5] * 200], dtype=dtype)  # np.array of Python ints
    with pytest.warns(UserWarning, match=f"{np.dtype(dtype)} samples reaching 30000 .* not scaled"):
        assert AudioReader(sample_rate=8000).fit_transform(samples).max() == 30000
    st = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=128, hop_length=64, n_mels=8)
    with pytest.warns(UserWarning, match="astype"):
        st.fit(samples)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        AudioReader(sample_rate=8000).fit_transform(np.ones((1, 800), dtype=dtype))


def test_a_list_mixing_pcm_formats_scales_each_array_by_its_own():
    from sklaudio import SpectrogramTransformer

    half = [np.full(400, 1 << 14, np.int16), np.full(400, 1 << 30, np.int32)]
    for X in (half, [half[0], np.full(400, 0.5, np.float32)]):
        np.testing.assert_array_equal(AudioReader(sample_rate=8000).fit_transform(X), 0.5)
        st = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=128, hop_length=64, n_mels=8)
        S = st.fit_transform(X)
        np.testing.assert_allclose(S[0], S[1], atol=1e-4)


def test_fix_length_centres():
    x = np.arange(10.0)
    np.testing.assert_array_equal(fix_length(x, 4), [3, 4, 5, 6])
    padded = fix_length(np.ones((2, 3)), 8)
    assert padded.shape == (2, 8)
    np.testing.assert_array_equal(padded[0], [0, 0, 1, 1, 1, 0, 0, 0])


@pytest.fixture
def clip_files(tmp_path):
    rng = np.random.default_rng(0)
    paths = []
    for i, n in enumerate([8000, 12000, 4000]):
        paths.append(
            _write(
                tmp_path / f"c{i}.wav",
                (0.1 * rng.normal(size=(n, 2))).astype(np.float32),
                8000,
                subtype="FLOAT",
            )
        )
    return paths


def test_audio_reader_paths(clip_files):
    reader = AudioReader(sample_rate=4000, duration=1.0)
    X = reader.fit_transform(np.array(clip_files, dtype=object))
    assert X.shape == (3, 4000) and X.dtype == np.float32
    # the short clip (0.5 s at 4 kHz = 2000 samples) sits in the middle
    assert np.all(X[2, :1000] == 0) and np.all(X[2, 3000:] == 0) and np.any(X[2, 1000:3000] != 0)
    stereo = AudioReader(sample_rate=8000, duration=0.5, mono=False).fit_transform(clip_files)
    assert stereo.shape == (3, 2, 4000)
    expected, _ = read_audio(clip_files[1], mono=False)
    np.testing.assert_array_equal(stereo[1], fix_length(expected, 4000))
    # a (n, 1) column of paths, as a DataFrame column gives, works too
    col = AudioReader(sample_rate=4000, duration=1.0).fit_transform(
        np.array(clip_files, dtype=object)[:, None]
    )
    np.testing.assert_array_equal(col, X)


def test_audio_reader_parallel_equals_serial(clip_files):
    serial = AudioReader(sample_rate=8000, duration=1.0).fit_transform(clip_files * 3)
    parallel = AudioReader(sample_rate=8000, duration=1.0, n_jobs=2).fit_transform(clip_files * 3)
    np.testing.assert_array_equal(serial, parallel)


def test_audio_reader_unequal_lengths_need_duration(clip_files):
    with pytest.raises(ValueError, match="duration=.*c2.wav|c2.wav.*duration="):
        AudioReader(sample_rate=8000).fit_transform(clip_files)


def test_audio_reader_on_error(clip_files, tmp_path):
    bad = tmp_path / "broken.wav"
    bad.write_bytes(b"RIFF....garbage")
    paths = [clip_files[0], str(bad), clip_files[1]]
    with pytest.raises(ValueError, match="broken.wav"):
        AudioReader(sample_rate=8000, duration=1.0).fit_transform(paths)
    reader = AudioReader(sample_rate=8000, duration=1.0, on_error="skip")
    with pytest.warns(UserWarning, match=r"(?s)skipped 1 of 3.*broken.wav"):
        X = reader.fit_transform(paths)
    assert X.shape == (2, 8000)
    assert [(i, os.path.basename(p)) for i, p, _ in reader.skipped_] == [(1, "broken.wav")]
    keep = np.setdiff1d(np.arange(len(paths)), [i for i, _, _ in reader.skipped_])
    np.testing.assert_array_equal(X, AudioReader(8000, 1.0).fit_transform(np.array(paths)[keep]))
    reader.transform(X)  # waveforms drop nothing: the last files' list does not linger
    assert reader.skipped_ == []
    with warnings.catch_warnings(), pytest.raises(ValueError, match="no audio file"):
        warnings.simplefilter("ignore")
        reader.transform([str(bad)])


def test_audio_reader_waveforms():
    X = np.random.default_rng(0).normal(size=(3, 2, 100))
    out = AudioReader(sample_rate=100, duration=0.5).fit_transform(X)
    assert out.shape == (3, 50) and out.dtype == np.float32
    np.testing.assert_allclose(out, X.mean(axis=1)[:, 25:75], atol=1e-6)
    reader = AudioReader().fit(X[:, 0])
    with pytest.raises(ValueError, match="100 features"):
        reader.transform(X[:, 0, :80])
    bad = X[:, 0].copy()
    bad[1, 3] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        AudioReader().fit_transform(bad)
    with pytest.raises(ValueError, match="one waveform of 10 samples"):
        AudioReader().fit_transform(np.zeros(10))
    with pytest.raises(ValueError, match="single path"):
        AudioReader().fit_transform("one.wav")


@pytest.mark.parametrize(
    "params, name",
    [
        ({"sample_rate": 0}, "sample_rate"),
        ({"duration": -1}, "duration"),
        ({"on_error": "ignore"}, "on_error"),
        ({"n_jobs": 0}, "n_jobs"),
        (
            {"sample_rate": True},
            "'sample_rate' parameter of AudioReader must be a number",
        ),  # (joblib's own error would not name AudioReader)
    ],
)
def test_audio_reader_bad_params(params, name):
    with pytest.raises(ValueError, match=name):
        AudioReader(**params).fit(np.zeros((2, 10)))


def test_list_audio_files(tmp_path, tone):
    (tmp_path / "sub").mkdir()
    _write(tmp_path / "sub" / "b.flac", tone, 16000)
    _write(tmp_path / "a.WAV", tone, 16000)
    (tmp_path / "readme.txt").write_text("x")
    (tmp_path / "._a.WAV").write_bytes(b"\x00\x05\x16\x07")  # a macOS resource fork
    (tmp_path / ".cache").mkdir()
    _write(tmp_path / ".cache" / "c.wav", tone, 16000)
    assert [os.path.basename(p) for p in list_audio_files(tmp_path)] == ["a.WAV", "b.flac"]
    with pytest.raises(NotADirectoryError):
        list_audio_files(tmp_path / "missing")


def test_reader_refuses_no_clips_a_generator_and_a_duration_under_one_sample(tmp_path):
    path = tmp_path / "a.wav"
    sf.write(path, np.zeros(800), 8000)
    with pytest.raises(ValueError, match="empty sequence"):
        AudioReader(sample_rate=8000).fit_transform([])
    with pytest.raises(TypeError, match="generator, which can be read only once"):
        AudioReader(sample_rate=8000).fit_transform(p for p in [str(path)])
    for mono in (True, False):
        reader = AudioReader(sample_rate=8000, duration=1e-5, mono=mono, on_error="skip")
        with pytest.raises(ValueError, match=r"duration=1e-05 s is less than one sample"):
            reader.fit([str(path)])
        with pytest.raises(ValueError, match=r"duration=1e-05 s is less than one sample"):
            reader.transform([str(path)])  # not a file to skip


def test_paths_from_a_numpy_array_are_named_plainly(tmp_path):
    missing = np.array([str(tmp_path / "missing.wav")])
    with pytest.raises(FileNotFoundError) as caught:
        AudioReader(sample_rate=8000).fit_transform(missing)
    assert "np.str_" not in str(caught.value) and "missing.wav' does not exist" in str(caught.value)


def test_audio_reader_skip_warning_lists_twenty_files_then_counts(clip_files, tmp_path):
    bad = []
    for i in range(23):
        bad.append(tmp_path / f"broken{i:02d}.wav")
        bad[-1].write_bytes(b"RIFF....garbage")
    reader = AudioReader(sample_rate=8000, duration=1.0, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 23 of 24") as record:
        reader.fit_transform([clip_files[0], *map(str, bad)])
    message = str(record[0].message)
    assert "broken19.wav" in message and "broken20.wav" not in message
    assert message.endswith("... and 3 more")
    assert len(reader.skipped_) == 23  # the attribute keeps every one


def test_a_skip_warning_points_at_the_users_line_through_a_pipeline(tmp_path):
    from sklearn.pipeline import make_pipeline

    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, np.zeros(800), 8000)
    bad.write_bytes(b"")
    pipe = make_pipeline(AudioReader(sample_rate=8000, on_error="skip"))
    with pytest.warns(UserWarning, match="skipped 1 of 2") as record:
        pipe.fit_transform([str(good), str(bad)])  # sklearn's set_output wraps transform
    assert record[0].filename == __file__


def test_a_warning_with_no_user_code_on_the_stack_names_sklaudio_not_threading(tmp_path):
    # (a joblib worker or a thread runs sklearn's code only: no line of the user's)
    import threading

    import sklaudio.io

    good, bad = tmp_path / "good.wav", tmp_path / "bad.wav"
    sf.write(good, np.zeros(800), 8000)
    bad.write_bytes(b"")
    reader = AudioReader(sample_rate=8000, on_error="skip").fit([str(good)])
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        worker = threading.Thread(target=reader.transform, args=([str(good), str(bad)],))
        worker.start()
        worker.join()
    assert [w.filename for w in record] == [sklaudio.io.__file__]


@pytest.mark.parametrize(
    "native, target, channels", [(48000, 22050, 1), (44100, 22050, 2), (16000, 16000, 1)]
)
def test_a_long_file_reads_only_its_centre_and_gives_the_same_clip(
    tmp_path, monkeypatch, native, target, channels
):
    rng = np.random.default_rng(0)
    path = tmp_path / "long.wav"
    sf.write(path, rng.uniform(-0.5, 0.5, (native * 12, channels)), native, subtype="FLOAT")
    import sklaudio.io

    decoded = []
    real_read = sklaudio.io.read_audio

    def spy(*args, **kwargs):
        wave, sr = real_read(*args, **kwargs)
        decoded.append(wave.shape[-1])
        return wave, sr

    monkeypatch.setattr(sklaudio.io, "read_audio", spy)
    for mono in (True, False):
        decoded.clear()
        clip = AudioReader(sample_rate=target, duration=1.0, mono=mono).fit_transform([path])[0]
        assert decoded[0] < 2 * target  # about one second decoded, not twelve
        whole, _ = real_read(path, sample_rate=target, mono=mono)
        np.testing.assert_array_equal(clip, fix_length(whole, target))


def test_compressed_files_are_decoded_whole_for_the_same_clip(tmp_path, monkeypatch):
    import sklaudio.io

    path = tmp_path / "long.flac"  # a cut FLAC fails only where it is cut: decoded whole
    sf.write(path, np.random.default_rng(0).uniform(-0.5, 0.5, 16000 * 12), 16000)
    offsets = []
    real_read = sklaudio.io.read_audio
    monkeypatch.setattr(
        sklaudio.io,
        "read_audio",
        lambda *a, **k: offsets.append(k.get("offset", 0.0)) or real_read(*a, **k),
    )
    AudioReader(sample_rate=16000, duration=1.0).fit_transform([path])
    assert offsets == [0.0]


def test_mono_false_always_gives_a_channel_axis_and_fix_length_checks_its_length():
    from sklaudio.io import AudioReader, fix_length

    waves = np.zeros((3, 800), dtype=np.float32)
    assert AudioReader(sample_rate=8000, mono=False).fit_transform(waves).shape == (3, 1, 800)
    assert AudioReader(sample_rate=8000).fit_transform(waves).shape == (3, 800)
    with pytest.raises(ValueError, match="n_samples must be a positive integer, got -1"):
        fix_length(waves, -1)


def test_arrays_after_a_fit_on_files_are_warned_about_when_their_length_is_fixed(clip_files):
    # 16 kHz audio given as arrays to a reader fitted on files at 8 kHz would be cut to its
    # first half unseen: arrays carry no rate
    reader = AudioReader(sample_rate=8000, duration=1.0).fit(clip_files)
    with pytest.warns(UserWarning, match=r"arrays of 16000 .*=8000 Hz \(2 s\) and centre-cropped"):
        assert reader.transform(np.zeros((2, 16000), np.float32)).shape == (2, 8000)
    with pytest.warns(UserWarning, match="padded with silence to 8000 samples"):
        reader.transform(np.zeros((2, 100), np.float32))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reader.transform(np.zeros((2, 8000), np.float32))  # the length it gives: nothing to say
        # fitted on arrays, the user fixes their length on purpose
        AudioReader(sample_rate=8000, duration=1.0).fit_transform(np.zeros((2, 16000)))
        assert reader.fit(np.zeros((2, 16000))).input_kind_ == "waveforms"  # refit: forgotten
        reader.transform(np.zeros((2, 16000), np.float32))


@pytest.mark.parametrize("subtype", ["GSM610", "G721_32"])
def test_codecs_that_cannot_seek_decode(tmp_path, subtype):
    """GSM 6.10 and G.721 WAVs are valid audio that libsndfile decodes but cannot seek in:
    they were refused as 'more than memory holds' (whole) or 'cannot seek' (a centre window)."""
    if subtype not in sf.available_subtypes("WAV"):
        pytest.skip(f"this libsndfile writes no {subtype}")
    t = np.arange(8000 * 12) / 8000
    path = _write(tmp_path / "a.wav", 0.3 * np.sin(2 * np.pi * 440 * t), 8000, subtype=subtype)
    whole, sr = read_audio(path)
    assert sr == 8000
    reference, _ = sf.read(path, dtype="float32")
    np.testing.assert_array_equal(whole, reference)
    part, _ = read_audio(path, offset=2.0, duration=1.0)
    np.testing.assert_array_equal(part, reference[16000:24000])
    clip = AudioReader(sample_rate=8000, duration=1.0).fit_transform([path])[0]
    np.testing.assert_array_equal(clip, fix_length(reference, 8000))


def test_channels_last_arrays_are_refused_with_the_transpose():
    from sklaudio import NPIDEmbedder, SpectrogramTransformer

    y = np.zeros((2, 4000, 2), np.float32)  # two sf.read stereo clips, stacked
    match = r"\(2, 4000, 2\) would be 4000 channels of 2 samples.*X.transpose\(0, 2, 1\)"
    with pytest.raises(ValueError, match=match):
        AudioReader(sample_rate=8000, duration=0.5).fit_transform(y)
    with pytest.raises(ValueError, match=match):
        SpectrogramTransformer("log_mel", sample_rate=8000).fit_transform(y)
    front = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128)
    with pytest.raises(ValueError, match=match):
        NPIDEmbedder(frontend=front).fit(y)
    assert AudioReader(sample_rate=8000).fit_transform(y.transpose(0, 2, 1)).shape == (2, 4000)


def test_samples_that_would_overflow_a_spectrogram_are_refused(tmp_path):
    """A float WAV with samples of 1e20 is finite, but its spectrogram is inf and a model
    trained on it NaN throughout: refused where it is read, naming the file or the row."""
    from sklaudio import NPIDEmbedder, SpectrogramTransformer

    wave = np.zeros(4000, np.float32)
    wave[100] = 1e20
    path = _write(tmp_path / "loud.wav", wave, 8000, subtype="FLOAT")
    with pytest.raises(ValueError, match=r"loud.wav' holds samples up to 1e\+20"):
        read_audio(path)
    X = np.zeros((3, 4000), np.float32)
    X[2, 7] = 1e20
    with pytest.raises(ValueError, match=r"waveform 2 reaches 1e\+20"):
        SpectrogramTransformer("log_mel", sample_rate=8000).fit_transform(X)
    front = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128)
    with pytest.raises(ValueError, match="waveform 2 reaches"):
        NPIDEmbedder(frontend=front).fit(X)
    X[2, 7] = 3e4  # unscaled int16 values as floats: loud, but they make a finite spectrogram
    assert np.isfinite(SpectrogramTransformer("log_mel", sample_rate=8000).fit_transform(X)).all()


def test_a_loss_that_is_not_finite_stops_training_before_the_weights_take_it():
    import torch

    from sklaudio import NPIDEmbedder

    S = np.random.default_rng(0).normal(size=(12, 1, 16, 24)).astype(np.float32)
    S[3, 0, 0, :2] = np.float32(3e38)  # a spectrogram whose sum overflows inside the network
    emb = NPIDEmbedder(embedding_dim=8, nce_k=4, max_epochs=1, batch_size=6, random_state=0)
    with pytest.raises(ValueError, match=r"scores .* are not finite: .* embeddings hold NaN"):
        emb.fit(S)  # NCE's first batch, which estimates Z, says so itself
    assert all(torch.isfinite(p).all() for p in emb.module_.parameters())
    assert torch.isfinite(emb.memory_bank_.memory).all()
    emb.set_params(loss="softmax")  # Eq. 1 has no Z: the loss check stops it
    with pytest.raises(ValueError, match=r"the training loss is (nan|inf) in epoch 1"):
        emb.fit(S)
    assert len(emb.history_) == 0  # completed epochs only, as after an interruption
    assert all(torch.isfinite(p).all() for p in emb.module_.parameters())
    assert torch.isfinite(emb.memory_bank_.memory).all()


def test_one_1d_waveform_and_paths_where_waveforms_go_get_the_fix():
    from sklaudio import NPIDEmbedder, SpectrogramTransformer

    wave = np.zeros(4000, np.float32)
    st = SpectrogramTransformer("log_mel", sample_rate=8000, n_fft=256, hop_length=128)
    for est in (AudioReader(sample_rate=8000), st, NPIDEmbedder(frontend=st)):
        with pytest.raises(ValueError, match=r"one waveform of 4000 samples .* X\[None\]"):
            est.fit(wave)
    with pytest.raises(ValueError, match="X holds audio file paths, but SpectrogramTransformer"):
        st.fit(["a.wav", "b.wav"])
    assert st.fit_transform(wave[None]).shape[0] == 1


@pytest.mark.parametrize(
    "fmt, ext, subtype",
    [
        ("RF64", "wav", "PCM_16"),
        ("RF64", "wav", "FLOAT"),
        ("W64", "w64", "PCM_24"),
        ("AU", "au", "PCM_16"),
        ("AU", "au", "ULAW"),
    ],
)
def test_rf64_wave64_and_au_cut_short_are_refused(tmp_path, fmt, ext, subtype):
    """Like a WAV: libsndfile reads a cut copy as a shorter clip without a word (RF64 is
    what long field recordings are written as, the files most likely to be cut)."""
    wave = np.random.default_rng(0).normal(size=(16000, 2)).astype(np.float32) * 0.1
    path = _write(tmp_path / f"a.{ext}", wave, 8000, format=fmt, subtype=subtype)
    assert cut_short(path) is None
    assert read_audio(path)[0].shape == (16000,)
    data = open(path, "rb").read()
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(data[: len(data) // 2])
    assert "header declares 16000 frames" in cut_short(cut)
    with pytest.raises(ValueError, match="is truncated"):
        read_audio(cut)


def test_audio_reader_names_one_output_column_per_sample_or_channel(clip_files):
    waves = np.zeros((3, 2, 800), dtype=np.float32)
    mono = AudioReader(sample_rate=8000).fit(waves[:, 0])
    assert mono.get_feature_names_out()[[0, -1]].tolist() == [
        "audioreader_sample0",
        "audioreader_sample799",
    ]
    cropped = AudioReader(sample_rate=8000, duration=0.05).fit(waves)  # mixed down, cropped
    assert len(cropped.get_feature_names_out()) == cropped.transform(waves).shape[1] == 400
    stereo = AudioReader(sample_rate=8000, mono=False).fit(waves)
    assert stereo.get_feature_names_out().tolist() == [
        "audioreader_channel0",
        "audioreader_channel1",
    ]
    assert AudioReader(mono=False).fit(waves[:, 0]).get_feature_names_out().tolist() == [
        "audioreader_channel0"  # a 2-d array gets a channel axis of 1
    ]
    # files: the channels from the first file's header, the samples from duration
    files = AudioReader(sample_rate=8000, mono=False).fit(clip_files)
    assert files.get_feature_names_out().tolist() == [
        "audioreader_channel0",
        "audioreader_channel1",
    ]
    assert files.get_feature_names_out().tolist() == [
        f"audioreader_channel{c}" for c in range(files.transform(clip_files[:1]).shape[1])
    ]
    reader = AudioReader(sample_rate=4000, duration=0.5).fit(clip_files)
    assert len(reader.get_feature_names_out()) == reader.transform(clip_files).shape[1]
    with pytest.raises(ValueError, match="duration=None.* set duration="):
        AudioReader(sample_rate=4000).fit(clip_files).get_feature_names_out()
    with pytest.raises(ValueError, match="input_features should have length equal"):
        mono.get_feature_names_out(["a", "b"])
    assert len(mono.get_feature_names_out([f"s{i}" for i in range(800)])) == 800
    with pytest.raises(NotFittedError):
        AudioReader().get_feature_names_out()


def test_audio_reader_keeps_the_column_names_of_a_dataframe(clip_files):
    pd = pytest.importorskip("pandas")
    table = pd.DataFrame({"path": clip_files})
    reader = AudioReader(sample_rate=4000, duration=0.5).fit(table[["path"]])
    assert (
        reader.feature_names_in_.tolist() == ["path"] and reader.feature_names_in_.dtype == object
    )
    assert reader.transform(table[["path"]]).shape == (3, 2000)
    with pytest.raises(ValueError, match="input_features is not equal to feature_names_in_"):
        reader.get_feature_names_out(["file"])
    assert len(reader.get_feature_names_out(["path"])) == 2000
    with pytest.raises(ValueError, match="feature names should match"):
        reader.transform(table.rename(columns={"path": "file"})[["file"]])
    waves = pd.DataFrame(np.zeros((2, 3)), columns=["a", "b", "c"])
    assert AudioReader().fit(waves).feature_names_in_.tolist() == ["a", "b", "c"]
    assert not hasattr(AudioReader().fit(clip_files), "feature_names_in_")  # a list: none


class _TextSeries:
    """What matters here of a polars Series of str: a dtype that is not numpy's and has no
    ``kind`` (polars' String), and a numpy form of objects."""

    class dtype:  # (polars' dtypes are classes)
        pass

    def __init__(self, values):
        self.values = list(values)

    def __len__(self):
        return len(self.values)

    def __iter__(self):
        return iter(self.values)

    def __array__(self, dtype=None, copy=None):
        return np.array(self.values, dtype=object if dtype is None else dtype)

    def to_list(self):
        return list(self.values)


def test_paths_in_a_series_of_another_library_stay_paths(clip_files):
    expected = AudioReader(sample_rate=4000, duration=0.5).fit_transform(clip_files)
    inputs = [_TextSeries(clip_files)]
    if hasattr(np, "dtypes") and hasattr(np.dtypes, "StringDType"):  # numpy >= 2
        inputs.append(np.array(clip_files, dtype=np.dtypes.StringDType()))  # kind 'T'
    for paths in inputs:
        reader = AudioReader(sample_rate=4000, duration=0.5)
        np.testing.assert_array_equal(reader.fit_transform(paths), expected)
        assert reader.input_kind_ == "files"


def test_a_polars_series_of_paths_stays_paths(clip_files):
    pl = pytest.importorskip("polars")
    reader = AudioReader(sample_rate=4000, duration=0.5)
    np.testing.assert_array_equal(
        reader.fit_transform(pl.Series(clip_files)), reader.fit_transform(clip_files)
    )


def test_audio_reader_records_what_it_changed(tmp_path):
    """changes_ counts the clips resampled, mixed down, cropped and padded (the CLI prints
    these; in Python nothing said that a 16 kHz corpus was read at 22.05 kHz)."""
    rng = np.random.default_rng(0)
    specs = {  # name: (rate, channels, seconds)
        "same.wav": (8000, 1, 1.0),
        "rate.wav": (16000, 1, 1.0),
        "stereo.wav": (8000, 2, 1.0),
        "short.wav": (8000, 1, 0.5),
        "long.wav": (8000, 1, 3.0),
        "long_wav_window.wav": (16000, 2, 30.0),  # decoded around its centre only
        "long.flac": (8000, 1, 2.0),
    }
    paths = []
    for name, (sr, channels, seconds) in specs.items():
        data = rng.normal(scale=0.1, size=(int(sr * seconds), channels))
        _write(tmp_path / name, data, sr)
        paths.append(str(tmp_path / name))
    reader = AudioReader(sample_rate=8000, duration=1.0)
    reader.fit_transform(paths)
    assert reader.changes_ == {"resampled": 2, "mixed_to_mono": 2, "cropped": 3, "padded": 1}
    reader = AudioReader(sample_rate=8000).fit(paths[:1])
    reader.transform(paths[:1])
    assert reader.changes_ == dict.fromkeys(("resampled", "mixed_to_mono", "cropped", "padded"), 0)
    # waveforms: their shapes say what changes; the last files' counts do not linger
    reader.transform(np.zeros((3, 2, 8000), "float32"))
    assert not hasattr(reader, "changes_")


@pytest.mark.parametrize("name", ["AudioReader", "SpectrogramTransformer", "TemporalStatistics"])
def test_none_is_refused_with_its_usual_cause(name):
    """X=None (make_sounds() without directory= has filenames=None) names the cause;
    check_array said 'Expected 2D array, got scalar array instead: array=nan'."""
    from sklaudio import features

    est = AudioReader() if name == "AudioReader" else getattr(features, name)()
    with pytest.raises(ValueError, match=f"X is None, but {name} .*filenames=None"):
        est.fit(None)
    from sklaudio.datasets import make_sounds

    assert make_sounds(n_samples=4, n_classes=2, random_state=0).filenames is None
