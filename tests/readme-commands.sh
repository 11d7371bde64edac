#!/bin/sh
# Prints or runs the README's two commands, read from its section
# "The two commands" (the indented lines, comments cut), so that CI and
# `make check-fresh` run exactly what a user types and can never drift.
#
#   tests/readme-commands.sh print       both, one a line
#   tests/readme-commands.sh run N       runs command N (1: demo, 2: tests)
#
# Refuses a README whose section does not hold exactly two commands.
set -eu
top=$(cd "$(dirname "$0")/.." && pwd)
cmds=$(awk '/^## /{ on = ($0 == "## The two commands"); next }
	on && /^    [^ ]/ { sub(/^    /, ""); sub(/[ \t]+#.*$/, ""); print }' "$top/README.md")
if [ "$(printf '%s\n' "$cmds" | grep -c .)" != 2 ]; then
	echo "readme-commands: README.md's section \"The two commands\" must hold exactly two indented command lines" >&2
	exit 1
fi
case ${1:-} in
print)
	printf '%s\n' "$cmds"
	;;
run)
	case ${2:-} in 1 | 2) ;; *) echo "usage: $0 print | run 1|2" >&2; exit 2 ;; esac
	cmd=$(printf '%s\n' "$cmds" | sed -n "${2}p")
	cd "$top"
	echo "readme-commands: $cmd" >&2
	exec /bin/sh -c "$cmd"
	;;
*)
	echo "usage: $0 print | run 1|2" >&2
	exit 2
	;;
esac
