#!/usr/bin/env bash
# The GPU check, for any machine with a CUDA GPU, in a few minutes: the tests marked `cuda`
# (nccl with two GPUs, fp16 + GradScaler with exact resume, bf16, pinned memory), then the
# throughput benchmarks on the GPU; prints one JSON summary on stdout (details on stderr).
#
#   bash benchmarks/gpu_check.sh            # from the repository root, in facebone's environment
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
OUT=$(mktemp -d)
trap 'rm -rf "$OUT"' EXIT

$PY -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 3)" \
  || { echo '{"gpu_check": "no CUDA GPU visible to '"$PY"' (torch missing or no GPU)"}'; exit 3; }

start=$(date +%s)
$PY -m pytest -q -p no:cacheprovider -m cuda tests/train/test_cuda.py --junitxml="$OUT/tests.xml" >&2
tests_rc=$?

bench() {  # name, command...: run a benchmark printing JSON, keep its output
  local name=$1; shift
  timeout 600 "$@" > "$OUT/$name.json" 2> "$OUT/$name.err" || echo "{\"error\": \"exit $?\", \"stderr\": $($PY -c 'import json,sys; print(json.dumps(open(sys.argv[1]).read()[-2000:]))' "$OUT/$name.err")}" > "$OUT/$name.json"
  cat "$OUT/$name.err" >&2
}
bench trainer_fp16 $PY benchmarks/trainer_overhead.py --device cuda --precision fp16 --batch 128 --steps 20 --rounds 3 --classes 100000
bench trainer_bf16_cl $PY benchmarks/trainer_overhead.py --device cuda --precision bf16 --channels-last --batch 128 --steps 20 --rounds 3 --classes 100000
if [ "$($PY -c 'import torch; print(torch.cuda.device_count())')" -ge 2 ]; then
  bench trainer_fp16_2gpu $PY -m torch.distributed.run --standalone --nproc_per_node 2 benchmarks/trainer_overhead.py --device cuda --precision fp16 --batch 256 --steps 20 --rounds 3 --classes 100000
fi
bench embed $PY benchmarks/embed_throughput.py --backbones iresnet50 mobilefacenet --batch 256 --precision fp16 --reps 5
if [ -f benchmarks/partial_fc.py ]; then
  bench partial_fc $PY benchmarks/partial_fc.py --device cuda --no-distributed --classes 100000 1000000 2000000
fi

$PY - "$OUT" "$tests_rc" "$start" <<'PY'
import json, sys, time, platform
from pathlib import Path
import xml.etree.ElementTree as ET
import torch

out, tests_rc, start = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
summary = {"gpu_check": "ok" if tests_rc == 0 else "tests failed",
           "gpus": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())],
           "torch": torch.__version__, "cuda": torch.version.cuda, "python": platform.python_version()}
try:
    suite = ET.parse(out / "tests.xml").getroot()
    suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
    cases = {}
    for case in suite.iter("testcase"):
        outcome = "passed"
        for kind in ("failure", "error", "skipped"):
            if case.find(kind) is not None:
                outcome = {"failure": "failed", "error": "error", "skipped": "skipped"}[kind]
        cases[case.get("name")] = outcome
    summary["tests"] = cases
except (OSError, ET.ParseError) as exc:
    summary["tests"] = f"no report ({exc})"
for path in sorted(out.glob("*.json")):
    try:
        summary[path.stem] = json.loads(path.read_text())
    except json.JSONDecodeError:
        summary[path.stem] = {"unparsed": path.read_text()[-2000:]}
summary["seconds"] = int(time.time()) - start
print(json.dumps(summary, indent=2))
PY
