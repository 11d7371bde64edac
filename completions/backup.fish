# fish completion for backup(1)
#
# The commands and their options are learned from the program itself, when
# this file is loaded:
#
#   backup --list             one line per command: NAME<TAB>summary
#   backup CMD --list-opts    the long options on one line, with a trailing
#                             '=' on those that take a value
#   backup CMD --help         the options' descriptions
#
# so this file knows only how to complete option values and operands.  It
# completes "backup CMD ..." and the "backup-CMD ..." links.

# Prints the global config file: --config on the line, else $BACKUP_CONFIG.
function __backup_config
    set -l tokens (commandline -opc)
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case '--config=?*'
                string replace -- --config= '' $tokens[$i]
                return
            case --config
                if test $i -lt (count $tokens)
                    echo -- $tokens[(math $i + 1)]
                    return
                end
        end
    end
    if set -q BACKUP_CONFIG
        echo -- $BACKUP_CONFIG
    else
        echo /etc/backup/backup.conf
    end
end

# Prints the machine names: the files *.conf in machines.dir, minus ".conf".
function __backup_machines
    set -l dir (git config -f (__backup_config) machines.dir 2>/dev/null)
    test -n "$dir"; or set dir /etc/backup/machines
    for f in $dir/*.conf
        test -f $f; and string replace -r '^.*/(.*)\.conf$' '$1' -- $f
    end
end

# Prints the repository: --repo on the line, else $BACKUP_REPO, else the
# global config's repository.path.
function __backup_repo
    set -l tokens (commandline -opc)
    for i in (seq 2 (count $tokens))
        switch $tokens[$i]
            case '--repo=?*'
                string replace -- --repo= '' $tokens[$i]
                return
            case --repo
                if test $i -lt (count $tokens)
                    echo -- $tokens[(math $i + 1)]
                    return
                end
        end
    end
    if set -q BACKUP_REPO; and test -n "$BACKUP_REPO"
        echo -- $BACKUP_REPO
        return
    end
    set -l r (git config -f (__backup_config) repository.path 2>/dev/null)
    test -n "$r"; or set r /var/lib/backup/repo
    echo -- $r
end

# Prints the remote names: remote.NAME.url in the repository's config.
function __backup_remotes
    git config -f (__backup_repo)/config --name-only --get-regexp '^remote\..*\.url$' 2>/dev/null |
        string replace -r '^remote\.(.*)\.url$' '$1'
end

# Prints the profile names of the machine given first on the command line.
function __backup_profiles
    set -l p (__backup_parse)
    set -q p[2]; or return
    set -l dir (git config -f (__backup_config) machines.dir 2>/dev/null)
    test -n "$dir"; or set dir /etc/backup/machines
    git config -f $dir/$p[2].conf --name-only --get-regexp '^profile\.' 2>/dev/null |
        string replace -r '^profile\.(.*)\.[^.]*$' '$1' | awk '!seen[$0]++'
end

# The options that take a value (without their '='), to skip their values
# before the command; set by __backup_define.
set -g __backup_value_opts

# Prints the command being completed, and then the operands before the
# cursor, one a line; prints nothing if there is no command yet.
function __backup_parse
    set -l tokens (commandline -opc)
    set -l prog (string replace -r '.*/' '' -- $tokens[1])
    set -l cmd
    set -l rest $tokens[2..-1]
    if string match -q -- 'backup-?*' $prog
        set cmd (string replace -- backup- '' $prog)
    else
        while set -q rest[1]
            set -l w $rest[1]
            set -e rest[1]
            if string match -q -- '-*' $w
                contains -- $w $__backup_value_opts; and set -e rest[1]
                continue
            end
            set cmd $w
            break
        end
    end
    test -n "$cmd"; or return 1
    echo $cmd
    set -l opts (__backup_opts $cmd | string match -- '*=')
    while set -q rest[1]
        set -l w $rest[1]
        set -e rest[1]
        if string match -q -- '-*' $w
            contains -- $w= $opts; and set -e rest[1]
            continue
        end
        echo -- $w
    end
end

function __backup_needs_command
    not __backup_parse >/dev/null
end

function __backup_using
    set -l p (__backup_parse)
    and test "$p[1]" = $argv[1]
end

# The long options of command $argv[1] (with their '='), cached.
function __backup_opts
    set -l var __backup_opts_(string escape --style=var -- $argv[1])
    if not set -q $var
        set -g $var (backup $argv[1] --list-opts 2>/dev/null | string split ' ' | string match -- '--?*')
    end
    string join \n -- $$var
end

# The --help text of command $argv[1] (of backup itself if empty), cached.
function __backup_help
    set -l var __backup_help_(string escape --style=var -- "$argv[1]")
    if not set -q $var
        if test -n "$argv[1]"
            set -g $var (backup $argv[1] --help 2>/dev/null)
        else
            set -g $var (backup --help 2>/dev/null)
        end
    end
    string join \n -- $$var
end

# Completes an operand.
function __backup_operands
    set -l p (__backup_parse)
    or return
    set -l cmd $p[1]
    set -l nr (math (count $p) - 1)
    switch $cmd
        case init check upgrade
            return
        case list boot-config enable cancel schedule
            # One machine at most.
            test $nr -eq 0; and __backup_machines
        case run rotate
            __backup_machines
        case remote
            # remote add NAME URL | list | remove NAME.
            switch $nr
                case 0
                    printf '%s\n' add list remove
                case 1
                    test "$p[2]" = remove; and __backup_remotes
                case 2
                    test "$p[2]" = add; and __fish_complete_directories
            end
        case push
            # push [REMOTE [MACHINE...]].
            if test $nr -eq 0
                __backup_remotes
            else
                __backup_machines
            end
        case fetch
            test $nr -eq 0; and __backup_remotes
        case clone
            # clone URL [DIR]: a URL is not completed, a folder is.
            __fish_complete_directories
        case key
            # key SUBCOMMAND; key remove ID (ids need no passphrase).
            if test $nr -eq 0
                printf '%s\n' list add remove passwd export
            else if test $nr -eq 1; and test "$p[2]" = remove
                backup key list 2>/dev/null | string match -r -v '^ID ' | string replace -r ' .*' ''
            end
        case restore drill
            # restore SRC; drill MACHINE [SRC].
            if test $cmd = drill
                test $nr -eq 0; and __backup_machines
                test $nr -eq 1; or return
            else
                test $nr -eq 0; or return
            end
            set -l cur (commandline -ct)
            if string match -q -- '?*:*' $cur
                set -l m (string replace -r ':.*' '' -- $cur)
                printf '%s\n' $m:daily $m:weekly $m:biweekly $m:snapshot
            else
                __backup_machines
            end
        case receiver
            # receiver authorize DIR KEYFILE; serve DIR; hook.
            switch $nr
                case 0
                    printf '%s\n' authorize serve hook
                case 1
                    __fish_complete_directories (commandline -ct)
                case 2
                    __fish_complete_path (commandline -ct)
            end
        case '*'
            __backup_machines
    end
end

# Defines the completion of option $argv[3] of command $argv[2] for the
# command name $argv[1], under the condition $argv[4].
function __backup_define_opt
    set -l name $argv[1]
    set -l cmd $argv[2]
    set -l opt $argv[3]
    set -l cond $argv[4]
    set -l long (string replace -r -- '^--(.*?)=?$' '$1' $opt)
    set -l args -c $name -l $long
    test -n "$cond"; and set -a args -n $cond
    # Description and short name from "    -q, --quiet     text" in --help.
    set -l short
    set -l desc
    __backup_help $cmd |
        string match -q -r -- '^\s+(?:-(?<short>\w), )?--'(string escape --style=regex -- $long)'(?: \S+)?\s+(?<desc>.*)$'
    test -n "$short"; and set -a args -s $short
    test -n "$desc"; and set -a args -d $desc
    # boot-config's values: a profile of the machine given first.
    if test "$cmd" = boot-config; and contains -- $long boot print format
        if test $long = format
            set -a args -x -a 'fstab nspawn json'
        else
            set -a args -x -a '(__backup_profiles)'
        end
        complete $args
        return
    end
    if string match -q -- '*=' $opt
        switch $long
            case repo to receiver
                set -a args -x -a '(__fish_complete_directories)'
            case append
                set -a args -r -F
            case config key-file
                set -a args -r -F
            case auto-enroll
                set -a args -x -a 'on off'
            case disk-format
                set -a args -x -a 'dir ext4'
            case junit
                set -a args -r -F
            case existing
                # "backup restore --existing" names a machine that exists
                # (--new takes a new name).
                set -a args -x
                test "$cmd" = restore; and set -a args -a '(__backup_machines)'
            case remote
                # "backup rotate --remote REMOTE".
                set -a args -x -a '(__backup_remotes)'
            case endpoint region
                # "backup clone --endpoint URL --region R" of an S3
                # service: nothing here to offer.
                set -a args -x
            case window day print output
                # Values of "backup schedule"; others may differ.
                set -a args -x
                if test "$cmd" = schedule
                    switch $long
                        case window
                            set -a args -a 'W0 W2 W4 W6 W8 W10 W12 W14 W16 W18 W20 W22'
                        case day
                            set -a args -a 'monday tuesday wednesday thursday friday saturday sunday'
                        case print
                            set -a args -a 'systemd cron'
                        case output
                            set -a args -a '(__fish_complete_directories)'
                    end
                end
            case '*'
                set -a args -x
        end
    end
    complete $args
end

function __backup_define
    set -l cmds (backup --list 2>/dev/null | string replace -r '\t.*' '')
    set -q cmds[1]; or return

    # Commands, with their summaries, from "backup --list".
    complete -c backup -f
    complete -c backup -n __backup_needs_command -a '(backup --list 2>/dev/null)'

    # Global options, before the command: every command takes them, so
    # "backup --list-opts", or else the first command's list, has them.
    set -l gopts (backup --list-opts 2>/dev/null | string split ' ' | string match -- '--?*')
    set -l gcmd ''
    if not set -q gopts[1]
        set gcmd $cmds[1]
        set gopts (__backup_opts $gcmd)
    end
    set -g __backup_value_opts (string match -- '*=' $gopts | string replace -r '=$' '')
    for o in $gopts
        __backup_define_opt backup "$gcmd" $o __backup_needs_command
    end
    complete -c backup -n __backup_needs_command -l list -d 'list the commands'
    contains -- --version $gopts
    or complete -c backup -n __backup_needs_command -l version -d 'print the version'
    complete -c backup -n __backup_needs_command -s h -l help -d 'print the usage'

    # Each command's options and operands, as "backup CMD" and "backup-CMD".
    for c in $cmds
        complete -c backup-$c -f
        complete -c backup -n "__backup_using $c" -a '(__backup_operands)'
        complete -c backup-$c -a '(__backup_operands)'
        for o in (__backup_opts $c)
            __backup_define_opt backup $c $o "__backup_using $c"
            __backup_define_opt backup-$c $c $o ''
        end
        complete -c backup -n "__backup_using $c" -s h -l help -d 'print the usage'
        complete -c backup-$c -s h -l help -d 'print the usage'
    end
end

__backup_define
