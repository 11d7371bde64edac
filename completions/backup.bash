# bash completion for backup(1)                             -*- shell-script -*-
#
# The commands and their options are learned from the program itself:
#
#   backup --list             one line per command: NAME<TAB>summary
#   backup CMD --list-opts    the long options on one line, with a trailing
#                             '=' on those that take a value
#
# so this file knows only how to complete option values and operands.  It
# completes "backup CMD ..." and the "backup-CMD ..." links.

# Prints the global config file: --config on the line, else $BACKUP_CONFIG.
_backup_config()
{
	local i w
	for ((i = 1; i < ${#_backup_words[@]}; i++)); do
		w=${_backup_words[i]}
		case $w in
		--config=?*)
			printf '%s\n' "${w#--config=}"
			return
			;;
		--config)
			if ((i + 1 < ${#_backup_words[@]})); then
				printf '%s\n' "${_backup_words[i+1]}"
				return
			fi
			;;
		esac
	done
	printf '%s\n' "${BACKUP_CONFIG:-/etc/backup/backup.conf}"
}

# Prints the machine names: the files *.conf in machines.dir, minus ".conf".
_backup_machines()
{
	local dir f
	dir=$(git config -f "$(_backup_config)" machines.dir 2>/dev/null)
	[[ -n $dir ]] || dir=/etc/backup/machines
	for f in "$dir"/*.conf; do
		[[ -f $f ]] || continue
		f=${f##*/}
		printf '%s\n' "${f%.conf}"
	done
}

# Prints the profile names of machine $1, from its file in machines.dir.
_backup_profiles()
{
	local dir
	[[ -n $1 ]] || return 0
	dir=$(git config -f "$(_backup_config)" machines.dir 2>/dev/null)
	[[ -n $dir ]] || dir=/etc/backup/machines
	git config -f "$dir/$1.conf" --name-only --get-regexp '^profile\.' 2>/dev/null |
		sed -n 's/^profile\.\(.*\)\.[^.]*$/\1/p' | awk '!seen[$0]++'
}

# Prints the command names, from "PROG --list".
_backup_commands()
{
	local name
	"$1" --list 2>/dev/null | while IFS=$'\t' read -r name _; do
		[[ -n $name ]] && printf '%s\n' "$name"
	done
}

# Prints the long options of "$@", one per line.
_backup_opts()
{
	local out o
	out=$("$@" --list-opts 2>/dev/null) || return 0
	for o in $out; do
		[[ $o == --* ]] && printf '%s\n' "$o"
	done
}

# Prints the options that may come before the command.  Every command takes
# the global options, so "PROG --list-opts", or else the first command's
# list, has them.
_backup_global_opts()
{
	local out first
	out=$(_backup_opts "$1")
	if [[ -z $out ]]; then
		first=$(_backup_commands "$1")
		first=${first%%$'\n'*}
		[[ -n $first ]] && out=$(_backup_opts "$1" "$first")
	fi
	printf '%s\n' "$out" --list --help --version | awk '!seen[$0]++'
}

# Succeeds if option $1 takes a value according to the list $2.
_backup_takes_value()
{
	[[ $'\n'$2$'\n' == *$'\n'"$1="$'\n'* ]]
}

# Adds the lines of $1 that start with $cur to COMPREPLY.
_backup_add()
{
	local IFS=$'\n'
	mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -W "$1" -- "$cur")
}

# Completes the value $cur of option $1 of "backup schedule".
_backup_schedule_value()
{
	local IFS=$'\n'
	case $1 in
	--window)
		_backup_add "$(printf 'W%d\n' 0 2 4 6 8 10 12 14 16 18 20 22)"
		;;
	--day)
		_backup_add $'monday\ntuesday\nwednesday\nthursday\nfriday\nsaturday\nsunday'
		;;
	--print)
		_backup_add $'systemd\ncron'
		;;
	--output)
		compopt -o filenames 2>/dev/null
		mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur")
		;;
	esac
}

# Completes the value $cur of option $1.
_backup_value()
{
	local IFS=$'\n'
	# boot-config's values: a profile of the machine given first.
	if [[ $cmd == boot-config ]]; then
		case $1 in
		--boot|--print)
			_backup_add "$(_backup_profiles "$machine")"
			return
			;;
		--format)
			_backup_add $'fstab\nnspawn\njson'
			return
			;;
		esac
	fi
	case $1 in
	--repo|--to|--receiver)
		compopt -o filenames 2>/dev/null
		mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -d -- "$cur")
		;;
	--config|--key-file)
		compopt -o filenames 2>/dev/null
		mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
		;;
	--auto-enroll)
		_backup_add $'on\noff'
		;;
	--disk-format)
		_backup_add $'dir\next4'
		;;
	--junit|--append)
		compopt -o filenames 2>/dev/null
		mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
		;;
	--window|--day|--print|--output)
		# Values of "backup schedule" ($cmd is _backup's); other commands
		# may give these names other meanings.
		[[ $cmd == schedule ]] && _backup_schedule_value "$1"
		;;
	--existing)
		# "backup restore": a machine that exists (--new takes a new name).
		[[ $cmd == restore ]] && _backup_add "$(_backup_machines)"
		;;
	esac
}

# Completes an option, its value, or (with $1 set) an operand.
_backup_option()
{
	if [[ $prev == --* ]] && _backup_takes_value "$prev" "$opts"; then
		_backup_value "$prev"
	elif [[ $cur == --*=* ]]; then
		local opt=${cur%%=*}
		local cur=${cur#*=}
		_backup_value "$opt"
	elif [[ $cur == -* || -z $1 ]]; then
		_backup_add "$opts"
		[[ ${COMPREPLY[0]} == *= ]] && compopt -o nospace 2>/dev/null
	else
		return 1
	fi
	return 0
}

_backup()
{
	local cur='' prev='' raw='' prog='' cmd='' opts='' w='' i=0 n=0 operands=0 cword=0
	local machine='' src_at=0
	local -a _backup_words

	# Bash splits words at '=' and ':' (COMP_WORDBREAKS); join "--opt=value"
	# and "MACHINE:SLOT" back together.
	n=0
	for ((i = 0; i < ${#COMP_WORDS[@]}; i++)); do
		w=${COMP_WORDS[i]}
		if ((i > 1)) && [[ $w == [=:] || ${COMP_WORDS[i-1]} == [=:] ]]; then
			_backup_words[n-1]+=$w
		else
			_backup_words[n++]=$w
		fi
		((i == COMP_CWORD)) && cword=$((n - 1))
	done
	cur=${_backup_words[cword]}
	prev=
	((cword > 0)) && prev=${_backup_words[cword-1]}
	raw=${COMP_WORDS[COMP_CWORD]}
	[[ $raw == [=:] ]] && raw=
	COMPREPLY=()

	# The program, and the command: from the program's name (backup-run),
	# else the first operand, skipping the values of options before it.
	prog=${_backup_words[0]}
	# shellcheck disable=SC2088 # a literal "~/" from the command line
	[[ $prog == "~/"* ]] && prog=$HOME/${prog#"~/"}
	i=1
	case ${prog##*/} in
	backup-?*)
		cmd=${prog##*/}
		cmd=${cmd#backup-}
		opts=$(_backup_opts "$prog")
		;;
	*)
		opts=$(_backup_global_opts "$prog")
		for (( ; i < cword; i++)); do
			w=${_backup_words[i]}
			if [[ $w == -* ]]; then
				_backup_takes_value "$w" "$opts" && ((i++))
				continue
			fi
			cmd=$w
			((i++))
			break
		done
		if [[ -z $cmd ]]; then
			_backup_option operands || _backup_add "$(_backup_commands "$prog")"
			_backup_strip
			return 0
		fi
		opts=$(_backup_opts "$prog" "$cmd")
		;;
	esac
	opts=$(printf '%s\n' "$opts" --help | awk '!seen[$0]++')

	# Count the operands before the word being completed.
	for (( ; i < cword; i++)); do
		w=${_backup_words[i]}
		if [[ $w == -* ]]; then
			_backup_takes_value "$w" "$opts" && ((i++))
			continue
		fi
		operands=$((operands + 1))
		((operands == 1)) && machine=$w
	done

	if ! _backup_option operands; then
		case $cmd in
		init|check|upgrade)
			;;
		list|boot-config|enable|cancel|schedule)
			# One machine at most.
			((operands == 0)) && _backup_add "$(_backup_machines)"
			;;
		run|rotate)
			# Any number of machines.
			_backup_add "$(_backup_machines)"
			;;
		key)
			# key SUBCOMMAND; key remove ID (ids need no passphrase).
			if ((operands == 0)); then
				_backup_add $'list\nadd\nremove\npasswd\nexport'
			elif ((operands == 1)) && [[ $machine == remove ]]; then
				_backup_add "$("$prog" key list 2>/dev/null | awk 'NR > 1 { print $1 }')"
			fi
			;;
		restore|drill)
			# restore SRC; drill MACHINE [SRC].
			src_at=0
			[[ $cmd == drill ]] && src_at=1
			if ((operands > src_at)); then
				:
			elif ((operands < src_at)); then
				_backup_add "$(_backup_machines)"
			elif [[ $cur == ?*:* ]]; then
				for w in daily weekly biweekly snapshot; do
					[[ ${cur%%:*}:$w == "$cur"* ]] &&
						COMPREPLY+=("${cur%%:*}:$w")
				done
			else
				_backup_add "$(_backup_machines)"
			fi
			;;
		receiver)
			# receiver authorize DIR KEYFILE; serve DIR; hook.
			if ((operands == 0)); then
				_backup_add $'authorize\nserve\nhook'
			elif ((operands <= 2)); then
				compopt -o filenames 2>/dev/null
				mapfile -t -O "${#COMPREPLY[@]}" COMPREPLY < <(compgen -f -- "$cur")
			fi
			;;
		*)
			_backup_add "$(_backup_machines)"
			;;
		esac
	fi
	_backup_strip
	return 0
}

# Strips from the candidates what bash does not replace: the "MACHINE:" of
# "MACHINE:SLOT" when bash split the word at ':'.
_backup_strip()
{
	local i prefix=${cur%"$raw"}
	[[ -n $prefix && $cur != --*=* ]] || return 0
	for i in "${!COMPREPLY[@]}"; do
		COMPREPLY[i]=${COMPREPLY[i]#"$prefix"}
	done
}

complete -F _backup backup
# The backup-CMD links, for the commands this backup has.
while IFS=$'\t' read -r _backup_name _; do
	[[ -n $_backup_name ]] && complete -F _backup "backup-$_backup_name"
done < <(backup --list 2>/dev/null)
unset _backup_name

# ex: filetype=sh
