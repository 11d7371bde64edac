/*
 * proc.h — running the user's commands (hooks, bootCommand).
 *
 * A command runs with /bin/sh -c in a documented, minimal environment, not
 * whatever backup inherited from cron, systemd or a shell: PATH is
 * /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin, HOME, LANG,
 * LC_ALL and TZ are passed on when set, and the caller adds its own
 * BACKUP_* variables. Standard input is /dev/null.
 */
#ifndef PROC_H
#define PROC_H

/*
 * Runs cmd; env is a NULL-terminated list of "NAME=VALUE" to add. With
 * stdout_to_stderr the command's output goes to stderr (when stdout must
 * stay one JSON document). Returns its exit status (128 + the signal that
 * killed it), or -1 after printing why it could not run.
 */
int proc_shell(const char *what, const char *cmd, const char *const *env, int stdout_to_stderr);

/*
 * Runs a tool (mke2fs, debugfs, mount: searched in PATH, then /usr/sbin
 * and /sbin) with argv, LC_ALL=C so its messages can be matched, input (or
 * /dev/null) on stdin, and its stdout and stderr collected into out.
 * Returns its exit status (127 when it could not be run), or -1 after
 * printing why it could not start.
 */
struct strbuf;
int proc_run(const char *const *argv, const char *input, struct strbuf *out);

#endif
