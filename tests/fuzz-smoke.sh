#!/bin/bash
# Runs each libFuzzer target for a few seconds, after replaying the inputs
# kept in tests/fuzz/regressions/TARGET/ (crashes found once, fixed, kept).
# Prints one TAP line per target, as the test runner counts them.
# Usage: tests/fuzz-smoke.sh SECONDS TARGET...
cd "$(dirname "$0")/.." || exit 1
seconds=$1
shift
status=0
for t in "$@"; do
	corpus=.fuzz/corpus/$t
	mkdir -p "$corpus"
	reg=tests/fuzz/regressions/$t
	log=.fuzz/$t.log
	ok=1
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
		status=1
	fi
done
exit $status
