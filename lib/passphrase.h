/*
 * passphrase.h — where the passphrase of an encrypted repository comes from.
 *
 * The way restic users know, first match wins:
 *
 *  - PREFIX_FILE names a file; the passphrase is its first line (without
 *    the line's end, "\n" or "\r\n").
 *  - PREFIX_COMMAND is a shell command (/bin/sh -c, with backup's own
 *    environment, standard input and error, so that a password manager can
 *    ask its own questions); the passphrase is the first line of its
 *    output, and a non-zero exit status fails.
 *  - Otherwise a prompt on the terminal, /dev/tty, with echo off (standard
 *    input stays free for data). Without a terminal it fails, naming the
 *    two variables.
 *
 * PREFIX is BACKUP_PASSWORD for the passphrase that opens a repository, and
 * BACKUP_NEW_PASSWORD for the one `backup key add` and `key passwd` set.
 * Setting both variables of one prefix is an error, as is an empty
 * passphrase. A passphrase is never taken from the command line (other
 * users read it in ps), never printed, never logged: messages name the
 * variable, never the file's contents or the command (which may hold the
 * secret itself). Memory that held it is wiped before it is freed.
 */
#ifndef PASSPHRASE_H
#define PASSPHRASE_H

#include <stddef.h>

/* The longest passphrase taken, in bytes. */
#define PASSPHRASE_MAX 4096

struct passphrase {
	char *buf;	/* NUL-terminated; may hold NUL bytes from a file */
	size_t len;
};

/*
 * Reads a passphrase into *out (free it with passphrase_free()). prompt is
 * what the terminal shows, e.g. "passphrase for 'repo': "; with confirm, the
 * terminal asks twice ("again: ") and refuses two that differ. Returns 0,
 * or -1 after printing one line.
 */
int passphrase_read(struct passphrase *out, const char *prefix, const char *prompt, int confirm);

/* Wipes and frees the passphrase; leaves *p empty. Accepts an empty one. */
void passphrase_free(struct passphrase *p);

#endif
