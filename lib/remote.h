/*
 * remote.h — remotes: other copies of the repository, and one interface
 * over the transports that reach them.
 *
 * A remote is an ordinary git remote in the repository's config:
 * remote.NAME.url, plus remote.NAME.push = +refs/backups/\*:refs/backups/\*
 * so that a stock `git push NAME` sends the slots too, and optionally
 * remote.NAME.sshCommand (the ssh program and options for this remote,
 * given to git as GIT_SSH_COMMAND). Its URL is one of
 *
 *   /abs/path, ./rel/path, file:///path   another folder (a path remote)
 *   ssh://[user@]host[:port]/path         git over SSH
 *   [user@]host:path                      the same, scp-like
 *   s3://BUCKET[/PREFIX]                  S3 object storage (transport_s3.c)
 *
 * A transport (struct transport_ops) moves slots and their objects; the
 * git transport (transport_git.c) drives the stock git binary for paths and
 * SSH; the S3 transport (transport_s3.c) reaches object storage behind the
 * same operations. remote_open() is where a URL picks its transport.
 */
#ifndef REMOTE_H
#define REMOTE_H

#include <stddef.h>
#include <stdint.h>

#include "repo.h"

enum remote_kind {
	REMOTE_PATH,
	REMOTE_SSH,
	REMOTE_S3,
};

struct remote {
	char *name;
	char *url;
	enum remote_kind kind;
	char *ssh_command;		/* remote.NAME.sshCommand, or NULL */
	const struct transport_ops *ops;
};

/* 1 if name may name a remote: [A-Za-z0-9_.-], not starting with '.' or
 * '-', at most 64 bytes. */
int remote_valid_name(const char *name);

/*
 * Checks a URL and tells its kind. A path is made absolute (against the
 * current folder) into *canonical, which the caller frees; other URLs are
 * copied as they are. Returns 0, or -1 after printing one line naming what
 * is wrong with it.
 */
int remote_parse_url(const char *url, enum remote_kind *kind, char **canonical);

/* "path", "ssh" or "s3". */
const char *remote_kind_name(enum remote_kind kind);

/* Adds remote name with url (already checked); ERR_EXISTS (after printing)
 * when the name is taken. */
int remote_add(struct repo *r, const char *name, const char *url);
/* Removes remote name and its keys; ERR_NOTFOUND (after printing). */
int remote_remove(struct repo *r, const char *name);
/* Every remote with a URL, sorted by name. */
int remote_list(struct repo *r, struct remote ***out, size_t *nr);
void remote_list_free(struct remote **list, size_t nr);

/*
 * Loads remote name and picks its transport; ERR_NOTFOUND (after printing)
 * when there is no such remote, -1 when its URL is bad or its transport is
 * missing from this build.
 */
int remote_open(struct remote **out, struct repo *r, const char *name);
void remote_free(struct remote *rm);

/* One ref of a push or a fetch, and what happened to it. */
enum ref_status {
	REF_UPTODATE,		/* the other side already had it */
	REF_UPDATED,		/* created or moved */
	REF_REFUSED,		/* refused; reason says why */
	REF_KEPT,		/* fetch: the local slot is newer and was kept */
};

struct ref_update {
	char *ref;		/* refs/backups/MACHINE/SLOT */
	char old_hex[41];	/* what the other side had; "" when nothing */
	char new_hex[41];
	enum ref_status status;
	char *reason;		/* REF_REFUSED, REF_KEPT: why, else NULL */
};

struct transfer_result {
	struct ref_update *refs;
	size_t nrefs;
	uint64_t objects;	/* objects sent (push) or received (fetch) */
	uint64_t bytes;		/* their bytes on the wire (pack data) */
	double seconds;
};

void transfer_result_release(struct transfer_result *res);

/*
 * What a transport does. Each returns 0 when it reached the other side and
 * every ref's fate is in res (some may be REF_REFUSED), or -1 after
 * printing why nothing could be done.
 *
 * push: sends refs (full names, each a slot of this repository) and every
 * object they need that the remote lacks, forcing each ref to the local
 * value (a slot moves to an unrelated commit); never deletes a remote ref.
 * With progress, progress goes to stderr.
 *
 * fetch: brings every object the remote's slots need that the repository
 * lacks into it, durably, and lists those slots in res (new_hex: the
 * remote's value; nothing is changed locally but objects).
 */
struct transport_ops {
	const char *name;
	int (*push)(struct repo *r, const struct remote *rm, const char *const *refs, size_t nrefs,
		    int progress, struct transfer_result *res);
	int (*fetch)(struct repo *r, const struct remote *rm, int progress, struct transfer_result *res);
};

extern const struct transport_ops transport_git;
extern const struct transport_ops transport_s3;

/* Checks an s3:// URL: 0, or -1 after one line saying what is wrong. */
int transport_s3_check_url(const char *url);

#endif
