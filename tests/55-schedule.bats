#!/usr/bin/env bats
# backup schedule: the window and weekly day in the service state, and the
# systemd units and crontab line that start the backups inside the window.

load test_helper

setup() { setup_repo web1; }

# The service state's value of KEY (read with stock git), or nothing.
state() { git --git-dir="$REPO" config --blob refs/backup/state:state --get "$1" || true; }

# Splits "--print systemd" output (stdin) at its "# file: NAME" lines into DIR.
split_units() {
	mkdir -p "$1"
	awk -v dir="$1" '/^# file: /{ f = dir "/" $3; next } { print > f }'
}

# Checks the units NAME.service and NAME.timer in DIR with systemd-analyze
# verify; where verify cannot run at all, only the timer's OnCalendar=.
check_units() {
	local dir=$1 name=$2 cal
	command -v systemd-analyze >/dev/null ||
		skip "no systemd-analyze to check the units with (tests/install-deps.sh installs systemd)"
	cal=$(sed -n 's/^OnCalendar=//p' "$dir/$name.timer")
	run systemd-analyze calendar "$cal"
	assert_success
	mkdir -p "$T/probe"
	printf '[Service]\nType=oneshot\nExecStart=/bin/true\n' >"$T/probe/probe.service"
	if systemd-analyze verify "$T/probe/probe.service" >/dev/null 2>&1; then
		# --man=no: the test does not install the man pages the units name.
		run systemd-analyze verify --man=no "$dir/$name.service" "$dir/$name.timer"
		assert_success
		assert_output ''
	else
		echo "# systemd-analyze verify cannot run here; checked OnCalendar= only" >&3
	fi
}

@test "schedule shows the defaults, then sets and shows the window and the day" {
	run backup schedule web1
	assert_success
	assert_line "machine: web1"
	assert_line --regexp '^window:  W0 \(default\), 00:00-02:00 local time \(UTC\)$'
	assert_line "day:     sunday (default)"
	[ -z "$(state machine.web1.window)" ]

	run backup schedule web1 --window W4 --day SAT
	assert_success
	assert_line --regexp '^window:  W4, 04:00-06:00 local time'
	assert_line "day:     saturday"
	[ "$(state machine.web1.window)" = W4 ]
	[ "$(state machine.web1.day)" = saturday ]

	# One of the two changes only that one; every spelling of a day works.
	backup -q schedule web1 --day Wednesday
	[ "$(state machine.web1.window)" = W4 ]
	[ "$(state machine.web1.day)" = wednesday ]
	backup -q schedule web1 --window w22 --day fri
	run backup schedule web1
	assert_line --regexp '^window:  W22, 22:00-24:00 local time'
	assert_line "day:     friday"

	# -q sets without a word.
	run backup -q schedule web1 --window W0
	assert_success
	assert_output ''
}

@test "schedule --json prints the window, its hours, the day and the time zone" {
	run backup schedule web1 --json
	assert_success
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert d == {"machine": "web1", "window": "W0", "window_start": "00:00", "window_end": "02:00",
             "window_default": True, "day": "sunday", "day_default": True, "timezone": "UTC"}, d
'
	run backup schedule web1 --window W22 --day mon --json
	assert_success
	echo "$output" | python3 -c '
import json, sys
d = json.load(sys.stdin)
assert (d["window"], d["window_start"], d["window_end"]) == ("W22", "22:00", "24:00"), d
assert d["day"] == "monday" and not d["window_default"] and not d["day_default"], d
'
}

@test "the stored schedule does not depend on the time zone; the hours are local" {
	[ -f /usr/share/zoneinfo/Asia/Tokyo ] || skip "no tzdata for Asia/Tokyo"
	TZ=Asia/Tokyo backup -q schedule web1 --window W4
	[ "$(state machine.web1.window)" = W4 ]
	run backup schedule web1 --json
	[ "$(echo "$output" | json_field window_start)" = 04:00 ]
	TZ=Asia/Tokyo run backup schedule web1 --json
	[ "$(echo "$output" | json_field timezone)" = Asia/Tokyo ]
	[ "$(echo "$output" | json_field window_start)" = 04:00 ]
	# A timer made under a TZ carries it, so it starts when the command says.
	TZ=Asia/Tokyo run backup schedule web1 --print systemd
	assert_success
	assert_line "OnCalendar=*-*-* 04:00:00 Asia/Tokyo"
}

@test "a bad window, day or --print is a usage error (exit 2) naming the value" {
	for w in W5 W24 W-2 W04 4 w4x W ''; do
		run -2 backup schedule web1 --window "$w"
		assert_output --partial "invalid window '$w'"
		assert_output --partial "W22"
	done
	for d in funday su sundays ''; do
		run -2 backup schedule web1 --day "$d"
		assert_output --partial "invalid day '$d'"
		assert_output --partial "monday"
	done
	# Nothing is stored when any value is bad.
	run -2 backup schedule web1 --window W4 --day funday
	[ -z "$(state machine.web1.window)" ]
	run -2 backup schedule web1 --print launchd
	assert_output --partial "invalid --print 'launchd'"
	run -2 backup schedule web1 --output "$T/units"
	run -2 backup schedule web1 --print cron --output "$T/units"
	run -2 backup schedule web1 --print systemd --json
	run -2 backup schedule
	run -2 backup schedule web1 web2
	[ ! -e "$T/units" ]
}

@test "an unknown machine is an error (exit 1) with the usual line" {
	run -1 backup schedule nosuch
	assert_output --partial "unknown machine 'nosuch'"
	run -1 backup schedule nosuch --window W4
	run -1 backup schedule nosuch --print cron
	[ -z "$(state machine.nosuch.window)" ]
}

@test "a value in the state that is not a window is an error, not a default" {
	state_config machine.web1.window W5
	run -1 backup schedule web1
	assert_output --partial "invalid window 'W5'"
	backup -q schedule web1 --window W6
	run backup schedule web1
	assert_success
}

@test "--print systemd writes a oneshot service and a timer that systemd accepts" {
	backup -q schedule web1 --window W4
	run backup schedule web1 --print systemd
	assert_success
	assert_line --index 0 "# file: backup-run-web1.service"
	assert_line "# file: backup-run-web1.timer"
	echo "$output" | split_units "$T/u"
	[ "$(ls "$T/u" | tr '\n' ' ')" = "backup-run-web1.service backup-run-web1.timer " ]

	exe=$(realpath "$BK") conf=$(realpath "$BACKUP_CONFIG")
	grep -qx "Type=oneshot" "$T/u/backup-run-web1.service"
	run grep '^ExecStart=' "$T/u/backup-run-web1.service"
	assert_output "ExecStart=$exe --config $conf run --wait 3600 web1
ExecStart=$exe --config $conf rotate --wait 3600 web1"
	run cat "$T/u/backup-run-web1.timer"
	assert_line --regexp '^OnCalendar=\*-\*-\* 04:00:00( UTC)?$'
	assert_line "Persistent=true"
	assert_line "WantedBy=timers.target"
	delay=$(sed -n 's/^RandomizedDelaySec=//p' "$T/u/backup-run-web1.timer")
	((delay > 0 && delay < 7200))
	check_units "$T/u" backup-run-web1

	# Every window gives a valid timer at its start.
	for w in 0 10 22; do
		backup -q schedule web1 --window "W$w"
		rm -rf "$T/u"
		backup schedule web1 --print systemd | split_units "$T/u"
		grep -Eq "^OnCalendar=\*-\*-\* $(printf %02d "$w"):00:00( UTC)?$" "$T/u/backup-run-web1.timer"
		check_units "$T/u" backup-run-web1
	done
}

@test "--print systemd --output DIR writes the two files, as printed" {
	run backup schedule web1 --print systemd --output "$T/units/sub"
	assert_success
	assert_output --partial "wrote $T/units/sub/backup-run-web1.service and $T/units/sub/backup-run-web1.timer"
	assert_output --partial "systemctl enable --now backup-run-web1.timer"
	[ "$(ls "$T/units/sub" | tr '\n' ' ')" = "backup-run-web1.service backup-run-web1.timer " ]
	[ "$(stat -c %a "$T/units/sub/backup-run-web1.timer")" = 644 ]
	backup schedule web1 --print systemd | split_units "$T/printed"
	cmp "$T/printed/backup-run-web1.service" "$T/units/sub/backup-run-web1.service"
	cmp "$T/printed/backup-run-web1.timer" "$T/units/sub/backup-run-web1.timer"
	check_units "$T/units/sub" backup-run-web1

	# Again, after a change: the files are replaced; --json names them.
	backup -q schedule web1 --window W12
	run backup schedule web1 --print systemd --output "$T/units/sub" --json
	assert_success
	[ "$(echo "$output" | python3 -c 'import json,sys; print(json.load(sys.stdin)["files"])')" = \
		"['backup-run-web1.service', 'backup-run-web1.timer']" ]
	grep -q '^OnCalendar=\*-\*-\* 12:00:00' "$T/units/sub/backup-run-web1.timer"
	[ "$(ls "$T/units/sub" | wc -l)" = 2 ]
}

@test "--print cron writes one crontab line that starts inside the window" {
	exe=$(realpath "$BK") conf=$(realpath "$BACKUP_CONFIG")
	for m in web1 db-2 mail.example; do
		[ "$m" = web1 ] || define_machine "$m" "$T/src"
		for w in 0 8 22; do
			backup -q schedule "$m" --window "W$w"
			run backup schedule "$m" --print cron
			assert_success
			[ "${#lines[@]}" = 2 ]
			assert_line --index 0 --regexp "^# .*$m.*W$w"
			read -r min hour dom mon dow cmd <<<"${lines[1]}"
			[[ $min =~ ^[0-9]+$ && $hour =~ ^[0-9]+$ ]]
			((min <= 59))
			((hour == w || hour == w + 1))
			[ "$dom $mon $dow" = "* * *" ]
			[ "$cmd" = "$exe --config $conf run --wait 3600 $m && $exe --config $conf rotate --wait 3600 $m" ]
		done
	done
	# The same machine always gets the same time.
	[ "$(backup schedule web1 --print cron)" = "$(backup schedule web1 --print cron)" ]
}

@test "the jobs get --config and --repo as absolute paths, quoted where needed" {
	mkdir -p "$T/it's here"
	cp "$BK" "$T/it's here/backup"
	cp "$BACKUP_CONFIG" "$T/it's here/my backup.conf"
	cd "$T/it's here"
	run env -u BACKUP_CONFIG "./backup" --config "my backup.conf" --repo ../repo schedule web1 --print cron
	assert_success
	dir=$(realpath "$T/it's here") repo=$(realpath "$REPO")
	cmd=$(echo "${lines[1]}" | cut -d' ' -f6-)
	q="'${dir//\'/\'\\\'\'}"
	[ "${cmd%% && *}" = "${q}/backup' --config ${q}/my backup.conf' --repo $repo run --wait 3600 web1" ]
	# The shell runs it as it is: the backup is taken.
	cd /
	env -u BACKUP_CONFIG sh -c "${cmd%% && *}"
	run backup list --json
	[ "$(echo "$output" | json_field machine)" = web1 ]

	# systemd takes a space, "%" (as "%%") and "$" in a program's path, but
	# no quote.
	cd "$T/it's here"
	run -1 env -u BACKUP_CONFIG ./backup --config "my backup.conf" schedule web1 --print systemd
	assert_output --partial "systemd refuses a quote or a backslash"
	mkdir -p "$T/bin 50%\$x"
	cp "$BK" "$T/bin 50%\$x/backup"
	env -u BACKUP_CONFIG "$T/bin 50%\$x/backup" --config "my backup.conf" schedule web1 --print systemd |
		split_units "$T/u"
	bin=$(realpath "$T/bin 50%\$x")
	grep -qxF "ExecStart=\"${bin/\%/%%}/backup\" --config \"$dir/my backup.conf\" run --wait 3600 web1" \
		"$T/u/backup-run-web1.service"
	check_units "$T/u" backup-run-web1
}
