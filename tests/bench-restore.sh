#!/usr/bin/env bash
# tests/bench-restore.sh TOOL...: the restore figure of `make bench`, made
# fair. compare.sh restores each tool once, in the order of the tools, and
# the kernel's cost of creating the corpus's 71,394 files grew from one
# restore to the next (docs/PERFORMANCE.md, 23:23 run: system time 4.7 s,
# 13.3 s, 24.2 s, 24.9 s in that order). Here every tool restores the
# latest backup (snapshot 3) of the repository compare.sh kept (KEEP=1)
# REPEAT_RESTORE times, the order of the tools reversed every other round,
# each time into a fresh folder after `sync` and dropping the page cache
# (root only), the previous restore deleted and synced first; none of that
# is timed. It prints, and appends to $OUT/summary.md, each restore's wall,
# user and system seconds and the median per tool.
#
# Environment: BENCH, OUT, CORPUS as compare.sh's; SHARED_ADAPTER and
# ADAPTER_FILE as tests/bench.sh sets them; REPEAT_RESTORE (default 2).
set -uo pipefail
export LC_ALL=C

bench=${SHARED_BENCH:?set SHARED_BENCH}
BENCH=${BENCH:-/tmp/bench}
OUT=${OUT:?set OUT, the results folder of compare.sh}
CORPUS=${CORPUS:-$BENCH/corpus}
CACHES=$BENCH/cache
REPEAT_RESTORE=${REPEAT_RESTORE:-2}
export BENCH CORPUS CACHES

# The adapters (restic_restore, ...) as compare.sh defines them: the section
# between its "adapters" and "helpers" rulers, which ends by sourcing
# ADAPTER_FILE and exporting the functions.
adapters=$(sed -n '/^# -* adapters --/,/^# -* helpers --/p' "$bench/compare.sh")
[ -n "$adapters" ] || { echo "bench-restore: no adapters section in $bench/compare.sh" >&2; exit 1; }
eval "$adapters"

drop=1
if ! { sync && echo 3 >/proc/sys/vm/drop_caches; } 2>/dev/null; then
	drop=0
	echo "bench-restore: cannot drop the page cache (not root): restores run with a warm cache" >&2
fi

# clean TOOL DEST: what a restore leaves behind, so that the next one starts
# from nothing: the restored folder and, for backup's adapters, the machine
# that `restore --new r3` defined beside the repository.
clean() {
	local repo=$BENCH/repo-$1
	rm -rf "$2" "$2.tmp"
	[ -d "$repo.machines" ] && rm -f "$repo.machines/r3.conf"
	[ -d "$repo.restored" ] && rm -rf "$repo.restored/r3"
	sync
}

tools=()
for t in "$@"; do
	[ -d "$BENCH/repo-$t" ] && declare -F "${t}_restore" >/dev/null && tools+=("$t")
done
[ ${#tools[@]} -gt 0 ] || { echo "bench-restore: no repository kept to restore from" >&2; exit 1; }

# compare.sh kept its restores (KEEP=1): gigabytes of page cache and disk.
for t in "${tools[@]}"; do clean "$t" "$BENCH/restore-$t"; done
rows=$OUT/restores.tsv
: >"$rows"
for round in $(seq 1 "$REPEAT_RESTORE"); do
	order=("${tools[@]}")
	if [ $((round % 2)) = 0 ]; then
		order=()
		for ((i = ${#tools[@]} - 1; i >= 0; i--)); do order+=("${tools[$i]}"); done
	fi
	for t in "${order[@]}"; do
		dest=$BENCH/restore-$t
		clean "$t" "$dest"
		[ "$drop" = 1 ] && echo 3 >/proc/sys/vm/drop_caches
		/usr/bin/time -f '%e %U %S' -o "$OUT/$t-restore$round.time" \
			bash -c "${t}_restore \"\$@\"" _ "$BENCH/repo-$t" "$dest" 3 >"$OUT/$t-restore$round.log" 2>&1
		rc=$?
		read -r wall user sys < <(tail -1 "$OUT/$t-restore$round.time")
		# Only a complete restore counts: as many files as the corpus.
		files=$(find "$dest" -type f 2>/dev/null | wc -l)
		[ "$files" = "$(find "$CORPUS" -type f | wc -l)" ] || rc="$rc/files:$files"
		printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$t" "$round" "$rc" "$wall" "$user" "$sys" >>"$rows"
		printf 'restore %s round %s: rc=%s wall=%s user=%s sys=%s\n' "$t" "$round" "$rc" "$wall" "$user" "$sys" >&2
		clean "$t" "$dest"
	done
done

{
	echo
	echo "### Restores, fair (tests/bench-restore.sh): $REPEAT_RESTORE per tool, alternated, fresh folder, cache $([ "$drop" = 1 ] && echo dropped || echo warm) before each"
	echo
	echo "| tool | wall s, each | user s, each | sys s, each | median wall | median user | median sys |"
	echo "|---|---|---|---|---|---|---|"
	awk -F'\t' '
		function median(s,   a, n, i, j, t) {
			n = split(substr(s, 2), a, " ")
			for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] + 0 < a[i] + 0) { t = a[i]; a[i] = a[j]; a[j] = t }
			return n % 2 ? a[(n + 1) / 2] : sprintf("%.2f", (a[n / 2] + a[n / 2 + 1]) / 2)
		}
		{ if (!($1 in seen)) { seen[$1] = 1; order[++k] = $1 }
		  bad = $3 != "0" ? "FAIL(" $3 ") " : ""
		  w[$1] = w[$1] " " $4; u[$1] = u[$1] " " $5; s[$1] = s[$1] " " $6; f[$1] = f[$1] bad }
		END { for (i = 1; i <= k; i++) { t = order[i]
			printf "| %s | %s%s | %s | %s | %s | %s | %s |\n", t, f[t], substr(w[t], 2), substr(u[t], 2), substr(s[t], 2),
				median(w[t]), median(u[t]), median(s[t]) } }' "$rows"
} | tee -a "$OUT/summary.md"
