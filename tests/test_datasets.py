"""Tests of sklaudio.datasets: loaders on fake trees, the fetcher offline, make_sounds."""

from __future__ import annotations

import csv
import dataclasses
import hashlib
import io
import os
import re
import shutil
import socket
import stat
import tarfile
import time
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from scipy.signal import stft
from sklearn.base import clone
from sklearn.model_selection import PredefinedSplit, cross_val_score
from sklearn.neighbors import KNeighborsClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer, StandardScaler
from sklearn.utils import Bunch

from sklaudio.datasets import (
    _fetch,
    fetch_esc10,
    fetch_esc50,
    fetch_urbansound8k,
    get_data_home,
    load_dcase2013_scenes,
    load_esc10,
    load_esc50,
    load_folder,
    load_urbansound8k,
    make_sounds,
    read_corpus,
)
from sklaudio.datasets._dcase2013 import DCASE2013_SCENES
from sklaudio.datasets._fetch import RemoteArchive
from sklaudio.io import list_audio_files

SAMPLE_RATE = 8000


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    """Make any attempt to reach the network fail at once."""

    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in the sklaudio tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


# the ESC-10 copies these tests build hold a few clips of 3 classes on purpose
pytestmark = pytest.mark.filterwarnings("ignore:ESC-10 root .* holds:UserWarning")


def write_clip(path: Path, channels: int = 1, seconds: float = 0.1, seed: int = 0) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    shape = (int(seconds * SAMPLE_RATE), channels) if channels > 1 else int(seconds * SAMPLE_RATE)
    sf.write(path, 0.1 * rng.standard_normal(shape), SAMPLE_RATE)
    return os.fspath(path.resolve())


def write_csv(path: Path, header: list[str], rows: list[list]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)


# Every builder returns ``expected``: absolute path -> (class name, fold).


def build_esc10_original(root: Path) -> dict[str, tuple[str, int]]:
    expected = {}
    # '010' sorts after '002' by number; ids must follow the numbers
    for number, name in [(1, "Dog bark"), (2, "Rain"), (10, "Fire crackling")]:
        for fold in range(1, 6):
            path = root / f"{number:03d} - {name}" / f"{fold}-{1000 + 10 * number + fold}-A.ogg"
            expected[write_clip(path, seed=fold)] = (name, fold)
    return expected


ESC50_CLASSES = [  # (ESC-50 target, category, esc10)
    (0, "dog", True),
    (1, "rooster", True),
    (2, "pig", False),
    (3, "cow", False),
    (4, "rain", True),
    (5, "frog", False),
]
ESC50_HEADER = ["filename", "fold", "target", "category", "esc10", "src_file", "take"]


def build_esc50(root: Path, only_esc10: bool = False) -> dict[str, tuple[str, int]]:
    expected, rows = {}, []
    for target, category, esc10 in ESC50_CLASSES:
        for fold in range(1, 6):
            source = 100 * fold + target  # a source recording in one fold, as ESC's folds are
            name = f"{fold}-{source}-A-{target}.wav"
            path = write_clip(root / "audio" / name, seed=target)
            rows.append([name, fold, target, category, str(esc10), source, "A"])
            if esc10 or not only_esc10:
                expected[path] = (category, fold)
    rows.reverse()  # the loader must sort, not rely on the csv order
    write_csv(root / "meta" / "esc50.csv", ESC50_HEADER, rows)
    return expected


US8K_CLASSES = ["air_conditioner", "car_horn", "children_playing"]
US8K_HEADER = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]


def build_urbansound8k(root: Path) -> dict[str, tuple[str, int]]:
    expected, rows = {}, []
    for fold in range(10, 0, -1):
        for class_id, name in enumerate(US8K_CLASSES):
            clip = f"{200 + fold}-{class_id}-0-{fold}.wav"
            path = write_clip(root / "audio" / f"fold{fold}" / clip, seed=fold)
            rows.append([clip, 200 + fold, 0.0, 0.1, 1 + fold % 2, fold, class_id, name])
            expected[path] = (name, fold)
    write_csv(root / "metadata" / "UrbanSound8K.csv", US8K_HEADER, rows)
    return expected


def build_dcase2013(
    root: Path, development="scenes_stereo", evaluation="scenes_stereo_testset", prefix=""
) -> dict[str, tuple[str, int]]:
    expected = {}
    for fold, folder in ((1, development), (2, evaluation)):
        if folder is None:
            continue
        for k, label in enumerate(("bus", "park", "tubestation")):
            for i in (1, 2):
                name = (prefix if fold == 2 else "") + f"{label}{i:02d}.wav"
                seed = 100 * fold + 10 * k + i  # every recording its own (copies are warned of)
                expected[write_clip(root / folder / name, channels=2, seed=seed)] = (label, fold)
    return expected


LAYOUTS = {
    "esc10-original": (build_esc10_original, load_esc10),
    "esc10-from-esc50": (lambda root: build_esc50(root, only_esc10=True), load_esc10),
    "esc50": (build_esc50, load_esc50),
    "urbansound8k": (build_urbansound8k, load_urbansound8k),
    "dcase2013": (build_dcase2013, load_dcase2013_scenes),
}


def assert_aligned(bunch, expected: dict[str, tuple[str, int]]) -> None:
    n = len(bunch.filenames)
    assert bunch.filenames.dtype == object and bunch.filenames.ndim == 1
    assert bunch.target.dtype == np.int64 and bunch.folds.dtype == np.int64
    assert bunch.target.shape == bunch.folds.shape == (n,)
    assert list(bunch.filenames) == sorted(bunch.filenames)
    assert set(bunch.filenames) == set(expected)
    for path, target, fold in zip(bunch.filenames, bunch.target, bunch.folds, strict=True):
        assert os.path.isabs(path)
        assert (bunch.target_names[target], fold) == expected[path]
    for extra in ("groups", "salience", "esc10"):
        if extra in bunch:
            assert len(bunch[extra]) == n
    assert isinstance(bunch.DESCR, str) and "License" in bunch.DESCR
    assert "Citation" in bunch.DESCR


# ----------------------------------------------------------------------------- loaders


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_loader_aligns_filenames_target_and_folds(tmp_path, layout):
    build, load = LAYOUTS[layout]
    expected = build(tmp_path)
    bunch = load(tmp_path)
    assert_aligned(bunch, expected)
    assert bunch.skipped == []


def test_load_esc10_original_layout_numbers_classes_by_folder(tmp_path):
    build_esc10_original(tmp_path)
    bunch = load_esc10(tmp_path)
    assert bunch.target_names == ["Dog bark", "Rain", "Fire crackling"]
    assert np.bincount(bunch.folds).tolist() == [0, 3, 3, 3, 3, 3]
    assert bunch.groups[0] == "1011"


def test_load_esc10_from_esc50_renumbers_in_esc50_order(tmp_path):
    build_esc50(tmp_path)
    bunch = load_esc10(tmp_path)
    assert bunch.target_names == ["dog", "rooster", "rain"]
    assert sorted(set(bunch.target.tolist())) == [0, 1, 2]
    assert len(bunch.filenames) == 15


def test_load_esc50_extras(tmp_path):
    build_esc50(tmp_path)
    bunch = load_esc50(tmp_path)
    assert bunch.target_names == [c for _, c, _ in ESC50_CLASSES]
    esc10_names = {c for _, c, e in ESC50_CLASSES if e}
    assert bunch.esc10.dtype == bool
    assert bunch.esc10.tolist() == [bunch.target_names[t] in esc10_names for t in bunch.target]


def test_load_urbansound8k_extras(tmp_path):
    build_urbansound8k(tmp_path)
    bunch = load_urbansound8k(tmp_path)
    assert bunch.target_names == US8K_CLASSES
    assert sorted(set(bunch.folds.tolist())) == list(range(1, 11))
    assert bunch.salience.tolist() == [1 + f % 2 for f in bunch.folds]
    assert bunch.groups.tolist() == [str(200 + f) for f in bunch.folds]


@pytest.mark.parametrize(
    "development, evaluation",
    [
        ("scenes_stereo", "scenes_stereo_testset"),
        ("scenes_stereo/scenes_stereo", "scenes_stereo_testset/scenes_stereo_testset"),
        ("development", "evaluation"),
    ],
)
def test_load_dcase2013_accepted_layouts(tmp_path, development, evaluation):
    expected = build_dcase2013(tmp_path, development, evaluation)
    bunch = load_dcase2013_scenes(tmp_path)
    assert_aligned(bunch, expected)
    assert bunch.target_names == sorted(DCASE2013_SCENES)  # all ten, whichever are here
    assert {bunch.target_names[t] for t in bunch.target} == {"bus", "park", "tubestation"}
    assert np.bincount(bunch.folds).tolist() == [0, 6, 6]


def test_dcase2013_sets_loaded_one_at_a_time_number_the_scenes_alike(tmp_path):
    build_dcase2013(tmp_path)
    for f in (tmp_path / "scenes_stereo_testset").glob("park*"):
        f.unlink()  # the evaluation set lacks a scene the development set has
    dev = load_dcase2013_scenes(tmp_path, subset="development")
    ev = load_dcase2013_scenes(tmp_path, subset="evaluation")
    assert dev.target_names == ev.target_names
    by_name = {dev.target_names[t] for t in dev.target} & {ev.target_names[t] for t in ev.target}
    assert by_name == {"bus", "tubestation"}
    assert set(dev.target[np.char.find(dev.filenames.astype(str), "bus") >= 0]) == {0}
    assert set(ev.target[np.char.find(ev.filenames.astype(str), "bus") >= 0]) == {0}


def test_load_dcase2013_ignores_test_prefix(tmp_path):
    expected = build_dcase2013(tmp_path, prefix="test_")
    assert_aligned(load_dcase2013_scenes(tmp_path), expected)


def test_load_dcase2013_without_evaluation_set(tmp_path):
    build_dcase2013(tmp_path, evaluation=None)
    with pytest.raises(FileNotFoundError, match=r"(?s)evaluation set is missing.*testset"):
        load_dcase2013_scenes(tmp_path)
    with pytest.raises(FileNotFoundError, match="subset='development'"):
        load_dcase2013_scenes(tmp_path)
    bunch = load_dcase2013_scenes(tmp_path, subset="development")
    assert len(bunch.filenames) == 6 and set(bunch.folds.tolist()) == {1}
    with pytest.raises(ValueError, match="subset must be one of"):
        load_dcase2013_scenes(tmp_path, subset="dev")


def test_load_dcase2013_warns_about_a_file_that_is_not_a_scene(tmp_path):
    build_dcase2013(tmp_path)
    write_clip(tmp_path / "scenes_stereo" / "notes01.wav")
    with pytest.warns(UserWarning, match=r"not named after one of the ten.*notes01.wav -> 'notes'"):
        bunch = load_dcase2013_scenes(tmp_path, subset="development")
    assert "notes" in bunch.target_names  # kept, not dropped: the warning says how to fix it
    assert bunch.target_names[:10] == sorted(DCASE2013_SCENES)  # the scenes' ids unmoved
    assert bunch.target_names[10:] == ["notes"]


def test_load_dcase2013_warns_about_a_scene_in_one_set_only(tmp_path):
    build_dcase2013(tmp_path)
    for path in (tmp_path / "scenes_stereo_testset").glob("park*.wav"):
        path.unlink()
    with pytest.warns(UserWarning, match=r"only the development set \(fold 1\) holds \['park'\]"):
        bunch = load_dcase2013_scenes(tmp_path)
    assert np.bincount(bunch.folds).tolist() == [0, 6, 4]
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # one set alone has nothing to compare with
        load_dcase2013_scenes(tmp_path, subset="evaluation")


def test_load_dcase2013_warns_about_a_scene_that_skipping_left_in_one_set(tmp_path):
    build_dcase2013(tmp_path)
    for path in (tmp_path / "scenes_stereo_testset").glob("bus*.wav"):
        path.write_bytes(b"")  # empty: on_error='skip' leaves them out
    with pytest.warns(UserWarning) as record:
        bunch = load_dcase2013_scenes(tmp_path, on_error="skip")
    assert any("only the development set (fold 1) holds ['bus']" in str(w.message) for w in record)
    assert len(bunch.skipped) == 2


def test_urbansound8k_missing_fold_folder_is_one_error_naming_it(tmp_path):
    build_urbansound8k(tmp_path)
    shutil.rmtree(tmp_path / "audio" / "fold3")
    with pytest.raises(FileNotFoundError, match=r"lacks fold3 \(3 clips\).*on_error='skip'"):
        load_urbansound8k(tmp_path)
    with pytest.warns(UserWarning) as record:
        bunch = load_urbansound8k(tmp_path, on_error="skip")
    messages = [str(w.message) for w in record]
    assert any("lacks fold3 (3 clips)" in m for m in messages)
    assert len(bunch.skipped) == 3 and 3 not in bunch.folds
    assert len(bunch.filenames) == 27


def test_skipped_clips_warning_is_capped_and_counts_reasons(tmp_path):
    build_urbansound8k(tmp_path)
    for fold in range(1, 9):
        shutil.rmtree(tmp_path / "audio" / f"fold{fold}")
    with pytest.warns(UserWarning) as record:
        bunch = load_urbansound8k(tmp_path, on_error="skip")
    message = next(str(w.message) for w in record if "skipped 24 of 30" in str(w.message))
    assert message.count("does not exist") == 20 + 1  # 20 listed, then the count
    assert "... and 4 more (in all: 24 does not exist)" in message
    assert len(bunch.skipped) == 24  # every one is kept in the bunch


def test_urbansound8k_salience_outside_1_2_is_an_error(tmp_path):
    build_urbansound8k(tmp_path)
    _set_field(tmp_path / "metadata" / "UrbanSound8K.csv", 1, 4, "3")
    with pytest.raises(ValueError, match=r"line 2: column 'salience' should be 1\.\.2, got 3"):
        load_urbansound8k(tmp_path)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_loader_missing_root_names_path_and_layout(tmp_path, layout):
    _, load = LAYOUTS[layout]
    missing = tmp_path / "nowhere"
    with pytest.raises(FileNotFoundError, match="nowhere") as info:
        load(missing)
    assert "layout" in str(info.value) or "expected" in str(info.value)


@pytest.mark.parametrize(
    "load, index",
    [(load_esc50, "meta/esc50.csv"), (load_urbansound8k, "metadata/UrbanSound8K.csv")],
)
def test_missing_csv_names_it(tmp_path, load, index):
    (tmp_path / "audio").mkdir()
    with pytest.raises(FileNotFoundError, match=Path(index).name) as info:
        load(tmp_path)
    assert "expected this layout" in str(info.value)


def test_esc10_without_either_layout(tmp_path):
    (tmp_path / "random folder").mkdir()
    with pytest.raises(FileNotFoundError, match=r"(?s)NNN - Class name.*esc50\.csv"):
        load_esc10(tmp_path)


def test_esc10_clip_without_fold(tmp_path):
    write_clip(tmp_path / "001 - Dog bark" / "dog.ogg")
    with pytest.raises(ValueError, match=r"dog\.ogg"):
        load_esc10(tmp_path)


def test_csv_missing_columns(tmp_path):
    write_csv(tmp_path / "metadata" / "UrbanSound8K.csv", ["slice_file_name", "fold"], [])
    (tmp_path / "audio").mkdir()
    with pytest.raises(ValueError, match=r"lacks the columns \['fsID'"):
        load_urbansound8k(tmp_path)


def test_csv_row_with_missing_audio_fails_at_load_time(tmp_path):
    expected = build_urbansound8k(tmp_path)
    victim = sorted(expected)[4]
    os.remove(victim)
    with pytest.raises(FileNotFoundError, match=rf"(?s){Path(victim).name}.*audio/fold"):
        load_urbansound8k(tmp_path)
    with pytest.warns(UserWarning, match="does not exist"):
        bunch = load_urbansound8k(tmp_path, on_error="skip")
    assert bunch.skipped == [(victim, "does not exist")]
    del expected[victim]
    assert_aligned(bunch, expected)


@pytest.mark.parametrize("layout", sorted(LAYOUTS))
def test_on_error_raise_and_skip(tmp_path, layout):
    build, load = LAYOUTS[layout]
    expected = build(tmp_path)
    empty, garbage = sorted(expected)[1], sorted(expected)[-2]
    Path(empty).write_bytes(b"")
    Path(garbage).write_bytes(np.random.default_rng(0).bytes(2000))

    with pytest.raises(ValueError, match=rf"(?s){Path(empty).name}' is empty.*on_error='skip'"):
        load(tmp_path)
    with pytest.warns(UserWarning, match="skipped 2 of") as record:
        bunch = load(tmp_path, on_error="skip")
    message = next(str(w.message) for w in record if "skipped 2 of" in str(w.message))
    assert empty in message and garbage in message
    assert [p for p, _ in bunch.skipped] == [empty, garbage]
    assert "empty" in bunch.skipped[0][1] and "header" in bunch.skipped[1][1]
    del expected[empty], expected[garbage]
    assert_aligned(bunch, expected)


def test_read_corpus_drops_clips_that_fail_to_decode_from_every_field(tmp_path):
    from sklaudio.io import AudioReader

    build_urbansound8k(tmp_path)
    bunch = load_urbansound8k(tmp_path)
    victim = 3
    sf.write(bunch.filenames[victim], np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    before = {key: value.copy() for key, value in bunch.items() if isinstance(value, np.ndarray)}
    loaded = load_urbansound8k(tmp_path)  # its header is fine: the loader keeps it
    assert len(loaded.filenames) == len(bunch.filenames)

    with pytest.raises(ValueError, match="NaN"):
        read_corpus(loaded, AudioReader(sample_rate=8000, duration=0.1))
    reader = AudioReader(sample_rate=8000, duration=0.1, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1 of"):
        waves, kept = read_corpus(loaded, reader)
    keep = np.arange(len(bunch.filenames)) != victim
    assert waves.shape == (keep.sum(), 800)
    for key in ("filenames", "target", "folds", "salience", "groups"):
        np.testing.assert_array_equal(kept[key], before[key][keep])
    assert kept.skipped == [(bunch.filenames[victim], "contains NaN or infinite samples")]
    assert kept.target_names == loaded.target_names
    assert len(loaded.filenames) == len(bunch.filenames) and loaded.skipped == []  # untouched


def test_check_corpus_drops_what_read_corpus_drops_a_chunk_at_a_time(tmp_path):
    from sklaudio.datasets import check_corpus
    from sklaudio.io import AudioReader

    build_urbansound8k(tmp_path)
    bunch = load_urbansound8k(tmp_path)
    victims = [1, 4]  # in two chunks of 3; headers fine, NaN samples
    for victim in victims:
        sf.write(bunch.filenames[victim], np.full(800, np.nan, np.float32), 8000, subtype="FLOAT")
    loaded = load_urbansound8k(tmp_path)
    reader = AudioReader(sample_rate=8000, duration=0.1)
    with pytest.warns(UserWarning, match="check_corpus dropped 2 of") as record:
        checked = check_corpus(loaded, reader, chunk_size=3)
    assert len(record) == 1 and reader.on_error == "raise"  # the reader is not modified
    with pytest.warns(UserWarning, match="skipped 2 of"):
        _, read = read_corpus(loaded, clone(reader).set_params(on_error="skip"))
    for key in ("filenames", "target", "folds", "salience", "groups"):
        np.testing.assert_array_equal(checked[key], read[key])
    assert [path for path, _ in checked.skipped] == [loaded.filenames[i] for i in victims]
    with pytest.raises(ValueError, match="chunk_size must be a positive integer"):
        check_corpus(loaded, reader, chunk_size=0)


def test_load_folder_ignores_hidden_files_and_gives_absolute_paths(tmp_path, monkeypatch):
    sounds = make_sounds(8, 2, sample_rate=8000, duration=0.1, directory=tmp_path / "flat")
    for path, label in zip(sounds.filenames, sounds.target):
        folder = tmp_path / "corpus" / sounds.target_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Path(path).rename(folder / Path(path).name)
        (folder / f"._{Path(path).name}").write_bytes(b"\x00\x05\x16\x07 resource fork")
    monkeypatch.chdir(tmp_path)
    bunch = load_folder("corpus", n_folds=2)
    assert len(bunch.filenames) == 8 and bunch.target_names == sorted(sounds.target_names)
    assert all(os.path.isabs(f) and not Path(f).name.startswith(".") for f in bunch.filenames)


def test_on_error_validated(tmp_path):
    build_esc10_original(tmp_path)
    with pytest.raises(ValueError, match="on_error must be one of"):
        load_esc10(tmp_path, on_error="ignore")


def test_all_files_bad(tmp_path):
    write_csv(
        tmp_path / "metadata" / "UrbanSound8K.csv",
        US8K_HEADER,
        [["a.wav", 1, 0, 1, 1, 1, 0, "air_conditioner"]],
    )
    (tmp_path / "audio" / "fold1").mkdir(parents=True)
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="every audio clip was skipped"):
        load_urbansound8k(tmp_path, on_error="skip")


def test_loader_output_feeds_predefined_split(tmp_path):
    from sklaudio.io import AudioReader

    build_esc10_original(tmp_path)
    bunch = load_esc10(tmp_path)
    pipe = make_pipeline(
        AudioReader(sample_rate=SAMPLE_RATE, duration=0.1),
        FunctionTransformer(lambda x: np.c_[x.std(axis=1), np.abs(x).max(axis=1)]),
        KNeighborsClassifier(n_neighbors=1),
    )
    scores = cross_val_score(pipe, bunch.filenames, bunch.target, cv=PredefinedSplit(bunch.folds))
    assert scores.shape == (5,)


def esc10_real_root() -> Path:
    env = os.environ.get("SKLAUDIO_ESC10")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data" / "esc10"


@pytest.mark.skipif(not esc10_real_root().is_dir(), reason="real ESC-10 copy not available")
def test_real_esc10():
    bunch = load_esc10(esc10_real_root())
    assert len(bunch.filenames) == 400
    assert len(bunch.target_names) == 10 and bunch.target_names[0] == "Dog bark"
    assert np.bincount(bunch.target).tolist() == [40] * 10
    assert np.bincount(bunch.folds).tolist() == [0, 80, 80, 80, 80, 80]
    assert all(Path(p).name[0] == str(f) for p, f in zip(bunch.filenames, bunch.folds, strict=True))


# ----------------------------------------------------------------------------- get_data_home


def test_get_data_home(tmp_path, monkeypatch):
    monkeypatch.setenv("SKLAUDIO_DATA", os.fspath(tmp_path / "from_env"))
    assert get_data_home() == os.fspath(tmp_path / "from_env")
    assert (tmp_path / "from_env").is_dir()
    assert get_data_home(tmp_path / "given") == os.fspath(tmp_path / "given")
    monkeypatch.delenv("SKLAUDIO_DATA")
    monkeypatch.setenv("HOME", os.fspath(tmp_path / "home"))
    assert get_data_home() == os.fspath(tmp_path / "home" / "sklaudio_data")


# ----------------------------------------------------------------------------- fetchers


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def zip_tree(source: Path, archive: Path, extra=()) -> Path:
    with zipfile.ZipFile(archive, "w") as zf:
        for path in sorted(source.rglob("*")):
            zf.write(path, path.relative_to(source.parent).as_posix())
        for info, data in extra:
            zf.writestr(info, data)
    return archive


def tar_tree(source: Path, archive: Path, extra=()) -> Path:
    with tarfile.open(archive, "w:gz") as tf:
        tf.add(source, arcname=source.name)
        for info, data in extra:
            tf.addfile(info, io.BytesIO(data) if data else None)
    return archive


def tar_file(name: str) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info, b"x"


def tar_link(name: str, target: str, kind: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, target
    return info, b""


def zip_symlink(name: str, target: str) -> tuple[zipfile.ZipInfo, bytes]:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info, target.encode()


def esc50_archive(tmp_path: Path, kind: str = "zip", extra=()) -> Path:
    """An ESC-50-master archive of the :func:`build_esc50` tree, plus ``extra`` members."""
    source = tmp_path / "upstream" / "ESC-50-master"
    if not source.exists():
        build_esc50(source)
    archive = tmp_path / "upstream" / f"ESC-50-master.{kind}"
    return (zip_tree if kind == "zip" else tar_tree)(source, archive, extra)


def register(monkeypatch, name, archive: Path, extract_dir, index_file, **checksums):
    """Point ``ARCHIVES[name]`` at a local archive, by default with its true SHA-256."""
    record = RemoteArchive(
        filename=f"{extract_dir}.{'zip' if archive.suffix == '.zip' else 'tar.gz'}",
        url=archive.as_uri(),
        extract_dir=extract_dir,
        index_file=index_file,
        **(checksums or {"sha256": sha256_of(archive)}),
    )
    monkeypatch.setitem(_fetch.ARCHIVES, name, record)
    return record


def register_esc50(monkeypatch, archive_path, **checksums):
    return register(
        monkeypatch, "esc50", archive_path, "ESC-50-master", "meta/esc50.csv", **checksums
    )


def cache_entries(data_home: Path, name: str = "esc50") -> list[Path]:
    folder = data_home / name
    return sorted(folder.rglob("*")) if folder.exists() else []


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_fetch_esc50_and_esc10_from_archive(tmp_path, monkeypatch, kind):
    data_home = tmp_path / "cache"
    register_esc50(monkeypatch, esc50_archive(tmp_path, kind))
    esc50 = fetch_esc50(data_home)
    root = data_home / "esc50" / "ESC-50-master"
    expected = {
        os.fspath(root / "audio" / f"{fold}-{100 * fold + target}-A-{target}.wav"): (
            category,
            fold,
        )
        for target, category, _ in ESC50_CLASSES
        for fold in range(1, 6)
    }
    assert_aligned(esc50, expected)
    assert [p.name for p in (data_home / "esc50").iterdir()] == ["ESC-50-master"]

    # the cache is used from now on: a broken URL must not matter
    monkeypatch.setitem(
        _fetch.ARCHIVES, "esc50", RemoteArchive("x.zip", "file:///nonexistent", "ESC-50-master")
    )
    esc10 = fetch_esc10(data_home, download_if_missing=False)
    assert esc10.target_names == ["dog", "rooster", "rain"]
    assert len(esc10.filenames) == 15


def test_fetch_says_what_it_does_with_a_progress_bar(tmp_path, monkeypatch, capsys):
    archive = esc50_archive(tmp_path)
    register_esc50(monkeypatch, archive)
    fetch_esc50(tmp_path / "quiet", verbose=False)
    assert capsys.readouterr().err == ""
    fetch_esc50(tmp_path / "cache")
    err = capsys.readouterr().err
    size = archive.stat().st_size
    assert "sklaudio: downloading file://" in err
    assert "ESC-50-master.zip" in err and "100%" in err  # the bar knows the total
    assert f"{size / 1024:.1f}k" in err.lower() or f"{size / 1024:.0f}k" in err.lower()
    assert "checking the checksum" in err and "unpacking ESC-50-master.zip" in err
    assert f"cached in {tmp_path / 'cache' / 'esc50' / 'ESC-50-master'}" in err
    fetch_esc50(tmp_path / "cache")  # cached: not a word
    assert capsys.readouterr().err == ""


def test_fetch_urbansound8k_tar(tmp_path, monkeypatch):
    source = tmp_path / "upstream" / "UrbanSound8K"
    expected = build_urbansound8k(source)
    archive = tar_tree(source, tmp_path / "upstream" / "UrbanSound8K.tar.gz")
    record = register(
        monkeypatch,
        "urbansound8k",
        archive,
        "UrbanSound8K",
        "metadata/UrbanSound8K.csv",
        md5=hashlib.md5(archive.read_bytes()).hexdigest(),
    )
    assert record.sha256 is None
    bunch = fetch_urbansound8k(tmp_path / "cache")
    root = tmp_path / "cache" / "urbansound8k" / "UrbanSound8K"
    assert_aligned(
        bunch, {os.fspath(root / Path(p).relative_to(source)): v for p, v in expected.items()}
    )


def test_fetch_checksum_mismatch_leaves_nothing(tmp_path, monkeypatch):
    archive = esc50_archive(tmp_path)
    register_esc50(monkeypatch, archive, sha256="0" * 64)
    with pytest.raises(OSError, match=r"SHA256 [0-9a-f]{64}, expected 0{64}") as info:
        fetch_esc50(tmp_path / "cache")
    assert "Nothing was cached" in str(info.value)
    assert cache_entries(tmp_path / "cache") == []

    register_esc50(monkeypatch, archive, md5="f" * 32)
    with pytest.raises(OSError, match="MD5"):
        fetch_esc50(tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []


def test_fetch_accepts_any_pinned_digest(tmp_path, monkeypatch):
    archive = esc50_archive(tmp_path)
    md5 = hashlib.md5(archive.read_bytes()).hexdigest()
    register_esc50(monkeypatch, archive, sha256="0" * 64, md5=md5)
    assert len(fetch_esc50(tmp_path / "cache").filenames) == 30
    register_esc50(monkeypatch, archive, sha256="0" * 64, md5="f" * 32)
    with pytest.raises(OSError, match=r"SHA256 [0-9a-f]{64}, expected 0{64}; MD5"):
        fetch_esc50(tmp_path / "other-cache")
    assert cache_entries(tmp_path / "other-cache") == []


class _BrokenResponse(io.BytesIO):
    """An HTTP body that breaks off (or ends early) after ``limit`` bytes."""

    def __init__(self, data, limit, length, fail):
        super().__init__(data[:limit])
        self.headers = {"Content-Length": str(length)}
        self._fail = fail

    def read(self, size=-1):
        chunk = super().read(size)
        if not chunk and self._fail:
            raise ConnectionResetError("connection reset by peer")
        return chunk


@pytest.mark.parametrize("fail", [True, False], ids=["reset", "short"])
def test_interrupted_download_leaves_nothing_and_retry_works(tmp_path, monkeypatch, fail):
    archive = esc50_archive(tmp_path)
    register_esc50(monkeypatch, archive)
    data = archive.read_bytes()
    real_urlopen = urllib.request.urlopen
    monkeypatch.setattr(
        urllib.request,
        "urlopen",
        lambda *a, **k: _BrokenResponse(data, len(data) // 3, len(data), fail),
    )
    with pytest.raises(OSError, match="broke off" if fail else "stopped at") as info:
        fetch_esc50(tmp_path / "cache")
    assert "nothing was cached" in str(info.value)
    assert cache_entries(tmp_path / "cache") == []  # no .part file, no half folder
    monkeypatch.setattr(urllib.request, "urlopen", real_urlopen)
    assert len(fetch_esc50(tmp_path / "cache").filenames) == 30


@pytest.mark.parametrize("kind", ["zip", "tar.gz"])
def test_fetch_truncated_archive(tmp_path, monkeypatch, kind):
    archive = esc50_archive(tmp_path, kind)
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])
    register_esc50(monkeypatch, archive)  # the checksum matches the truncated bytes
    with pytest.raises(OSError, match="truncated or corrupt"):
        fetch_esc50(tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []


EVIL_MEMBERS = {
    "zip-traversal": ("zip", [(zipfile.ZipInfo("ESC-50-master/../../evil"), b"x")], "'\\.\\.'"),
    "zip-absolute": ("zip", [(zipfile.ZipInfo("/tmp/sklaudio-evil"), b"x")], "absolute"),
    "zip-symlink": ("zip", [zip_symlink("ESC-50-master/link", "../../evil")], "outside"),
    "tar-traversal": ("tar.gz", [tar_file("ESC-50-master/../../evil")], "'\\.\\.'"),
    "tar-absolute": ("tar.gz", [tar_file("/tmp/sklaudio-evil")], "absolute"),
    "tar-symlink": (
        "tar.gz",
        [tar_link("ESC-50-master/link", "../../evil", tarfile.SYMTYPE)],
        "outside",
    ),
    "tar-hardlink": (
        "tar.gz",
        [tar_link("ESC-50-master/link", "../evil", tarfile.LNKTYPE)],
        "outside",
    ),
}


@pytest.mark.parametrize("case", sorted(EVIL_MEMBERS))
def test_fetch_refuses_unsafe_members(tmp_path, monkeypatch, case):
    kind, extra, reason = EVIL_MEMBERS[case]
    archive = esc50_archive(tmp_path, kind, extra)
    register_esc50(monkeypatch, archive)
    with pytest.raises(ValueError, match=rf"(?s)refusing to extract.*{reason}"):
        fetch_esc50(tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []
    assert not any(p.name == "evil" for p in tmp_path.rglob("*"))
    assert not Path("/tmp/sklaudio-evil").exists()


def test_fetch_archive_without_expected_folder(tmp_path, monkeypatch):
    source = tmp_path / "upstream" / "wrong-name"
    build_esc50(source)
    archive = zip_tree(source, tmp_path / "upstream" / "ESC-50-master.zip")
    register_esc50(monkeypatch, archive)
    with pytest.raises(OSError, match="holds no 'ESC-50-master' folder"):
        fetch_esc50(tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []


def test_fetch_download_if_missing_false(tmp_path, monkeypatch):
    register_esc50(monkeypatch, esc50_archive(tmp_path))
    expected = os.fspath(tmp_path / "cache" / "esc50" / "ESC-50-master")
    with pytest.raises(FileNotFoundError, match="download_if_missing=False") as info:
        fetch_esc50(tmp_path / "cache", download_if_missing=False)
    assert expected in str(info.value)
    assert cache_entries(tmp_path / "cache") == []


@pytest.mark.parametrize(
    "url", ["http://example.invalid/ESC-50-master.zip", "file:///nonexistent/ESC-50-master.zip"]
)
def test_fetch_without_network_says_where_to_put_a_copy(tmp_path, monkeypatch, url):
    monkeypatch.setitem(
        _fetch.ARCHIVES,
        "esc50",
        RemoteArchive("ESC-50-master.zip", url, "ESC-50-master", sha256="0" * 64),
    )
    with pytest.raises(OSError, match="could not download") as info:
        fetch_esc50(tmp_path / "cache")
    message = str(info.value)
    assert url in message
    assert os.fspath(tmp_path / "cache" / "esc50" / "ESC-50-master") in message
    assert "meta/esc50.csv" in message
    assert cache_entries(tmp_path / "cache") == []


def test_fetch_unpacks_an_archive_put_in_the_cache_without_downloading(tmp_path, monkeypatch):
    # a machine without internet: the archive copied by hand is verified, unpacked and kept
    archive = esc50_archive(tmp_path)
    record = register_esc50(monkeypatch, archive)
    monkeypatch.setitem(
        _fetch.ARCHIVES, "esc50", dataclasses.replace(record, url="http://example.invalid/x.zip")
    )
    folder = tmp_path / "cache" / "esc50"
    folder.mkdir(parents=True)
    shutil.copy(archive, folder / record.filename)
    bunch = fetch_esc50(tmp_path / "cache", download_if_missing=False)
    assert len(bunch.filenames) == 5 * len(ESC50_CLASSES)
    assert (folder / record.filename).is_file()  # the user's file is not removed
    assert sorted(p.name for p in folder.iterdir()) == ["ESC-50-master", record.filename]
    # a corrupt copy is refused by name, and nothing is cached
    shutil.rmtree(folder / "ESC-50-master")
    (folder / record.filename).write_bytes(b"PK" + bytes(100))
    with pytest.raises(OSError, match=r"'.*ESC-50-master.zip' has SHA256 .*: it is corrupt"):
        fetch_esc50(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == [record.filename]


def test_fetch_removes_what_a_killed_fetch_left_a_day_ago(tmp_path, monkeypatch):
    # SIGKILL mid-download or mid-extraction leaves hidden files no cleanup ran for
    register_esc50(monkeypatch, esc50_archive(tmp_path))
    folder = tmp_path / "cache" / "esc50"
    old_part = folder / ".ESC-50-master.zip.abc123.part"
    old_scratch = folder / ".ESC-50-master.xyz789"
    running = folder / ".ESC-50-master.zip.fresh.part"  # perhaps a fetch still running
    write_clip(old_scratch / "ESC-50-master" / "audio" / "1-1-A-0.wav")
    old_part.write_bytes(b"half")
    running.write_bytes(b"half")
    day_ago = time.time() - 2 * 24 * 3600
    for path in (old_part, old_scratch):
        os.utime(path, (day_ago, day_ago))
    fetch_esc50(tmp_path / "cache")
    assert sorted(p.name for p in folder.iterdir()) == [running.name, "ESC-50-master"]


def test_fetch_refuses_unverifiable_download(tmp_path, monkeypatch):
    archive = esc50_archive(tmp_path)
    record = RemoteArchive("ESC-50-master.zip", archive.as_uri(), "ESC-50-master")
    monkeypatch.setitem(_fetch.ARCHIVES, "esc50", record)
    with pytest.raises(OSError, match=r"(?s)no checksum is pinned.*verify=False"):
        fetch_esc50(tmp_path / "cache")
    assert cache_entries(tmp_path / "cache") == []
    assert len(fetch_esc50(tmp_path / "cache", verify=False).filenames) == 30


def test_registry_pins_real_checksums():
    for name, record in _fetch.ARCHIVES.items():
        assert record.url.startswith("https://"), name
        assert record.sha256 or record.md5, name
        assert record.index_file, name


# ----------------------------------------------------------------------------- make_sounds


def test_make_sounds_shapes_and_names():
    sounds = make_sounds(n_samples=35, n_classes=7, sample_rate=8000, duration=0.25, random_state=0)
    assert sounds.data.shape == (35, 2000) and sounds.data.dtype == np.float32
    assert sounds.target.dtype == np.int64 and sounds.folds.dtype == np.int64
    assert sounds.target_names == [
        "tone",
        "chirp",
        "noise_burst",
        "clicks",
        "harmonic",
        "tone_2",
        "chirp_2",
    ]
    assert sounds.sample_rate == 8000 and sounds.filenames is None
    assert np.abs(sounds.data).max() <= 1.0 and np.isfinite(sounds.data).all()
    assert "make_sounds" in sounds.DESCR


def test_make_sounds_is_deterministic():
    kwargs = dict(n_samples=30, n_classes=3, sample_rate=8000, duration=0.2)
    a, b = make_sounds(**kwargs, random_state=3), make_sounds(**kwargs, random_state=3)
    np.testing.assert_array_equal(a.data, b.data)
    np.testing.assert_array_equal(a.target, b.target)
    np.testing.assert_array_equal(a.folds, b.folds)
    c = make_sounds(**kwargs, random_state=4)
    assert not np.array_equal(a.data, c.data)
    rs = np.random.RandomState(3)
    assert make_sounds(**kwargs, random_state=rs).data.shape == a.data.shape


@pytest.mark.parametrize("n_samples, n_classes, n_folds", [(100, 5, 5), (53, 4, 3), (7, 7, 2)])
def test_make_sounds_balanced_folds(n_samples, n_classes, n_folds):
    sounds = make_sounds(
        n_samples, n_classes, sample_rate=4000, duration=0.1, n_folds=n_folds, random_state=0
    )
    per_class = np.bincount(sounds.target, minlength=n_classes)
    assert per_class.max() - per_class.min() <= 1
    assert set(sounds.folds.tolist()) <= set(range(1, n_folds + 1))
    overall = np.bincount(sounds.folds, minlength=n_folds + 1)[1:]
    assert overall.max() - overall.min() <= 1
    for c in range(n_classes):
        in_class = np.bincount(sounds.folds[sounds.target == c], minlength=n_folds + 1)[1:]
        assert in_class.max() - in_class.min() <= 1
    assert not np.array_equal(sounds.target, np.sort(sounds.target)) or n_classes == 1


@pytest.mark.parametrize("fmt", ["wav", "FLAC"])
def test_make_sounds_writes_files(tmp_path, fmt):
    sounds = make_sounds(
        12,
        3,
        sample_rate=8000,
        duration=0.1,
        random_state=0,
        directory=tmp_path / "out",
        format=fmt,
    )
    assert sounds.filenames.shape == (12,) and sounds.filenames.dtype == object
    for path, clip, target, fold in zip(
        sounds.filenames, sounds.data, sounds.target, sounds.folds, strict=True
    ):
        name = Path(path).name
        assert os.path.isabs(path) and name.endswith(f".{fmt.lower()}")
        assert name.startswith(f"{fold}-") and sounds.target_names[target] in name
        audio, rate = sf.read(path, dtype="float32")
        assert rate == 8000
        np.testing.assert_allclose(audio, clip, atol=1e-4)


def test_make_sounds_refuses_a_folder_that_holds_other_clips(tmp_path):
    (tmp_path / "README.txt").write_text("not audio")
    first = make_sounds(4, 2, sample_rate=8000, duration=0.1, random_state=0, directory=tmp_path)
    again = make_sounds(4, 2, sample_rate=8000, duration=0.1, random_state=0, directory=tmp_path)
    assert again.filenames.tolist() == first.filenames.tolist()
    with pytest.raises(FileExistsError, match=r"holds 4 other audio files \([^)]*\.wav, \.\.\.\)"):
        make_sounds(4, 2, sample_rate=8000, duration=0.1, directory=tmp_path, format="flac")
    assert len(list(tmp_path.iterdir())) == 5


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(n_samples=3, n_classes=5), "smaller than n_classes"),
        (dict(n_classes=0), "n_classes must be an integer >= 1"),
        (dict(n_samples=2.5), "n_samples must be an integer"),
        (dict(sample_rate=0), "sample_rate must be an integer >= 1"),
        (dict(duration=0), "duration must be a positive"),
        (dict(duration=1e-6), "fewer than 2 samples"),
        (dict(n_folds=0), "n_folds must be an integer >= 1"),
        (dict(noise=-1), "noise must be a non-negative"),
        (dict(format="mp4"), "format must be one of"),
    ],
)
def test_make_sounds_validates(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_sounds(**kwargs)


def log_band_statistics(data: np.ndarray, sample_rate: int, n_bands: int = 32) -> np.ndarray:
    """Mean and std over time of log energies in log-spaced bands (a crude log-mel)."""
    freqs, _, spec = stft(data, fs=sample_rate, nperseg=256)
    power = np.abs(spec) ** 2
    edges = np.geomspace(50, sample_rate / 2, n_bands + 1)
    band = np.clip(np.searchsorted(edges, freqs) - 1, 0, n_bands - 1)
    energies = np.stack([power[:, band == b].sum(axis=1) for b in range(n_bands)], axis=1)
    log_e = np.log(energies + 1e-8)
    return np.concatenate([log_e.mean(axis=-1), log_e.std(axis=-1)], axis=1)


def test_make_sounds_classes_are_separable_but_not_trivially():
    sounds = make_sounds(200, 5, sample_rate=8000, duration=0.5, random_state=0)
    features = log_band_statistics(sounds.data, sounds.sample_rate)
    knn = make_pipeline(StandardScaler(), KNeighborsClassifier(n_neighbors=5))
    accuracy = cross_val_score(knn, features, sounds.target, cv=PredefinedSplit(sounds.folds))
    assert 0.5 < accuracy.mean() < 1.0  # chance is 0.2


def test_make_sounds_is_fast():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        start = time.perf_counter()
        make_sounds(400, 5, sample_rate=22050, duration=1.0, random_state=0)
    # about 0.4 s here; a loop over samples would take minutes
    assert time.perf_counter() - start < 5.0


# --- odd metadata and folders (a user trial's findings) ---------------------------------


def _esc50_lines(root: Path) -> list[str]:
    return (root / "meta" / "esc50.csv").read_text().splitlines()


def _write_lines(path: Path, lines: list[str]) -> None:
    path.write_text("\n".join(lines) + "\n")


def _set_field(path: Path, line: int, column: int, value: str) -> None:
    """Overwrite one field of a csv written by ``write_csv`` (``line`` 0 is the header)."""
    lines = path.read_text().splitlines()
    fields = lines[line].split(",")
    fields[column] = value
    lines[line] = ",".join(fields)
    _write_lines(path, lines)


def test_a_clip_listed_twice_is_refused_with_its_lines(tmp_path):
    build_esc50(tmp_path)
    lines = _esc50_lines(tmp_path)
    row = next(i for i, line in enumerate(lines) if ",True," in line)  # an ESC-10 clip
    name, fold, *rest = lines[row].split(",")
    other_fold = 1 + int(fold) % 5
    _write_lines(
        tmp_path / "meta" / "esc50.csv", [*lines, ",".join([name, str(other_fold), *rest])]
    )
    with pytest.raises(
        ValueError, match=rf"lists the clip .*{name}' on lines \[{row + 1}, {len(lines) + 1}\]"
    ):
        load_esc50(tmp_path)
    with pytest.raises(ValueError, match="listed more than once"):
        load_esc10(tmp_path)


def test_a_row_with_a_stray_comma_or_too_few_fields_names_its_line(tmp_path):
    build_esc50(tmp_path)
    lines = _esc50_lines(tmp_path)
    good = lines[3]
    fields = good.split(",")
    fields[3] += ", heavy"  # an unquoted comma inside the category
    _write_lines(tmp_path / "meta" / "esc50.csv", [*lines[:3], ",".join(fields), *lines[4:]])
    with pytest.raises(ValueError, match=r"line 4: 8 fields where the header has 7; quote"):
        load_esc50(tmp_path)
    short = ",".join(good.split(",")[:4])
    # blank lines before the bad row: the message gives the physical line
    _write_lines(tmp_path / "meta" / "esc50.csv", [*lines[:3], "", "", short, *lines[4:]])
    with pytest.raises(ValueError, match=r"line 6: 4 fields where the header has 7; no value"):
        load_esc10(tmp_path)


def _urbansound8k_csv(root: Path) -> tuple[Path, list[str]]:
    """A stand-in UrbanSound8K under ``root``: its metadata file and lines."""
    build_urbansound8k(root)
    path = root / "metadata" / "UrbanSound8K.csv"
    return path, path.read_text().splitlines()


def test_urbansound8k_clip_listed_in_two_folds_is_refused(tmp_path):
    path, lines = _urbansound8k_csv(tmp_path)
    name, *fields = lines[1].split(",")
    fields[4] = str(1 + int(fields[4]) % 10)  # the same clip in the next fold
    _write_lines(path, [*lines, ",".join([name, *fields])])
    with pytest.raises(ValueError, match=rf"lists the clip '{name}' on lines \[2, 32\]"):
        load_urbansound8k(tmp_path)


def test_urbansound8k_row_without_class_is_an_error_not_a_none_name(tmp_path):
    path, lines = _urbansound8k_csv(tmp_path)
    lines[2] = lines[2].rsplit(",", 1)[0]
    _write_lines(path, lines)
    with pytest.raises(ValueError, match=r"line 3: 7 fields .* no value for \['class'\]"):
        load_urbansound8k(tmp_path)


@pytest.mark.parametrize("fold", ["0", "6", "-1"])
def test_esc_fold_outside_1_to_5_is_an_error(tmp_path, fold):
    build_esc50(tmp_path)
    _set_field(tmp_path / "meta" / "esc50.csv", 2, 1, fold)
    with pytest.raises(ValueError, match=rf"line 3: column 'fold' should be 1\.\.5, got {fold}"):
        load_esc50(tmp_path)


def test_urbansound8k_fold_outside_1_to_10_is_an_error(tmp_path):
    build_urbansound8k(tmp_path)
    _set_field(tmp_path / "metadata" / "UrbanSound8K.csv", 1, 5, "-1")
    with pytest.raises(ValueError, match=r"line 2: column 'fold' should be 1\.\.10, got -1"):
        load_urbansound8k(tmp_path)


def test_esc10_truth_values_and_class_names(tmp_path):
    build_esc50(tmp_path)
    lines = _esc50_lines(tmp_path)
    lines[1:] = [line.replace(",True,", ",1,").replace(",False,", ",no,") for line in lines[1:]]
    _write_lines(tmp_path / "meta" / "esc50.csv", lines)
    assert sorted(load_esc10(tmp_path).target_names) == ["dog", "rain", "rooster"]
    lines[1] = lines[1].replace(",1,", ",maybe,").replace(",no,", ",maybe,")
    _write_lines(tmp_path / "meta" / "esc50.csv", lines)
    with pytest.raises(ValueError, match="line 2: column 'esc10' should be True or False"):
        load_esc50(tmp_path)


def test_one_name_for_two_class_ids_is_an_error(tmp_path):
    build_esc50(tmp_path)
    lines = [line.replace(",rooster,", ",dog,") for line in _esc50_lines(tmp_path)]
    _write_lines(tmp_path / "meta" / "esc50.csv", lines)
    with pytest.raises(
        ValueError, match=r"esc50\.csv' gives the name 'dog' to the class ids \[0, 1\]"
    ):
        load_esc50(tmp_path)


def test_a_csv_that_is_not_utf8_names_the_file(tmp_path):
    build_esc50(tmp_path)
    path = tmp_path / "meta" / "esc50.csv"
    line = 1 + next(i for i, row in enumerate(_esc50_lines(tmp_path)) if "rooster" in row)
    path.write_bytes(path.read_bytes().replace(b"rooster", "röoster".encode("latin-1")))
    with pytest.raises(
        ValueError, match=rf"esc50\.csv' is not UTF-8 text \(line {line}: byte 0xf6\)"
    ):
        load_esc50(tmp_path)


def test_a_partial_esc10_copy_is_warned_about(tmp_path):
    # a class folder left out (or clips not fetched) would be a smaller task under ESC-10's name
    build_esc10_original(tmp_path)
    with pytest.warns(UserWarning, match=r"holds 3 class folders and 15 clips; ESC-10 has 10"):
        load_esc10(tmp_path)


def test_esc10_folders_that_do_not_fit_the_layout_are_errors(tmp_path):
    build_esc10_original(tmp_path)
    (tmp_path / "004 -  Baby cry").mkdir()  # two spaces: still a class folder
    write_clip(tmp_path / "004 -  Baby cry" / "1-9-A.ogg")
    (tmp_path / "__MACOSX").mkdir()  # left by a zip made on a Mac: ignored
    assert "Baby cry" in load_esc10(tmp_path).target_names
    (tmp_path / "meta").mkdir()  # a folder without audio: ignored
    assert "Baby cry" in load_esc10(tmp_path).target_names
    write_clip(tmp_path / "002-Rain" / "2-5-A.ogg")  # no spaces around the dash
    with pytest.raises(ValueError, match=r"folders \['002-Rain'\] hold audio but are not named"):
        load_esc10(tmp_path)
    shutil.rmtree(tmp_path / "002-Rain")
    (tmp_path / "011 \u2014 Empty").mkdir()  # an em dash: a class folder, but empty
    with pytest.raises(ValueError, match=r"Empty' holds no audio clip"):
        load_esc10(tmp_path)
    (tmp_path / "011 \u2014 Empty").rmdir()
    write_clip(tmp_path / "1-77-A.ogg")
    with pytest.raises(ValueError, match=r"audio files \['1-77-A.ogg'\] lie outside"):
        load_esc10(tmp_path)
    os.remove(tmp_path / "1-77-A.ogg")
    write_clip(tmp_path / "001 - Dog bark" / "9-1-A.ogg")
    with pytest.raises(ValueError, match=r"9-1-A\.ogg.*fold, 1\.\.5"):
        load_esc10(tmp_path)


def test_truncated_wav_is_caught_by_the_loader_and_the_reader(tmp_path):
    from sklaudio.io import AudioReader, read_audio

    expected = build_urbansound8k(tmp_path)
    victim = sorted(expected)[2]
    write_clip(Path(victim), seconds=1.0)
    data = Path(victim).read_bytes()
    Path(victim).write_bytes(data[: len(data) // 2])  # an interrupted copy
    assert sf.info(victim).frames < 4000  # what libsndfile alone would read, silently
    with pytest.raises(ValueError, match=r"is truncated: its header declares 8000 frames"):
        load_urbansound8k(tmp_path)
    with pytest.raises(ValueError, match=r"truncated: its header declares 8000 frames"):
        read_audio(victim)
    with pytest.warns(UserWarning, match="truncated"):
        waves = AudioReader(sample_rate=SAMPLE_RATE, on_error="skip").fit_transform(
            sorted(expected)[:4]
        )
    assert len(waves) == 3


def _patched(data: bytes, offset: int, value: int, order: str = "little") -> bytes:
    return data[:offset] + value.to_bytes(4, order) + data[offset + 4 :]


@pytest.mark.parametrize(
    "fmt, subtype",
    [
        ("WAV", "PCM_U8"),
        ("WAV", "PCM_24"),
        ("WAV", "FLOAT"),
        ("WAVEX", "PCM_16"),
        ("AIFF", "PCM_16"),
    ],
)
def test_cut_short_finds_cut_files_and_spares_odd_valid_ones(tmp_path, fmt, subtype):
    from sklaudio.io import cut_short

    path = tmp_path / "clip.audio"
    sf.write(path, np.zeros((8001, 2)), 8000, format=fmt, subtype=subtype)
    data = path.read_bytes()
    assert cut_short(path) is None
    path.write_bytes(data[: len(data) // 2])
    assert "declares 8001 frames" in cut_short(path)
    path.write_bytes(data[:-8])  # a few bytes short: players accept it, so do we
    assert cut_short(path) is None
    if fmt.startswith("WAV"):
        at = data.index(b"data") + 4
        for unset in (0, 0xFFFFFFFF, 0x7FFFF000):  # streaming writers, sox into a pipe
            path.write_bytes(_patched(data, at, unset))
            assert cut_short(path) is None, hex(unset)
    sf.write(tmp_path / "clip.flac", np.zeros(1001), 8000)
    assert cut_short(tmp_path / "clip.flac") is None  # libsndfile's own checks catch FLAC
    (tmp_path / "damaged.wav").write_bytes(data[:30])  # cut inside the fmt chunk
    assert cut_short(tmp_path / "damaged.wav") is None


def test_load_folder_follows_linked_class_folders(tmp_path):
    root = tmp_path / "root"
    write_clip(root / "dog" / "a.wav")
    write_clip(root / "dog" / "b.wav")
    write_clip(tmp_path / "elsewhere" / "c.wav")
    write_clip(tmp_path / "elsewhere" / "d.wav")
    try:
        (root / "rain").symlink_to(tmp_path / "elsewhere", target_is_directory=True)
        (root / "dog" / "loop").symlink_to(root, target_is_directory=True)  # a cycle
    except OSError:
        pytest.skip("symbolic links are not available here")
    bunch = load_folder(root, n_folds=2)
    assert bunch.target_names == ["dog", "rain"]
    assert [Path(f).name for f in bunch.filenames] == ["a.wav", "b.wav", "c.wav", "d.wav"]
    (root / "cat").symlink_to(root / "dog", target_is_directory=True)  # sorts first
    assert len(list_audio_files(root)) == 6  # both names are listed, the loop is not
    with pytest.raises(ValueError, match="'cat' and 'dog' .* are the same folder"):
        load_folder(root, n_folds=2)


def test_a_link_to_a_missing_file_is_named_not_dropped(tmp_path):
    # what a git-annex or DataLad file that was never fetched looks like
    root = tmp_path / "root"
    for name in ("a.wav", "b.wav"):
        write_clip(root / "dog" / name)
        write_clip(root / "rain" / name)
    try:
        (root / "rain" / "c.wav").symlink_to(tmp_path / "not-fetched.wav")
    except OSError:
        pytest.skip("symbolic links are not available here")
    assert len(list_audio_files(root)) == 5
    with pytest.raises(FileNotFoundError, match=r"c\.wav' does not exist"):
        load_folder(root, n_folds=2)
    with pytest.warns(UserWarning, match="c.wav"):
        bunch = load_folder(root, n_folds=2, on_error="skip")
    assert [Path(p).name for p, _ in bunch.skipped] == ["c.wav"] and len(bunch.filenames) == 4


def test_load_folder_warns_of_two_names_for_one_file_and_names_empty_class_folders(tmp_path):
    root = tmp_path / "root"
    for name in ("a.wav", "b.wav"):
        write_clip(root / "dog" / name)
        write_clip(root / "rain" / name.replace(".wav", "2.wav"))
    (root / "cat").mkdir()
    (root / "notes").mkdir()
    (root / "notes" / "readme.txt").write_text("not audio")
    empty = r"2 sub-folder\(s\) .* hold no audio file .*\['cat', 'notes'\]"
    with pytest.warns(UserWarning, match=empty):
        bunch = load_folder(root, n_folds=2)
    assert bunch.target_names == ["dog", "rain"]
    shutil.rmtree(root / "cat")
    shutil.rmtree(root / "notes")
    try:
        (root / "rain" / "link.wav").symlink_to(root / "dog" / "a.wav")
    except OSError:
        pytest.skip("symbolic links are not available here")
    os.link(root / "dog" / "b.wav", root / "rain" / "hard.wav")
    twins = r"2 file\(s\) .* are links .*'dog/b.wav' and 'rain/hard.wav'"
    with pytest.warns(UserWarning, match=twins):
        bunch = load_folder(root, n_folds=2)
    assert len(bunch.filenames) == 6  # said, not dropped: git-annex and DVC link on purpose


def test_load_folder_checks_n_folds(tmp_path):
    for name in ("dog", "rain"):
        for i in range(3):
            write_clip(tmp_path / name / f"{i}.wav", seed=i)
    with pytest.raises(ValueError, match="n_folds=20 is more than the 6 clips"):
        load_folder(tmp_path, n_folds=20)
    with pytest.raises(ValueError, match="n_folds must be an integer >= 2"):
        load_folder(tmp_path, n_folds=1)
    with pytest.warns(UserWarning, match=r"2 class\(es\) .* fewer than n_folds=4 clips"):
        bunch = load_folder(tmp_path, n_folds=4)
    assert sorted(set(bunch.folds.tolist())) == [1, 2, 3, 4]


def test_read_corpus_keeps_list_fields_aligned(tmp_path):
    from sklaudio.io import AudioReader

    paths = [write_clip(tmp_path / f"{i}.wav", seed=i) for i in range(3)]
    sf.write(paths[1], np.full(800, np.nan, np.float32), SAMPLE_RATE, subtype="FLOAT")
    ragged = [np.zeros(1), np.zeros(2), np.zeros(0)]
    meta = {"a": 1, "b": 2, "c": 3}  # a mapping with as many keys as clips: not per clip
    bunch = Bunch(
        filenames=paths, target=(0, 1, 2), target_names=["x", "y", "z"], onsets=ragged, meta=meta
    )
    reader = AudioReader(sample_rate=SAMPLE_RATE, on_error="skip")
    with pytest.warns(UserWarning, match="skipped 1"):
        waves, kept = read_corpus(bunch, reader)
    assert len(waves) == 2 and kept.filenames == [paths[0], paths[2]] and kept.target == (0, 2)
    assert [len(a) for a in kept.onsets] == [1, 0] and kept.meta == meta
    assert kept.target_names == ["x", "y", "z"]
    with pytest.warns(UserWarning), pytest.raises(ValueError, match="bunch.target has 2 entries"):
        read_corpus(Bunch(filenames=paths, target=[0, 1]), reader)


def test_fetch_checks_on_error_before_downloading(tmp_path, monkeypatch):
    from sklaudio.datasets import _fetch

    monkeypatch.setattr(_fetch, "_fetch_archive", lambda *a, **k: pytest.fail("downloaded"))
    for fetch in (fetch_esc50, fetch_esc10, fetch_urbansound8k):
        with pytest.raises(ValueError, match="on_error must be one of"):
            fetch(tmp_path, on_error="bogus")
    (tmp_path / "file").write_text("")
    with pytest.raises(NotADirectoryError, match="is a file, not a folder"):
        get_data_home(tmp_path / "file")


def test_make_sounds_writes_only_formats_the_loaders_list(tmp_path):
    from sklaudio.io import list_audio_files

    sounds = make_sounds(
        4, 2, sample_rate=8000, duration=0.1, directory=tmp_path / "au", format="au"
    )
    assert sorted(list_audio_files(tmp_path / "au")) == sorted(sounds.filenames)
    with pytest.raises(ValueError, match=r"format='mat4' writes \.mat4 files.*use one of"):
        make_sounds(4, 2, sample_rate=8000, duration=0.1, directory=tmp_path / "m", format="mat4")


def test_load_folder_names_the_loader_of_a_corpus_with_official_folds(tmp_path):
    build_esc10_original(tmp_path / "esc10")
    with pytest.warns(UserWarning, match="looks like ESC-10 / ESC-50.*load_esc10"):
        load_folder(tmp_path / "esc10", n_folds=2)
    build_urbansound8k(tmp_path / "us8k")
    with pytest.warns(UserWarning, match="UrbanSound8K's audio folder: its sub-folders are folds"):
        load_folder(tmp_path / "us8k" / "audio", n_folds=2)
    sounds = make_sounds(8, 2, sample_rate=8000, duration=0.1, directory=tmp_path / "flat")
    for path, label in zip(sounds.filenames, sounds.target):
        folder = tmp_path / "plain" / sounds.target_names[label]
        folder.mkdir(parents=True, exist_ok=True)
        Path(path).rename(folder / Path(path).name)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # any other corpus: no such warning
        load_folder(tmp_path / "plain", n_folds=2)


@pytest.mark.parametrize(
    "link", ["../../../evil", "..\\outside", "a/../../x", "/etc/passwd", "\\evil", "C:\\x"]
)
def test_links_that_escape_the_archive_are_refused_on_every_platform(link, monkeypatch):
    """The check works on POSIX paths whatever the platform's os.path (Windows' ntpath
    joined with backslashes, so '..\\evil' did not start with '../')."""
    import ntpath
    from pathlib import PurePosixPath

    for flavour in (os.path, ntpath):
        monkeypatch.setattr(_fetch.os, "path", flavour)
        with pytest.raises(ValueError, match="outside the archive's folder"):
            _fetch._check_link(PurePosixPath("link"), link, "x.tar.gz", True)
        _fetch._check_link(PurePosixPath("data/sub/link"), "../ok.wav", "x.tar.gz", True)


def test_files_are_ordered_by_path_parts_the_same_on_every_platform(tmp_path):
    """'/' sorts before digits and Windows' '\\' after them: ordering by the text of the
    paths put s10/ before s1/ on Windows only, and so changed load_folder's folds."""
    from pathlib import PureWindowsPath

    from sklaudio.io import list_audio_files, path_sort_key

    for sub in ("s1", "s10", "s2", "s1-b"):
        write_clip(tmp_path / "dog" / sub / "a.wav")
    found = [os.path.relpath(p, tmp_path) for p in list_audio_files(tmp_path)]
    expected = ["dog/s1/a.wav", "dog/s1-b/a.wav", "dog/s10/a.wav", "dog/s2/a.wav"]
    assert found == [os.path.join(*e.split("/")) for e in expected]
    windows = [PureWindowsPath("C:/data", *e.split("/")) for e in reversed(expected)]
    assert [str(p.relative_to("C:/data")) for p in sorted(windows, key=lambda p: p.parts)] == [
        e.replace("/", "\\") for e in expected
    ]
    assert path_sort_key("dog/s1/a.wav") < path_sort_key("dog/s10/a.wav")


# --- a user trial with real-looking corpora ----------------------------------------------


def test_esc10_clip_as_two_files_is_refused_naming_them(tmp_path):
    build_esc10_original(tmp_path)
    write_clip(tmp_path / "002 - Rain" / "3-1023-A.wav")  # beside 3-1023-A.ogg: converted
    with pytest.raises(
        ValueError,
        match=r"the clip '3-1023-A' as 2 files: \['002 - Rain/3-1023-A.ogg', "
        r"'002 - Rain/3-1023-A.wav'\]; 1 clip\(s\)",
    ):
        load_esc10(tmp_path)
    os.remove(tmp_path / "002 - Rain" / "3-1023-A.wav")
    write_clip(tmp_path / "002 - Rain" / "3-1023-A (1).ogg")  # a second download
    with pytest.raises(ValueError, match=r"3-1023-A \(1\)\.ogg"):
        load_esc10(tmp_path)


def test_esc10_copy_with_extra_clips_is_not_called_incomplete(tmp_path):
    for number in range(1, 11):
        for i in range(41):  # one clip more per class than ESC-10 has
            fold = 1 + i % 5
            name = f"{fold}-{1000 * number + i}-A.ogg"
            write_clip(tmp_path / f"{number:03d} - Class {number}" / name, seconds=0.01)
    with pytest.warns(UserWarning) as record:
        load_esc10(tmp_path)
    (message,) = [str(w.message) for w in record if "ESC-10 has 10" in str(w.message)]
    assert "holds 10 class folders and 410 clips" in message
    assert "It holds extra clips or classes (10 clip(s) more than ESC-10" in message
    assert "incomplete" not in message
    shutil.rmtree(tmp_path / "010 - Class 10")  # 9 classes of 41 clips: both at once
    with pytest.warns(UserWarning, match=r"1 class folder\(s\) fewer and 31 clip\(s\) fewer"):
        load_esc10(tmp_path)
    shutil.rmtree(tmp_path)
    build_esc10_original(tmp_path)  # 3 classes of 5 clips: incomplete, not extra
    with pytest.warns(UserWarning, match="may be incomplete") as record:
        load_esc10(tmp_path)
    assert not any("holds extra" in str(w.message) for w in record)


def test_esc_source_recording_in_two_folds_is_warned_with_its_id_and_folds(tmp_path):
    build_esc10_original(tmp_path / "esc10")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warnings.filterwarnings("ignore", message="ESC-10 root .* holds")
        load_esc10(tmp_path / "esc10")  # one source per fold: nothing to say
    write_clip(tmp_path / "esc10" / "001 - Dog bark" / "3-1011-B.ogg")  # 1011 is in fold 1
    with pytest.warns(
        UserWarning,
        match=r"1 source recording\(s\) \(Freesound id\) have clips in more than one official "
        r"fold: '1011' in folds \[1, 3\] \(the clips of '1011': \['1-1011-A.ogg', "
        r"'3-1011-B.ogg'\]\)",
    ):
        bunch = load_esc10(tmp_path / "esc10")
    assert len(bunch.filenames) == 16  # said, not dropped
    build_esc50(tmp_path / "esc50")
    path = tmp_path / "esc50" / "meta" / "esc50.csv"
    lines = path.read_text().splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("2-"))
    fields = lines[row].split(",")
    fields[5] = next(line for line in lines[1:] if line.startswith("4-")).split(",")[5]
    lines[row] = ",".join(fields)
    _write_lines(path, lines)
    with pytest.warns(UserWarning, match=rf"'{fields[5]}' in folds \[2, 4\]"):
        load_esc50(tmp_path / "esc50")


def test_audio_files_the_metadata_does_not_list_are_warned_about(tmp_path):
    build_esc50(tmp_path / "esc50")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_esc50(tmp_path / "esc50")
    audio = tmp_path / "esc50" / "audio"
    write_clip(audio / "1-100-A-0.ogg")  # a converted copy of the listed 1-100-A-0.wav
    write_clip(audio / "notes.wav")
    unlisted = (
        r"2 audio file\(s\) in '.*audio' are not listed in '.*esc50.csv' and are left out: "
        r"\['1-100-A-0.ogg', 'notes.wav'\] \(1 of them share a listed clip's name in another "
        r"format, e.g. '1-100-A-0.ogg'"
    )
    with pytest.warns(UserWarning, match=unlisted):
        bunch = load_esc50(tmp_path / "esc50")
    assert len(bunch.filenames) == 30  # the listed clips only
    with pytest.warns(UserWarning, match=r"2 audio file\(s\)"):
        load_esc10(tmp_path / "esc50")  # the csv's other rows are listed, not extra
    build_urbansound8k(tmp_path / "us8k")
    for k in range(7):
        write_clip(tmp_path / "us8k" / "audio" / "fold3" / f"9{k}-0-0-0.wav")
    with pytest.warns(
        UserWarning, match=r"7 audio file\(s\) .* \['fold3/90-0-0-0.wav', .* and 2 more"
    ):
        load_urbansound8k(tmp_path / "us8k")


@pytest.mark.parametrize(
    "delimiter, name", [(";", "semicolons"), ("\t", "tabs"), ("|", "vertical bars")]
)
@pytest.mark.parametrize("corpus", ["esc50", "urbansound8k"])
def test_a_metadata_file_with_another_delimiter_says_which(tmp_path, corpus, delimiter, name):
    if corpus == "esc50":
        build_esc50(tmp_path)
        path, load = tmp_path / "meta" / "esc50.csv", load_esc50
    else:
        build_urbansound8k(tmp_path)
        path, load = tmp_path / "metadata" / "UrbanSound8K.csv", load_urbansound8k
    path.write_text(path.read_text().replace(",", delimiter))
    with pytest.raises(
        ValueError, match=rf"separates its fields with {name} \({re.escape(repr(delimiter))}\)"
    ):
        load(tmp_path)


def test_a_subset_of_the_metadata_says_how_to_filter_the_bunch(tmp_path):
    path, lines = _urbansound8k_csv(tmp_path)
    # folds 1 and 2 of classes 0 and 2 only: class id 1 is a gap
    subset = [
        line for line in lines[1:] if line.split(",")[5] in ("1", "2") and line.split(",")[6] != "1"
    ]
    _write_lines(path, [lines[0], *subset])
    with pytest.raises(ValueError) as error:
        load_urbansound8k(tmp_path)
    message = str(error.value)
    assert "expected 0..1 without gaps" in message
    assert "it lists the folds [1, 2] of the official 1..10" in message
    assert "Subsets of the official folds or classes are not supported by the loader" in message
    assert "keep = np.isin(bunch.folds, [1, 2]); X, y, folds = bunch.filenames[keep]" in message
    build_esc50(tmp_path / "esc50")  # every fold, a class left out
    esc50_csv = tmp_path / "esc50" / "meta" / "esc50.csv"
    _write_lines(
        esc50_csv, [line for line in _esc50_lines(tmp_path / "esc50") if ",pig," not in line]
    )
    with pytest.raises(
        ValueError, match=r"every fold, but not every class.*np\.isin\(bunch\.target"
    ):
        load_esc50(tmp_path / "esc50")


def test_dcase2013_copies_of_a_recording_are_warned_about_naming_them(tmp_path):
    build_dcase2013(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # both official sets name their files bus01.wav ...
        load_dcase2013_scenes(tmp_path)
    dev, ev = tmp_path / "scenes_stereo", tmp_path / "scenes_stereo_testset"
    shutil.copy(dev / "park01.wav", ev / "park02.wav")  # a development recording in both
    with pytest.warns(
        UserWarning,
        match=r"1 DCASE 2013 file\(s\) have the same content as another file: "
        r"'scenes_stereo/park01.wav' \(development\) and 'scenes_stereo_testset/park02.wav' "
        r"\(evaluation\); 1 of them are in both sets, so trained and tested on",
    ):
        load_dcase2013_scenes(tmp_path)
    write_clip(ev / "park02.wav", channels=2, seed=999)
    shutil.copy(dev / "bus01.wav", dev / "bus01 (1).wav")  # a second download
    write_clip(ev / "test_tubestation01.wav", channels=2, seed=998)  # a renamed duplicate
    with pytest.warns(UserWarning) as record:
        load_dcase2013_scenes(tmp_path)
    messages = " ".join(str(w.message) for w in record)
    assert (
        "2 DCASE 2013 recording(s) are in one set under more than one name (a second download, "
        "a file manager's copy, a file renamed beside its original): 'scenes_stereo/bus01.wav' "
        "and 'scenes_stereo/bus01 (1).wav'; 'scenes_stereo_testset/test_tubestation01.wav' and "
        "'scenes_stereo_testset/tubestation01.wav'. Each file counts as a recording"
    ) in messages
    # the same bytes, said with the set of each
    assert "'scenes_stereo/bus01 (1).wav' (development) and 'scenes_stereo/bus01.wav'" in messages
    os.remove(dev / "bus01.wav")  # a copy's name without its original beside it
    with pytest.warns(UserWarning, match=r"1 DCASE 2013 file\(s\) are named as copies: "):
        load_dcase2013_scenes(tmp_path)


def test_load_dcase2013_reads_dcase_util_folders(tmp_path):
    development = "DCASE2013-acoustic-scenes-development/scenes_stereo"
    evaluation = "DCASE2013-acoustic-scenes-evaluation/audio"
    expected = build_dcase2013(tmp_path, development, evaluation, prefix="test_")
    (tmp_path / "DCASE2013-acoustic-scenes-development" / "meta.txt").write_text("")
    assert_aligned(load_dcase2013_scenes(tmp_path), expected)
    # dcase_util's evaluation folder itself: audio/test_*.wav
    ev = load_dcase2013_scenes(
        tmp_path / "DCASE2013-acoustic-scenes-evaluation", subset="evaluation"
    )
    assert len(ev.filenames) == 6 and set(ev.folds.tolist()) == {2}
    # a folder named audio without dcase_util's test_ names is not taken for the evaluation set
    write_clip(tmp_path / "plain" / "audio" / "bus01.wav", channels=2)
    with pytest.raises(FileNotFoundError, match="evaluation set is missing"):
        load_dcase2013_scenes(tmp_path / "plain", subset="evaluation")


def test_load_folder_warns_of_class_names_that_differ_in_unicode_normalisation(tmp_path):
    import unicodedata

    nfc, nfd = (unicodedata.normalize(form, "café") for form in ("NFC", "NFD"))
    write_clip(tmp_path / nfc / "a.wav")
    write_clip(tmp_path / nfd / "b.wav")
    write_clip(tmp_path / "rain" / "c.wav")
    write_clip(tmp_path / "rain" / "d.wav")
    if len({p.name for p in tmp_path.iterdir()}) < 3:
        pytest.skip("this file system normalises names: the two folders are one")
    both = f"{nfd!r} (NFD, 'cafe\\u0301') and {nfc!r} (NFC, 'caf\\xe9')"
    with pytest.warns(UserWarning, match="differ only in Unicode normalisation") as record:
        bunch = load_folder(tmp_path, n_folds=2)
    (message,) = [str(w.message) for w in record if "Unicode" in str(w.message)]
    assert "1 pair(s) of class folders of" in message and both in message
    assert len(bunch.target_names) == 3  # said, not merged
