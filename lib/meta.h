/*
 * meta.h — the metadata of a directory's entries, stored as one blob
 * (".meta") in each directory's tree.
 *
 * The blob holds the magic "BKM", a version byte, then one record for the
 * directory itself (name ".") and one per entry in byte order of the name.
 * A record is a varint length and then its fields in a fixed order
 * (docs/FORMAT.md); a reader skips fields it does not know at the end of a
 * record, so later versions can add fields. Extended attributes are kept raw,
 * and on Linux that includes the POSIX ACLs (system.posix_acl_access and
 * system.posix_acl_default), restored bit for bit.
 */
#ifndef META_H
#define META_H

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include "hash.h"
#include "strbuf.h"

#define META_VERSION 1

struct xattr {
	char *name;
	char *value;
	size_t len;
};

struct meta {
	char *name;
	uint32_t mode;		/* st_mode, type bits included */
	uint32_t uid, gid;
	char *uname, *gname;	/* "" when the id has no name */
	uint64_t size, ino, dev, nlink, rdev;
	struct timespec atime, mtime, ctime;
	char *link;		/* symlink target */
	struct xattr *xattrs;
	size_t nxattrs;
	uint64_t *extents;	/* sparse files: data extents as offset, length pairs */
	size_t nextents;	/* number of pairs; 0 for a file that is not sparse */
	/* Not stored: the content, from the tree entry of the same name. */
	unsigned char oid[SHA1_LEN];
	unsigned has_oid:1, chunked:1;
};

void meta_encode(struct strbuf *out, const struct meta *m);
/* Appends the blob header; meta_encode() records follow it. */
void meta_header(struct strbuf *out);
/* Decodes a whole blob into *out (nr records); ERR_CORRUPT when malformed. */
int meta_decode(const char *buf, size_t len, struct meta **out, size_t *nr);
void meta_clear(struct meta *m);
void meta_free_array(struct meta *m, size_t nr);
/* Deep copy of src's stored fields into dst (which is overwritten). */
void meta_copy(struct meta *dst, const struct meta *src);
/* Fills the stat fields of m from st. */
void meta_from_stat(struct meta *m, const struct stat *st);

#endif
