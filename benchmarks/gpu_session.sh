#!/usr/bin/env bash
# One prepared GPU check (device sessions): CUDA tests, the HAMBox forward benchmark (fp32/fp16) and a timed
# training run. Uses the machine's own python3 with torch (no install); results land in $OUT (or ./gpu_out).
#   bash benchmarks/gpu_session.sh [ITERS]      # ITERS: training iterations, default 300
# Real WIDER train sample images are used when FACEBENCH_SHARED_DATA (or ../shared/data) is there; copy
# widerface/{wider_face_split,images_sample} into an excluded, carried folder and point the variable at it.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-gpu_out}"
mkdir -p "$out"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 MPLBACKEND=Agg
iters="${1:-300}"
python3 -c "import torch; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), torch.cuda.get_device_name(0) if torch.cuda.is_available() else '')" | tee "$out/env.txt"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv | tee -a "$out/env.txt"
python3 -m pytest -q -p no:cacheprovider tests/test_hambox_cuda.py tests/test_hambox_detector.py 2>&1 | tee "$out/tests.txt"
python3 benchmarks/bench_hambox.py --device cuda 2>&1 | tee "$out/forward.txt"
python3 benchmarks/bench_hambox.py --device cuda --config sms 2>&1 | grep forward | tee -a "$out/forward.txt"
python3 benchmarks/bench_hambox_train.py --iters "$iters" --num-workers 8 --out "$out/train.json" 2>&1 \
  | grep -v "^it " | tee "$out/train.txt"
