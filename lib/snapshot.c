#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <git2.h>

#include "crypto.h"
#include "snapshot.h"
#include "tree.h"
#include "usage.h"

const char *format_time(const struct timespec *t, char *buf, size_t len)
{
	struct tm tm;
	time_t s = t->tv_sec;

	gmtime_r(&s, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

/* Field values are escaped so that a field never holds a space or a newline. */
static void add_field(struct strbuf *sb, const char *v)
{
	const unsigned char *p = (const unsigned char *)(v ? v : "");

	if (!*p) {
		strbuf_addch(sb, '-');
		return;
	}
	if (*p == '-' && !p[1]) {
		strbuf_addstr(sb, "%2D");
		return;
	}
	for (; *p; p++) {
		if (*p <= 0x20 || *p == '%' || *p == 0x7f)
			strbuf_addf(sb, "%%%02X", *p);
		else
			strbuf_addch(sb, *p);
	}
}

static char *parse_field(const char *s, size_t len)
{
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	if (len == 1 && s[0] == '-')
		return xstrdup("");
	for (i = 0; i < len; i++) {
		unsigned v;

		if (s[i] == '%' && i + 2 < len && isxdigit((unsigned char)s[i + 1]) &&
		    isxdigit((unsigned char)s[i + 2]) && sscanf(s + i + 1, "%2X", &v) == 1 && v) {
			strbuf_addch(&sb, v);
			i += 2;
		} else {
			strbuf_addch(&sb, s[i]);
		}
	}
	return strbuf_detach(&sb, NULL);
}

static void add_time(struct strbuf *sb, const char *key, const struct timespec *t)
{
	strbuf_addf(sb, "%s %lld.%09ld\n", key, (long long)t->tv_sec, t->tv_nsec);
}

/* The fields of a backup a receiver does not need: sealed when encrypted. */
static void encode_private(struct strbuf *sb, const struct backup_info *b)
{
	size_t i;
	int j;

	for (i = 0; i < b->ndisks; i++) {
		const struct backup_disk *d = &b->disks[i];

		strbuf_addf(sb, "disk %s %llu ", d->label, (unsigned long long)d->size);
		add_field(sb, d->filesystem);
		strbuf_addch(sb, ' ');
		add_field(sb, d->source);
		strbuf_addch(sb, '\n');
	}
	if (b->layout) {
		strbuf_addf(sb, "plan %llu\n", (unsigned long long)b->layout->plan);
		for (i = 0; i < b->layout->nprofiles; i++) {
			const struct profile *p = &b->layout->profiles[i];

			strbuf_addf(sb, "profile %s root=%s", p->name, p->root ? p->root : "-");
			for (j = 0; j < NDEVICES; j++)
				if (p->dev[j])
					strbuf_addf(sb, " sd%c=%s", 'a' + j, p->dev[j]);
			strbuf_addch(sb, '\n');
		}
		if (b->layout->boot)
			strbuf_addf(sb, "boot %s\n", b->layout->boot);
	}
	strbuf_addf(sb, "files %llu\nbytes %llu\nfiles-read %llu\nbytes-read %llu\nbytes-stored %llu\n",
		    (unsigned long long)b->files, (unsigned long long)b->bytes,
		    (unsigned long long)b->files_read, (unsigned long long)b->bytes_read,
		    (unsigned long long)b->bytes_stored);
}

/*
 * The message. In an encrypted repository (keys) only what a receiver needs
 * for retention stays in the clear (machine, kind, start, end); the label
 * and every other field are sealed under the commit subkey, as the last
 * line "sealed HEX", with the tree line and every byte of the message
 * before that line as associated data.
 */
static int encode_message(struct strbuf *sb, const struct backup_info *b, const struct crypto_keys *keys,
			  const char *tree_hex)
{
	struct strbuf priv = STRBUF_INIT, ad = STRBUF_INIT, sealed = STRBUF_INIT;
	size_t start = sb->len, i;
	int ret = 0;

	strbuf_addf(sb, "backup %s %s", b->machine, b->kind);
	if (!keys && b->label && *b->label) {
		strbuf_addch(sb, ' ');
		add_field(sb, b->label);
	}
	strbuf_addstr(sb, "\n\nbackup-format 1\nmachine ");
	add_field(sb, b->machine);
	strbuf_addf(sb, "\nkind %s\n", b->kind);
	if (!keys) {
		strbuf_addstr(sb, "label ");
		add_field(sb, b->label);
		strbuf_addch(sb, '\n');
	}
	add_time(sb, "start", &b->start);
	add_time(sb, "end", &b->end);
	if (!keys) {
		encode_private(sb, b);
		return 0;
	}
	strbuf_addstr(&priv, "label ");
	add_field(&priv, b->label);
	strbuf_addch(&priv, '\n');
	encode_private(&priv, b);
	strbuf_addf(&ad, "tree %s\n", tree_hex);
	strbuf_add(&ad, sb->buf + start, sb->len - start);
	if (crypto_seal(&sealed, keys->sub[CRYPTO_COMMIT], ad.buf, ad.len, priv.buf, priv.len) < 0) {
		ret = -1;
	} else {
		strbuf_addstr(sb, "sealed ");
		for (i = 0; i < sealed.len; i++)
			strbuf_addf(sb, "%02x", (unsigned char)sealed.buf[i]);
		strbuf_addch(sb, '\n');
	}
	crypto_wipe(priv.buf, priv.len);
	strbuf_release(&priv);
	strbuf_release(&ad);
	strbuf_release(&sealed);
	return ret;
}

/*
 * The context of the names of a root tree, which has no .meta: none. A
 * disk's sealed label is still bound to its tree, and the commit's seal
 * binds the root tree.
 */
static const unsigned char root_ctx[SHA1_LEN];

int snapshot_commit(struct store *s, struct backup_info *b)
{
	struct strbuf tree = STRBUF_INIT, commit = STRBUF_INIT;
	struct tree_entry *te = xcalloc(b->ndisks, sizeof(*te));
	struct strbuf *sealed = xcalloc(b->ndisks, sizeof(*sealed));
	const struct crypto_keys *keys = store_repo(s)->keys;
	unsigned char tree_id[SHA1_LEN];
	char hex[2 * SHA1_LEN + 1], *email = repo_ident_email(store_repo(s)->version);
	size_t i;
	int ret = 0;

	/* In an encrypted repository the disks' labels are sealed as names. */
	for (i = 0; i < b->ndisks && !ret; i++) {
		te[i].name = b->disks[i].label;
		te[i].mode = MODE_TREE;
		memcpy(te[i].oid, b->disks[i].tree, SHA1_LEN);
		strbuf_init(&sealed[i], 0);
		if (keys) {
			ret = name_seal(&sealed[i], keys, root_ctx, MODE_TREE, te[i].oid, te[i].name);
			te[i].name = sealed[i].buf;
		}
	}
	if (!ret)
		tree_encode(&tree, te, b->ndisks);
	for (size_t k = 0; k < i; k++)
		strbuf_release(&sealed[k]);
	free(sealed);
	free(te);
	if (ret < 0)
		goto out;
	ret = store_put_object(s, PACK_TREE, tree.buf, tree.len, tree_id);
	if (ret < 0)
		goto out;
	hex_encode(hex, tree_id, SHA1_LEN);
	strbuf_addf(&commit, "tree %s\n", hex);
	strbuf_addf(&commit, "author backup <%s> %lld +0000\n", email, (long long)b->start.tv_sec);
	strbuf_addf(&commit, "committer backup <%s> %lld +0000\n\n", email, (long long)b->end.tv_sec);
	ret = encode_message(&commit, b, store_repo(s)->keys, hex);
	if (ret < 0)
		goto out;
	ret = store_put_object(s, PACK_COMMIT, commit.buf, commit.len, b->id);
	if (ret < 0)
		goto out;
	hex_encode(b->hex, b->id, SHA1_LEN);
	ret = store_flush(s);
out:
	free(email);
	strbuf_release(&tree);
	strbuf_release(&commit);
	return ret;
}

int snapshot_set_slot(struct repo *r, const char *machine, const char *slot,
		      const unsigned char id[SHA1_LEN], const char *why)
{
	git_reference *ref = NULL;
	char *name = xasprintf("refs/backups/%s/%s", machine, slot), *stale;
	git_oid oid;
	int ret = 0;

	memcpy(oid.id, id, SHA1_LEN);
	/* The caller holds the machine's lock: a ref lock can only be left by a killed job. */
	stale = xasprintf("%s/%s.lock", r->path, name);
	unlink(stale);
	free(stale);
	if (git_reference_create(&ref, r->git, name, &oid, 1, why) < 0)
		ret = error_git("cannot update the slot");
	git_reference_free(ref);
	free(name);
	return ret;
}

void backup_info_free(struct backup_info *b)
{
	size_t i;

	if (!b)
		return;
	for (i = 0; i < b->ndisks; i++) {
		free(b->disks[i].label);
		free(b->disks[i].source);
		free(b->disks[i].filesystem);
	}
	free_strv(b->slots, b->nslots);
	free(b->disks);
	machine_free(b->layout);
	free(b->machine);
	free(b->kind);
	free(b->label);
	free(b);
}

static int parse_time(const char *v, struct timespec *t)
{
	long long s;
	long ns;

	if (sscanf(v, "%lld.%9ld", &s, &ns) != 2 || ns < 0 || ns >= 1000000000)
		return -1;
	t->tv_sec = s;
	t->tv_nsec = ns;
	return 0;
}

static int parse_profile(struct machine *m, char *rest)
{
	char *save = NULL, *tok = strtok_r(rest, " ", &save);
	struct profile *p;

	if (!tok || !valid_name(tok))
		return -1;
	m->profiles = xrealloc(m->profiles, (m->nprofiles + 1) * sizeof(*m->profiles));
	p = &m->profiles[m->nprofiles++];
	memset(p, 0, sizeof(*p));
	p->name = xstrdup(tok);
	while ((tok = strtok_r(NULL, " ", &save))) {
		if (!strncmp(tok, "root=", 5)) {
			if (p->root)
				return -1;	/* given twice: damage */
			if (strcmp(tok + 5, "-"))
				p->root = xstrdup(tok + 5);
		} else if (tok[0] == 's' && tok[1] == 'd' && tok[2] >= 'a' && tok[2] < 'a' + NDEVICES &&
			   tok[3] == '=' && valid_name(tok + 4)) {
			free(p->dev[tok[2] - 'a']);
			p->dev[tok[2] - 'a'] = xstrdup(tok + 4);
		} else {
			return -1;
		}
	}
	return 0;
}

/*
 * Parses "key value" lines from line on into b and m. With sealed, a line
 * "sealed ..." is allowed as the last one and *sealed points at it;
 * without, it is damage. Returns 0 or -1.
 */
static int parse_lines(struct backup_info *b, struct machine *m, const char *line, const char **sealed)
{
	while (*line) {
		const char *eol = strchrnul(line, '\n'), *sp = memchr(line, ' ', eol - line);
		char *key, *val;
		int bad = 0;

		if (!sp) {
			line = *eol ? eol + 1 : eol;
			continue;
		}
		key = xstrndup(line, sp - line);
		val = xstrndup(sp + 1, eol - sp - 1);
		/* A key given twice is damage, not something to pick from. */
		if ((!strcmp(key, "machine") && b->machine) || (!strcmp(key, "kind") && b->kind) ||
		    (!strcmp(key, "label") && b->label) || (!strcmp(key, "boot") && m->boot))
			bad = 1;
		else if (!strcmp(key, "sealed"))
			bad = !sealed || *sealed || (*eol && eol[1]);
		else if (!strcmp(key, "machine"))
			b->machine = parse_field(val, strlen(val));
		else if (!strcmp(key, "kind"))
			b->kind = xstrdup(val);
		else if (!strcmp(key, "label"))
			b->label = parse_field(val, strlen(val));
		else if (!strcmp(key, "start"))
			bad = parse_time(val, &b->start);
		else if (!strcmp(key, "end"))
			bad = parse_time(val, &b->end);
		else if (!strcmp(key, "plan"))
			m->plan = strtoull(val, NULL, 10);
		else if (!strcmp(key, "boot"))
			m->boot = valid_name(val) ? xstrdup(val) : NULL;
		else if (!strcmp(key, "files"))
			b->files = strtoull(val, NULL, 10);
		else if (!strcmp(key, "bytes"))
			b->bytes = strtoull(val, NULL, 10);
		else if (!strcmp(key, "files-read"))
			b->files_read = strtoull(val, NULL, 10);
		else if (!strcmp(key, "bytes-read"))
			b->bytes_read = strtoull(val, NULL, 10);
		else if (!strcmp(key, "bytes-stored"))
			b->bytes_stored = strtoull(val, NULL, 10);
		else if (!strcmp(key, "profile"))
			bad = parse_profile(m, val);
		else if (!strcmp(key, "disk")) {
			char *f[4], *save = NULL;
			int i;
			struct backup_disk *d;

			for (i = 0; i < 4; i++)
				if (!(f[i] = strtok_r(i ? NULL : val, " ", &save)))
					break;
			if (i < 4 || !valid_name(f[0])) {
				bad = 1;
			} else {
				b->disks = xrealloc(b->disks, (b->ndisks + 1) * sizeof(*b->disks));
				d = &b->disks[b->ndisks++];
				memset(d, 0, sizeof(*d));
				d->label = xstrdup(f[0]);
				d->size = strtoull(f[1], NULL, 10);
				d->filesystem = parse_field(f[2], strlen(f[2]));
				d->source = parse_field(f[3], strlen(f[3]));
			}
		}
		if (!bad && !strcmp(key, "sealed"))
			*sealed = line;
		free(key);
		free(val);
		if (bad)
			return -1;
		line = *eol ? eol + 1 : eol;
	}
	return 0;
}

static int hexdigit(char c)
{
	return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Opens the sealed fields at line ("sealed HEX") of message msg into priv. */
static int open_sealed(struct strbuf *priv, const struct crypto_keys *keys, const char *tree_hex,
		       const char *msg, const char *line)
{
	struct strbuf ad = STRBUF_INIT, raw = STRBUF_INIT;
	const char *p = line + strlen("sealed ");
	int ret = ERR_CORRUPT;

	for (; hexdigit(p[0]) >= 0 && hexdigit(p[1]) >= 0; p += 2)
		strbuf_addch(&raw, hexdigit(p[0]) << 4 | hexdigit(p[1]));
	if (*p == '\0' || (*p == '\n' && !p[1])) {
		strbuf_addf(&ad, "tree %s\n", tree_hex);
		strbuf_add(&ad, msg, line - msg);
		ret = crypto_open(priv, keys->sub[CRYPTO_COMMIT], ad.buf, ad.len, raw.buf, raw.len);
	}
	strbuf_release(&ad);
	strbuf_release(&raw);
	return ret;
}

static int parse_message(struct backup_info *b, const char *msg, const struct crypto_keys *keys,
			 const char *tree_hex, int *was_sealed)
{
	const char *line = strstr(msg, "\n\nbackup-format "), *sealed = NULL;
	struct machine *m = xcalloc(1, sizeof(*m));
	int version = 0;

	b->layout = m;
	if (!line || sscanf(line + 2, "backup-format %d", &version) != 1 || version < 1)
		return ERR_CORRUPT;
	if (version > 1)
		return ERR_NEWER;
	if (parse_lines(b, m, line + 2, &sealed) < 0)
		return -1;
	*was_sealed = sealed != NULL;
	if (sealed && keys) {
		struct strbuf priv = STRBUF_INIT;
		int bad = !tree_hex || open_sealed(&priv, keys, tree_hex, msg, sealed) < 0 ||
			  parse_lines(b, m, priv.buf, NULL) < 0;

		crypto_wipe(priv.buf, priv.len);
		strbuf_release(&priv);
		if (bad)
			return -1;
	} else if (sealed) {
		/* Without the key: what a receiver needs, and no more. */
		b->sealed = 1;
		if (!b->label)
			b->label = xstrdup("");
	}
	if (!b->machine || !valid_name(b->machine) || !b->kind || !b->label)
		return -1;
	/* The layout as a machine, for restore: disks and profiles as recorded. */
	m->name = xstrdup(b->machine);
	m->disks = xcalloc(b->ndisks, sizeof(*m->disks));
	m->ndisks = b->ndisks;
	for (size_t i = 0; i < b->ndisks; i++) {
		m->disks[i].label = xstrdup(b->disks[i].label);
		m->disks[i].source = xstrdup(b->disks[i].source);
		m->disks[i].filesystem = xstrdup(b->disks[i].filesystem);
		m->disks[i].size = b->disks[i].size;
	}
	return 0;
}

int snapshot_parse(const char *msg, struct backup_info **out)
{
	struct backup_info *b = xcalloc(1, sizeof(*b));
	int sealed, ret = parse_message(b, msg, NULL, NULL, &sealed);

	if (ret < 0) {
		backup_info_free(b);
		b = NULL;
	}
	*out = b;
	return ret;
}

/* 1 when the blob id is not a bare zstd frame (an encrypted repository's
 * blobs start with their 32-byte dedup key), 0 when it is, -1 unreadable. */
static int blob_not_zstd(struct repo *r, const git_oid *id)
{
	static const unsigned char magic[4] = { 0x28, 0xb5, 0x2f, 0xfd };
	git_odb_object *o = NULL;
	int ret;

	if (git_odb_read(&o, r->odb, id) < 0)
		return -1;
	ret = git_odb_object_size(o) < sizeof(magic) || memcmp(git_odb_object_data(o), magic, sizeof(magic));
	git_odb_object_free(o);
	return ret;
}

int snapshot_sealed(struct repo *r, const unsigned char id[SHA1_LEN], int deep)
{
	struct backup_info *b = xcalloc(1, sizeof(*b));
	git_commit *c = NULL;
	git_tree *t = NULL, *disk = NULL;
	git_oid oid;
	size_t i;
	int ret = -1, sealed = 0;

	memcpy(oid.id, id, SHA1_LEN);
	if (git_commit_lookup(&c, r->git, &oid) < 0)
		goto out;
	if (parse_message(b, git_commit_message_raw(c), NULL, NULL, &sealed) == 0)
		ret = sealed;
	if (ret == 1 || !deep || git_commit_tree(&t, c) < 0)
		goto out;
	/* Each disk's top folder: its .meta is a zstd frame unless sealed
	 * (also under a commit whose fields were made to look plain). */
	for (i = 0; i < git_tree_entrycount(t) && ret != 1; i++) {
		const git_tree_entry *te = git_tree_entry_byindex(t, i), *meta;

		if (git_tree_entry_type(te) != GIT_OBJECT_TREE || git_tree_lookup(&disk, r->git, git_tree_entry_id(te)) < 0)
			continue;
		meta = git_tree_entry_byname(disk, META_NAME);
		if (meta && blob_not_zstd(r, git_tree_entry_id(meta)) == 1)
			ret = 1;
		git_tree_free(disk);
		disk = NULL;
	}
out:
	git_tree_free(t);
	git_commit_free(c);
	backup_info_free(b);
	return ret;
}

int snapshot_find_sealed(struct repo *r, char **ref)
{
	git_reference_iterator *it = NULL;
	git_reference *gr;
	int found = 0;

	*ref = NULL;
	if (git_reference_iterator_glob_new(&it, r->git, "refs/backups/*") < 0)
		return error_git("cannot list the backups");
	while (!found && git_reference_next(&gr, it) == 0) {
		const git_oid *id = git_reference_target(gr);

		if (id && snapshot_sealed(r, id->id, 0) == 1) {
			*ref = xstrdup(git_reference_name(gr));
			found = 1;
		}
		git_reference_free(gr);
	}
	git_reference_iterator_free(it);
	return found;
}

/* The characters of a sealed name (base64url). */
#define B64URL_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

/*
 * The disk labelled label in root tree t: the entry of that name (every
 * backup of an unencrypted repository, and those of an encrypted one made
 * before labels were sealed), else, with keys, the tree entry whose sealed
 * name opens to it. NULL when none.
 */
static const git_tree_entry *root_disk(const git_tree *t, const struct crypto_keys *keys, const char *label)
{
	const git_tree_entry *te = git_tree_entry_byname(t, label);
	struct strbuf sb = STRBUF_INIT;
	size_t i;

	for (i = 0; !te && keys && i < git_tree_entrycount(t); i++) {
		const git_tree_entry *e = git_tree_entry_byindex(t, i);

		strbuf_reset(&sb);
		if (git_tree_entry_type(e) == GIT_OBJECT_TREE &&
		    name_unseal(&sb, keys, root_ctx, MODE_TREE, git_tree_entry_id(e)->id, git_tree_entry_name(e)) == 0 &&
		    !strcmp(sb.buf, label))
			te = e;
	}
	strbuf_release(&sb);
	return te;
}

int snapshot_read(struct repo *r, const unsigned char id[SHA1_LEN], struct backup_info **out)
{
	struct backup_info *b = xcalloc(1, sizeof(*b));
	git_commit *c = NULL;
	git_tree *t = NULL;
	git_oid oid;
	size_t i;
	int ret = ERR_CORRUPT, sealed = 0;

	*out = NULL;
	memcpy(oid.id, id, SHA1_LEN);
	memcpy(b->id, id, SHA1_LEN);
	hex_encode(b->hex, id, SHA1_LEN);
	if (git_commit_lookup(&c, r->git, &oid) < 0 || git_commit_tree(&t, c) < 0)
		goto out;
	ret = parse_message(b, git_commit_message_raw(c), r->keys, git_oid_tostr_s(git_commit_tree_id(c)),
			    &sealed);
	if (ret < 0)
		goto out;
	ret = ERR_CORRUPT;
	/* An encrypted repository's backups are all sealed: one that is not
	 * was not written with its key. */
	if (r->version == REPO_FORMAT_ENCRYPTED && !sealed)
		goto out;
	if (b->sealed) {
		/* The disks are sealed: each tree of the root is one, its label
		 * the stored name (sealed, or a label of an older version). */
		for (i = 0; i < git_tree_entrycount(t); i++) {
			const git_tree_entry *te = git_tree_entry_byindex(t, i);
			const char *n = git_tree_entry_name(te);
			struct backup_disk *d;

			if (git_tree_entry_type(te) != GIT_OBJECT_TREE ||
			    (!valid_name(n) && strspn(n, B64URL_CHARS) != strlen(n)))
				goto out;
			b->disks = xrealloc(b->disks, (b->ndisks + 1) * sizeof(*b->disks));
			d = &b->disks[b->ndisks++];
			memset(d, 0, sizeof(*d));
			d->label = xstrdup(git_tree_entry_name(te));
			d->source = xstrdup("");
			d->filesystem = xstrdup("");
			memcpy(d->tree, git_tree_entry_id(te)->id, SHA1_LEN);
		}
	}
	for (i = 0; i < b->ndisks; i++) {
		const git_tree_entry *te = root_disk(t, r->keys, b->disks[i].label);

		if (!te || git_tree_entry_type(te) != GIT_OBJECT_TREE)
			goto out;
		memcpy(b->disks[i].tree, git_tree_entry_id(te)->id, SHA1_LEN);
	}
	*out = b;
	b = NULL;
	ret = 0;
out:
	git_tree_free(t);
	git_commit_free(c);
	backup_info_free(b);
	return ret;
}

static int cmp_newest(const void *a, const void *b)
{
	const struct backup_info *x = *(struct backup_info *const *)a, *y = *(struct backup_info *const *)b;

	if (x->start.tv_sec != y->start.tv_sec)
		return x->start.tv_sec < y->start.tv_sec ? 1 : -1;
	if (x->start.tv_nsec != y->start.tv_nsec)
		return x->start.tv_nsec < y->start.tv_nsec ? 1 : -1;
	return strcmp(x->hex, y->hex);
}

int snapshot_list(struct repo *r, const char *machine, struct backup_info ***out, size_t *nr)
{
	return snapshot_list_ext(r, machine, out, nr, NULL);
}

int snapshot_list_ext(struct repo *r, const char *machine, struct backup_info ***out, size_t *nr,
		      size_t *ndamaged)
{
	git_reference_iterator *it = NULL;
	git_reference *ref;
	struct backup_info **list = NULL;
	size_t n = 0, i;
	char *glob = machine ? xasprintf("refs/backups/%s/*", machine) : xstrdup("refs/backups/*");
	int ret = -1, err;

	*out = NULL;
	*nr = 0;
	if (git_reference_iterator_glob_new(&it, r->git, glob) < 0) {
		error_git("cannot list the slots");
		goto out;
	}
	while ((err = git_reference_next(&ref, it)) == 0) {
		const char *name = git_reference_name(ref), *slot = strchr(name + 13, '/');
		const git_oid *oid = git_reference_target(ref);
		struct backup_info *b = NULL;

		/* refs/backups/MACHINE/SLOT, or .../kept/ID on a receiver (receiver.h). */
		slot = slot ? slot + 1 : "";
		if (!strncmp(slot, "kept/", 5))
			slot = "kept";
		if (!oid || !*slot || strchr(slot, '/')) {
			git_reference_free(ref);
			continue;
		}
		for (i = 0; i < n; i++)
			if (!memcmp(list[i]->id, oid->id, SHA1_LEN))
				b = list[i];
		if (!b) {
			int err = snapshot_read(r, oid->id, &b);

			if (err == ERR_NEWER) {
				warning("slot '%s' names backup %s, written by a newer backup; skipped",
					name, git_oid_tostr_s(oid));
				git_reference_free(ref);
				continue;
			}
			if (err < 0) {
				error("slot '%s' names a damaged backup %s; run 'backup check'",
				      name, git_oid_tostr_s(oid));
				if (ndamaged)
					(*ndamaged)++;
				git_reference_free(ref);
				continue;
			}
			list = xrealloc(list, (n + 1) * sizeof(*list));
			list[n++] = b;
		}
		b->slots = xrealloc(b->slots, (b->nslots + 1) * sizeof(char *));
		b->slots[b->nslots++] = xstrdup(slot);
		git_reference_free(ref);
	}
	if (err != GIT_ITEROVER) {
		error_git("cannot list the slots");
		goto out;
	}
	if (n)
		qsort(list, n, sizeof(*list), cmp_newest);
	*out = list;
	*nr = n;
	list = NULL;
	n = 0;
	ret = 0;
out:
	snapshot_list_free(list, n);
	git_reference_iterator_free(it);
	free(glob);
	return ret;
}

void snapshot_list_free(struct backup_info **list, size_t nr)
{
	size_t i;

	for (i = 0; i < nr; i++)
		backup_info_free(list[i]);
	free(list);
}

int snapshot_resolve(struct repo *r, const char *src, struct backup_info **out)
{
	struct backup_info **list = NULL, *found = NULL;
	const char *colon = strchr(src, ':');
	size_t n = 0, i, len = strlen(src);
	int ret = -1, matches = 0;

	*out = NULL;
	if (colon) {
		char *machine = xstrndup(src, colon - src);
		char *ref = xasprintf("refs/backups/%s/%s", machine, colon + 1);
		git_oid oid;

		if (!valid_name(machine) || !valid_name(colon + 1) ||
		    git_reference_name_to_id(&oid, r->git, ref) < 0)
			ret = error("no backup '%s'; see 'backup list %s'", src, machine);
		else if ((ret = snapshot_read(r, oid.id, out)) < 0)
			error("backup '%s' is damaged; run 'backup check'", src);
		free(machine);
		free(ref);
		return ret;
	}
	if (valid_name(src) && snapshot_list(r, src, &list, &n) == 0 && n) {
		*out = list[0];
		list[0] = NULL;
		snapshot_list_free(list, n);
		return 0;
	}
	snapshot_list_free(list, n);
	if (snapshot_list(r, NULL, &list, &n) < 0)
		return -1;
	for (i = 0; len >= 4 && i < n; i++)
		if (!strncasecmp(list[i]->hex, src, len)) {
			found = list[i];
			matches++;
		}
	if (matches == 1) {
		for (i = 0; i < n; i++)
			if (list[i] == found)
				list[i] = NULL;
		*out = found;
		ret = 0;
	} else if (matches > 1) {
		error("backup id '%s' is ambiguous; give more of it", src);
	} else {
		error("no backup '%s': not a machine with backups, MACHINE:SLOT or a backup id; see 'backup list'", src);
	}
	snapshot_list_free(list, n);
	return ret;
}

struct backup_disk *backup_disk(const struct backup_info *b, const char *label)
{
	size_t i;

	for (i = 0; i < b->ndisks; i++)
		if (!strcmp(b->disks[i].label, label))
			return &b->disks[i];
	return NULL;
}
