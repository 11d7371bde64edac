#!/bin/bash
# Runs each libFuzzer target for a few seconds, after replaying the inputs
# kept in tests/fuzz/regressions/TARGET/ (crashes found once, fixed, kept).
# Prints one TAP line per target, in the order given, as the test runner
# counts them. The targets share nothing (each has its own corpus and log),
# so FUZZ_JOBS of them (default: one per processor) run at once; each
# still fuzzes for SECONDS of its own.
# Usage: tests/fuzz-smoke.sh SECONDS TARGET...
cd "$(dirname "$0")/.." || exit 1
seconds=$1
shift
jobs=${FUZZ_JOBS:-$(nproc 2>/dev/null || echo 1)}

# smoke TARGET: runs it, and writes its TAP line (and a failure's log
# tail) to .fuzz/TARGET.tap.
smoke() {
	local t=$1 corpus=.fuzz/corpus/$1 reg=tests/fuzz/regressions/$1 log=.fuzz/$1.log ok=1 runs
	mkdir -p "$corpus"
	if [ -d "$reg" ] && ls "$reg"/* >/dev/null 2>&1; then
		".fuzz/$t" "$reg"/* >"$log" 2>&1 || ok=0
	fi
	if [ $ok = 1 ]; then
		".fuzz/$t" -max_total_time="$seconds" -max_len=65536 -timeout=10 \
			-artifact_prefix=".fuzz/$t-" "$corpus" >"$log" 2>&1 || ok=0
	fi
	runs=$(grep -ao 'Done [0-9]* runs' "$log" | tail -1)
	if [ $ok = 1 ]; then
		echo "ok - fuzz $t: ${runs:-done} in ${seconds}s"
	else
		echo "not ok - fuzz $t"
		tail -30 "$log" | sed 's/^/# /'
	fi >".fuzz/$t.tap"
}

running=0
for t in "$@"; do
	rm -f ".fuzz/$t.tap"
	smoke "$t" &
	running=$((running + 1))
	if [ "$running" -ge "$jobs" ]; then
		wait -n
		running=$((running - 1))
	fi
done
wait
status=0
for t in "$@"; do
	if [ -s ".fuzz/$t.tap" ]; then
		cat ".fuzz/$t.tap"
	else
		echo "not ok - fuzz $t: no result"
	fi
	grep -q '^ok ' ".fuzz/$t.tap" 2>/dev/null || status=1
	rm -f ".fuzz/$t.tap"
done
exit $status
