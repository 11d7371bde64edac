/*
 * usage.h — error reporting and the exit codes of the contract.
 *
 * Library functions return 0 on success and a negative code on failure.
 * The few failures a caller acts on have names (ERR_NOTFOUND, ...) and print
 * nothing; every other failure is reported once, where it happens, with
 * error(), which prints "backup: MESSAGE" on stderr and returns -1 so that
 * `return error("cannot open '%s': %s", path, strerror(errno));` reads well.
 */
#ifndef USAGE_H
#define USAGE_H

#include <stdarg.h>
#include <sys/types.h>

/* Exit statuses, documented in backup(1). */
enum exit_code {
	EXIT_OK = 0,
	EXIT_ERROR = 1,
	EXIT_USAGE = 2,
	EXIT_PARTIAL = 3,	/* done, but some files could not be read */
	EXIT_NOSPACE = 4,	/* not enough space */
	EXIT_PUSH = 5,		/* backed up, but the push after it failed (run --push) */
	EXIT_BUSY = 75,		/* the lock is held */
	EXIT_INTERRUPTED = 130,	/* stopped by SIGINT or SIGTERM */
};

/* Named failures: returned, never printed by the function that returns them. */
enum err_code {
	ERR_GENERIC = -1,
	ERR_NOTFOUND = -2,
	ERR_LOCKED = -3,
	ERR_NOSPACE = -4,
	ERR_CORRUPT = -5,
	ERR_EXISTS = -6,
	ERR_PARTIAL = -7,
	ERR_NEWER = -8,		/* written by a newer version of backup */
};

/*
 * Set by the SIGINT/SIGTERM handler that long jobs install: they stop at the
 * next safe point, remove their temporary files, and exit 130.
 */
extern volatile int interrupted;
void catch_interrupts(void);

/* The umask backup was started with (it runs with 077 itself): for files
 * the user asked for that hold no backed-up data, such as reports. */
extern mode_t user_umask;
/* The soft limit of open files backup was started with (it raises its
 * own), given back to the programs it runs; 0: not changed. */
extern unsigned long long user_nofile;

/* Verbosity: -1 with -q, 0 by default, 1 with -v. */
extern int verbosity;

int error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void warning(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Prints like error() and exits with status 1; for "cannot happen" cases. */
void die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
/* Prints "backup: MESSAGE" only at -v. */
void verbose(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Reports the last libgit2 error with a prefix; returns -1. */
int error_git(const char *what);

/* Allocation that never returns NULL: it dies on exhaustion. */
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Frees each of the n strings of v, then v itself; v may be NULL. */
void free_strv(char **v, size_t n);

/* Maps a named failure to its exit status (ERR_LOCKED -> EXIT_BUSY, ...). */
int exit_status(int err);

#endif
