# Sourced by bench/ack_instructions.sh and bench/ack_allocations.sh: runs a server
# under a valgrind tool in the "waops" slot of ack_bench, for one round of acks.
#   under_valgrind OUT_DIR PLATFORM ACKS "TOOL OPTIONS" OUT_OPTION COMMAND...
# (OUT_OPTION as --dhat-out-file=). The tool writes its files into OUT_DIR as
# out.<process id>[-<thread>]; this returns once valgrind has written them.
under_valgrind() {
  local out=$1 platform=$2 acks=$3 tool=$4 out_option=$5; shift 5
  mkdir -p "$out"
  # --fair-sched: valgrind runs one thread at a time, and without a fair lock the
  # start-up's phone-metadata warm-up kept it long enough for the store's 5 s
  # connection timeout to expire (most starts on 2026-12-03).
  # Not exec: the bench SIGKILLs its server; valgrind, in its own session, lives
  # on until the SIGTERM below and then writes its output.
  printf '#!/bin/bash\nsetsid valgrind %s --fair-sched=yes %s%s/out.%%p %s "$@" &\nwait\n' \
    "$tool" "$out_option" "$out" "$*" > "$out.sh"
  chmod +x "$out.sh"
  BENCH_ONLY=$platform:64 BENCH_ROUNDS=1 WAOPS_BIN="$out.sh" target/release/examples/ack_bench "$acks" 8192 \
    >/dev/null 2>&1 || true
  pkill -TERM -f -- "$out_option$out/out" || true
  while pgrep -f -- "$out_option$out/out" >/dev/null; do sleep 1; done
}
