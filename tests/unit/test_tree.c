/* Unit test of name escaping: round trips, canonical spellings, git fsck's names. */
#include <stdio.h>
#include <string.h>

#include "tree.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

static void round_trip(const char *name, const char *want)
{
	struct strbuf e = STRBUF_INIT, d = STRBUF_INIT;

	name_escape(&e, name);
	if (want && strcmp(e.buf, want)) {
		fprintf(stderr, "escape(%s) = %s, want %s\n", name, e.buf, want);
		failed = 1;
	}
	CHECK(name_unescape(&d, e.buf) == 0);
	CHECK(!strcmp(d.buf, name));
	CHECK(e.buf[0] != '.');
	CHECK(!strchr(e.buf, '\\'));
	strbuf_release(&e);
	strbuf_release(&d);
}

static void invalid(const char *stored)
{
	struct strbuf d = STRBUF_INIT;

	if (name_unescape(&d, stored) == 0) {
		fprintf(stderr, "unescape accepted '%s'\n", stored);
		failed = 1;
	}
	CHECK(d.len == 0);
	strbuf_release(&d);
}

int main(void)
{
	round_trip("plain", "plain");
	round_trip(".git", "%2Egit");
	round_trip(".gitmodules", "%2Egitmodules");
	round_trip("git~1", "%67it~1");
	round_trip("GIT~1", "%47IT~1");
	round_trip("gi7eba~1", "%67i7eba~1");
	round_trip("%41", "%2541");
	round_trip("a\\.git", "%61%5C.git");
	round_trip("x\\git~1", "%78%5Cgit~1");
	round_trip("100%\\", "%3100%25%5C");
	round_trip("\xc3\xa9t\xc3\xa9", "%C3\xa9t\xc3\xa9");
	round_trip("new\nline", "new\nline");
	round_trip("a%b", "a%b");
	round_trip("game", "game");
	invalid("");
	invalid(".git");
	invalid("%2");
	invalid("%zz");
	invalid("%00x");
	invalid("%2e");		/* lower-case hex is not the canonical spelling */
	invalid("%70lain");	/* "plain" needs no escape */
	invalid("a/b");
	invalid("a\\b");
	invalid("%61%5Cb%");
	if (!failed)
		printf("ok tree names\n");
	return failed;
}
