/*
 * s3.h — a client for S3 object storage: one bucket, its objects, their
 * multipart uploads and Object Lock retention. It knows nothing of backups.
 *
 * Requests go through libcurl, signed by its built-in AWS Signature V4
 * (CURLOPT_AWS_SIGV4). libcurl 7.88 needs the caller to do six things, all
 * done here (measured against Ceph radosgw, docs in ../shared/offsite):
 * every request carries x-amz-content-sha256 (the body's SHA-256, or that
 * of the empty string); query strings are sorted and percent-encoded, and a
 * parameter without a value keeps its '='; keys are percent-encoded, '+'
 * included; uploads send Content-Length, never chunks; and no header is
 * suppressed with an empty "Name:" line, because libcurl signs the empty
 * header that it then leaves out of the request.
 *
 * A client holds one connection, reused from request to request; use one
 * client per thread. Keys are the object names inside the bucket, without
 * a leading '/'.
 *
 * Errors. Functions return 0 or a negative code. Three outcomes that
 * callers act on print nothing: ERR_NOTFOUND (no such object, or no such
 * upload), ERR_EXISTS (a create-only write found the key taken, or the
 * bucket exists already) and S3_ERR_LOCKED (Object Lock refused to delete a
 * version or to shorten its lock). Every other failure prints one line, and the permanent ones a
 * user must fix have their own codes below. Transient failures
 * (HTTP 5xx, 429, a reset, refused or stalled connection, a timeout) are
 * retried with exponential backoff, a bounded number of times, before
 * S3_ERR_UNAVAILABLE. No message ever holds a secret.
 */
#ifndef S3_H
#define S3_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <time.h>

#include "s3cred.h"

struct strbuf;

enum s3_err {
	S3_ERR_DENIED = -20,	/* 403: a wrong key or secret, or no permission */
	S3_ERR_NOBUCKET = -21,	/* the bucket does not exist */
	S3_ERR_SKEW = -22,	/* this host's clock differs from the server's */
	S3_ERR_UNAVAILABLE = -23, /* transient failures outlasted the retries */
	S3_ERR_LOCKED = -24,	/* Object Lock refused a delete or a shorter lock */
};

enum s3_addressing {
	S3_ADDR_AUTO,	/* virtual-host on AWS's own endpoints, path-style elsewhere */
	S3_ADDR_PATH,	/* http://host/BUCKET/KEY */
	S3_ADDR_VHOST,	/* http://BUCKET.host/KEY */
};

struct s3_options {
	/* scheme://host[:port][/path]; NULL: https://s3.REGION.amazonaws.com */
	const char *endpoint;
	const char *region;	/* NULL: us-east-1 */
	const char *bucket;
	enum s3_addressing addressing;
	/* Transient failures are retried this many times (0: the default, 5;
	 * -1: none), waiting backoff_ms (default 200), then twice that, and so
	 * on up to 10 s, each wait with up to a quarter more at random. */
	int retries;
	int backoff_ms;
	/* A request that moves no byte for this many seconds fails as
	 * transient (default 60); connecting has 10 s at most. */
	long stall_seconds;
	/* The page size of listings (default 1000, the S3 maximum). */
	int max_keys;
};

struct s3;

/* Makes a client for opt->bucket signing with cred. The client copies what
 * it keeps of both. Returns 0, or -1 after a message (a malformed endpoint,
 * a bucket name S3 cannot hold). Nothing goes on the network yet. */
int s3_open(struct s3 **out, const struct s3_options *opt, const struct s3_cred *cred);
void s3_free(struct s3 *s3);
/* A second client of the same service, bucket and credentials, with its
 * own connection and counters: for another thread. Returns 0, or -1 after
 * a message. */
int s3_dup(struct s3 **out, const struct s3 *s3);

/* "s3://BUCKET/KEY", for messages; valid until the next call. */
const char *s3_name(struct s3 *s3, const char *key);

/* What a request tells of an object. Free the strings with
 * s3_object_release(). */
struct s3_object {
	char *key;
	uint64_t size;
	char *etag;		/* as the server quotes it */
	char *version_id;	/* NULL on a bucket without versioning */
	time_t mtime;
	char *lock_mode;	/* head only: "COMPLIANCE", "GOVERNANCE" or NULL */
	time_t lock_until;
};
void s3_object_release(struct s3_object *o);

struct s3_put_options {
	/* If-None-Match: *: the write fails with ERR_EXISTS when the key
	 * exists, so two writers never overwrite each other. */
	int create_only;
	/* Object Lock: "COMPLIANCE" or "GOVERNANCE" until lock_until (the
	 * bucket must have been created with Object Lock). */
	const char *lock_mode;
	time_t lock_until;
	/* Skips hashing the body: the server then cannot check it arrived
	 * intact. By default its SHA-256 is sent and verified. */
	int unsigned_payload;
};

/* Writes len bytes of buf, or of fd from offset off, as key. Fills *result,
 * when given, with the new object's etag and version. */
int s3_put_buf(struct s3 *s3, const char *key, const void *buf, size_t len,
	       const struct s3_put_options *po, struct s3_object *result);
int s3_put_fd(struct s3 *s3, const char *key, int fd, uint64_t off, uint64_t len,
	      const struct s3_put_options *po, struct s3_object *result);

/* Reads the object, or len bytes of it from offset off when len is not 0,
 * and writes them to fd at its current position (a retry writes them
 * there again), or appends them to out. *got, when given, is the number of
 * bytes written. */
int s3_get_fd(struct s3 *s3, const char *key, uint64_t off, uint64_t len, int fd, uint64_t *got);
int s3_get_buf(struct s3 *s3, const char *key, uint64_t off, uint64_t len, struct strbuf *out);

/* The object's size, etag, version and lock, without its bytes;
 * ERR_NOTFOUND when there is none. */
int s3_head(struct s3 *s3, const char *key, struct s3_object *out);

/* Deletes the key (on a versioned bucket: adds a delete marker), or with
 * version_id that version itself, which Object Lock may refuse
 * (S3_ERR_LOCKED). Deleting a key that does not exist succeeds. */
int s3_delete(struct s3 *s3, const char *key, const char *version_id);

/* Calls fn for every object whose key starts with prefix, in key order,
 * asking page after page (ListObjectsV2). Stops at fn's first non-zero
 * return and returns it. The object passed is valid during the call. */
int s3_list(struct s3 *s3, const char *prefix,
	    int (*fn)(const struct s3_object *o, void *data), void *data);

/* Sets or extends the Object Lock of key (of version_id when not NULL).
 * S3_ERR_LOCKED when the lock in place forbids it (a shorter COMPLIANCE
 * retention, say). */
int s3_put_retention(struct s3 *s3, const char *key, const char *version_id,
		     const char *mode, time_t until);

/* Creates the bucket; with object_lock, with Object Lock enabled (which
 * also turns versioning on). ERR_EXISTS when this account has it already. */
int s3_create_bucket(struct s3 *s3, int object_lock);
/* Deletes the bucket, which must be empty. */
int s3_delete_bucket(struct s3 *s3);

/*
 * Multipart upload: for objects too large for one request (up to 10,000
 * parts of 5 MiB to 5 GiB each, the last one smaller). s3_mpu_create()
 * starts one and sets *upload_id (the caller frees it) with po's lock;
 * s3_mpu_complete() sends po's create_only (If-None-Match: *), which AWS
 * enforces there and Ceph 16 ignores: a caller that must not overwrite
 * checks with s3_head() first. Parts are numbered
 * from 1; s3_mpu_put_part() sets *etag (freed by the caller), which
 * s3_mpu_complete() needs for every part, in order. An interrupted upload
 * stays on the server, invisible, until completed or aborted:
 * s3_mpu_list() finds the uploads in progress under a prefix and
 * s3_mpu_parts() the parts one already holds, to resume it, and
 * s3_mpu_abort() throws one away. ERR_NOTFOUND: no such upload.
 */
struct s3_upload {
	char *key;
	char *upload_id;
	time_t initiated;
};
struct s3_part {
	int number;
	char *etag;
	uint64_t size;
};
int s3_mpu_create(struct s3 *s3, const char *key, const struct s3_put_options *po,
		  char **upload_id);
int s3_mpu_put_part(struct s3 *s3, const char *key, const char *upload_id, int number,
		    int fd, uint64_t off, uint64_t len, char **etag);
int s3_mpu_complete(struct s3 *s3, const char *key, const char *upload_id,
		    const struct s3_part *parts, int nr, const struct s3_put_options *po,
		    struct s3_object *result);
int s3_mpu_abort(struct s3 *s3, const char *key, const char *upload_id);
int s3_mpu_list(struct s3 *s3, const char *prefix,
		int (*fn)(const struct s3_upload *u, void *data), void *data);
int s3_mpu_parts(struct s3 *s3, const char *key, const char *upload_id,
		 int (*fn)(const struct s3_part *p, void *data), void *data);

/* Counters of what the client sent, for tests and benchmarks. */
struct s3_stats {
	uint64_t requests;	/* every attempt, retries included */
	uint64_t retries;
	uint64_t bytes_up;
	uint64_t bytes_down;
};
void s3_stats(struct s3 *s3, struct s3_stats *out);

/*
 * The helpers below are the request-building rules, exposed for the unit
 * test.
 *
 * s3_uri_encode() appends s percent-encoded as SigV4 wants it: every byte
 * but A-Z a-z 0-9 - . _ ~ becomes %XX (upper-case hex), and '/' too unless
 * keep_slash (for keys in paths).
 *
 * s3_query() appends the canonical query string of nr name/value pairs
 * (pairs[2i], pairs[2i+1]; a NULL value for a parameter without one): the
 * pairs sorted by encoded name, then value, each encoded, joined by '&',
 * and "name=" for a value-less one.
 */
void s3_uri_encode(struct strbuf *sb, const char *s, int keep_slash);
void s3_query(struct strbuf *sb, const char **pairs, int nr);

/* Parses an S3 time ("2026-12-07T15:15:32.000Z" in XML, or the HTTP date
 * "Mon, 07 Dec 2026 15:15:32 GMT") into seconds; -1 if malformed. */
time_t s3_parse_time(const char *s);

/* Reads a ListObjectsV2 answer: fn for each object; *next the continuation
 * token (NULL when the listing is complete). Returns 0, fn's first
 * non-zero return, or ERR_CORRUPT if the answer is malformed. */
int s3_parse_list(const char *xml, size_t len, char **next,
		  int (*fn)(const struct s3_object *o, void *data), void *data);
/* Reads the answers about multipart uploads the same way: the upload id
 * of a new upload; the uploads in progress (*next_key and *next_id: where
 * the next page starts, NULL when none); the parts of one upload
 * (*next_marker: the next page's part-number-marker, 0 when none). */
int s3_parse_upload_id(const char *xml, size_t len, char **id);
int s3_parse_uploads(const char *xml, size_t len, char **next_key, char **next_id,
		     int (*fn)(const struct s3_upload *u, void *data), void *data);
int s3_parse_parts(const char *xml, size_t len, int *next_marker,
		   int (*fn)(const struct s3_part *p, void *data), void *data);
/* Reads an <Error>: sets *code and *message (either may be NULL after,
 * the caller frees both); ERR_CORRUPT if it is no <Error>. */
int s3_parse_error(const char *xml, size_t len, char **code, char **message);

#endif
