#!/usr/bin/env bash
# One session on a lent GPU machine: the training-throughput benchmark, then every
# objective at the default size and two larger MusicBERTs trained on the real-music
# feature cache; the final weights come back in fp16 tarballs under $OUT.
# Usage (on the device, repo root): bash training/gpu_session.sh CACHE.npz STEPS
set -uo pipefail
export PYTHONUNBUFFERED=1
cache=${1:?feature cache}
steps=${2:-3000}
out=${OUT:-/tmp/gpu-out}
runs=/tmp/runs
mkdir -p "$out" "$runs/small" "$runs/large4" "$runs/large6"
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
timeout 200 python3 benchmarks/train.py --device cuda --out "$out/train.json" 2>&1 | tail -25

train() {  # name hidden layers folder steps
  local name=$1 hidden=$2 layers=$3 dir=$4 n=${5:-$steps}
  local run="$runs/$dir/${name}_h${hidden}_l${layers}_n${n}"
  python3 - "$name" "$hidden" "$layers" "$n" "$run" "$cache" <<'PY'
import json, sys
name, hidden, layers, steps, run, cache = sys.argv[1:]
c = json.load(open(f"training/configs/{name}.json"))
c.update(name=f"{name}_h{hidden}_l{layers}_n{steps}", out=run, cache=cache, steps=int(steps),
         batch_size=256, lr=1e-3, warmup_steps=150, checkpoint_every=10**9, log_every=250)
c["model"].update(hidden_size=int(hidden), num_hidden_layers=int(layers),
                  intermediate_size=4 * int(hidden), num_attention_heads=4 if int(hidden) <= 128 else 8)
json.dump(c, open(run + ".json", "w"), indent=1)
PY
  local start=$(date +%s)
  python3 -m assistant.cli train --config "$run.json" 2>&1 | tr '\r' '\n' | grep -E "final|Error|error" | tail -3
  echo "$name h$hidden l$layers n$n: $(( $(date +%s) - start )) s"
  python3 - "$run" <<'PY'
import sys, pathlib, json
from safetensors.torch import load_file, save_file
run = pathlib.Path(sys.argv[1]); final = run / "final"
w = load_file(final / "model.safetensors")
save_file({k: v.half() if v.is_floating_point() else v for k, v in w.items()}, final / "model.safetensors")
s = json.loads((run / "summary.json").read_text()) if (run / "summary.json").exists() else {}
(final / "summary.json").write_text(json.dumps(s))
(final / "SHA256SUMS").unlink(missing_ok=True)  # the fp16 copy: rewritten where it lands
PY
}
train mim_concepts 128 2 small 800
for name in mim_concepts mim combined_concepts combined mlm tags; do train "$name" 128 2 small; done
train mim_concepts 256 4 large4
train mim_concepts 256 6 large6
for dir in small large4 large6; do
  (cd "$runs/$dir" && tar -cf "$out/$dir.tar" */final)
done
ls -la "$out"
