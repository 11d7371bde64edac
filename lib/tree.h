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
/*
 * In an encrypted repository (lib/crypto.h) the entry names of a folder
 * tree are sealed instead (name_seal()), every one but .meta: the name
 * enciphered with AES-256-CTR under the name cipher subkey, its IV the
 * first 16 bytes of the HMAC-SHA-256, under the name subkey, of the
 * folder's .meta blob id, the entry's type, its object id and the name;
 * IV and ciphertext are written in unpadded base64url ('A'-'Z', 'a'-'z',
 * '0'-'9', '-', '_': nothing git fsck treats specially). So the same
 * name in the same folder with the same content seals the same way and an
 * unchanged folder keeps its tree, while a name changed, moved to another
 * folder, or put on another object (two files' blobs swapped) no longer
 * opens. Chunk trees keep their %08x names. Readers find entries by real
 * name through struct tree_names, which opens them all.
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

/* The longest real name sealed (Linux's NAME_MAX), and the IV's length. */
#define NAME_MAX_LEN 255
#define NAME_SIV_LEN 16

struct crypto_keys;
/*
 * Appends the sealed spelling of name, an entry of mode (MODE_TREE or
 * MODE_BLOB) and id oid in the folder tree whose .meta blob is ctx.
 * -1 after reporting a name too long or a libcrypto failure.
 */
int name_seal(struct strbuf *out, const struct crypto_keys *k, const unsigned char ctx[SHA1_LEN],
	      unsigned mode, const unsigned char oid[SHA1_LEN], const char *name);
/*
 * Appends the real name that stored seals for that entry; ERR_CORRUPT,
 * printing nothing and leaving out as it was, when it does not open:
 * not base64url, altered, or bound to another folder, type or object.
 */
int name_unseal(struct strbuf *out, const struct crypto_keys *k, const unsigned char ctx[SHA1_LEN],
		unsigned mode, const unsigned char oid[SHA1_LEN], const char *stored);

/*
 * The entries of one folder tree by real name. With keys k (an encrypted
 * repository) tree_names_load() opens every name, counting those that do
 * not open (tree_names_bad()), and ERR_CORRUPT when t has no .meta; without
 * them *out is NULL and costs nothing. tree_names_find() then gives the
 * entry named name (escaped, or looked up among the opened names), or NULL.
 * The entries belong to t, which must outlive the names.
 */
struct tree_names;
struct git_tree;
struct git_tree_entry;
int tree_names_load(struct tree_names **out, const struct crypto_keys *k, const struct git_tree *t);
const struct git_tree_entry *tree_names_find(const struct tree_names *tn, const struct git_tree *t,
					     const char *name);
size_t tree_names_bad(const struct tree_names *tn);
void tree_names_free(struct tree_names *tn);

#endif
