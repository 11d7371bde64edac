/*
 * transport_git.c — remotes reached by the stock git binary: another
 * folder, or git over SSH (remote.h).
 *
 * Why the git binary and not libgit2: libgit2 1.5's push runs a delta
 * search and re-deflates every object (10x slower on our zstd blobs), has
 * no known_hosts check and reports a refused ref as success; git sends our
 * pack entries as they are and checks host keys the way ssh is configured
 * (../shared/offsite/MEASURED.md, sections 1.3 to 1.5).
 *
 * What git needs told:
 * - A slot's new backup is a commit without parents, unrelated to the one
 *   the remote holds. git push marks as already sent only the trees of the
 *   "edges" (parents of what it sends), so it would send every object of
 *   the new backup again. With a shallow file, git pack-objects runs with
 *   --objects-edge-aggressive, which marks the whole tree of every commit
 *   the remote advertises (and this repository has) as present: only what
 *   the remote lacks is sent. `--shallow-file /dev/null` makes git take the
 *   repository as shallow with no shallow commit, so nothing else changes
 *   (no "shallow" line goes to the remote).
 * - pack.window=0: no delta search (our blobs are zstd frames; measured
 *   fastest, and the receiver gets no thin delta to complete).
 * - core.fsync=all: objects and refs git writes here (fetch) are durable
 *   before a slot may name them.
 * - LC_ALL=C: its messages are parsed; GIT_TERMINAL_PROMPT=0: a job never
 *   waits for a password on a terminal. Host keys are checked by ssh as its
 *   configuration says; nothing here weakens that.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "fsutil.h"
#include "hash.h"
#include "machine.h"
#include "remote.h"
#include "strbuf.h"
#include "usage.h"

extern char **environ;

/* Variables that would point git at another repository than the one named. */
static const char *const unset_vars[] = {
	"GIT_DIR", "GIT_WORK_TREE", "GIT_INDEX_FILE", "GIT_OBJECT_DIRECTORY",
	"GIT_ALTERNATE_OBJECT_DIRECTORIES", "GIT_NAMESPACE", "GIT_COMMON_DIR",
	"GIT_QUARANTINE_PATH", "GIT_CEILING_DIRECTORIES", "GIT_PREFIX", NULL
};

/* The environment git runs with; extra (NAME=VALUE, or NULL) is added,
 * replacing a variable of that name. */
static char **child_env(const struct remote *rm, const char *extra)
{
	size_t n = 0, k = 0, i;
	char **env;

	while (environ[n])
		n++;
	env = xcalloc(n + 5, sizeof(*env));
	for (i = 0; i < n; i++) {
		const char *const *u;
		const char *e = environ[i];
		int drop = !strncmp(e, "LC_ALL=", 7) || !strncmp(e, "GIT_TERMINAL_PROMPT=", 20) ||
			   (rm && rm->ssh_command && !strncmp(e, "GIT_SSH_COMMAND=", 16));

		for (u = unset_vars; *u && !drop; u++)
			if (!strncmp(e, *u, strlen(*u)) && e[strlen(*u)] == '=')
				drop = 1;
		if (extra && !strncmp(e, extra, strcspn(extra, "=") + 1))
			drop = 1;
		if (!drop)
			env[k++] = xstrdup(e);
	}
	env[k++] = xstrdup("LC_ALL=C");
	env[k++] = xstrdup("GIT_TERMINAL_PROMPT=0");
	if (rm && rm->ssh_command)
		env[k++] = xasprintf("GIT_SSH_COMMAND=%s", rm->ssh_command);
	if (extra)
		env[k++] = xstrdup(extra);
	env[k] = NULL;
	return env;
}

static void free_env(char **env)
{
	size_t i;

	for (i = 0; env[i]; i++)
		free(env[i]);
	free(env);
}

/*
 * Runs git with argv (argv[0] is "git"), input on its stdin (or /dev/null),
 * its stdout into out and its stderr into err (the last 64 KiB of it); with
 * forward, its stderr also goes to ours as it comes (progress); extra is a
 * variable added to its environment, or NULL. Returns its exit status
 * (128 + signal), or -1 after printing why it could not run. An interrupt
 * (SIGINT, SIGTERM) stops it.
 */
static int run_git_env(const struct remote *rm, const char *extra, const char *const *argv, const char *input,
		       struct strbuf *out, struct strbuf *err, int forward)
{
	int pin[2] = { -1, -1 }, pout[2] = { -1, -1 }, perr[2] = { -1, -1 }, st, killed = 0;
	size_t in_off = 0, in_len = input ? strlen(input) : 0;
	struct sigaction ign = { .sa_handler = SIG_IGN }, old;
	char **env = NULL, buf[16384];
	pid_t pid;

	if ((input && pipe2(pin, O_CLOEXEC) < 0) || pipe2(pout, O_CLOEXEC) < 0 || pipe2(perr, O_CLOEXEC) < 0) {
		error("cannot run git: %s", strerror(errno));
		goto fail;
	}
	env = child_env(rm, extra);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		error("cannot run git: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY | O_CLOEXEC);

		dup2(input ? pin[0] : null, STDIN_FILENO);
		dup2(pout[1], STDOUT_FILENO);
		dup2(perr[1], STDERR_FILENO);
		signal(SIGPIPE, SIG_DFL);
		execvpe("git", (char *const *)argv, env);
		dprintf(STDERR_FILENO, "backup: cannot run git: %s\n", strerror(errno));
		_exit(127);
	}
	free_env(env);
	env = NULL;
	close(pout[1]);
	close(perr[1]);
	pout[1] = perr[1] = -1;
	if (input) {
		close(pin[0]);
		pin[0] = -1;
		fcntl(pin[1], F_SETFL, O_NONBLOCK);
		if (!in_len) {
			close(pin[1]);
			pin[1] = -1;
		}
	}
	sigaction(SIGPIPE, &ign, &old);
	while (pout[0] >= 0 || perr[0] >= 0) {
		struct pollfd fds[3];
		int nfds = 0, i;

		if (interrupted && !killed) {
			kill(pid, SIGTERM);
			killed = 1;
		}
		if (pout[0] >= 0)
			fds[nfds++] = (struct pollfd){ .fd = pout[0], .events = POLLIN };
		if (perr[0] >= 0)
			fds[nfds++] = (struct pollfd){ .fd = perr[0], .events = POLLIN };
		if (pin[1] >= 0)
			fds[nfds++] = (struct pollfd){ .fd = pin[1], .events = POLLOUT };
		if (poll(fds, nfds, 200) < 0) {
			if (errno == EINTR)
				continue;
			break;
		}
		for (i = 0; i < nfds; i++) {
			ssize_t n;

			if (!fds[i].revents)
				continue;
			if (fds[i].fd == pin[1]) {
				n = write(pin[1], input + in_off, in_len - in_off);
				if (n > 0)
					in_off += n;
				if ((n < 0 && errno != EAGAIN && errno != EINTR) || in_off == in_len) {
					close(pin[1]);
					pin[1] = -1;
				}
				continue;
			}
			n = read(fds[i].fd, buf, sizeof(buf));
			if (n < 0 && (errno == EINTR || errno == EAGAIN))
				continue;
			if (n <= 0) {
				close(fds[i].fd);
				if (fds[i].fd == pout[0])
					pout[0] = -1;
				else
					perr[0] = -1;
				continue;
			}
			if (fds[i].fd == pout[0]) {
				strbuf_add(out, buf, n);
			} else {
				if (forward)
					write_all(STDERR_FILENO, buf, n);
				if (err->len > 65536) {
					memmove(err->buf, err->buf + err->len - 32768, 32768);
					strbuf_setlen(err, 32768);
				}
				strbuf_add(err, buf, n);
			}
		}
	}
	sigaction(SIGPIPE, &old, NULL);
	if (pin[1] >= 0)
		close(pin[1]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return error("cannot wait for git: %s", strerror(errno));
	if (WIFEXITED(st))
		return WEXITSTATUS(st);
	return 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
fail:
	if (env)
		free_env(env);
	for (int i = 0; i < 2; i++) {
		if (pin[i] >= 0)
			close(pin[i]);
		if (pout[i] >= 0)
			close(pout[i]);
		if (perr[i] >= 0)
			close(perr[i]);
	}
	return -1;
}

static int run_git(const struct remote *rm, const char *const *argv, const char *input,
		   struct strbuf *out, struct strbuf *err, int forward)
{
	return run_git_env(rm, NULL, argv, input, out, err, forward);
}

/*
 * The reason git failed, for one line: the last line of its stderr that
 * says something (ssh's own complaint, which comes after its warnings and
 * before git's generic "could not read from remote repository"), without
 * git's "fatal: " prefix.
 */
static void failure_reason(const struct strbuf *err, struct strbuf *why)
{
	const char *p = err->buf, *generic = NULL;
	size_t generic_len = 0;

	while (*p) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p), *cr;
		size_t len;

		const char *e = end;

		/* ssh ends lines in \r\n; progress rewrites a line after \r:
		 * take the text after the last \r that is not at the end. */
		while (e > p && e[-1] == '\r')
			e--;
		while ((cr = memchr(p, '\r', e - p)))
			p = cr + 1;
		len = e - p;
		if (len && strncmp(p, "remote: ", 8) && strncmp(p, "Please make sure", 16) &&
		    strncmp(p, "and the repository exists", 25) && strncmp(p, "hint: ", 6) &&
		    strncmp(p, "Warning: Permanently added", 26)) {
			if (!strncmp(p, "fatal: Could not read from remote repository", 44) ||
			    !strncmp(p, "error: failed to push", 21) || !strncmp(p, "fatal: the remote end hung up", 29)) {
				if (!generic) {
					generic = p;
					generic_len = len;
				}
			} else {
				if (!strncmp(p, "fatal: ", 7) || !strncmp(p, "error: ", 7)) {
					p += 7;
					len -= 7;
				}
				strbuf_reset(why);
				strbuf_add(why, p, len);
			}
		}
		p = nl ? nl + 1 : end;
	}
	if (why->len)
		return;
	if (generic)
		strbuf_add(why, generic, generic_len);
	else
		strbuf_addstr(why, "git failed and said nothing");
}

/* The remote's own messages ("remote: ..." lines), or NULL. */
static char *remote_lines(const struct strbuf *err)
{
	struct strbuf sb = STRBUF_INIT;
	const char *p = err->buf;

	while (*p) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);

		if (!strncmp(p, "remote: ", 8)) {
			const char *e = end;

			while (e > p && (e[-1] == ' ' || e[-1] == '\r'))
				e--;
			strbuf_add(&sb, p, e - p);
			strbuf_addch(&sb, '\n');
		}
		p = nl ? nl + 1 : end;
	}
	if (!sb.len)
		return NULL;
	return strbuf_detach(&sb, NULL);
}

struct remote_ref {
	char hex[41];
	char *name;
};

static void free_remote_refs(struct remote_ref *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(list[i].name);
	free(list);
}

static double seconds_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* Sizes and object counts of the packs in dir, to tell what a fetch added. */
struct pack_seen {
	char **names;
	size_t n;
};

static void list_packs(const char *dir, struct pack_seen *ps)
{
	DIR *d = opendir(dir);
	struct dirent *de;

	ps->names = NULL;
	ps->n = 0;
	if (!d)
		return;
	while ((de = readdir(d))) {
		size_t len = strlen(de->d_name);

		if (len > 5 && !strcmp(de->d_name + len - 5, ".pack")) {
			ps->names = xrealloc(ps->names, (ps->n + 1) * sizeof(*ps->names));
			ps->names[ps->n++] = xstrdup(de->d_name);
		}
	}
	closedir(d);
}

static void free_packs(struct pack_seen *ps)
{
	size_t i;

	for (i = 0; i < ps->n; i++)
		free(ps->names[i]);
	free(ps->names);
}

/*
 * A local pack's index, mapped (page cache, not heap): what a push sent is
 * looked up in it object by object, never loaded whole.
 */
struct mapped_idx {
	const unsigned char *map;	/* the .idx file */
	size_t len, nr;
	const unsigned char *oids, *off, *large;
	uint64_t trailer;		/* where the pack's checksum starts */
	time_t mtime;
	/* The sent objects found in this pack: their offsets, sorted, and
	 * the offset of the object after each (or the trailer's). */
	uint64_t *sent, *next;
	size_t nsent, asent;
};

static uint32_t get_be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Newest first, the order git looks in. */
static int cmp_idx_mtime(const void *a, const void *b)
{
	const struct mapped_idx *x = a, *y = b;

	return x->mtime > y->mtime ? -1 : x->mtime < y->mtime;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

/* Maps path (an index of version 2) for a pack of pack_size bytes; 0 or -1. */
static int map_idx(struct mapped_idx *m, const char *path, uint64_t pack_size)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	const unsigned char *p;
	struct stat st;
	size_t i;

	memset(m, 0, sizeof(*m));
	if (fd < 0)
		return -1;
	if (fstat(fd, &st) < 0 || st.st_size < 8 + 1024 + 2 * SHA1_LEN) {
		close(fd);
		return -1;
	}
	p = mmap(NULL, st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
	close(fd);
	if (p == MAP_FAILED)
		return -1;
	m->map = p;
	m->len = st.st_size;
	m->nr = get_be32(p + 8 + 1020);
	if (memcmp(p, "\377tOc\0\0\0\2", 8) || m->nr > m->len / SHA1_LEN ||
	    m->len < 8 + 1024 + m->nr * (SHA1_LEN + 8) + 2 * SHA1_LEN)
		goto bad;
	for (i = 1; i < 256; i++)
		if (get_be32(p + 8 + 4 * i) < get_be32(p + 8 + 4 * (i - 1)))
			goto bad;
	m->oids = p + 8 + 1024;
	m->off = m->oids + m->nr * (SHA1_LEN + 4);
	m->large = m->off + 4 * m->nr;
	m->trailer = pack_size - SHA1_LEN;
	return 0;
bad:
	munmap((void *)m->map, m->len);
	m->map = NULL;
	return -1;
}

/* The offset of the object at position pos; 0 when the index is bad. */
static uint64_t idx_offset(const struct mapped_idx *m, size_t pos)
{
	uint32_t o = get_be32(m->off + 4 * pos);
	size_t k = o & 0x7fffffffu;

	if (!(o & 0x80000000u))
		return o;
	if (m->large + 8 * (k + 1) > m->map + m->len - 2 * SHA1_LEN)
		return 0;
	return (uint64_t)get_be32(m->large + 8 * k) << 32 | get_be32(m->large + 8 * k + 4);
}

/* The position of id in m (the fan-out, then a binary search), or -1. */
static ssize_t idx_find(const struct mapped_idx *m, const unsigned char *id)
{
	size_t lo = id[0] ? get_be32(m->map + 8 + 4 * (id[0] - 1)) : 0, hi = get_be32(m->map + 8 + 4 * id[0]);

	if (hi > m->nr)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int c = memcmp(m->oids + mid * SHA1_LEN, id, SHA1_LEN);

		if (!c)
			return mid;
		if (c < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return -1;
}

/* The local packs' indexes, mapped (a pack without a readable index is
 * left out: git does not read it either). */
static void map_packs(struct repo *r, struct mapped_idx **out, size_t *nr)
{
	struct pack_seen ps;
	struct mapped_idx *v = NULL;
	size_t i, n = 0;

	list_packs(r->pack_dir, &ps);
	for (i = 0; i < ps.n; i++) {
		char *pack = xasprintf("%s/%s", r->pack_dir, ps.names[i]);
		char *idx = xasprintf("%.*s.idx", (int)(strlen(pack) - 5), pack);
		struct mapped_idx m;
		struct stat st;

		if (stat(pack, &st) == 0 && st.st_size >= 32 && map_idx(&m, idx, st.st_size) == 0) {
			m.mtime = st.st_mtime;
			v = xrealloc(v, (n + 1) * sizeof(*v));
			v[n++] = m;
		}
		free(idx);
		free(pack);
	}
	free_packs(&ps);
	qsort(v, n, sizeof(*v), cmp_idx_mtime);
	*out = v;
	*nr = n;
}

static void unmap_packs(struct mapped_idx *v, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		munmap((void *)v[i].map, v[i].len);
		free(v[i].sent);
		free(v[i].next);
	}
	free(v);
}

/*
 * The bytes the sent objects of m take in its pack: each up to the next
 * object of the pack. One pass over the pack's offsets: an offset o is
 * the next object of the largest sent offset below it, at most.
 */
static uint64_t sent_bytes(struct mapped_idx *m)
{
	uint64_t sum = 0;
	size_t i, k = 0;

	if (!m->nsent)
		return 0;
	qsort(m->sent, m->nsent, sizeof(*m->sent), cmp_u64);
	/* The same object may come twice: count it once. */
	for (i = 0; i < m->nsent; i++)
		if (!k || m->sent[k - 1] != m->sent[i])
			m->sent[k++] = m->sent[i];
	m->nsent = k;
	m->next = xmalloc(m->nsent * sizeof(*m->next));
	for (i = 0; i < m->nsent; i++)
		m->next[i] = m->trailer;
	for (i = 0; i < m->nr; i++) {
		uint64_t o = idx_offset(m, i);
		size_t lo = 0, hi = m->nsent;

		/* The first sent offset not below o. */
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (m->sent[mid] < o)
				lo = mid + 1;
			else
				hi = mid;
		}
		if (lo && o < m->next[lo - 1])
			m->next[lo - 1] = o;
	}
	for (i = 0; i < m->nsent; i++)
		if (m->next[i] > m->sent[i])
			sum += m->next[i] - m->sent[i];
	return sum;
}

/*
 * Counts the objects (and their bytes in the packs) that git will send for
 * revs (lines of "ID" and "^ID"), walking as git's pack-objects does under
 * --objects-edge-aggressive: one rev-list pass lists them, and their sizes
 * come from the pack indexes (what git's --disk-usage reports: the bytes
 * up to the next object of the pack; a loose object's file size). The
 * indexes are mapped and only the sent objects are looked up: the memory
 * is the list of sent objects (about 60 bytes each), whatever the size of
 * the repository. Returns 0, or -1 (the numbers stay 0).
 */
static int count_to_send(struct repo *r, const char *revs, uint64_t *objects, uint64_t *bytes)
{
	char *gd = xasprintf("--git-dir=%s", r->path);
	const char *list[] = { "git", gd, "rev-list", "--objects", "--objects-edge-aggressive",
			       "--no-object-names", "--stdin", NULL };
	struct strbuf o = STRBUF_INIT, e = STRBUF_INIT;
	struct mapped_idx *packs = NULL;
	size_t npacks = 0, i;
	const char *p;
	int ret = -1;

	*objects = *bytes = 0;
	if (run_git(NULL, list, revs, &o, &e, 0) != 0)
		goto out;
	map_packs(r, &packs, &npacks);
	/* Edges come as "-ID" lines: git sends nothing for them. */
	for (p = o.buf; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p)) {
		git_oid oid;
		ssize_t pos = -1;

		if (*p == '-' || *p == '\n')
			continue;
		(*objects)++;
		if (git_oid_fromstrn(&oid, p, 40) < 0)
			continue;
		for (i = 0; i < npacks && (pos = idx_find(&packs[i], oid.id)) < 0; i++)
			;
		if (pos >= 0) {
			struct mapped_idx *m = &packs[i];

			if (m->nsent == m->asent) {
				m->asent = m->asent ? 2 * m->asent : 64;
				m->sent = xrealloc(m->sent, m->asent * sizeof(*m->sent));
			}
			m->sent[m->nsent++] = idx_offset(m, pos);
		} else {
			char *loose = xasprintf("%s/objects/%.2s/%.38s", r->path, p, p + 2);
			struct stat st;

			if (stat(loose, &st) == 0)
				*bytes += st.st_size;
			free(loose);
		}
	}
	for (i = 0; i < npacks; i++)
		*bytes += sent_bytes(&packs[i]);
	/* The pack's header and trailer. */
	if (*objects)
		*bytes += 12 + 20;
	ret = 0;
out:
	unmap_packs(packs, npacks);
	free(gd);
	strbuf_release(&o);
	strbuf_release(&e);
	return ret;
}

static struct ref_update *add_update(struct transfer_result *res, const char *ref)
{
	struct ref_update *u;

	res->refs = xrealloc(res->refs, (res->nrefs + 1) * sizeof(*res->refs));
	u = &res->refs[res->nrefs++];
	memset(u, 0, sizeof(*u));
	u->ref = xstrdup(ref);
	return u;
}

/*
 * Reads git push --porcelain: after "To URL", one line per ref,
 * "FLAG \t FROM:TO \t SUMMARY [(REASON)]"; FLAG '!' is a refusal.
 */
static void parse_porcelain(const char *out, struct transfer_result *res)
{
	const char *p = out;

	while (*p) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
		const char *t1 = memchr(p, '\t', end - p), *t2 = t1 ? memchr(t1 + 1, '\t', end - t1 - 1) : NULL;

		if (t1 == p + 1 && t2) {
			const char *colon = memchr(t1 + 1, ':', t2 - t1 - 1);
			size_t i;

			for (i = 0; colon && i < res->nrefs; i++) {
				struct ref_update *u = &res->refs[i];

				if (strlen(u->ref) != (size_t)(t2 - colon - 1) ||
				    strncmp(u->ref, colon + 1, t2 - colon - 1))
					continue;
				if (*p == '!') {
					const char *lp = memchr(t2, '(', end - t2), *rp = end;

					while (rp > t2 && rp[-1] != ')')
						rp--;
					u->status = REF_REFUSED;
					free(u->reason);
					if (lp && rp > lp + 1)
						u->reason = xstrndup(lp + 1, rp - lp - 2);
					else
						u->reason = xstrndup(t2 + 1, end - t2 - 1);
				} else if (*p == '=') {
					u->status = REF_UPTODATE;
					free(u->reason);
					u->reason = NULL;
				} else if (*p == '*' || *p == '+' || *p == ' ') {
					u->status = REF_UPDATED;
					free(u->reason);
					u->reason = NULL;
				}
			}
		}
		p = nl ? nl + 1 : end;
	}
}

/*
 * The refs the remote advertised to git push or fetch, read from git's
 * packet trace (GIT_TRACE_PACKET): lines "... packet: SIDE ID REFNAME"
 * (side "push< " or "fetch< "), in protocol v0 the first with
 * "\0capabilities" after the name (the trace writes the NUL as "\0"), in
 * v2 (ls-refs) some with " ATTRIBUTE" after it.
 * Sets *reached when the remote said anything at all. Returns 0, or -1
 * when the trace cannot be read.
 */
static int advertised_refs(const char *trace, const char *side, struct remote_ref **out, size_t *nr,
			   int *reached)
{
	size_t side_len = strlen(side);
	struct strbuf sb = STRBUF_INIT;
	struct remote_ref *list = NULL;
	size_t n = 0;
	const char *p;

	*out = NULL;
	*nr = 0;
	*reached = 0;
	if (strbuf_read_file(&sb, trace) < 0) {
		strbuf_release(&sb);
		return -1;
	}
	for (p = sb.buf; *p;) {
		const char *nl = strchr(p, '\n'), *end = nl ? nl : p + strlen(p);
		const char *m = memmem(p, end - p, side, side_len);

		if (m) {
			*reached = 1;
			m += side_len;
			if (end - m > 46 && strspn(m, "0123456789abcdef") == 40 && m[40] == ' ' &&
			    !strncmp(m + 41, "refs/", 5)) {
				size_t len = strcspn(m + 41, " \\\n");

				list = xrealloc(list, (n + 1) * sizeof(*list));
				memcpy(list[n].hex, m, 40);
				list[n].hex[40] = '\0';
				list[n].name = xstrndup(m + 41, len);
				n++;
			}
		}
		p = nl ? nl + 1 : end;
	}
	strbuf_release(&sb);
	*out = list;
	*nr = n;
	return 0;
}

/*
 * A new empty file for git's packet trace, under backup/locks/ (an
 * absolute path: git runs elsewhere), or NULL after a message.
 */
static char *trace_file(struct repo *r, const char *what)
{
	char *trace, *cwd = r->path[0] == '/' ? NULL : getcwd(NULL, 0);
	int fd;

	if (r->path[0] == '/')
		trace = xasprintf("%s/backup/locks/.%s-trace-XXXXXX", r->path, what);
	else
		trace = xasprintf("%s/%s/backup/locks/.%s-trace-XXXXXX", cwd ? cwd : ".", r->path, what);
	free(cwd);
	fd = mkstemp(trace);
	if (fd < 0) {
		error("cannot create '%s': %s", trace, strerror(errno));
		free(trace);
		return NULL;
	}
	close(fd);
	return trace;
}

/*
 * One connection: git push learns the remote's refs itself, and tells them
 * to us through its packet trace; the refs already there come back as up
 * to date. What was sent is counted afterwards against those refs, as git
 * counted it (nothing here has changed: the repository is held shared).
 */
static int tg_push(struct repo *r, const struct remote *rm, const char *const *refs, size_t nrefs,
		    int progress, struct transfer_result *res)
{
	struct remote_ref *theirs = NULL;
	size_t ntheirs = 0, i, j, nsent = 0;
	struct strbuf revs = STRBUF_INIT, o = STRBUF_INIT, e = STRBUF_INIT, why = STRBUF_INIT;
	const char **argv = NULL;
	char *gd = xasprintf("--git-dir=%s", r->path), *trace = NULL, *trace_env = NULL;
	struct timespec t0;
	size_t argc = 0, spec0 = 0;
	int ret = -1, st, reached = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	for (i = 0; i < nrefs; i++) {
		struct ref_update *u = add_update(res, refs[i]);
		git_oid oid;

		if (git_reference_name_to_id(&oid, r->git, refs[i]) < 0) {
			error_git("cannot read a slot");
			goto out;
		}
		git_oid_tostr(u->new_hex, sizeof(u->new_hex), &oid);
		/* Until git says otherwise, nothing is pushed. */
		u->status = REF_REFUSED;
		u->reason = xstrdup("not sent");
	}
	if (!nrefs) {
		ret = 0;
		goto out;
	}
	trace = trace_file(r, "push");
	if (!trace)
		goto out;
	trace_env = xasprintf("GIT_TRACE_PACKET=%s", trace);
	argv = xcalloc(16 + nrefs, sizeof(*argv));
	argv[argc++] = "git";
	argv[argc++] = gd;
	argv[argc++] = "--shallow-file";
	argv[argc++] = "/dev/null";
	argv[argc++] = "-c";
	argv[argc++] = "pack.window=0";
	argv[argc++] = "-c";
	argv[argc++] = "pack.depth=0";
	argv[argc++] = "-c";
	argv[argc++] = "push.negotiate=false";
	argv[argc++] = "push";
	argv[argc++] = "--porcelain";
	argv[argc++] = progress ? "--progress" : "--no-progress";
	argv[argc++] = "--";
	argv[argc++] = rm->name;
	spec0 = argc;
	for (i = 0; i < res->nrefs; i++)
		argv[argc++] = xasprintf("+%s:%s", res->refs[i].ref, res->refs[i].ref);
	argv[argc] = NULL;
	st = run_git_env(rm, trace_env, argv, NULL, &o, &e, progress);
	if (st < 0)
		goto out;
	if (advertised_refs(trace, "push< ", &theirs, &ntheirs, &reached) < 0)
		warning("cannot read what git push was told of the remote's refs; its statistics are left out");
	parse_porcelain(o.buf, res);
	for (i = 0; i < res->nrefs; i++) {
		struct ref_update *u = &res->refs[i];

		for (j = 0; j < ntheirs; j++)
			if (!strcmp(theirs[j].name, u->ref))
				memcpy(u->old_hex, theirs[j].hex, 41);
		if (u->status != REF_UPTODATE) {
			strbuf_addf(&revs, "%s\n", u->new_hex);
			nsent++;
		}
	}
	for (i = 0; i < res->nrefs; i++)
		if (res->refs[i].status == REF_REFUSED)
			break;
	if (i < res->nrefs) {
		/* The remote's own words: its hook says why. */
		res->messages = remote_lines(&e);
		if (!strstr(o.buf, "\nDone") && strncmp(o.buf, "Done", 4)) {
			failure_reason(&e, &why);
			for (i = 0; i < res->nrefs; i++)
				if (res->refs[i].status == REF_REFUSED && !strcmp(res->refs[i].reason, "not sent")) {
					free(res->refs[i].reason);
					res->refs[i].reason = xstrdup(why.buf);
				}
			if (st && !strstr(o.buf, "\t")) {
				if (reached)
					error("cannot push to remote '%s' (%s): %s", rm->name, rm->url, why.buf);
				else
					error("cannot reach remote '%s' (%s): %s", rm->name, rm->url, why.buf);
				goto out;
			}
		}
	}
	/* What the remote has and this repository too was not sent. */
	if (nsent && reached) {
		for (j = 0; j < ntheirs; j++) {
			git_oid oid;

			if (git_oid_fromstr(&oid, theirs[j].hex) == 0 && git_odb_exists(r->odb, &oid))
				strbuf_addf(&revs, "^%s\n", theirs[j].hex);
		}
		if (count_to_send(r, revs.buf, &res->objects, &res->bytes) < 0)
			warning("cannot count what the push sent; its statistics are left out");
	}
	ret = 0;
out:
	if (argv)
		for (i = spec0; argv[i]; i++)
			free((char *)argv[i]);
	free(argv);
	free(gd);
	if (trace) {
		unlink(trace);
		free(trace);
	}
	free(trace_env);
	free_remote_refs(theirs, ntheirs);
	strbuf_release(&revs);
	strbuf_release(&o);
	strbuf_release(&e);
	strbuf_release(&why);
	res->seconds = seconds_since(&t0);
	return ret;
}

/* Adds the packs in dir that are not in before to res (objects, bytes). */
static void count_new_packs(const char *dir, const struct pack_seen *before, struct transfer_result *res)
{
	struct pack_seen after;
	size_t i, j;

	list_packs(dir, &after);
	for (i = 0; i < after.n; i++) {
		char *path, *idx;
		struct stat st;
		unsigned char n[4];
		int fd;

		for (j = 0; j < before->n; j++)
			if (!strcmp(before->names[j], after.names[i]))
				break;
		if (j < before->n)
			continue;
		path = xasprintf("%s/%s", dir, after.names[i]);
		if (stat(path, &st) == 0)
			res->bytes += st.st_size;
		/* The object count is the last fan-out entry of the index. */
		idx = xasprintf("%.*s.idx", (int)(strlen(path) - 5), path);
		fd = open(idx, O_RDONLY | O_CLOEXEC);
		if (fd >= 0 && pread(fd, n, 4, 8 + 255 * 4) == 4)
			res->objects += (uint64_t)n[0] << 24 | n[1] << 16 | n[2] << 8 | n[3];
		if (fd >= 0)
			close(fd);
		free(idx);
		free(path);
	}
	free_packs(&after);
}

/* 1 when ref is one a fetch brings: a slot, or the service state. */
static int fetched_ref(const char *ref)
{
	const char *m = ref + strlen("refs/backups/"), *slot;
	char machine[65];

	if (!strcmp(ref, REPO_STATE_REF))
		return 1;
	if (strncmp(ref, "refs/backups/", 13) || !(slot = strchr(m, '/')) || slot - m > 64)
		return 0;
	memcpy(machine, m, slot - m);
	machine[slot - m] = '\0';
	slot++;
	return valid_name(machine) && (!strcmp(slot, "daily") || !strcmp(slot, "weekly") ||
				       !strcmp(slot, "biweekly") || !strcmp(slot, "snapshot"));
}

/*
 * Writes the backups this repository has, as a shallow file: git then runs
 * the remote's pack-objects with --shallow, which counts the whole tree of
 * every backup both sides have as present (the same reason as push's
 * --shallow-file, from the other end). A backup has no parents, so calling
 * it shallow changes nothing else. Returns the file's path, or NULL.
 */
static char *shallow_file(struct repo *r)
{
	char *path = xasprintf("%s/backup/locks/.fetch-shallow-XXXXXX", r->path);
	git_reference_iterator *it = NULL;
	git_reference *ref;
	struct strbuf sb = STRBUF_INIT;
	int fd = mkstemp(path);

	if (fd < 0) {
		error("cannot create '%s': %s", path, strerror(errno));
		free(path);
		return NULL;
	}
	if (git_reference_iterator_glob_new(&it, r->git, "refs/backups/*") == 0) {
		while (git_reference_next(&ref, it) == 0) {
			const git_oid *id = git_reference_target(ref);
			git_commit *c = NULL;

			/* Only backups: commits without parents. */
			if (id && git_commit_lookup(&c, r->git, id) == 0 && !git_commit_parentcount(c))
				strbuf_addf(&sb, "%s\n", git_oid_tostr_s(id));
			git_commit_free(c);
			git_reference_free(ref);
		}
		git_reference_iterator_free(it);
	}
	if (write_all(fd, sb.buf, sb.len) < 0) {
		error("cannot write '%s': %s", path, strerror(errno));
		close(fd);
		unlink(path);
		free(path);
		path = NULL;
	} else {
		close(fd);
	}
	strbuf_release(&sb);
	return path;
}

/*
 * One connection: git fetch lists the remote's refs and fetches in the same
 * session, and tells us the refs through its packet trace. A fetch refspec
 * with a pattern must name where the refs go, so it runs as --dry-run:
 * git receives the objects (pack, index, fsync, connectivity check of what
 * the refs need) and writes no ref; the slots are the caller's to move.
 * Only slot refs are asked for (their objects alone are sent) and the
 * service state.
 */
static int tg_fetch(struct repo *r, const struct remote *rm, int progress, struct transfer_result *res)
{
	static const char *const specs[] = {
		"+refs/backups/*/daily:refs/backup-fetch/*/daily",
		"+refs/backups/*/weekly:refs/backup-fetch/*/weekly",
		"+refs/backups/*/biweekly:refs/backup-fetch/*/biweekly",
		"+refs/backups/*/snapshot:refs/backup-fetch/*/snapshot",
		/* A pattern: a remote without the state is no error. */
		"+" REPO_STATE_REF "*:refs/backup-fetch/state*",
	};
	struct remote_ref *theirs = NULL;
	size_t ntheirs = 0, i;
	struct strbuf o = STRBUF_INIT, e = STRBUF_INIT, why = STRBUF_INIT;
	const char *argv[48];
	char *gd = xasprintf("--git-dir=%s", r->path), *shallow = NULL, *trace = NULL, *trace_env = NULL;
	struct pack_seen before = { 0 };
	struct timespec t0;
	size_t argc = 0;
	int ret = -1, st, reached = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	memset(res, 0, sizeof(*res));
	shallow = shallow_file(r);
	trace = shallow ? trace_file(r, "fetch") : NULL;
	if (!trace)
		goto out;
	trace_env = xasprintf("GIT_TRACE_PACKET=%s", trace);
	argv[argc++] = "git";
	argv[argc++] = gd;
	argv[argc++] = "--shallow-file";
	argv[argc++] = shallow;
	argv[argc++] = "-c";
	argv[argc++] = "core.fsync=all";
	argv[argc++] = "-c";
	argv[argc++] = "core.fsyncMethod=fsync";
	argv[argc++] = "-c";
	argv[argc++] = "transfer.unpackLimit=1";
	argv[argc++] = "-c";
	argv[argc++] = "fetch.unpackLimit=1";
	argv[argc++] = "-c";
	argv[argc++] = "maintenance.auto=false";
	argv[argc++] = "-c";
	argv[argc++] = "gc.auto=0";
	argv[argc++] = "fetch";
	argv[argc++] = "--dry-run";
	argv[argc++] = "--no-tags";
	argv[argc++] = "--no-write-fetch-head";
	argv[argc++] = "--no-auto-maintenance";
	argv[argc++] = "--no-write-commit-graph";
	argv[argc++] = "--no-recurse-submodules";
	argv[argc++] = progress ? "--progress" : "--quiet";
	argv[argc++] = "--";
	argv[argc++] = rm->name;
	for (i = 0; i < sizeof(specs) / sizeof(*specs); i++)
		argv[argc++] = specs[i];
	argv[argc] = NULL;
	list_packs(r->pack_dir, &before);
	st = run_git_env(rm, trace_env, argv, NULL, &o, &e, progress);
	if (st < 0)
		goto out;
	if (advertised_refs(trace, "fetch< ", &theirs, &ntheirs, &reached) < 0) {
		error("cannot read what git fetch was told of the remote's refs");
		goto out;
	}
	if (st) {
		failure_reason(&e, &why);
		if (reached)
			error("cannot fetch from remote '%s' (%s): %s", rm->name, rm->url, why.buf);
		else
			error("cannot reach remote '%s' (%s): %s", rm->name, rm->url, why.buf);
		goto out;
	}
	/* git fsyncs the pack and its index, not their folder. */
	if (fsync_dir(r->pack_dir) < 0) {
		error("cannot sync '%s': %s", r->pack_dir, strerror(errno));
		goto out;
	}
	count_new_packs(r->pack_dir, &before, res);
	for (i = 0; i < ntheirs; i++) {
		struct ref_update *u;
		git_oid oid;

		if (!fetched_ref(theirs[i].name) || git_oid_fromstr(&oid, theirs[i].hex) < 0)
			continue;
		u = add_update(res, theirs[i].name);
		memcpy(u->new_hex, theirs[i].hex, 41);
		u->status = REF_UPDATED;
		/* Whatever git did, a slot names only what is here. */
		if (!git_odb_exists(r->odb, &oid)) {
			u->status = REF_REFUSED;
			u->reason = xstrdup("its objects did not come; fetch again");
		}
	}
	ret = 0;
out:
	if (shallow) {
		unlink(shallow);
		free(shallow);
	}
	if (trace) {
		unlink(trace);
		free(trace);
	}
	free(trace_env);
	free_packs(&before);
	free(gd);
	free_remote_refs(theirs, ntheirs);
	strbuf_release(&o);
	strbuf_release(&e);
	strbuf_release(&why);
	res->seconds = seconds_since(&t0);
	return ret;
}

const struct transport_ops transport_git = {
	.name = "git",
	.push = tg_push,
	.fetch = tg_fetch,
};
