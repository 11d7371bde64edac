/*
 * remote.h — remotes: other copies of the repository, and one interface
 * over the transports that reach them.
 *
 * A remote is an ordinary git remote in the repository's config:
 * remote.NAME.url, plus remote.NAME.push = +refs/backups/\*:refs/backups/\*
 * so that a stock `git push NAME` sends the slots too, and optionally
 * remote.NAME.sshCommand (the ssh program and options for this remote,
 * given to git as GIT_SSH_COMMAND) and remote.NAME.pushState (false: the
 * remote keeps its own service state; push learns it). Its URL is one of
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
	long push_wait;			/* push to S3: how long to wait for a rotate of
					 * the bucket to end (< 0: ten minutes); 0 until
					 * the caller sets it */
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
	REF_BUSY,		/* fetch: the machine's lock is held by another job */
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
	char *messages;		/* the remote's own "remote: ..." lines, or NULL */
};

void transfer_result_release(struct transfer_result *res);

/* "pushed" (push) or "fetched", "up-to-date", "refused", "kept", "busy". */
const char *ref_status_name(enum ref_status s, int push);
/* The machine (not NUL-terminated: mlen bytes) and slot of a slot ref;
 * for another ref, machine is "" and slot the whole name. */
void ref_split(const char *ref, const char **machine, size_t *mlen, const char **slot);
/* Appends res->refs as a JSON array of {ref, machine, slot, old, new,
 * status, reason} objects (man pages of push, fetch and clone). */
struct strbuf;
void transfer_refs_json(struct strbuf *sb, const struct transfer_result *res, int push);

/*
 * What a transport does. Each returns 0 when it reached the other side and
 * every ref's fate is in res (some may be REF_REFUSED), or -1 after
 * printing why nothing could be done.
 *
 * push: sends refs (full names, each a slot of this repository) and every
 * object they need that the remote lacks, forcing each ref to the local
 * value (a slot moves to an unrelated commit); never deletes a remote ref.
 * With progress, progress goes to stderr. To S3 it holds a lock object on
 * the bucket, and returns ERR_LOCKED (printed) when a rotate of the bucket
 * still held its own after rm->push_wait seconds.
 *
 * fetch: brings every object that the remote's slots (and its service state
 * ref) need and the repository lacks into it, durably, and lists those refs
 * in res: new_hex is the remote's value, status REF_UPDATED when its objects
 * are here, REF_REFUSED when not. Nothing but objects changes locally; the
 * caller holds the repository shared so that space reclamation leaves them.
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

/* What retention on an S3 remote did (or, in a dry run, plans). */
struct slot_plan;
struct remote_rotate {
	struct slot_plan *plans;	/* one per machine on the bucket */
	size_t nplans;
	size_t unjudged;		/* machines kept as they are (see below) */
	size_t manifests_written;	/* slots the rules moved */
	size_t manifests_deleted;
	size_t packs_deleted;		/* each with its index */
	uint64_t bytes_deleted;
	size_t locked;			/* objects Object Lock kept */
	time_t locked_until;		/* the latest of their locks */
	size_t young;			/* packs no manifest names, left for a day */
	size_t packs_repacked;		/* partly dead packs rewritten */
	size_t packs_written;		/* the packs they were rewritten into */
	uint64_t bytes_fetched;		/* every byte read from the bucket */
};

/*
 * Retention on the S3 remote rm (rotate --remote): the seed's rules at
 * now, with each machine's weekly day from the bucket's service state,
 * decide which of the bucket's slot values stay (of the machines given,
 * every one when nmachines is 0); the manifests that are no slot's value
 * and the packs no remaining manifest names are deleted (a pack partly
 * dead repacked first), unless Object Lock
 * keeps them (counted, never an error). A machine whose slot manifest says
 * neither when its backup was taken nor its kind, and whose backup this
 * repository lacks, is kept as it is, with a warning. With dry_run only the
 * plans are made. Unless dry_run, it holds a lock object on the bucket and
 * deletes nothing while a push holds one: then ERR_LOCKED, printed.
 * Returns 0, ERR_LOCKED, or -1 after printing why. The layout, the locks
 * and the order of the deletions are in transport_s3.c and docs/FORMAT.md.
 */
int transport_s3_rotate(struct repo *r, const struct remote *rm, const char *const *machines,
			size_t nmachines, time_t now, int dry_run, struct remote_rotate *out);
void remote_rotate_release(struct remote_rotate *rr);

/*
 * Fetches from rm and moves the slots, under each machine's lock (waiting
 * up to wait seconds, < 0 for ever): a slot the repository lacks is
 * created; a slot is moved only to a backup of that machine and that kind
 * (automatic, or snapshot for the snapshot slot) newer than the one it
 * holds, so a newer local backup is never replaced (REF_KEPT), and one
 * machine's backup never lands in another's slot (REF_REFUSED). With
 * clone, the remote's service state ref replaces the repository's (which
 * must hold no backup); else the local state is kept and not listed.
 * Holds the repository shared throughout. Returns 0 with every ref's fate
 * in res, or -1 after printing why nothing could be fetched.
 */
int remote_fetch(struct repo *r, const struct remote *rm, int progress, int clone, long wait,
		 struct transfer_result *res);

#endif
