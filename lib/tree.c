#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tree.h"

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
