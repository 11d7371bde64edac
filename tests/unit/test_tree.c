/* Unit test of name escaping: round trips, canonical spellings, git fsck's names. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <git2.h>

#include "crypto.h"
#include "tree.h"
#include "usage.h"

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

/* Sealed names: round trips at every length, one spelling per binding,
 * only characters git takes as they are, and nothing else opens. */
static void sealed_names(void)
{
	struct crypto_keys *k, *other;
	unsigned char ctx[SHA1_LEN] = { 1 }, ctx2[SHA1_LEN] = { 2 }, oid[SHA1_LEN] = { 3 }, oid2[SHA1_LEN] = { 4 };
	struct strbuf a = STRBUF_INIT, b = STRBUF_INIT, d = STRBUF_INIT;
	char name[NAME_MAX_LEN + 2];
	size_t len, i;
	int opened = 0;

	CHECK(crypto_keys_new(&k) == 0);
	CHECK(crypto_keys_new(&other) == 0);
	for (len = 1; len <= NAME_MAX_LEN; len++) {
		for (i = 0; i < len; i++)
			name[i] = (char)(1 + (i * 37 + len) % 255);
		name[len] = '\0';
		if (strchr(name, '/'))
			continue;
		strbuf_reset(&a);
		strbuf_reset(&b);
		strbuf_reset(&d);
		CHECK(name_seal(&a, k, ctx, MODE_BLOB, oid, name) == 0);
		CHECK(name_seal(&b, k, ctx, MODE_BLOB, oid, name) == 0);
		CHECK(!strcmp(a.buf, b.buf));
		CHECK(a.len == ((NAME_SIV_LEN + len) * 4 + 2) / 3);
		CHECK(strspn(a.buf, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") == a.len);
		CHECK(name_unseal(&d, k, ctx, MODE_BLOB, oid, a.buf) == 0);
		CHECK(d.len == len && !memcmp(d.buf, name, len));
		/* Bound to its folder, type, object and key. */
		strbuf_reset(&d);
		opened += name_unseal(&d, k, ctx2, MODE_BLOB, oid, a.buf) == 0;
		opened += name_unseal(&d, k, ctx, MODE_TREE, oid, a.buf) == 0;
		opened += name_unseal(&d, k, ctx, MODE_BLOB, oid2, a.buf) == 0;
		opened += name_unseal(&d, other, ctx, MODE_BLOB, oid, a.buf) == 0;
		CHECK(d.len == 0);
	}
	CHECK(opened == 0);
	/* The same name elsewhere seals differently. */
	strbuf_reset(&a);
	strbuf_reset(&b);
	CHECK(name_seal(&a, k, ctx, MODE_BLOB, oid, "passwd") == 0);
	CHECK(name_seal(&b, k, ctx2, MODE_BLOB, oid, "passwd") == 0);
	CHECK(strcmp(a.buf, b.buf));
	CHECK(!strstr(a.buf, "passwd"));
	/* Every character changed to every other, and every cut: none opens. */
	for (i = 0; i < a.len; i++) {
		char was = a.buf[i];
		int c;

		for (c = 1; c < 256; c++) {
			if (c == (unsigned char)was)
				continue;
			a.buf[i] = (char)c;
			opened += name_unseal(&d, k, ctx, MODE_BLOB, oid, a.buf) == 0;
		}
		a.buf[i] = was;
	}
	for (i = 0; i < a.len; i++) {
		char was = a.buf[i];

		a.buf[i] = '\0';
		opened += name_unseal(&d, k, ctx, MODE_BLOB, oid, a.buf) == 0;
		a.buf[i] = was;
	}
	CHECK(opened == 0);
	CHECK(d.len == 0);
	CHECK(name_unseal(&d, k, ctx, MODE_BLOB, oid, a.buf) == 0 && !strcmp(d.buf, "passwd"));
	/* Too long to seal; garbage of any length does not open. */
	memset(name, 'x', NAME_MAX_LEN + 1);
	name[NAME_MAX_LEN + 1] = '\0';
	fprintf(stderr, "(one refusal expected:)\n");
	CHECK(name_seal(&a, k, ctx, MODE_BLOB, oid, name) == -1);
	strbuf_reset(&d);
	CHECK(name_unseal(&d, k, ctx, MODE_BLOB, oid, "") == ERR_CORRUPT);
	CHECK(name_unseal(&d, k, ctx, MODE_BLOB, oid, name) == ERR_CORRUPT);
	CHECK(name_unseal(&d, k, ctx, MODE_BLOB, oid, ".meta") == ERR_CORRUPT);
	CHECK(d.len == 0);
	strbuf_release(&a);
	strbuf_release(&b);
	strbuf_release(&d);
	crypto_keys_free(k);
	crypto_keys_free(other);
}

/* Writes a tree of entries (name, oid) plus .meta; returns the tree. */
static git_tree *write_tree(git_repository *g, const unsigned char meta[SHA1_LEN], struct tree_entry *e, size_t n)
{
	struct tree_entry all[4];
	struct strbuf sb = STRBUF_INIT;
	git_odb *odb = NULL;
	git_tree *t = NULL;
	git_oid id;
	size_t i;

	for (i = 0; i < n; i++)
		all[i] = e[i];
	all[n].name = (char *)META_NAME;
	all[n].mode = MODE_BLOB;
	memcpy(all[n].oid, meta, SHA1_LEN);
	tree_encode(&sb, all, n + 1);
	CHECK(git_repository_odb(&odb, g) == 0);
	CHECK(git_odb_write(&id, odb, sb.buf, sb.len, GIT_OBJECT_TREE) == 0);
	CHECK(git_tree_lookup(&t, g, &id) == 0);
	git_odb_free(odb);
	strbuf_release(&sb);
	return t;
}

/* A folder tree's entries by real name: found when their names open, not
 * when two entries swap their objects or the names are another folder's. */
static void tree_names_lookup(void)
{
	char dir[] = "/tmp/test_tree.XXXXXX", *cmd;
	git_repository *g = NULL;
	git_odb *odb = NULL;
	git_oid m1, m2, a, b;
	struct crypto_keys *k = NULL;
	struct tree_entry e[2];
	struct strbuf n0 = STRBUF_INIT, n1 = STRBUF_INIT;
	struct tree_names *tn = NULL;
	git_tree *t;

	git_libgit2_init();
	CHECK(mkdtemp(dir) != NULL);
	CHECK(git_repository_init(&g, dir, 1) == 0);
	CHECK(git_repository_odb(&odb, g) == 0);
	CHECK(git_odb_write(&m1, odb, "meta one", 8, GIT_OBJECT_BLOB) == 0);
	CHECK(git_odb_write(&m2, odb, "meta two", 8, GIT_OBJECT_BLOB) == 0);
	CHECK(git_odb_write(&a, odb, "content a", 9, GIT_OBJECT_BLOB) == 0);
	CHECK(git_odb_write(&b, odb, "content b", 9, GIT_OBJECT_BLOB) == 0);
	CHECK(crypto_keys_new(&k) == 0);
	CHECK(name_seal(&n0, k, m1.id, MODE_BLOB, a.id, ".git") == 0);
	CHECK(name_seal(&n1, k, m1.id, MODE_BLOB, b.id, "passwd") == 0);
	e[0].name = n0.buf;
	e[0].mode = MODE_BLOB;
	memcpy(e[0].oid, a.id, SHA1_LEN);
	e[1].name = n1.buf;
	e[1].mode = MODE_BLOB;
	memcpy(e[1].oid, b.id, SHA1_LEN);

	/* As sealed: both found by real name, none bad. */
	t = write_tree(g, m1.id, e, 2);
	CHECK(tree_names_load(&tn, k, t) == 0 && tn);
	CHECK(tree_names_bad(tn) == 0);
	CHECK(tree_names_find(tn, t, ".git") && !memcmp(git_tree_entry_id(tree_names_find(tn, t, ".git"))->id, a.id, SHA1_LEN));
	CHECK(tree_names_find(tn, t, "passwd") && !memcmp(git_tree_entry_id(tree_names_find(tn, t, "passwd"))->id, b.id, SHA1_LEN));
	CHECK(!tree_names_find(tn, t, "other"));
	tree_names_free(tn);
	git_tree_free(t);

	/* The two entries' objects swapped: neither opens. */
	memcpy(e[0].oid, b.id, SHA1_LEN);
	memcpy(e[1].oid, a.id, SHA1_LEN);
	t = write_tree(g, m1.id, e, 2);
	CHECK(tree_names_load(&tn, k, t) == 0);
	CHECK(tree_names_bad(tn) == 2);
	CHECK(!tree_names_find(tn, t, ".git") && !tree_names_find(tn, t, "passwd"));
	tree_names_free(tn);
	git_tree_free(t);

	/* The names in another folder (another .meta): neither opens. */
	memcpy(e[0].oid, a.id, SHA1_LEN);
	memcpy(e[1].oid, b.id, SHA1_LEN);
	t = write_tree(g, m2.id, e, 2);
	CHECK(tree_names_load(&tn, k, t) == 0);
	CHECK(tree_names_bad(tn) == 2);
	tree_names_free(tn);
	git_tree_free(t);

	/* Unencrypted: no names to open, escaped names found as stored. */
	e[0].name = (char *)"%2Egit";
	e[1].name = (char *)"passwd";
	t = write_tree(g, m1.id, e, 2);
	CHECK(tree_names_load(&tn, NULL, t) == 0 && !tn);
	CHECK(tree_names_find(NULL, t, ".git") && tree_names_find(NULL, t, "passwd"));
	CHECK(tree_names_bad(NULL) == 0);
	git_tree_free(t);

	strbuf_release(&n0);
	strbuf_release(&n1);
	crypto_keys_free(k);
	git_odb_free(odb);
	git_repository_free(g);
	cmd = xasprintf("rm -rf '%s'", dir);
	CHECK(system(cmd) == 0);
	free(cmd);
	git_libgit2_shutdown();
}

int main(void)
{
	sealed_names();
	tree_names_lookup();
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
