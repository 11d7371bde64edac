#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "crypto.h"
#include "tree.h"
#include "usage.h"

static int needs_escape(const char *name)
{
	unsigned char c = name[0];

	return c == '.' || c == '%' || c >= 0x80 || strchr(name, '\\') ||
	       ((c == 'g' || c == 'G') && strchr(name, '~'));
}

void name_escape(struct strbuf *out, const char *name)
{
	const char *p;

	if (!needs_escape(name)) {
		strbuf_addstr(out, name);
		return;
	}
	strbuf_addf(out, "%%%02X", (unsigned char)name[0]);
	for (p = name + 1; *p; p++) {
		if (*p == '%' || *p == '\\')
			strbuf_addf(out, "%%%02X", (unsigned char)*p);
		else
			strbuf_addch(out, *p);
	}
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

int name_unescape(struct strbuf *out, const char *stored)
{
	struct strbuf check = STRBUF_INIT;
	size_t start = out->len;
	const char *p;
	int ok;

	if (!*stored || strchr(stored, '/'))
		return -1;
	if (stored[0] != '%') {
		if (needs_escape(stored))
			return -1;
		strbuf_addstr(out, stored);
		return 0;
	}
	for (p = stored; *p; p++) {
		int hi, lo;

		if (*p != '%') {
			strbuf_addch(out, *p);
			continue;
		}
		hi = hexval(p[1]);
		lo = hi < 0 ? -1 : hexval(p[2]);
		if (lo < 0 || !(hi << 4 | lo)) {
			strbuf_setlen(out, start);
			return -1;
		}
		strbuf_addch(out, hi << 4 | lo);
		p += 2;
	}
	/* Only the canonical encoding is valid, so that a name has one spelling. */
	name_escape(&check, out->buf + start);
	ok = !strcmp(check.buf, stored);
	strbuf_release(&check);
	if (!ok) {
		strbuf_setlen(out, start);
		return -1;
	}
	return 0;
}

/* git compares a tree entry's name as if it ended in '/'. */
static int cmp_git(const void *a, const void *b)
{
	const struct tree_entry *x = a, *y = b;
	size_t lx = strlen(x->name), ly = strlen(y->name), n = lx < ly ? lx : ly;
	int c = memcmp(x->name, y->name, n);
	unsigned char cx, cy;

	if (c)
		return c;
	cx = lx > n ? (unsigned char)x->name[n] : x->mode == MODE_TREE ? '/' : 0;
	cy = ly > n ? (unsigned char)y->name[n] : y->mode == MODE_TREE ? '/' : 0;
	return cx - cy;
}

void tree_encode(struct strbuf *out, struct tree_entry *e, size_t nr)
{
	size_t i;

	if (nr)
		qsort(e, nr, sizeof(*e), cmp_git);
	for (i = 0; i < nr; i++) {
		strbuf_addf(out, "%o %s", e[i].mode, e[i].name);
		strbuf_addch(out, '\0');
		strbuf_add(out, e[i].oid, SHA1_LEN);
	}
}

/* ---- sealed names ---------------------------------------------------------- */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static void b64_add(struct strbuf *out, const unsigned char *p, size_t n)
{
	char *o;
	size_t i;

	strbuf_grow(out, (n * 4 + 2) / 3);
	o = out->buf + out->len;
	for (i = 0; i + 2 < n; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];

		*o++ = b64url[v >> 18];
		*o++ = b64url[(v >> 12) & 63];
		*o++ = b64url[(v >> 6) & 63];
		*o++ = b64url[v & 63];
	}
	if (n - i == 1) {
		*o++ = b64url[p[i] >> 2];
		*o++ = b64url[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		uint32_t v = (uint32_t)p[i] << 8 | p[i + 1];

		*o++ = b64url[v >> 10];
		*o++ = b64url[(v >> 4) & 63];
		*o++ = b64url[(v & 15) << 2];
	}
	strbuf_setlen(out, o - out->buf);
}

static int b64_val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	return c == '-' ? 62 : c == '_' ? 63 : -1;
}

/* Decodes canonical unpadded base64url (no stray bits); -1 otherwise. */
static int b64_decode(unsigned char *out, size_t *n, const char *s, size_t len)
{
	size_t i, o = 0;
	uint32_t acc = 0;
	int bits = 0;

	if (len % 4 == 1)
		return -1;
	for (i = 0; i < len; i++) {
		int v = b64_val(s[i]);

		if (v < 0)
			return -1;
		acc = acc << 6 | (uint32_t)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			out[o++] = (unsigned char)(acc >> bits);
			acc &= (1u << bits) - 1;
		}
	}
	if (acc)
		return -1;
	*n = o;
	return 0;
}

/* The synthetic IV: the MAC of everything the name is bound to. */
static void name_siv(unsigned char siv[NAME_SIV_LEN], const struct crypto_keys *k,
		     const unsigned char ctx[SHA1_LEN], unsigned mode, const unsigned char oid[SHA1_LEN],
		     const char *name, size_t len)
{
	unsigned char mac[CRYPTO_MAC_LEN], m[2 * SHA1_LEN + 1 + NAME_MAX_LEN];

	memcpy(m, ctx, SHA1_LEN);
	m[SHA1_LEN] = mode == MODE_TREE ? 't' : 'b';
	memcpy(m + SHA1_LEN + 1, oid, SHA1_LEN);
	memcpy(m + 2 * SHA1_LEN + 1, name, len);
	crypto_keys_mac(mac, k, CRYPTO_NAME, m, 2 * SHA1_LEN + 1 + len);
	memcpy(siv, mac, NAME_SIV_LEN);
}

int name_seal(struct strbuf *out, const struct crypto_keys *k, const unsigned char ctx[SHA1_LEN],
	      unsigned mode, const unsigned char oid[SHA1_LEN], const char *name)
{
	size_t len = strlen(name);
	unsigned char buf[NAME_SIV_LEN + NAME_MAX_LEN];

	if (len > NAME_MAX_LEN)
		return error("name '%s' is longer than %d bytes", name, NAME_MAX_LEN);
	name_siv(buf, k, ctx, mode, oid, name, len);
	if (crypto_keys_ctr(buf + NAME_SIV_LEN, k, CRYPTO_NAME_CIPHER, buf, name, len) < 0)
		return -1;
	b64_add(out, buf, NAME_SIV_LEN + len);
	return 0;
}

int name_unseal(struct strbuf *out, const struct crypto_keys *k, const unsigned char ctx[SHA1_LEN],
		unsigned mode, const unsigned char oid[SHA1_LEN], const char *stored)
{
	unsigned char buf[NAME_SIV_LEN + NAME_MAX_LEN + 3], siv[NAME_SIV_LEN];
	char name[NAME_MAX_LEN + 1];
	size_t slen = strlen(stored), n;

	if (slen > (NAME_SIV_LEN + NAME_MAX_LEN + 2) / 3 * 4 || b64_decode(buf, &n, stored, slen) < 0 ||
	    n <= NAME_SIV_LEN || n > NAME_SIV_LEN + NAME_MAX_LEN)
		return ERR_CORRUPT;
	n -= NAME_SIV_LEN;
	if (crypto_keys_ctr((unsigned char *)name, k, CRYPTO_NAME_CIPHER, buf, buf + NAME_SIV_LEN, n) < 0)
		return -1;
	name[n] = '\0';
	name_siv(siv, k, ctx, mode, oid, name, n);
	if (!crypto_equal(siv, buf, NAME_SIV_LEN) || memchr(name, '\0', n) || memchr(name, '/', n) ||
	    !strcmp(name, ".") || !strcmp(name, ".."))
		return ERR_CORRUPT;
	strbuf_add(out, name, n);
	return 0;
}

/* ---- a folder tree's entries by real name ---------------------------------- */

struct named {
	char *name;
	const git_tree_entry *e;
};

struct tree_names {
	struct named *v;
	size_t nr;
	size_t bad;
};

static int named_cmp(const void *a, const void *b)
{
	return strcmp(((const struct named *)a)->name, ((const struct named *)b)->name);
}

int tree_names_load(struct tree_names **out, const struct crypto_keys *k, const git_tree *t)
{
	const git_tree_entry *meta;
	struct tree_names *tn;
	struct strbuf sb = STRBUF_INIT;
	size_t i, n;

	*out = NULL;
	if (!k)
		return 0;
	meta = git_tree_entry_byname(t, META_NAME);
	if (!meta)
		return ERR_CORRUPT;
	n = git_tree_entrycount(t);
	tn = xcalloc(1, sizeof(*tn));
	tn->v = xcalloc(n ? n : 1, sizeof(*tn->v));
	for (i = 0; i < n; i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);
		unsigned mode = git_tree_entry_type(e) == GIT_OBJECT_TREE ? MODE_TREE : MODE_BLOB;

		if (e == meta)
			continue;
		strbuf_reset(&sb);
		if (name_unseal(&sb, k, git_tree_entry_id(meta)->id, mode, git_tree_entry_id(e)->id,
				git_tree_entry_name(e)) < 0) {
			tn->bad++;
			continue;
		}
		tn->v[tn->nr].name = strbuf_detach(&sb, NULL);
		tn->v[tn->nr++].e = e;
	}
	strbuf_release(&sb);
	qsort(tn->v, tn->nr, sizeof(*tn->v), named_cmp);
	*out = tn;
	return 0;
}

const git_tree_entry *tree_names_find(const struct tree_names *tn, const git_tree *t, const char *name)
{
	struct strbuf sb = STRBUF_INIT;
	const git_tree_entry *te;
	struct named key, *hit;

	if (tn) {
		key.name = (char *)name;
		hit = bsearch(&key, tn->v, tn->nr, sizeof(*tn->v), named_cmp);
		return hit ? hit->e : NULL;
	}
	name_escape(&sb, name);
	te = git_tree_entry_byname(t, sb.buf);
	strbuf_release(&sb);
	return te;
}

size_t tree_names_bad(const struct tree_names *tn)
{
	return tn ? tn->bad : 0;
}

void tree_names_free(struct tree_names *tn)
{
	size_t i;

	if (!tn)
		return;
	for (i = 0; i < tn->nr; i++)
		free(tn->v[i].name);
	free(tn->v);
	free(tn);
}
