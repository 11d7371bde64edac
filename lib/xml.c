#include <stdlib.h>
#include <string.h>

#include "strbuf.h"
#include "usage.h"
#include "xml.h"

#define XML_MAX_DEPTH 64

struct parser {
	const char *p;
	const char *end;
};

static int starts(const struct parser *ps, const char *s)
{
	size_t n = strlen(s);

	return (size_t)(ps->end - ps->p) >= n && !memcmp(ps->p, s, n);
}

static int is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static void skip_space(struct parser *ps)
{
	while (ps->p < ps->end && is_space(*ps->p))
		ps->p++;
}

/* Moves past the next occurrence of s; -1 when there is none. */
static int skip_past(struct parser *ps, const char *s)
{
	size_t n = strlen(s);

	while ((size_t)(ps->end - ps->p) >= n) {
		if (!memcmp(ps->p, s, n)) {
			ps->p += n;
			return 0;
		}
		ps->p++;
	}
	return -1;
}

/* Skips comments, processing instructions and white space; refuses a
 * DOCTYPE. Returns 0, or -1 on an unterminated or refused construct. */
static int skip_misc(struct parser *ps)
{
	for (;;) {
		skip_space(ps);
		if (starts(ps, "<!--")) {
			ps->p += 4;
			if (skip_past(ps, "-->"))
				return -1;
		} else if (starts(ps, "<?")) {
			ps->p += 2;
			if (skip_past(ps, "?>"))
				return -1;
		} else if (starts(ps, "<!")) {
			return -1;
		} else {
			return 0;
		}
	}
}

static int is_name_end(char c)
{
	return is_space(c) || c == '/' || c == '>' || c == '=' || c == '<';
}

static void add_utf8(struct strbuf *sb, unsigned long c)
{
	if (c < 0x80) {
		strbuf_addch(sb, (int)c);
	} else if (c < 0x800) {
		strbuf_addch(sb, (int)(0xc0 | (c >> 6)));
		strbuf_addch(sb, (int)(0x80 | (c & 0x3f)));
	} else if (c < 0x10000) {
		strbuf_addch(sb, (int)(0xe0 | (c >> 12)));
		strbuf_addch(sb, (int)(0x80 | ((c >> 6) & 0x3f)));
		strbuf_addch(sb, (int)(0x80 | (c & 0x3f)));
	} else {
		strbuf_addch(sb, (int)(0xf0 | (c >> 18)));
		strbuf_addch(sb, (int)(0x80 | ((c >> 12) & 0x3f)));
		strbuf_addch(sb, (int)(0x80 | ((c >> 6) & 0x3f)));
		strbuf_addch(sb, (int)(0x80 | (c & 0x3f)));
	}
}

/* Decodes the reference at ps->p ('&' ... ';') into sb. */
static int add_entity(struct parser *ps, struct strbuf *sb)
{
	static const struct {
		const char *name;
		char c;
	} named[] = {
		{ "&lt;", '<' }, { "&gt;", '>' }, { "&amp;", '&' },
		{ "&quot;", '"' }, { "&apos;", '\'' },
	};
	unsigned long c = 0;
	int base = 10, digits = 0;
	size_t i;

	for (i = 0; i < sizeof(named) / sizeof(named[0]); i++) {
		if (starts(ps, named[i].name)) {
			strbuf_addch(sb, named[i].c);
			ps->p += strlen(named[i].name);
			return 0;
		}
	}
	if (!starts(ps, "&#"))
		return -1;
	ps->p += 2;
	if (ps->p < ps->end && *ps->p == 'x') {
		base = 16;
		ps->p++;
	}
	for (; ps->p < ps->end && *ps->p != ';'; ps->p++) {
		char d = *ps->p;
		int v;

		if (d >= '0' && d <= '9')
			v = d - '0';
		else if (base == 16 && d >= 'a' && d <= 'f')
			v = d - 'a' + 10;
		else if (base == 16 && d >= 'A' && d <= 'F')
			v = d - 'A' + 10;
		else
			return -1;
		c = c * base + v;
		if (c > 0x10ffff || ++digits > 8)
			return -1;
	}
	if (ps->p >= ps->end || !digits || !c || (c >= 0xd800 && c <= 0xdfff))
		return -1;
	ps->p++;
	add_utf8(sb, c);
	return 0;
}

/* Reads character data up to the next tag into sb. */
static int read_text(struct parser *ps, struct strbuf *sb)
{
	while (ps->p < ps->end) {
		char c = *ps->p;

		if (c == '<') {
			if (!starts(ps, "<![CDATA["))
				return 0;
			const char *start = ps->p + 9;
			ps->p = start;
			if (skip_past(ps, "]]>"))
				return -1;
			if (memchr(start, 0, ps->p - 3 - start))
				return -1;
			strbuf_add(sb, start, ps->p - 3 - start);
		} else if (c == '&') {
			if (add_entity(ps, sb))
				return -1;
		} else if (!c) {
			return -1;
		} else {
			strbuf_addch(sb, c);
			ps->p++;
		}
	}
	return 0;
}

/* Reads a name at ps->p; returns its length, 0 if there is none. */
static size_t read_name(struct parser *ps, const char **name)
{
	const char *start = ps->p;

	while (ps->p < ps->end && !is_name_end(*ps->p)) {
		if (!*ps->p)
			return 0;
		ps->p++;
	}
	*name = start;
	return ps->p - start;
}

/* Skips the attributes of a start tag, up to '>' or "/>"; sets *empty for
 * the latter. */
static int skip_attributes(struct parser *ps, int *empty)
{
	for (;;) {
		const char *name;
		char q;

		skip_space(ps);
		if (ps->p >= ps->end)
			return -1;
		if (*ps->p == '>') {
			ps->p++;
			*empty = 0;
			return 0;
		}
		if (starts(ps, "/>")) {
			ps->p += 2;
			*empty = 1;
			return 0;
		}
		if (!read_name(ps, &name))
			return -1;
		skip_space(ps);
		if (ps->p >= ps->end || *ps->p != '=')
			return -1;
		ps->p++;
		skip_space(ps);
		if (ps->p >= ps->end || (*ps->p != '"' && *ps->p != '\''))
			return -1;
		q = *ps->p++;
		while (ps->p < ps->end && *ps->p != q) {
			if (!*ps->p || *ps->p == '<')
				return -1;
			ps->p++;
		}
		if (ps->p >= ps->end)
			return -1;
		ps->p++;
	}
}

/* The name without its namespace prefix ("s3:Key" -> "Key"). */
static char *local_name(const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);

	if (colon && colon + 1 < name + len) {
		len -= colon + 1 - name;
		name = colon + 1;
	}
	return xstrndup(name, len);
}

static void node_free(struct xml_node *n)
{
	while (n) {
		struct xml_node *next = n->next;

		node_free(n->child);
		free(n->name);
		free(n->text);
		free(n);
		n = next;
	}
}

/* Parses the element that starts at ps->p ('<'). */
static int parse_element(struct parser *ps, struct xml_node **out, int depth)
{
	struct xml_node *n = NULL, **tail;
	struct strbuf text = STRBUF_INIT;
	const char *name, *end_name;
	size_t len, end_len;
	int empty;

	*out = NULL;
	if (depth > XML_MAX_DEPTH || ps->p >= ps->end || *ps->p != '<')
		return -1;
	ps->p++;
	len = read_name(ps, &name);
	if (!len)
		return -1;
	n = xcalloc(1, sizeof(*n));
	n->name = local_name(name, len);
	tail = &n->child;
	if (skip_attributes(ps, &empty))
		goto fail;
	while (!empty) {
		if (read_text(ps, &text) || ps->p >= ps->end)
			goto fail;
		/* At a '<': an end tag, a comment, a PI or a child. */
		if (starts(ps, "</")) {
			ps->p += 2;
			end_len = read_name(ps, &end_name);
			if (end_len != len || memcmp(end_name, name, len))
				goto fail;
			skip_space(ps);
			if (ps->p >= ps->end || *ps->p != '>')
				goto fail;
			ps->p++;
			break;
		} else if (starts(ps, "<!--")) {
			ps->p += 4;
			if (skip_past(ps, "-->"))
				goto fail;
		} else if (starts(ps, "<?")) {
			ps->p += 2;
			if (skip_past(ps, "?>"))
				goto fail;
		} else if (starts(ps, "<!")) {
			goto fail;
		} else {
			if (parse_element(ps, tail, depth + 1))
				goto fail;
			tail = &(*tail)->next;
		}
	}
	n->text = strbuf_detach(&text, NULL);
	*out = n;
	return 0;
fail:
	strbuf_release(&text);
	node_free(n);
	return -1;
}

int xml_parse(struct xml_node **out, const char *buf, size_t len)
{
	struct parser ps = { buf, buf + len };
	struct xml_node *root = NULL;

	*out = NULL;
	/* A UTF-8 byte order mark. */
	if (starts(&ps, "\xef\xbb\xbf"))
		ps.p += 3;
	if (skip_misc(&ps) || parse_element(&ps, &root, 0))
		return ERR_CORRUPT;
	if (skip_misc(&ps) || ps.p != ps.end) {
		node_free(root);
		return ERR_CORRUPT;
	}
	*out = root;
	return 0;
}

void xml_free(struct xml_node *root)
{
	node_free(root);
}

struct xml_node *xml_child(const struct xml_node *n, const char *name)
{
	struct xml_node *c;

	if (!n)
		return NULL;
	for (c = n->child; c; c = c->next)
		if (!strcmp(c->name, name))
			return c;
	return NULL;
}

struct xml_node *xml_next(const struct xml_node *n)
{
	struct xml_node *c;

	if (!n)
		return NULL;
	for (c = n->next; c; c = c->next)
		if (!strcmp(c->name, n->name))
			return c;
	return NULL;
}

const char *xml_text(const struct xml_node *n, const char *name)
{
	struct xml_node *c = xml_child(n, name);

	return c ? c->text : NULL;
}
