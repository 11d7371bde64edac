/*
 * tree.h — git tree objects and how file names are stored in them.
 *
 * A name is stored as it is unless it starts with '.', '%' or a byte >=
 * 0x80, starts with 'g' or 'G' and contains '~', or contains a backslash.
 * Then its first byte is written as %XX and so is every later '%' and '\'.
 * That covers every name git fsck refuses or treats specially (".git" and
 * its NTFS and HFS+ spellings, also after a backslash, ".gitmodules",
 * "git~1", ...), keeps names beginning with '.' free for our own entries
 * (".meta"), and leaves all other names readable in `git ls-tree`. Names
 * may hold any byte but '/' and NUL, newlines and non-UTF-8 included.
 */
#ifndef TREE_H
#define TREE_H

#include <stddef.h>

#include "hash.h"
#include "strbuf.h"

#define MODE_TREE 040000
#define MODE_BLOB 0100644
#define META_NAME ".meta"

struct tree_entry {
	char *name;		/* stored name */
	unsigned mode;		/* MODE_TREE or MODE_BLOB */
	unsigned char oid[SHA1_LEN];
};

/* Sorts entries in git's order and appends the tree object's payload. */
void tree_encode(struct strbuf *out, struct tree_entry *e, size_t nr);

void name_escape(struct strbuf *out, const char *name);
/* Appends the name that stored encodes; -1 if stored is not a valid encoding. */
int name_unescape(struct strbuf *out, const char *stored);

#endif
