#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zstd.h>

#include "crypto.h"
#include "dedup.h"
#include "packidx.h"
#include "store.h"
#include "usage.h"

#define PACK_MAX_BYTES ((size_t)256 << 20)
/*
 * Measured on the benchmark corpus (docs/PERFORMANCE.md): level 2 against
 * level 3 costs 0.5 % more space for 20 % less CPU. Already-compressed
 * chunks need no special case: zstd's fast levels store a block that does
 * not shrink raw, at about the cost of reading it (a sampling test that
 * sent such chunks to level -20 saved no time and cost space).
 */
#define ZSTD_LEVEL 2

/*
 * File data and metadata go to separate packs, as restic keeps tree packs
 * apart: metadata changes with every backup and dies with it, file data
 * mostly lives on, so space reclamation finds whole dead metadata packs to
 * delete and rarely has to copy live file data out of a partly dead pack.
 */
struct stream {
	struct pack_writer *pw;
	struct dedup_entry *sidecar;	/* blobs of the pack being written */
	size_t nsidecar, asidecar;
};

struct store {
	struct repo *repo;
	struct stream data, meta;
	struct dedup *dedup;		/* SHA-256 -> blob, from disk and this run */
	struct dedup *written;		/* trees and commits put in this run */
	struct store_stats stats;
	int failed;			/* a pack was lost: nothing may be committed */
	int inflight;			/* full packs being finished outside the lock */
	pthread_mutex_t lock;
	pthread_cond_t finished;
};

static __thread ZSTD_CCtx *cctx;

/* The dedup key of an encrypted blob is the MAC of its plaintext. */
_Static_assert(CRYPTO_MAC_LEN == SHA256_LEN, "a dedup key is 32 bytes either way");

void store_key(const struct repo *r, const void *data, size_t len, unsigned char key[SHA256_LEN])
{
	if (r->keys)
		crypto_keys_mac(key, r->keys, CRYPTO_DEDUP, data, len);
	else
		sha256(data, len, key);
}

int blob_unseal(const struct repo *r, const void *data, size_t len, struct strbuf *frame)
{
	if (!r->keys || len < BLOB_SEALED_OVERHEAD)
		return ERR_CORRUPT;
	return crypto_open(frame, r->keys->sub[CRYPTO_BLOB], data, SHA256_LEN,
			   (const unsigned char *)data + SHA256_LEN, len - SHA256_LEN);
}

int blob_payload_decode(const struct repo *r, void *dctx, struct strbuf *scratch,
			const void *data, size_t len, struct strbuf *out)
{
	int err;

	if (r->version != REPO_FORMAT_ENCRYPTED)
		return blob_decode_dctx(dctx, data, len, out);
	strbuf_reset(scratch);
	err = blob_unseal(r, data, len, scratch);
	if (!err)
		err = blob_decode_dctx(dctx, scratch->buf, scratch->len, out);
	return err;
}

void store_thread_done(void)
{
	ZSTD_freeCCtx(cctx);
	cctx = NULL;
}

int store_open(struct store **out, struct repo *r)
{
	struct store *s = xcalloc(1, sizeof(*s));
	size_t np, nb;

	*out = NULL;
	/* Never a plaintext blob in an encrypted repository, whatever the
	 * caller forgot: writing needs the key as reading does. */
	if (r->version == REPO_FORMAT_ENCRYPTED && !r->keys) {
		free(s);
		return error("repository '%s' is encrypted and was opened without its key", r->path);
	}
	s->repo = r;
	pthread_mutex_init(&s->lock, NULL);
	pthread_cond_init(&s->finished, NULL);
	if (store_index_missing(r, &np, &nb) < 0) {
		store_free(s);
		return -1;
	}
	if (np && verbosity >= 0)
		fprintf(stderr, "backup: built the dedup index of %zu pack%s (%zu blobs) that had none\n",
			np, np == 1 ? "" : "s", nb);
	if (dedup_load(&s->dedup, r->dedup_dir, r->pack_dir) < 0 ||
	    pack_writer_new(&s->data.pw, r->pack_dir, PACK_MAX_BYTES) < 0 ||
	    pack_writer_new(&s->meta.pw, r->pack_dir, PACK_MAX_BYTES) < 0) {
		store_free(s);
		return -1;
	}
	dedup_load(&s->written, NULL, NULL);
	*out = s;
	return 0;
}

void store_free(struct store *s)
{
	if (!s)
		return;
	pack_writer_free(s->data.pw);
	pack_writer_free(s->meta.pw);
	dedup_free(s->dedup);
	dedup_free(s->written);
	free(s->data.sidecar);
	free(s->meta.sidecar);
	pthread_mutex_destroy(&s->lock);
	pthread_cond_destroy(&s->finished);
	store_thread_done();
	free(s);
}

/* Flushes the pack being written, then its sidecar; the lock is held. */
static int flush_stream(struct store *s, struct stream *st)
{
	char *name = NULL;
	int ret;

	if (s->failed || pack_writer_flush(st->pw, &name) < 0) {
		s->failed = 1;
		return -1;
	}
	ret = name ? dedup_write_sidecar(s->repo->dedup_dir, name, st->sidecar, st->nsidecar) : 0;
	st->nsidecar = 0;
	free(name);
	return ret;
}

int store_flush(struct store *s)
{
	int ret;

	pthread_mutex_lock(&s->lock);
	/* Every pack handed over must be durable too before anything refers to it. */
	while (s->inflight)
		pthread_cond_wait(&s->finished, &s->lock);
	/* Data first: the metadata pack holds the trees that name the data. */
	ret = flush_stream(s, &s->data);
	if (!ret)
		ret = flush_stream(s, &s->meta);
	pthread_mutex_unlock(&s->lock);
	if (ret == 0 && git_odb_refresh(s->repo->odb) < 0)
		return error_git("cannot see the new packs");
	return ret;
}

/*
 * Appends an object; when the pack is full, hands it over to be finished
 * outside the lock (hashing and fsync take a while), so other threads keep
 * adding to a fresh pack meanwhile.
 */
static void finish_discard(struct pack_writer *pw, struct dedup_entry *side)
{
	pack_writer_free(pw);
	free(side);
}

/* Finishes a stream's pack outside the lock; the lock is held on entry and exit. */
static int finish_unlocked(struct store *s, struct pack_writer *pw, struct dedup_entry *side, size_t nside)
{
	char *name = NULL;
	int ret;

	pthread_mutex_unlock(&s->lock);
	ret = pack_writer_flush(pw, &name);
	if (!ret && name)
		ret = dedup_write_sidecar(s->repo->dedup_dir, name, side, nside);
	pack_writer_free(pw);
	free(side);
	free(name);
	pthread_mutex_lock(&s->lock);
	if (ret < 0)
		s->failed = 1;
	return ret;
}

/* Takes the stream's pack, leaving a fresh one in its place. */
static void detach(struct store *s, struct stream *st, struct pack_writer **pw,
		   struct dedup_entry **side, size_t *nside)
{
	*pw = st->pw;
	*side = st->sidecar;
	*nside = st->nsidecar;
	pack_writer_new(&st->pw, s->repo->pack_dir, PACK_MAX_BYTES);
	st->sidecar = NULL;
	st->nsidecar = st->asidecar = 0;
}

/*
 * Appends an object; when the pack is full, hands it over to be finished
 * outside the lock (hashing and fsync take a while), so other threads keep
 * adding to a fresh pack meanwhile. A full metadata pack holds trees that
 * may name data still being written: it is finished only after every data
 * pack before it, so no durable tree ever names a blob that is not.
 */
static int add_locked(struct store *s, struct stream *st, enum pack_type type,
		      const unsigned char *oid, const void *data, size_t len)
{
	struct pack_writer *full, *dpw = NULL;
	struct dedup_entry *side, *dside = NULL;
	size_t nside, ndside = 0;
	int ret = 0;

	if (s->failed || pack_writer_add(st->pw, type, oid, data, len) < 0) {
		s->failed = 1;
		return -1;
	}
	if (!pack_writer_full(st->pw))
		return 0;
	detach(s, st, &full, &side, &nside);
	s->inflight++;
	if (st == &s->meta) {
		while (s->inflight > 1)
			pthread_cond_wait(&s->finished, &s->lock);
		detach(s, &s->data, &dpw, &dside, &ndside);
		ret = finish_unlocked(s, dpw, dside, ndside);
	}
	if (!ret)
		ret = finish_unlocked(s, full, side, nside);
	else
		finish_discard(full, side);
	s->inflight--;
	pthread_cond_broadcast(&s->finished);
	return ret;
}

static int put_blob(struct store *s, struct stream *st, const void *data, size_t len,
		    unsigned char oid[SHA1_LEN])
{
	unsigned char key[SHA256_LEN];
	struct strbuf sealed = STRBUF_INIT;
	size_t bound, clen, plen;
	void *frame;
	const void *payload;
	int ret = 0;

	store_key(s->repo, data, len, key);
	pthread_mutex_lock(&s->lock);
	if (dedup_lookup(s->dedup, key, oid)) {
		s->stats.blobs_reused++;
		pthread_mutex_unlock(&s->lock);
		return 0;
	}
	pthread_mutex_unlock(&s->lock);

	if (!cctx) {
		cctx = ZSTD_createCCtx();
		if (!cctx)
			die("cannot create a zstd context");
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_checksumFlag, 1);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_contentSizeFlag, 1);
		ZSTD_CCtx_setParameter(cctx, ZSTD_c_compressionLevel, ZSTD_LEVEL);
	}
	bound = ZSTD_compressBound(len);
	frame = xmalloc(bound);
	clen = ZSTD_compress2(cctx, frame, bound, data, len);
	if (ZSTD_isError(clen))
		die("zstd compression failed: %s", ZSTD_getErrorName(clen));
	payload = frame;
	plen = clen;
	if (s->repo->keys) {
		/* The key in the clear, then the frame sealed for that key. */
		strbuf_grow(&sealed, BLOB_SEALED_OVERHEAD + clen);
		strbuf_add(&sealed, key, SHA256_LEN);
		if (crypto_seal(&sealed, s->repo->keys->sub[CRYPTO_BLOB], key, SHA256_LEN, frame, clen) < 0) {
			free(frame);
			strbuf_release(&sealed);
			return -1;
		}
		payload = sealed.buf;
		plen = sealed.len;
	}
	object_id("blob", payload, plen, oid);

	pthread_mutex_lock(&s->lock);
	/* Another thread may have stored the same chunk meanwhile. */
	if (dedup_lookup(s->dedup, key, oid)) {
		s->stats.blobs_reused++;
		goto out;
	}
	dedup_insert(s->dedup, key, oid);
	if (st->nsidecar == st->asidecar) {
		st->asidecar = st->asidecar ? 2 * st->asidecar : 1024;
		st->sidecar = xrealloc(st->sidecar, st->asidecar * sizeof(*st->sidecar));
	}
	memcpy(st->sidecar[st->nsidecar].key, key, SHA256_LEN);
	memcpy(st->sidecar[st->nsidecar].oid, oid, SHA1_LEN);
	st->nsidecar++;
	s->stats.blobs_new++;
	s->stats.bytes_new += plen;
	ret = add_locked(s, st, PACK_BLOB, oid, payload, plen);
out:
	pthread_mutex_unlock(&s->lock);
	free(frame);
	strbuf_release(&sealed);
	return ret;
}

int store_put_blob(struct store *s, const void *data, size_t len, unsigned char oid[SHA1_LEN])
{
	return put_blob(s, &s->data, data, len, oid);
}

int store_put_meta_blob(struct store *s, const void *data, size_t len, unsigned char oid[SHA1_LEN])
{
	return put_blob(s, &s->meta, data, len, oid);
}

int store_put_object(struct store *s, enum pack_type type, const void *data, size_t len,
		     unsigned char oid[SHA1_LEN])
{
	git_oid id;
	int ret = 0;

	object_id(type == PACK_TREE ? "tree" : "commit", data, len, oid);
	memcpy(id.id, oid, SHA1_LEN);
	pthread_mutex_lock(&s->lock);
	if (dedup_has_oid(s->written, oid) ||
	    git_odb_exists_ext(s->repo->odb, &id, GIT_ODB_LOOKUP_NO_REFRESH))
		goto out;
	dedup_add_oid(s->written, oid);
	s->stats.objects_new++;
	s->stats.bytes_new += len;
	ret = add_locked(s, &s->meta, type, oid, data, len);
out:
	pthread_mutex_unlock(&s->lock);
	return ret;
}

struct repo *store_repo(const struct store *s)
{
	return s->repo;
}

void store_get_stats(struct store *s, struct store_stats *out)
{
	pthread_mutex_lock(&s->lock);
	*out = s->stats;
	pthread_mutex_unlock(&s->lock);
}

int blob_decode(const void *data, size_t len, struct strbuf *out)
{
	return blob_decode_dctx(NULL, data, len, out);
}

int blob_decode_dctx(void *dctx, const void *data, size_t len, struct strbuf *out)
{
	unsigned long long size = ZSTD_getFrameContentSize(data, len);
	size_t n;

	if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN || size > BLOB_MAX)
		return ERR_CORRUPT;
	if (ZSTD_findFrameCompressedSize(data, len) != len)
		return ERR_CORRUPT;
	strbuf_grow(out, size);
	n = dctx ? ZSTD_decompressDCtx(dctx, out->buf + out->len, size, data, len)
		 : ZSTD_decompress(out->buf + out->len, size, data, len);
	if (ZSTD_isError(n) || n != size)
		return ERR_CORRUPT;
	strbuf_setlen(out, out->len + n);
	return 0;
}

int store_read_blob(struct repo *r, const unsigned char oid[SHA1_LEN], struct strbuf *out)
{
	struct strbuf frame = STRBUF_INIT;
	git_odb_object *obj = NULL;
	git_oid id;
	int err;

	memcpy(id.id, oid, SHA1_LEN);
	err = git_odb_read(&obj, r->odb, &id);
	if (err == GIT_ENOTFOUND)
		return ERR_NOTFOUND;
	if (err < 0)
		return ERR_CORRUPT;
	if (git_odb_object_type(obj) != GIT_OBJECT_BLOB)
		err = ERR_CORRUPT;
	else
		err = blob_payload_decode(r, NULL, &frame, git_odb_object_data(obj), git_odb_object_size(obj), out);
	git_odb_object_free(obj);
	strbuf_release(&frame);
	return err;
}

/* Writes the sidecar of every pack, or with only_missing of every pack that has none. */
static int index_packs(struct repo *r, int only_missing, size_t *npacks, size_t *nblobs)
{
	DIR *d = opendir(r->pack_dir);
	struct dirent *de;
	int ret = 0;

	*npacks = *nblobs = 0;
	if (!d)
		return error("cannot read '%s': %s", r->pack_dir, strerror(errno));
	if (r->version == REPO_FORMAT_ENCRYPTED && !r->keys) {
		closedir(d);
		return error("the dedup index of encrypted repository '%s' is built with its key", r->path);
	}
	while ((de = readdir(d)) && !ret) {
		size_t len = strlen(de->d_name), n, i, ne = 0;
		struct packidx idx;
		struct dedup_entry *e;
		struct strbuf plain = STRBUF_INIT;
		char *path, *name;

		if (len < 10 || strncmp(de->d_name, "pack-", 5) || strcmp(de->d_name + len - 4, ".idx"))
			continue;
		name = xstrndup(de->d_name, len - 4);
		if (only_missing) {
			path = xasprintf("%s/%s.sdx", r->dedup_dir, name);
			n = access(path, F_OK) == 0 || errno != ENOENT;
			free(path);
			if (n) {
				free(name);
				continue;
			}
		}
		path = xasprintf("%s/%s", r->pack_dir, de->d_name);
		ret = packidx_read(&idx, path);
		if (ret)
			error("pack index '%s' is damaged; its pack cannot be indexed", path);
		n = idx.nr;
		e = xcalloc(n + 1, sizeof(*e));
		for (i = 0; i < n && !ret; i++) {
			git_odb_object *obj = NULL;
			git_oid id;

			memcpy(id.id, idx.oids + i * SHA1_LEN, SHA1_LEN);
			if (git_odb_read(&obj, r->odb, &id) < 0) {
				warning("object %s of %s cannot be read; it is left out of the index",
					git_oid_tostr_s(&id), name);
				continue;
			}
			strbuf_reset(&plain);
			if (git_odb_object_type(obj) != GIT_OBJECT_BLOB) {
				;
			} else if (r->version == REPO_FORMAT_ENCRYPTED) {
				/* The key is in front; the tag says it is the blob's. */
				if (blob_unseal(r, git_odb_object_data(obj), git_odb_object_size(obj), &plain) == 0) {
					memcpy(e[ne].key, git_odb_object_data(obj), SHA256_LEN);
					memcpy(e[ne].oid, id.id, SHA1_LEN);
					ne++;
				}
			} else if (blob_decode(git_odb_object_data(obj), git_odb_object_size(obj), &plain) == 0) {
				sha256(plain.buf, plain.len, e[ne].key);
				memcpy(e[ne].oid, id.id, SHA1_LEN);
				ne++;
			}
			git_odb_object_free(obj);
		}
		if (!ret)
			ret = dedup_write_sidecar(r->dedup_dir, name, e, ne);
		if (!ret) {
			(*npacks)++;
			*nblobs += ne;
		}
		strbuf_release(&plain);
		packidx_release(&idx);
		free(e);
		free(path);
		free(name);
	}
	closedir(d);
	return ret;
}

int store_rebuild_index(struct repo *r, size_t *npacks, size_t *nblobs)
{
	return index_packs(r, 0, npacks, nblobs);
}

int store_index_missing(struct repo *r, size_t *npacks, size_t *nblobs)
{
	int lock = repo_lock(r, ".dedup", -1), ret;

	*npacks = *nblobs = 0;
	if (lock < 0)
		return -1;
	ret = index_packs(r, 1, npacks, nblobs);
	repo_unlock(lock);
	return ret;
}
