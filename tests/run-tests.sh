#!/bin/bash
# Runs the unit tests and every bats file, then prints one line
# "N passed, N failed" counted from the TAP output (bats prints no summary
# when its output is not a terminal) and exits non-zero on any failure.
# EXEC_PREFIX (e.g. "valgrind -q") runs the binary under a tool.
cd "$(dirname "$0")/.." || exit 1
passed=0
failed=0
for t in tests/unit/test_*; do
	case $t in *.c) continue ;; esac
	[ -x "$t" ] || continue
	if out=$("$t" 2>&1); then
		echo "ok - unit $(basename "$t"): $out"
		passed=$((passed + 1))
	else
		echo "not ok - unit $(basename "$t")"
		echo "$out" | sed 's/^/# /'
		failed=$((failed + 1))
	fi
done
# The fuzz targets for a few seconds each (make fuzz-smoke), where clang
# and libFuzzer are installed; built with one compiler per processor.
if command -v clang >/dev/null && ls /usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-x86_64.a >/dev/null 2>&1; then
	make --no-print-directory -s -j"$(nproc 2>/dev/null || echo 1)" fuzz >/dev/null 2>&1 ||
		echo "not ok - fuzz targets do not build"
	flog=$(mktemp)
	tests/fuzz-smoke.sh "${FUZZ_SECONDS:-8}" $(cd tests/fuzz && ls fuzz_*.c | sed 's/\.c$//') | tee "$flog"
	passed=$((passed + $(grep -c '^ok ' "$flog")))
	failed=$((failed + $(grep -c '^not ok ' "$flog")))
	rm -f "$flog"
fi
log=$(mktemp)
bats --tap ${BATS_JOBS:+--jobs $BATS_JOBS} tests/*.bats | tee "$log"
p=$(grep -c '^ok ' "$log")
f=$(grep -c '^not ok ' "$log")
rm -f "$log"
passed=$((passed + p))
failed=$((failed + f))
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
