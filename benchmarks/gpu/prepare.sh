#!/usr/bin/env bash
# Builds .gpu/ (in .gitignore) for a run on a lent GPU machine (the `device` tool):
# the wheels its image may lack (skorch, soundfile, and this machine's scikit-learn,
# which sklaudio needs at >= 1.6, with what they need) for CPython 3.12, and a copy of
# ESC-10 (41 MB), which does not travel from ../shared. Run here, once:
#
#     bash benchmarks/gpu/prepare.sh
#
# with the project's environment active (its versions are the ones fetched),
# then pass carry=[".gpu"] to every device run of benchmarks/gpu/run.sh.
set -euo pipefail
cd "$(dirname "$0")/../.."
esc10=${SKLAUDIO_ESC10:-../shared/data/esc10}
[ -d "$esc10" ] || { echo "no ESC-10 at $esc10 (set SKLAUDIO_ESC10)" >&2; exit 1; }
rm -rf .gpu && mkdir -p .gpu/whl
version() { python3 -c "import importlib.metadata as m; print(m.version('$1'))"; }
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -d .gpu/whl \
    "skorch==$(version skorch)" "soundfile==$(version soundfile)" cffi pycparser \
    "scikit-learn==$(version scikit-learn)" "joblib==$(version joblib)" \
    "threadpoolctl==$(version threadpoolctl)" "tabulate==$(version tabulate)" \
    "narwhals==$(version narwhals)"
cp -r "$esc10" .gpu/esc10
du -sh .gpu .gpu/*
