#!/usr/bin/env bash
# Stages what bench/gpu_check.py needs on a bare GPU machine (python3 3.12 with torch,
# numpy, onnx, jinja2; nothing reachable from it) into the git-ignored .gpu-wheel/:
# onnxruntime-gpu in five parts and ktrans's small runtime dependencies (the shared
# ../shared/gpu/stage-ort-gpu.sh), plus pytest for the `gpu` marker set.
# Then, five device calls back to back (see docs/benchmarks.md, "GPU check").
set -euo pipefail
top=$(git rev-parse --show-toplevel)
cd "$top"
stage=${KTRANS_STAGE_ORT:-../shared/gpu/stage-ort-gpu.sh}
bash "$stage" "$@"
plat=(--platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64)
python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp "${plat[@]}" -d .gpu-wheel/extra pytest pluggy iniconfig packaging
du -sh .gpu-wheel/part04 .gpu-wheel/extra
echo "the last call carries part04, extra and NAME: keep them under 64 MiB together"
