import os
import re
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from sklaudio import cli
from sklaudio.cli import main

REPO = Path(__file__).resolve().parents[1]


def test_demo_prints_per_fold_accuracy(capsys):
    assert (
        main(
            [
                "demo",
                "--n-samples",
                "60",
                "--n-classes",
                "3",
                "--n-folds",
                "3",
                "--duration",
                "0.5",
                "--sample-rate",
                "8000",
                "--epochs",
                "3",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    folds = re.findall(r"^\s+(\d)\s+(\d\.\d{3})\s+(\d\.\d{3})$", out, flags=re.M)
    assert [f[0] for f in folds] == ["1", "2", "3"]
    assert all(0.0 <= float(a) <= 1.0 for f in folds for a in f[1:])
    floor, _ = map(float, re.search(r"mean\s+(\d\.\d{3})\s+(\d\.\d{3})", out).groups())
    assert floor > 1 / 3  # well above chance on separable synthetic classes
    assert "NPID pre-training" in out


def test_demo_quiet_prints_nothing(capsys):
    assert (
        main(
            [
                "demo",
                "--quiet",
                "--n-samples",
                "30",
                "--n-classes",
                "3",
                "--n-folds",
                "3",
                "--duration",
                "0.5",
                "--sample-rate",
                "8000",
                "--epochs",
                "1",
            ]
        )
        == 0
    )
    assert capsys.readouterr().out == ""


def test_bad_arguments_exit_non_zero(capsys):
    with pytest.raises(SystemExit) as info:
        main(["demo", "--duration", "-1"])
    assert info.value.code == 2
    assert "must be a positive number" in capsys.readouterr().err
    assert main(["demo", "--n-samples", "2", "--n-classes", "5"]) == 1
    assert "--n-samples 2 is fewer than --n-classes 5" in capsys.readouterr().err
    assert main([]) == 2


def test_console_script_help():
    result = subprocess.run(
        [sys.executable, "-m", "sklaudio.cli", "demo", "--help"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "--n-samples" in result.stdout


def test_readme_opens_with_the_two_commands_ci_runs():
    readme = (REPO / "README.md").read_text().splitlines()
    fence = readme.index("```bash")
    assert readme[fence + 1].endswith("sklaudio demo")
    assert readme[fence + 2].startswith('pip install ".[test]"')
    assert "pytest" in readme[fence + 2]
    assert "grep -m1 '^pip install \".\\[test\\]\"' README.md" in (REPO / ".ci" / "run").read_text()


# -- pretrain / embed / evaluate on a generated corpus ------------------------------------


@pytest.fixture(scope="module")
def labelled_folder(tmp_path_factory):
    """30 generated clips in one folder per class (the 'folder' corpus layout)."""
    import shutil

    from sklaudio.datasets import make_sounds

    base = tmp_path_factory.mktemp("corpus")
    sounds = make_sounds(
        n_samples=30,
        n_classes=3,
        sample_rate=8000,
        duration=0.5,
        random_state=0,
        directory=base / "flat",
    )
    root = base / "labelled"
    for path, label in zip(sounds.filenames, sounds.target):
        folder = root / sounds.target_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        shutil.move(path, folder)
    return root


SMALL = ["--sample-rate", "8000", "--duration", "0.5", "--n-mels", "16", "--device", "cpu"]
SMALL_ESRESNET = ["--sample-rate", "8000", "--duration", "0.5", "--device", "cpu"]  # no mels


@pytest.fixture(scope="module")
def npid_model(labelled_folder, tmp_path_factory):
    out = tmp_path_factory.mktemp("model") / "npid.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "2"]
    assert main([*argv, *SMALL, "--out", str(out), "--quiet"]) == 0
    return out


def test_pretrain_pools_corpora_and_saves_a_loadable_model(labelled_folder, tmp_path, capsys):
    from sklaudio.datasets import make_sounds
    from sklaudio.persist import load

    out = tmp_path / "pooled.pt"
    root = str(labelled_folder)
    # an unlabelled folder of 4 more clips: pre-training takes any layout, however few
    make_sounds(
        n_samples=4,
        n_classes=2,
        sample_rate=8000,
        duration=0.5,
        n_folds=2,
        random_state=1,
        directory=tmp_path / "more",
    )
    (tmp_path / "more" / "nested").mkdir()
    os.replace(next((tmp_path / "more").glob("*.wav")), tmp_path / "more" / "nested" / "x.wav")
    more = str(tmp_path / "more")
    argv = ["pretrain", "--dataset", "folder", "folder", "--root", root, more, "--epochs", "1"]
    assert main([*argv, *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "on 34 pooled clips" in printed and f"saved NPIDEmbedder to {out}" in printed
    model = load(out)
    assert model.memory_bank_.n_samples == 34 and model.frontend.sample_rate == 8000


def test_pretrain_uses_a_file_pooled_twice_once(labelled_folder, tmp_path, capsys):
    from sklaudio.persist import load

    out, root = tmp_path / "twice.pt", str(labelled_folder)
    (tmp_path / "link").symlink_to(labelled_folder)
    argv = ["pretrain", "--dataset", "folder", "folder", "folder", "--epochs", "1", *SMALL]
    argv += ["--root", root, str(tmp_path / "link"), f"{root}/..", "--out", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert (
        f"note: 30 of the 30 files of folder at {tmp_path / 'link'} were already pooled" in printed
    )
    assert "on 30 pooled clips" in printed and load(out).memory_bank_.n_samples == 30
    # a link inside one folder: the same file twice in one corpus
    inner = tmp_path / "inner"
    inner.mkdir()
    wavs = sorted(labelled_folder.rglob("*.wav"))
    for name, wav in zip("abcd", [wavs[0], wavs[0], wavs[1], wavs[2]]):
        (inner / f"{name}.wav").symlink_to(wav)
    argv = ["pretrain", "--dataset", "folder", "--epochs", "1", *SMALL]
    assert main([*argv, "--root", str(inner), "--out", str(out)]) == 0
    assert "note: 1 of the 4 files of folder at" in capsys.readouterr().out
    assert load(out).memory_bank_.n_samples == 3


def _write_esc_copies(root):
    """An ESC-50 copy (2 classes, 5 folds) and an original-layout ESC-10 copy of its dog
    clips as .ogg files (ESC-10 is a subset of ESC-50), plus one clip ESC-50 lacks."""
    import soundfile as sf

    rng = np.random.default_rng(0)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for target, category, esc10 in ((0, "dog", True), (1, "pig", False)):
        for fold in range(1, 6):
            name = f"{fold}-{100 * fold + target}-A-{target}.wav"
            (root / "esc50" / "audio").mkdir(parents=True, exist_ok=True)
            sf.write(root / "esc50" / "audio" / name, 0.1 * rng.normal(size=4000), 8000)
            rows.append(f"{name},{fold},{target},{category},{esc10},{100 * fold + target},A")
            if esc10:
                folder = root / "esc10" / "001 - Dog bark"
                folder.mkdir(parents=True, exist_ok=True)
                x = 0.1 * rng.normal(size=4000)
                sf.write(folder / f"{fold}-{100 * fold + target}-A.ogg", x, 8000)
    (root / "esc50" / "meta").mkdir()
    (root / "esc50" / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    sf.write(root / "esc10" / "001 - Dog bark" / "1-999-B.ogg", rng.normal(size=4000), 8000)


def test_pretrain_pools_esc10_beside_esc50_without_its_clips_twice(tmp_path, capsys):
    from sklaudio.persist import load

    _write_esc_copies(tmp_path)
    out, esc50, esc10 = tmp_path / "m.pt", tmp_path / "esc50", tmp_path / "esc10"
    argv = ["pretrain", "--dataset", "esc50", "esc10", "--root", str(esc50), str(esc10)]
    assert main([*argv, "--epochs", "1", *SMALL, "--out", str(out)]) == 0
    printed, err = capsys.readouterr()
    assert "warning: ESC-10 root" in err and "holds 1 class folders" in err  # a partial copy
    assert (
        f"note: 5 of the 6 files of esc10 at {esc10} are ESC clips already pooled under "
        f"another file name (from esc50 at {esc50}; ESC-10 is a subset of ESC-50, a clip is "
        "known by its fold-source-take name, like '1-100-A'); each clip is used once"
    ) in printed
    assert "esc10: 1 clips from" in printed and "on 11 pooled clips" in printed
    assert load(out).memory_bank_.n_samples == 11
    # the other way round: ESC-50 leaves out the clips ESC-10 brought first
    argv = ["pretrain", "--dataset", "esc10", "esc50", "--root", str(esc10), str(esc50)]
    assert main([*argv, "--epochs", "1", *SMALL, "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"note: 5 of the 10 files of esc50 at {esc50} are ESC clips" in printed
    assert "on 11 pooled clips" in printed


def test_ctrl_c_exits_130_and_writes_nothing(labelled_folder, tmp_path, monkeypatch, capsys):
    import signal

    from sklaudio.embedders import NPIDEmbedder

    real = NPIDEmbedder.on_epoch_end

    def ctrl_c_in_epoch_2(self, net, **kwargs):
        real(self, net, **kwargs)
        if len(self.history_) == 2:
            signal.raise_signal(signal.SIGINT)  # what a terminal's Ctrl-C sends

    monkeypatch.setattr(NPIDEmbedder, "on_epoch_end", ctrl_c_in_epoch_2)
    out = tmp_path / "m.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "5"]
    assert main([*argv, *SMALL, "--checkpoint", str(tmp_path / "ck"), "--out", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted, nothing written; run the same command again to resume" in err
    assert "training stopped after" not in err  # the library's advice is for Python users
    assert not out.exists() and (tmp_path / "ck" / "checkpoint.pt").exists()
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler  # restored


def test_the_console_script_ends_by_sigint_after_ctrl_c(monkeypatch):
    import signal

    def interrupted_main():
        cli._INTERRUPTED.append(True)
        return 130

    kills, handlers = [], []
    monkeypatch.setattr(cli, "main", interrupted_main)
    monkeypatch.setattr(cli.os, "kill", lambda pid, sig: kills.append((pid, sig)))
    monkeypatch.setattr(cli.signal, "signal", lambda sig, handler: handlers.append(handler))
    with pytest.raises(SystemExit) as info:  # (os.kill is a spy here: no signal is sent)
        cli.console_main()
    assert info.value.code == 130
    # a shell loop stops only when its child dies by the signal, not on an exit code
    assert kills == [(os.getpid(), signal.SIGINT)] and handlers == [signal.SIG_DFL]


def test_an_ignored_sigint_stays_ignored():
    import signal

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)  # a background job's state
    try:
        with cli._interrupts_noted():
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, previous)


def test_evaluate_names_the_class_left_after_skipping(
    labelled_folder, npid_model, tmp_path, capsys
):
    for name in ("aaa_broken", "zzz_good"):
        (tmp_path / "c" / name).mkdir(parents=True)
    for i in range(3):
        (tmp_path / "c" / "aaa_broken" / f"{i}.wav").write_bytes(b"RIFF junk")
    for path in sorted(labelled_folder.rglob("*.wav"))[:10]:
        (tmp_path / "c" / "zzz_good" / path.name).write_bytes(path.read_bytes())
    argv = ["evaluate", "--model", str(npid_model), "--dataset", "folder", "--n-folds", "2"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main([*argv, "--root", str(tmp_path / "c"), "--on-error", "skip"])
    assert code == 1 and "holds one class ('zzz_good')" in capsys.readouterr().err


def test_workers_for_a_model_that_does_not_stream_are_not_used(npid_model, capsys):
    from sklaudio.cli import _load_model, build_parser

    argv = ["embed", "--model", str(npid_model), "x.wav", "--out", "e.npy", "--workers", "2"]
    model = _load_model(build_parser().parse_args(argv))
    assert "--workers is not used" in capsys.readouterr().out
    assert getattr(model, "iterator_valid__num_workers", 0) == 0


def test_pretrain_out_is_checked_before_training(labelled_folder, tmp_path, capsys):
    recording = tmp_path / "take 1.wav"
    recording.write_bytes(b"RIFF not a model")
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "1"]
    assert main([*argv, *SMALL, "--out", str(recording)]) == 1
    assert "exists and is not a model file; it would be overwritten" in capsys.readouterr().err
    assert recording.read_bytes() == b"RIFF not a model"
    assert main([*argv, *SMALL, "--out", str(tmp_path)]) == 1
    assert "is a folder; give the model file's name" in capsys.readouterr().err
    assert main([*argv, *SMALL, "--out", f"{tmp_path}/new/sub/"]) == 1  # not made: a folder
    assert f"like {tmp_path}/new/sub/model.pt" in capsys.readouterr().err
    assert not (tmp_path / "new").exists()
    assert main([*argv, *SMALL, "--out", ""]) == 1
    assert "--out must name the model file" in capsys.readouterr().err
    assert main([*argv, *SMALL, "--workers", "2", "--out", str(tmp_path / "m.pt")]) == 1
    assert "--workers sets the processes that decode files with --stream" in capsys.readouterr().err
    out = tmp_path / "m.pt"
    assert main([*argv, *SMALL, "--quiet", "--out", str(out)]) == 0
    assert main([*argv, *SMALL, "--quiet", "--out", str(out)]) == 0  # a model is replaced


def test_pretrain_esresnet_features_and_settings_checked_before_decoding(
    labelled_folder, tmp_path, monkeypatch, capsys
):
    from sklaudio import cli
    from sklaudio.persist import load

    out = tmp_path / "esr.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "1"]
    esresnet = ["--features", "esresnet", "--out", str(out), "--quiet"]
    assert main([*argv, *SMALL_ESRESNET, *esresnet]) == 0
    assert load(out).frontend.get_params()["n_fft"] is None  # the kind's own 2048/561/1654

    def no_decoding(*args, **kwargs):
        raise AssertionError("the corpus was read before the settings were checked")

    monkeypatch.setattr(cli, "_load_corpus", no_decoding)
    short = [*SMALL[:2], "--duration", "0.05", *SMALL[4:]]  # 400 samples < n_fft=1024
    assert main([*argv, *short, "--out", str(out)]) == 1
    assert "fewer than --n-fft 1024" in capsys.readouterr().err  # the option, not n_fft=


def test_pretrain_stft_settings_reach_the_saved_frontend(labelled_folder, tmp_path):
    from sklaudio.persist import load

    out = tmp_path / "stft.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "1"]
    stft = ["--n-fft", "512", "--hop-length", "128"]
    assert main([*argv, *SMALL, *stft, "--out", str(out), "--quiet"]) == 0
    frontend = load(out).frontend
    assert (frontend.n_fft, frontend.hop_length) == (512, 128)
    # the esresnet kind keeps its own hop; its 1654-sample window shrinks to a smaller frame
    argv += ["--features", "esresnet", "--n-fft", "1024"]
    assert main([*argv, *SMALL_ESRESNET, "--out", str(out), "--quiet"]) == 0
    frontend = load(out).frontend
    assert (frontend.n_fft, frontend.win_length, frontend.hop_length) == (1024, 1024, None)


def test_pretrain_afp(labelled_folder, tmp_path):
    from sklaudio.persist import load

    out = tmp_path / "afp.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--method", "afp"]
    assert main([*argv, "--epochs", "2", *SMALL, "--out", str(out), "--quiet"]) == 0
    assert load(out).n_epochs_ == 2
    with warnings.catch_warnings():  # 0.5 s clips hold a sequence of 0.2 s frames: no padding
        warnings.simplefilter("error")
        argv += ["--frame-duration", "0.2"]
        assert main([*argv, "--epochs", "2", *SMALL, "--out", str(out), "--quiet"]) == 0
    assert load(out).frame_duration == 0.2


def test_pretrain_stream_learns_the_same_and_embed_evaluate_read_the_files(
    labelled_folder, npid_model, folder_with_bad_files, tmp_path, capsys
):
    import numpy as np
    from sklearn.pipeline import Pipeline

    from sklaudio.persist import load

    out = tmp_path / "streamed.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "2"]
    assert main([*argv, *SMALL, "--stream", "--workers", "1", "--out", str(out)]) == 0
    assert "30 pooled clips, streamed from the files" in capsys.readouterr().out
    streamed, decoded = load(out), load(npid_model)  # npid_model: the same run, decoded first
    assert isinstance(streamed.frontend, Pipeline)
    np.testing.assert_array_equal(
        streamed.memory_bank_.memory.numpy(), decoded.memory_bank_.memory.numpy()
    )
    embeddings = tmp_path / "emb.npy"
    argv = ["embed", "--model", str(out), str(labelled_folder), "--out", str(embeddings)]
    assert main([*argv, "--chunk-size", "7", "--quiet"]) == 0
    assert np.load(embeddings).shape == (30, 128)
    argv = ["evaluate", "--model", str(out), "--dataset", "folder", "--root", str(labelled_folder)]
    assert main([*argv, "--protocol", "knn", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    assert "knn accuracy" in captured.out  # no floor: it would decode the corpus it streams
    assert "warning: no floor: the model streams its files" in captured.err
    # fine-tuning a streaming model decodes the corpus once, not in every epoch
    from sklaudio.io import AudioReader

    reads = []
    original = AudioReader._read_one_safe

    def counted(self, path, *args):
        reads.append(path)
        return original(self, path, *args)

    AudioReader._read_one_safe = counted
    try:
        assert main([*argv, "--protocol", "finetune", "--epochs", "2", "--no-floor"]) == 0
        printed = capsys.readouterr().out
        assert "decoding the 30 clips once" in printed and "floor" not in printed
        assert len(reads) == 30  # once each, whatever the folds and epochs
        # --on-error skip: the files are checked and held in the same single pass
        reads.clear()
        skip = ["--root", str(folder_with_bad_files), "--on-error", "skip", "--quiet"]
        assert main([*argv[:-2], *skip, "--protocol", "finetune", "--epochs", "1"]) == 0
        assert len(reads) == len(set(reads)) == 31  # 30 clips and the NaN one, left out
    finally:
        AudioReader._read_one_safe = original
    # --workers replaces the worker count the model kept from its pre-training
    from argparse import Namespace

    from sklaudio.cli import _load_model

    assert streamed.iterator_valid__num_workers == 1
    args = Namespace(model=str(out), device="cpu", output=None, workers=0)
    assert _load_model(args).iterator_valid__num_workers == 0
    # a streaming model with --on-error skip: the unreadable files are found and left out
    argv = ["embed", "--model", str(out), str(folder_with_bad_files), "--out", str(embeddings)]
    assert main([*argv, "--on-error", "skip", "--quiet"]) == 0
    assert np.load(embeddings).shape == (30, 128)
    assert "nan.wav" in capsys.readouterr().err
    argv = ["evaluate", "--model", str(out), "--dataset", "folder"]
    argv += ["--root", str(folder_with_bad_files), "--device", "cpu", "--on-error", "skip"]
    assert main(argv) == 0
    assert "folder: 30 clips from" in capsys.readouterr().out


def test_embed_files_and_folders(npid_model, labelled_folder, tmp_path):
    import numpy as np

    one = sorted(labelled_folder.rglob("*.wav"))[0]
    out = tmp_path / "emb"
    argv = ["embed", "--model", str(npid_model), str(labelled_folder), str(one), "--out", str(out)]
    assert main([*argv, "--chunk-size", "7", "--quiet"]) == 0
    Z = np.load(out / "embeddings.npy")
    files = (out / "embeddings.files.txt").read_text().split()
    assert Z.shape == (31, 128) and len(files) == 31 and files[-1] == str(one)
    np.testing.assert_allclose(np.linalg.norm(Z, axis=1), 1, atol=1e-5)
    upper = tmp_path / "EMB.NPY"  # a file, whatever the case of its suffix
    assert main([*argv[:-1], str(upper), "--quiet"]) == 0
    assert upper.is_file() and np.load(upper).shape == (31, 128)
    assert (tmp_path / "EMB.files.txt").is_file()


def test_output_read_out(npid_model, labelled_folder, tmp_path, capsys):
    import numpy as np

    from sklaudio.persist import load, save

    out = tmp_path / "stats.npy"
    argv = ["embed", "--model", str(npid_model), str(labelled_folder), "--out", str(out)]
    assert main([*argv, "--output", "stats", "--quiet"]) == 0
    channels = load(npid_model).module_.backbone.stage_channels
    assert np.load(out).shape == (30, 2 * sum(channels[1:]))  # stages 2-4, mean and std
    argv = ["evaluate", "--model", str(npid_model), "--dataset", "folder"]
    argv += ["--root", str(labelled_folder), "--device", "cpu", "--quiet"]
    assert main([*argv, "--output", "stats"]) == 0
    with_flag = capsys.readouterr().out
    assert re.search(r"knn accuracy: \d\.\d{3}", with_flag)
    # a model saved with the stats read-out is standardised for the kNN as with the flag
    saved = tmp_path / "stats.pt"
    save(load(npid_model).set_params(output="stats"), saved)
    assert main([*argv[:2], str(saved), *argv[3:]]) == 0
    assert capsys.readouterr().out == with_flag
    for bad, reason in [
        (["--output", "code"], "output must be 'embedding', 'features' or 'stats'"),
        (["--output", "stats", "--protocol", "finetune"], "--protocol finetune trains"),
    ]:
        assert main([*argv, *bad]) == 1
        err = capsys.readouterr().err.strip()
        assert err.count("\n") == 0 and reason in err


@pytest.mark.parametrize("protocol", ["knn", "linear", "cluster", "finetune"])
def test_evaluate_protocols(npid_model, labelled_folder, tmp_path, capsys, protocol):
    import importlib.util

    plot = tmp_path / "plot.png"
    with_plot = importlib.util.find_spec("matplotlib") is not None  # an optional extra
    argv = ["evaluate", "--model", str(npid_model), "--dataset", "folder"]
    argv += ["--root", str(labelled_folder), "--protocol", protocol]
    argv += ["--device", "cpu", *(["--plot", str(plot)] if with_plot else [])]
    if protocol == "finetune":
        argv += ["--epochs", "1", "--head-init", "linear_probe", "--head-features", "stats"]
        argv += ["--lr", "3e-4", "--head-lr", "1e-2"]
    results = tmp_path / "results" / "scores.json"  # its folder is made
    assert main([*argv, "--json", str(results)]) == 0
    out = capsys.readouterr().out
    _check_json_results(results, out, protocol)
    assert re.search(rf"{protocol} accuracy: \d\.\d{{3}} ± \d\.\d{{3}} over 5 folds", out)
    assert len(re.findall(r"fold \d: \d\.\d{3}", out)) == 5
    # the hand-crafted floor on the same folds, fold by fold and in all
    assert len(re.findall(r"\(log-mel floor \d\.\d{3}\)", out)) == 5
    floor = "k-means" if protocol == "cluster" else "5-NN"  # a floor scored alike
    assert re.search(rf"floor, log-mel statistics \+ {floor}: \d\.\d{{3}} ± \d\.\d{{3}}", out)
    if protocol == "finetune":  # --head-init reached the classifier of every fold
        assert out.count("head_init='linear_probe': training accuracy") == 5
    if protocol == "knn":  # a folder corpus gets the folds asked for
        assert main([*argv, "--n-folds", "3"]) == 0
        assert "over 3 folds" in capsys.readouterr().out
    floor_line = next(line for line in out.splitlines() if line.startswith("floor, "))
    if protocol == "cluster":  # beside the chance level of clusters of the same sizes
        chance = float(re.search(r"random clusters of the same sizes: (\d\.\d{3})", out)[1])
        assert 0 < chance < 1
        # clusters are not guesses among k classes: no 1/k "chance" beside the real baseline
        assert "chance" not in floor_line and "chance" not in out.replace("random clusters", "")
        # 30 clips, 3 classes, 5 folds: 2 test clips per class and fold, a whole number
        assert "; 2 test clips per class and fold)" in out
        assert main([*argv, "--tsne"]) == 0  # the AFP paper's protocol: k-means on t-SNE maps
        out = capsys.readouterr().out
        assert "; 2 test clips per class and fold)" in out
        assert re.search(r"floor, log-mel statistics \+ t-SNE \+ k-means: \d\.\d{3}", out)
        assert out.count("cluster accuracy: ") == 1
    else:
        assert floor_line.endswith("(what a learned representation has to beat; chance 0.333)")
    assert plot.stat().st_size > 1000 if with_plot else not plot.exists()


def _check_json_results(path, out, protocol):
    """What ``evaluate --json`` wrote agrees with what it printed."""
    import json

    from sklaudio import __version__

    result = json.loads(path.read_text())
    assert result["sklaudio_version"] == __version__ and result["command"] == "evaluate"
    parameters = result["parameters"]
    assert parameters["protocol"] == protocol and parameters["dataset"] == "folder"
    assert parameters["model_class"] == "NPIDEmbedder" and parameters["floor"] is True
    assert ("epochs" in parameters) == (protocol == "finetune")
    if protocol == "finetune":
        assert (parameters["lr"], parameters["head_lr"]) == (3e-4, 1e-2)
    assert result["folds"] == [1, 2, 3, 4, 5] and sum(result["fold_sizes"]) == 30
    assert result["n_clips"] == 30 and result["n_classes"] == 3
    scores = result["scores"]
    assert len(scores) == 5 and all(0 <= score <= 1 for score in scores)
    assert result["mean"] == pytest.approx(np.mean(scores))
    assert result["std"] == pytest.approx(np.std(scores))
    printed = re.search(rf"{protocol} accuracy: (\d\.\d{{3}}) ± (\d\.\d{{3}})", out)
    assert f"{result['mean']:.3f}" == printed[1] and f"{result['std']:.3f}" == printed[2]
    per_fold = [float(x) for x in re.findall(r"fold \d: (\d\.\d{3})", out)]
    assert [round(score, 3) for score in scores] == per_fold
    baseline = result["baseline"]
    if protocol == "cluster":
        assert baseline["kind"] == "random_clusters" and len(baseline["scores"]) == 5
        printed = re.search(r"random clusters of the same sizes: (\d\.\d{3})", out)[1]
        assert f"{baseline['mean']:.3f}" == printed
        assert result["metric"] == "cluster_accuracy"
    else:
        assert baseline == {
            "kind": "chance",
            "description": "1 / number of classes",
            "mean": pytest.approx(1 / 3),
        }
    assert len(result["floor"]["scores"]) == 5


def test_evaluate_json_path_is_checked_before_the_work(npid_model, tmp_path, capsys):
    argv = ["evaluate", "--model", str(tmp_path / "no-model.pt"), "--dataset", "folder"]
    argv += ["--root", str(tmp_path), "--json", str(tmp_path)]  # a folder, not a file
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "--json" in err and "give the name of the file to write" in err
    (tmp_path / "file").write_text("")
    assert main([*argv[:-1], str(tmp_path / "file" / "r.json")]) == 1
    assert "is a file, not a folder" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, reason",
    [
        (["pretrain", "--dataset", "folder", "--root", "a", "b", "--out", "m.pt"], "one --root"),
        (
            ["pretrain", "--dataset", "folder", "--root", "/nonexistent", "--out", "m.pt"],
            "audio folder '/nonexistent' does not exist",
        ),
        (["embed", "--model", "/nonexistent.pt", "x.wav", "--out", "e.npy"], "does not exist"),
        (
            ["evaluate", "--model", "/nonexistent.pt", "--dataset", "esc10", "--root", "."],
            "does not exist",
        ),
    ],
)
def test_subcommand_errors_name_the_reason_first(argv, reason, capsys):
    assert main(argv) == 1
    first, *rest = capsys.readouterr().err.strip().splitlines()
    assert reason in first and first.startswith(f"sklaudio {argv[0]}: error:")
    if "audio folder" in reason:  # the layout the folder should have follows, in full
        assert "ROOT/" in rest[0] and "unlabelled, for pre-training" in rest[-1]
    else:
        assert rest == []


def test_error_raised_in_a_worker_process_names_the_file():
    from sklaudio.cli import _reason

    # how torch re-raises an error of a DataLoader worker in the main process
    exc = ValueError(
        "Caught ValueError in DataLoader worker process 0.\nOriginal Traceback (most recent "
        'call last):\n  File "x.py", line 1, in f\n    raise ValueError(m)\n'
        "ValueError: audio file 'a.wav' contains NaN or infinite samples\nsecond line\n"
    )
    assert _reason(exc) == "audio file 'a.wav' contains NaN or infinite samples\nsecond line"
    assert _reason(ValueError("plain")) == "plain"


@pytest.fixture
def folder_with_bad_files(labelled_folder, tmp_path):
    """The labelled folder plus a NaN clip (a valid header: only decoding finds it) and an
    empty file (the loader's header check finds it)."""
    import shutil

    import numpy as np
    import soundfile as sf

    root = tmp_path / "corpus"
    shutil.copytree(labelled_folder, root)
    first_class = sorted(p for p in root.iterdir())[0]
    wave = np.full(4000, np.nan, dtype=np.float32)
    sf.write(first_class / "nan.wav", wave, 8000, subtype="FLOAT")
    (first_class / "empty.wav").write_bytes(b"")
    return root


def test_on_error_skip_leaves_out_unreadable_files(
    npid_model, folder_with_bad_files, tmp_path, capsys
):
    import numpy as np

    root = str(folder_with_bad_files)
    evaluate = ["evaluate", "--model", str(npid_model), "--dataset", "folder", "--root", root]
    assert main([*evaluate, "--device", "cpu"]) == 1
    assert "empty.wav" in capsys.readouterr().err  # the loader's header check, by default
    assert main([*evaluate, "--device", "cpu", "--on-error", "skip"]) == 0
    captured = capsys.readouterr()
    assert "folder: 30 clips from" in captured.out and "knn accuracy" in captured.out
    assert "sklaudio evaluate: warning:" in captured.err
    assert "empty.wav" in captured.err and "nan.wav" in captured.err

    out = tmp_path / "e.npy"
    embed = ["embed", "--model", str(npid_model), root, "--out", str(out), "--quiet"]
    assert main(embed) == 1
    assert main([*embed, "--on-error", "skip"]) == 0
    files = out.with_name("e.files.txt").read_text().split()
    assert np.load(out).shape == (30, 128) and len(files) == 30
    assert not any(f.endswith(("nan.wav", "empty.wav")) for f in files)

    # a chunk of unreadable files only: left out, the other chunks are kept
    nan = next(folder_with_bad_files.rglob("nan.wav"))
    good = sorted(str(f) for f in folder_with_bad_files.rglob("*.wav"))[:3]
    good = [f for f in good if not f.endswith(("nan.wav", "empty.wav"))][:2]
    embed = ["embed", "--model", str(npid_model), *good, str(nan), "--out", str(out), "--quiet"]
    assert main([*embed, "--chunk-size", "2", "--on-error", "skip"]) == 0
    assert out.with_name("e.files.txt").read_text().split() == good
    only_bad = ["embed", "--model", str(npid_model), str(nan), "--out", str(out), "--quiet"]
    assert main([*only_bad, "--on-error", "skip"]) == 1
    assert "none of the 1 files could be read" in capsys.readouterr().err

    model = tmp_path / "m.pt"
    pretrain = ["pretrain", "--dataset", "folder", "--root", root, "--epochs", "1", *SMALL]
    assert main([*pretrain, "--out", str(model), "--on-error", "skip"]) == 0
    assert "on 30 pooled clips" in capsys.readouterr().out
    # streamed: every file is decoded once first, so the NaN clip never reaches training
    assert main([*pretrain, "--out", str(model), "--stream", "--on-error", "skip"]) == 0
    printed = capsys.readouterr().out
    assert "folder: 30 clips kept" in printed and "on 30 pooled clips, streamed" in printed


def test_skipping_keeps_the_order_of_the_readable_files(folder_with_bad_files, monkeypatch):
    import numpy as np

    from sklaudio.cli import _decodable, _read_skipping
    from sklaudio.io import AudioReader

    wavs = sorted(folder_with_bad_files.rglob("*.wav"))
    good = [f for f in wavs if f.name not in ("nan.wav", "empty.wav")][:3]
    nan = next(f for f in wavs if f.name == "nan.wav")
    files = np.array([str(good[0]), str(nan), str(good[1]), str(nan), str(good[2])], object)
    reader = AudioReader(sample_rate=8000, duration=0.5, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 2 of 5"):
        waves, kept = _read_skipping(reader, files)
    assert kept.tolist() == [0, 2, 4]
    one_by_one = [AudioReader(sample_rate=8000, duration=0.5).transform([f])[0] for f in good]
    np.testing.assert_array_equal(waves, np.stack(one_by_one))
    with pytest.warns(UserWarning):
        assert _read_skipping(reader, files[[1, 3]])[0] is None
    monkeypatch.setattr("sklaudio.cli.CHECK_CHUNK", 2)  # chunks [g, nan] [g, nan] [g]
    with pytest.warns(UserWarning):
        assert _decodable(reader, files).tolist() == [0, 2, 4]


def test_pretrain_says_which_clips_are_cropped_or_padded(labelled_folder, tmp_path, capsys):
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "1"]
    small = [*SMALL]
    small[small.index("--duration") + 1] = "0.25"  # the clips are 0.5 s
    assert main([*argv, *small, "--out", str(tmp_path / "m.pt")]) == 0
    assert "clips are read as 0.25 s (--duration): 30 longer clips centre-cropped" in (
        capsys.readouterr().out
    )


def test_embed_refuses_a_bad_audio_file(npid_model, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    argv = ["embed", "--model", str(npid_model), str(bad), "--out", str(tmp_path / "e.npy")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "bad.wav" in err and "convert the file or remove it" in err
    assert "(or pass --on-error skip to leave out every file that cannot be read)" in err
    assert err.count("\n") == 1  # one line, the reason first


@pytest.mark.parametrize("command", ["demo", "pretrain", "evaluate", "embed"])
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as info:
        main([command, "--help"])
    assert info.value.code == 0
    assert f"usage: sklaudio {command}" in capsys.readouterr().out


def test_readme_quickstart_runs_as_written(tmp_path):
    """The Quickstart's code, copied into a fresh file, runs (later blocks with 1 epoch)."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    runnable = [b for b in blocks if "path/to" not in b]  # needs a real corpus
    assert len(runnable) >= 3
    # the first block exactly as written; the training blocks with 1 epoch to keep CI fast
    script = runnable[0] + "".join(
        re.sub(r"max_epochs=\d+", "max_epochs=1", b) for b in runnable[1:]
    )
    (tmp_path / "quickstart.py").write_text(script)
    result = subprocess.run(
        [sys.executable, "quickstart.py"], cwd=tmp_path, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = re.findall(r"^0\.\d+|^1\.0", result.stdout, flags=re.M)
    assert len(numbers) == 3, result.stdout
    assert (tmp_path / "clf.pt").is_file()


def test_n_folds_is_only_for_folder_corpora(npid_model, tmp_path, capsys):
    argv = ["evaluate", "--model", str(npid_model), "--dataset", "esc10", "--root", str(tmp_path)]
    assert main([*argv, "--n-folds", "3", "--device", "cpu"]) == 1
    assert "--n-folds is for --dataset folder; esc10 has official folds" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["demo", "--n-folds", "1"], "--n-folds: must be at least 2"),
        (["demo", "--epochs", "abc"], "--epochs: must be an integer, got 'abc'"),
        (["demo", "--duration", "x"], "--duration: must be a number, got 'x'"),
    ],
)
def test_bad_option_values_are_named(argv, message, capsys):
    with pytest.raises(SystemExit):
        main(argv)
    assert message in capsys.readouterr().err


def test_version(capsys):
    from sklaudio import __version__

    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.strip() == f"sklaudio {__version__}"


@pytest.mark.parametrize(
    "extra, message",
    [
        (["--backbone", "resnet9000"], "--backbone resnet9000: choose one of"),
        (["--method", "afp", "--features", "esresnet"], "--method afp reads log-mel"),
        (["--device", "gpu"], "'gpu' is 'cuda' in torch"),
        # another method's settings would be ignored
        (["--method", "afp", "--nce-t", "0.1"], "--nce-t is a setting of --method npid, not afp"),
        (["--no-pair-loss"], "--no-pair-loss is a setting of --method afp, not npid"),
        (["--threshold", "0.2"], "--threshold is a setting of --method afp, not npid"),
        (["--frame-duration", "1"], "--frame-duration is a setting of --method afp, not npid"),
        (["--method", "afp", "--backbone", "esresnet18"], "--backbone is a setting of --method n"),
        # ESResNet's spectrograms have no mel bands
        (
            ["--features", "esresnet", "--n-mels", "32"],
            "--n-mels is a setting of --features log_mel, not esresnet",
        ),
        (
            ["--method", "afp", "--nce-k", "8", "--loss", "softmax"],
            "--nce-k, --loss are settings of --method npid, not afp",
        ),
    ],
)
def test_pretrain_settings_fail_before_the_corpus_is_read(
    extra, message, labelled_folder, tmp_path, monkeypatch, capsys
):
    from sklaudio import cli

    def no_decoding(*args, **kwargs):
        raise AssertionError("the corpus was read before the settings were checked")

    monkeypatch.setattr(cli, "_load_corpus", no_decoding)
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder)]
    assert main([*argv, "--out", str(tmp_path / "m.pt"), *extra]) == 1
    assert message in capsys.readouterr().err


def test_pretrain_afp_takes_the_batch_size_and_its_ablation_settings(labelled_folder, tmp_path):
    from sklaudio.persist import load

    out = tmp_path / "afp.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--method", "afp"]
    extra = ["--epochs", "1", "--batch-size", "4", "--frame-duration", "0.2", "--quiet"]
    assert main([*argv, *SMALL, *extra, "--out", str(out)]) == 0
    model = load(out)
    assert model.batch_size == 4
    assert (model.pair_loss, model.threshold, model.margin, model.code_channels) == (
        True,
        1.0,
        1.0,
        128,
    )
    ablation = ["--no-pair-loss", "--threshold", "0.2", "--margin", "2", "--code-channels", "16"]
    assert main([*argv, *SMALL, *extra, *ablation, "--out", str(out)]) == 0
    model = load(out)
    assert (model.pair_loss, model.threshold, model.margin, model.code_channels) == (
        False,
        0.2,
        2.0,
        16,
    )
    assert model.module_.code_channels == 16  # the trained network's, not just the parameter


def test_pretrain_npid_settings_reach_the_model(labelled_folder, tmp_path, capsys):
    from sklaudio.persist import load

    out = tmp_path / "npid.pt"
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), "--epochs", "1"]
    npid = ["--embedding-dim", "16", "--nce-k", "8", "--nce-t", "0.2"]
    assert main([*argv, *SMALL, *npid, "--out", str(out)]) == 0
    model = load(out)
    assert (model.embedding_dim, model.nce_k, model.nce_t, model.loss) == (16, 8, 0.2, "nce")
    assert "nce_k=" not in capsys.readouterr().out  # 8 negatives need no lowering
    assert main([*argv, *SMALL, "--loss", "softmax", "--out", str(out), "--quiet"]) == 0
    assert load(out).loss == "softmax"


def test_embed_refuses_an_output_that_is_neither_npy_nor_a_folder_and_a_classifier(
    npid_model, labelled_folder, tmp_path, capsys
):
    from sklaudio.classifiers import WeightedKNeighborsClassifier
    from sklaudio.persist import save

    argv = ["embed", "--model", str(npid_model), str(labelled_folder)]
    assert main([*argv, "--out", str(tmp_path / "e.txt")]) == 1
    assert "give a file ending in .npy, or a folder" in capsys.readouterr().err
    assert not (tmp_path / "e.txt").exists()
    knn = tmp_path / "knn.pt"
    save(WeightedKNeighborsClassifier(1).fit([[0.0], [1.0]], [0, 1]), knn)
    argv = ["embed", "--model", str(knn), str(labelled_folder), "--out", str(tmp_path / "e.npy")]
    assert main(argv) == 1  # --device is passed to load, which a kNN has none of
    assert "holds a WeightedKNeighborsClassifier, not an embedder" in capsys.readouterr().err


def test_evaluate_checks_the_plot_path_first_and_speaks_in_options(
    npid_model, labelled_folder, folder_with_bad_files, tmp_path, monkeypatch, capsys
):
    from sklaudio import cli

    def no_work(*args, **kwargs):
        raise AssertionError("the corpus was read before the plot path was checked")

    argv = ["evaluate", "--model", str(npid_model), "--dataset", "folder", "--device", "cpu"]
    with monkeypatch.context() as patch:
        patch.setattr(cli, "_load_corpus", no_work)
        plot = str(tmp_path / "p.txt")
        assert main([*argv, "--root", str(labelled_folder), "--plot", plot]) == 1
        assert "matplotlib writes" in capsys.readouterr().err
    # a folder that does not exist yet is made, as for model files
    plot = tmp_path / "new" / "p.png"
    assert main([*argv, "--root", str(labelled_folder), "--plot", str(plot), "--quiet"]) == 0
    assert plot.is_file()
    # the library's "pass on_error='skip'" reads as the command's option
    assert main([*argv, "--root", str(folder_with_bad_files)]) == 1
    err = capsys.readouterr().err
    assert "--on-error skip" in err and "on_error=" not in err


def test_cli_words_drop_where_python_users_find_the_skipped_files():
    message = "skipped 2 of 9 clips (on_error='skip'; all of them are in skipped_):\n  a"
    assert cli._cli_words(message, {"--on-error"}) == "skipped 2 of 9 clips (--on-error skip):\n  a"


def test_cli_words_leave_paths_reprs_and_other_commands_options_alone():
    from sklaudio.cli import _cli_words, build_parser

    argv = ["evaluate", "--model", "m", "--dataset", "folder", "--root", "r"]
    evaluate = build_parser().parse_args(argv)
    options = evaluate.cli_options
    assert _cli_words("file '/d/device=cpu/a.wav' failed", options) == (
        "file '/d/device=cpu/a.wav' failed"
    )
    assert _cli_words("NPIDEmbedder(device='cpu') has device='cuda'", options) == (
        "NPIDEmbedder(device='cpu') has --device cuda"
    )
    assert _cli_words("fewer than n_fft=1024; lower n_fft", options) == (
        "fewer than n_fft=1024; lower n_fft"  # evaluate has no --n-fft
    )


def test_cli_says_what_reading_changes_and_reads_a_multichannel_model(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    from sklaudio import AudioReader, NPIDEmbedder, SpectrogramTransformer
    from sklaudio.persist import save

    rng = np.random.default_rng(0)
    root = tmp_path / "mixed"
    for i, (rate, channels) in enumerate([(8000, 2), (16000, 1), (4000, 4), (8000, 1)] * 3):
        folder = root / ("dog" if i % 2 else "rain")
        folder.mkdir(parents=True, exist_ok=True)
        wave = (rng.normal(size=(int(0.5 * rate), channels)) * 0.1).astype(np.float32)
        sf.write(folder / f"c{i}.wav", wave, rate)
    argv = ["pretrain", "--dataset", "folder", "--root", str(root), "--epochs", "1"]
    assert main([*argv, *SMALL, "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "folder: 6 multichannel files (up to 4 channels) averaged to mono" in out
    assert "folder: 3 files at 4000 Hz upsampled to 8000 Hz; they hold nothing above 2000 Hz" in out
    assert "folder: 3 files at 16000 Hz downsampled to 8000 Hz" in out
    assert "note: 12 clips: NPID uses nce_k=11 negatives" in out
    assert "zero-padded" not in out and "centre-cropped" not in out  # all 0.5 s: no length line

    # a model fitted in Python on stereo waveforms reads stereo files
    stereo = sorted(root.glob("*/c0.wav")) + sorted(root.glob("*/c4.wav"))
    W = AudioReader(sample_rate=8000, duration=0.5, mono=False).fit_transform(stereo * 4)
    frontend = SpectrogramTransformer(
        "log_mel", sample_rate=8000, n_fft=256, hop_length=128, n_mels=16
    )
    model = NPIDEmbedder(
        frontend=frontend,
        loss="softmax",
        embedding_dim=8,
        batch_size=8,
        max_epochs=1,
        random_state=0,
        device="cpu",
    ).fit(W)
    save(model, tmp_path / "stereo.pt")
    embed = ["embed", "--model", str(tmp_path / "stereo.pt"), *map(str, stereo)]
    assert main([*embed, "--out", str(tmp_path / "z.npy"), "--quiet"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "z.npy"), model.transform(W[:2]), atol=1e-5)
    # one fitted on (n, 1, samples) reads any file, mixed to its one channel
    mono = W.mean(axis=1, keepdims=True)
    save(model.set_params(warm_start=False).fit(mono), tmp_path / "one.pt")
    embed[2] = str(tmp_path / "one.pt")
    assert main([*embed, "--out", str(tmp_path / "one.npy"), "--quiet"]) == 0
    np.testing.assert_allclose(np.load(tmp_path / "one.npy"), model.transform(mono[:2]), atol=1e-5)


def test_pretrain_defaults_are_the_librarys_but_for_a_cpu_sized_backbone():
    from sklaudio import AFPPairLossEmbedder, NPIDEmbedder
    from sklaudio.cli import METHOD_FLAGS

    for method, estimator in (("npid", NPIDEmbedder()), ("afp", AFPPairLossEmbedder())):
        library = estimator.get_params()
        for name, default in METHOD_FLAGS[method].items():
            if name != "backbone":
                assert library[name] == default, name


def test_an_unknown_option_is_named_by_its_sub_command(capsys):
    with pytest.raises(SystemExit) as info:
        main(["embed", "--model", "m.pt", "x.wav", "--out", "e.npy", "--bogus"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "sklaudio embed: error: unrecognized arguments: --bogus" in err
    assert err.startswith("usage: sklaudio embed")  # its own usage line


def test_n_jobs_zero_is_refused_when_parsed(capsys):
    with pytest.raises(SystemExit):
        main(["embed", "--model", "m.pt", "x.wav", "--out", "e.npy", "--n-jobs", "0"])
    assert "--n-jobs: must be a number of jobs, or negative as in joblib" in capsys.readouterr().err


def test_evaluate_refuses_finetune_settings_for_other_protocols_and_one_class(
    npid_model, labelled_folder, tmp_path, capsys
):
    argv = ["evaluate", "--model", str(npid_model), "--dataset", "folder"]
    root = ["--root", str(labelled_folder)]
    assert main([*argv, *root, "--protocol", "knn", "--head-init", "linear_probe"]) == 1
    assert "--head-init: for --protocol finetune" in capsys.readouterr().err
    assert main([*argv, *root, "--protocol", "linear", "--head-lr", "0.01"]) == 1
    assert "--head-lr: for --protocol finetune" in capsys.readouterr().err
    one = tmp_path / "one" / "only"
    one.mkdir(parents=True)
    for path in sorted(labelled_folder.rglob("*.wav"))[:6]:
        (one / path.name).write_bytes(path.read_bytes())
    assert main([*argv, "--root", str(tmp_path / "one"), "--n-folds", "2"]) == 1
    assert "holds one class ('only'): accuracy needs two or more" in capsys.readouterr().err


def test_embed_names_that_are_not_utf8_or_hold_a_line_break(npid_model, labelled_folder, tmp_path):
    source = next(labelled_folder.rglob("*.wav"))
    folder = tmp_path / "drive"
    folder.mkdir()
    latin1 = os.path.join(os.fsencode(folder), b"caf\xe9.wav")  # a Latin-1 name
    try:
        with open(latin1, "wb") as f:
            f.write(source.read_bytes())
    except (OSError, UnicodeError):  # macOS's APFS and Windows refuse such names
        pytest.skip("this file system takes only UTF-8 file names")
    out = tmp_path / "e.npy"
    assert main(["embed", "--model", str(npid_model), str(folder), "--out", str(out)]) == 0
    assert np.load(out).shape[0] == 1
    assert (tmp_path / "e.files.txt").read_bytes().endswith(b"caf\xe9.wav\n")  # its bytes
    (folder / "line\nbreak.wav").write_bytes(source.read_bytes())
    with pytest.raises(ValueError, match="holds a line break"):
        cli._embed(
            cli.build_parser().parse_args(
                ["embed", "--model", str(npid_model), str(folder), "--out", str(out)]
            )
        )


def test_demo_refuses_one_class_and_more_folds_than_clips(capsys):
    assert main(["demo", "--n-classes", "1", "--quiet"]) == 1
    assert "--n-classes must be at least 2" in capsys.readouterr().err
    assert main(["demo", "--n-samples", "30", "--n-folds", "40", "--quiet"]) == 1
    assert "--n-folds 40 is more than the 30 clips" in capsys.readouterr().err


def test_embed_hop_embeds_every_clip_of_long_recordings(
    npid_model, labelled_folder, tmp_path, capsys
):
    import numpy as np
    import soundfile as sf

    from sklaudio.io import segment_recordings
    from sklaudio.persist import load

    rng = np.random.default_rng(0)
    long_ = tmp_path / "long.wav"  # 1.3 s at 16 kHz, stereo; the model reads 0.5 s at 8 kHz
    sf.write(long_, 0.1 * rng.normal(size=(20800, 2)).astype(np.float32), 16000)
    short = sorted(labelled_folder.rglob("*.wav"))[0]  # 0.5 s: one clip
    bad = tmp_path / "bad.wav"
    bad.write_text("not audio")
    out = tmp_path / "clips.npy"
    argv = ["embed", "--model", str(npid_model), str(long_), str(short), "--out", str(out)]
    assert main([*argv, "--hop", "0.25"]) == 0
    said = capsys.readouterr().out
    assert "long.wav" not in said or "centre-cropped" not in said  # nothing is cropped
    assert "1 multichannel file" in said and "downsampled to 8000 Hz" in said
    Z, starts = np.load(out), np.load(tmp_path / "clips.starts.npy")
    files = (tmp_path / "clips.files.txt").read_text().splitlines()
    # 1.3 s every 0.25 s: clips at 0, 0.25, 0.5, 0.75 hold whole clips, 1.0 the padded rest
    assert files == [str(long_)] * 5 + [str(short)]
    assert starts.tolist() == [0.0, 0.25, 0.5, 0.75, 1.0, 0.0]
    assert Z.shape == (6, 128)
    seg = segment_recordings([long_], sample_rate=8000, duration=0.5, hop=0.25)
    np.testing.assert_allclose(Z[:5], load(npid_model).transform(seg.data), atol=1e-5)
    assert f"wrote (6, 128) embeddings of the clips of 2 files to {out}" in said

    argv = ["embed", "--model", str(npid_model), str(long_), str(short), "--out", str(out)]
    # files after an option too, as `sklaudio embed --model m.pt a.wav --out x.npy b.wav`
    assert main([*argv, str(bad), "--hop", "0.25", "--on-error", "skip"]) == 0
    assert len((tmp_path / "clips.files.txt").read_text().splitlines()) == 6
    err = capsys.readouterr().err
    assert "bad.wav" in err and "skipped" not in err.split("bad.wav")[0][-3:]
    assert "result's skipped" not in err and "on_error" not in err  # the command's words
    assert main([*argv, "--hop", "0.75"]) == 1
    assert "--hop 0.75: at most the model's clip length, 0.5 s" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main([*argv, "--hop", "0"])
    assert "positive" in capsys.readouterr().err


def test_upsampled_files_are_said_to_lack_half_their_own_rate():
    import numpy as np

    from sklaudio.cli import _nothing_above

    assert _nothing_above(np.array([8000, 11025, 16000])) == (
        "; they hold nothing above half their rate (4000 to 8000 Hz)"
    )
    assert _nothing_above(np.array([4000])) == "; they hold nothing above 2000 Hz"
    assert _nothing_above(np.array([])) == ""


def test_dcase2013_with_one_set_pretrains_and_evaluate_names_the_missing_set(tmp_path, capsys):
    import numpy as np
    import soundfile as sf

    rng = np.random.default_rng(0)
    dev = tmp_path / "dcase" / "scenes_stereo"
    dev.mkdir(parents=True)
    for i in range(12):
        scene = ("bus", "park", "office")[i % 3]
        sf.write(dev / f"{scene}{i:02d}.wav", 0.1 * rng.normal(size=(4000, 2)), 8000)
    root = str(tmp_path / "dcase")
    argv = ["pretrain", "--dataset", "dcase2013", "--root", root, "--epochs", "1", *SMALL]
    assert main([*argv, "--out", str(tmp_path / "m.pt")]) == 0
    out = capsys.readouterr().out
    assert "the evaluation set is not in" in out and "pre-training on the development set" in out
    argv = ["evaluate", "--model", str(tmp_path / "m.pt"), "--dataset", "dcase2013"]
    assert main([*argv, "--root", root, "--device", "cpu"]) == 1
    err = capsys.readouterr().err
    assert "evaluation set is missing" in err and "subset=" not in err


def test_channel_advice_reads_in_the_command_s_terms():
    from sklaudio.cli import _cli_words

    message = "clips have different numbers of channels (1 in 'a.wav', 2 in 'b.wav'); "
    assert _cli_words(message + "pass mono=True or convert the files", {"--device"}) == (
        message + "convert the files to the model's channels"
    )


def test_dcase2013_with_neither_set_says_so_once(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    argv = ["pretrain", "--dataset", "dcase2013", "--root", str(tmp_path / "empty")]
    assert main([*argv, "--epochs", "1", *SMALL, "--out", str(tmp_path / "m.pt")]) == 1
    captured = capsys.readouterr()
    assert "pre-training on" not in captured.out
    assert "neither DCASE 2013 set is in" in captured.err and "subset=" not in captured.err


def test_embed_hop_reads_long_files_a_bounded_amount_at_a_time(tmp_path):
    import numpy as np
    import soundfile as sf

    from sklaudio.cli import _chunks_by_duration

    paths = []
    for i, seconds in enumerate([1, 30, 2, 2, 40, 1]):
        paths.append(str(tmp_path / f"{i}.wav"))
        sf.write(paths[-1], np.zeros(100 * seconds, np.float32), 100)
    assert _chunks_by_duration(paths, 10.0) == [
        paths[:1],
        paths[1:2],
        paths[2:4],
        paths[4:5],
        paths[5:],
    ]
    assert _chunks_by_duration([*paths[:1], str(tmp_path / "missing.wav")], 10.0) == [
        [paths[0], str(tmp_path / "missing.wav")]
    ]


def test_random_clusters_line_names_the_clustering_and_counts_clips_sensibly():
    from sklaudio.cli import _random_clusters_line

    line = _random_clusters_line(0.269, tsne=True, per_class=8.0)
    assert line == (
        "random clusters of the same sizes: 0.269 (t-SNE + k-means on the embeddings should "
        "beat it by far; 8 test clips per class and fold)"
    )
    line = _random_clusters_line(0.3, tsne=False, per_class=40 / 3 / 5 * 2)
    assert "(k-means on the embeddings should beat it" in line and "t-SNE" not in line
    assert "; about 5.3 test clips per class and fold)" in line
    line = _random_clusters_line(0.85, tsne=True, per_class=1.0)
    assert "too few clips per class and fold" in line and "; 1 test clips" in line


def test_pretrain_epochs_default_to_the_method_s_own(
    labelled_folder, tmp_path, monkeypatch, capsys
):
    """Without --epochs, NPID trains its 200 epochs and AFP its paper's 6 MSE + 3 pair
    epochs (the library's defaults, not 200 split 2:1); a given --epochs is split 2:1."""
    import inspect

    from sklaudio.embedders import AFPPairLossEmbedder, NPIDEmbedder

    class Fitted(Exception):
        pass

    def no_training(self, X, y=None, **fit_params):
        raise Fitted(self.get_params())

    monkeypatch.setattr(NPIDEmbedder, "fit", no_training)
    monkeypatch.setattr(AFPPairLossEmbedder, "fit", no_training)
    npid = inspect.signature(NPIDEmbedder).parameters
    afp = inspect.signature(AFPPairLossEmbedder).parameters
    mse, pair = afp["mse_epochs"].default, afp["pair_epochs"].default
    argv = ["pretrain", "--dataset", "folder", "--root", str(labelled_folder), *SMALL]
    argv += ["--out", str(tmp_path / "m.pt")]
    with pytest.raises(Fitted) as fitted:
        main(argv)
    assert fitted.value.args[0]["max_epochs"] == npid["max_epochs"].default
    assert f"30 pooled clips, {npid['max_epochs'].default} epochs" in capsys.readouterr().out
    afp_argv = [*argv, "--method", "afp", "--frame-duration", "0.2"]
    with pytest.raises(Fitted) as fitted:
        main(afp_argv)
    params = fitted.value.args[0]
    assert (params["mse_epochs"], params["pair_epochs"]) == (mse, pair) == (6, 3)
    assert (
        f"{mse + pair} epochs ({mse} of MSE only, then {pair} with the pair loss)"
        in capsys.readouterr().out
    )
    with pytest.raises(Fitted) as fitted:
        main([*afp_argv, "--epochs", "30"])
    params = fitted.value.args[0]
    assert (params["mse_epochs"], params["pair_epochs"]) == (20, 10)
    with pytest.raises(Fitted) as fitted:
        main([*afp_argv, "--no-pair-loss"])
    params = fitted.value.args[0]
    assert (params["mse_epochs"], params["pair_epochs"]) == (mse, pair)
    assert f"{mse + pair} epochs of MSE only" in capsys.readouterr().out
    # --help says the defaults the run uses
    with pytest.raises(SystemExit):
        main(["pretrain", "--help"])
    help_text = " ".join(capsys.readouterr().out.split())
    assert f"{npid['max_epochs'].default} for npid; for afp {mse + pair}" in help_text
    assert f"the paper's {mse} of MSE only, then {pair} of MSE + the pair loss" in help_text


def test_on_error_help_is_each_sub_command_s_own(capsys):
    helps = {}
    for command in ("pretrain", "evaluate", "embed"):
        with pytest.raises(SystemExit):
            main([command, "--help"])
        text = " ".join(capsys.readouterr().out.split())
        helps[command] = text[text.index("--on-error {raise,skip}", text.index("options:")) :]
    assert "left out of training" in helps["pretrain"]
    assert "with --stream every file is decoded once before training" in helps["pretrain"]
    assert "left out of every fold" in helps["evaluate"]
    assert "left out of the embeddings and of the file list beside them" in helps["embed"]
    for command in ("evaluate", "embed"):  # they have no --stream of their own
        assert "with pretrain --stream, every file" not in helps[command]
        assert "training" not in helps[command].split("--quiet")[0]
