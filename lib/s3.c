#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/evp.h>

#include "fsutil.h"
#include "hash.h"
#include "s3.h"
#include "strbuf.h"
#include "usage.h"
#include "xml.h"

#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
/* Answers longer than this are not S3's small XML documents. */
#define MAX_XML (64u << 20)
#define MAX_ERROR_BODY (64u << 10)
#define MAX_BACKOFF_MS 10000
/* S3 refuses a request signed more than 15 minutes off its clock. */
#define MAX_SKEW 900

struct s3 {
	CURL *curl;
	char *scheme;		/* "http" or "https" */
	char *hostport;		/* "host[:port]" */
	char *path;		/* the endpoint's path, "" or "/prefix" */
	char *endpoint;		/* as given, for messages */
	char *bucket;
	char *sigv4;		/* "aws:amz:REGION:s3" */
	int vhost;
	struct s3_cred cred;
	int retries;
	int backoff_ms;
	long stall_seconds;
	int max_keys;
	struct s3_stats stats;
	struct strbuf name;
	unsigned int seed;	/* of the backoff's jitter: hosts differ */
};

/* One request and what came back of it. */
struct req {
	const char *method;
	const char *key;	/* NULL for the bucket itself */
	int lock_guarded;	/* deletes a version or sets a retention:
				   AccessDenied means Object Lock */
	struct strbuf url;
	struct curl_slist *headers;

	/* The body sent: memory, or a range of a file. */
	const char *body;
	uint64_t body_len;
	int in_fd;
	uint64_t in_off;
	uint64_t in_pos;
	int has_body;

	/* Where a 2xx answer's body goes: a file descriptor or a buffer. */
	int out_fd;
	off_t out_start;	/* -1: not seekable, written with write() */
	uint64_t out_pos;
	struct strbuf *out_buf;
	size_t out_base;
	size_t out_max;
	int out_errno;

	/* What came back. */
	long status;
	struct strbuf err_body;
	char *etag;
	char *version_id;
	char *date;
	char *lock_mode;
	char *lock_until;
	char *last_modified;
	uint64_t content_length;
};

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;

static void curl_init_once(void)
{
	curl_global_init(CURL_GLOBAL_DEFAULT);
}

void s3_uri_encode(struct strbuf *sb, const char *s, int keep_slash)
{
	static const char hex[] = "0123456789ABCDEF";

	for (; *s; s++) {
		unsigned char c = *s;

		if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '.' || c == '_' || c == '~' || (c == '/' && keep_slash)) {
			strbuf_addch(sb, c);
		} else {
			strbuf_addch(sb, '%');
			strbuf_addch(sb, hex[c >> 4]);
			strbuf_addch(sb, hex[c & 15]);
		}
	}
}

struct qpair {
	char *name;
	char *value;	/* NULL: no value */
};

static int qpair_cmp(const void *a, const void *b)
{
	const struct qpair *x = a, *y = b;
	int c = strcmp(x->name, y->name);

	if (c)
		return c;
	return strcmp(x->value ? x->value : "", y->value ? y->value : "");
}

void s3_query(struct strbuf *sb, const char **pairs, int nr)
{
	struct qpair *q = xcalloc(nr ? nr : 1, sizeof(*q));
	struct strbuf e = STRBUF_INIT;
	int i;

	for (i = 0; i < nr; i++) {
		strbuf_reset(&e);
		s3_uri_encode(&e, pairs[2 * i], 0);
		q[i].name = xstrdup(e.buf);
		if (pairs[2 * i + 1]) {
			strbuf_reset(&e);
			s3_uri_encode(&e, pairs[2 * i + 1], 0);
			q[i].value = xstrdup(e.buf);
		}
	}
	/* SigV4 sorts by the encoded names, and libcurl 7.88 signs the query
	 * as it is given: the order sent must be the canonical one. */
	qsort(q, nr, sizeof(*q), qpair_cmp);
	for (i = 0; i < nr; i++) {
		if (i)
			strbuf_addch(sb, '&');
		/* "uploads=", never "uploads": 7.88 signs the latter wrongly. */
		strbuf_addf(sb, "%s=%s", q[i].name, q[i].value ? q[i].value : "");
		free(q[i].name);
		free(q[i].value);
	}
	free(q);
	strbuf_release(&e);
}

static int two_digits(const char *s)
{
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9')
		return -1;
	return (s[0] - '0') * 10 + s[1] - '0';
}

time_t s3_parse_time(const char *s)
{
	static const char months[] = "JanFebMarAprMayJunJulAugSepOctNovDec";
	struct tm tm;
	const char *m;
	int y1, y2;

	memset(&tm, 0, sizeof(tm));
	if (!s)
		return -1;
	if (strlen(s) >= 19 && s[4] == '-' && s[7] == '-' && s[10] == 'T' && s[13] == ':' &&
	    s[16] == ':') {
		/* 2026-12-07T15:15:32[.000]Z */
		y1 = two_digits(s);
		y2 = two_digits(s + 2);
		tm.tm_mon = two_digits(s + 5) - 1;
		tm.tm_mday = two_digits(s + 8);
		tm.tm_hour = two_digits(s + 11);
		tm.tm_min = two_digits(s + 14);
		tm.tm_sec = two_digits(s + 17);
	} else if (strlen(s) >= 29 && s[3] == ',' && s[4] == ' ' && s[7] == ' ' && s[11] == ' ' &&
		   s[16] == ' ' && s[19] == ':' && s[22] == ':' && !strcmp(s + 25, " GMT")) {
		/* Mon, 07 Dec 2026 15:15:32 GMT */
		tm.tm_mday = two_digits(s + 5);
		m = strstr(months, (char[]){ s[8], s[9], s[10], 0 });
		if (!m || (m - months) % 3)
			return -1;
		tm.tm_mon = (m - months) / 3;
		y1 = two_digits(s + 12);
		y2 = two_digits(s + 14);
		tm.tm_hour = two_digits(s + 17);
		tm.tm_min = two_digits(s + 20);
		tm.tm_sec = two_digits(s + 23);
	} else {
		return -1;
	}
	if (y1 < 0 || y2 < 0 || tm.tm_mon < 0 || tm.tm_mon > 11 || tm.tm_mday < 1 ||
	    tm.tm_mday > 31 || tm.tm_hour < 0 || tm.tm_hour > 23 || tm.tm_min < 0 ||
	    tm.tm_min > 59 || tm.tm_sec < 0 || tm.tm_sec > 60)
		return -1;
	tm.tm_year = y1 * 100 + y2 - 1900;
	return timegm(&tm);
}

static void format_time(char *buf, size_t len, time_t t)
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
}

static int parse_u64(const char *s, uint64_t *out)
{
	char *end;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	*out = strtoull(s, &end, 10);
	return errno || *end ? -1 : 0;
}

void s3_object_release(struct s3_object *o)
{
	if (!o)
		return;
	free(o->key);
	free(o->etag);
	free(o->version_id);
	free(o->lock_mode);
	memset(o, 0, sizeof(*o));
}

int s3_parse_error(const char *xml, size_t len, char **code, char **message)
{
	struct xml_node *root;
	const char *c, *m;

	*code = *message = NULL;
	if (xml_parse(&root, xml, len))
		return ERR_CORRUPT;
	if (strcmp(root->name, "Error")) {
		xml_free(root);
		return ERR_CORRUPT;
	}
	c = xml_text(root, "Code");
	m = xml_text(root, "Message");
	if (c && *c)
		*code = xstrdup(c);
	if (m && *m)
		*message = xstrdup(m);
	xml_free(root);
	return 0;
}

int s3_parse_list(const char *xml, size_t len, char **next,
		  int (*fn)(const struct s3_object *o, void *data), void *data)
{
	struct xml_node *root, *c;
	const char *t;
	int ret = 0;

	*next = NULL;
	if (xml_parse(&root, xml, len))
		return ERR_CORRUPT;
	if (strcmp(root->name, "ListBucketResult")) {
		xml_free(root);
		return ERR_CORRUPT;
	}
	for (c = xml_child(root, "Contents"); c && !ret; c = xml_next(c)) {
		struct s3_object o;

		memset(&o, 0, sizeof(o));
		o.key = (char *)xml_text(c, "Key");
		if (!o.key || parse_u64(xml_text(c, "Size"), &o.size)) {
			ret = ERR_CORRUPT;
			break;
		}
		o.etag = (char *)xml_text(c, "ETag");
		o.mtime = s3_parse_time(xml_text(c, "LastModified"));
		ret = fn(&o, data);
	}
	t = xml_text(root, "IsTruncated");
	if (!ret && t && !strcmp(t, "true")) {
		t = xml_text(root, "NextContinuationToken");
		if (!t || !*t)
			ret = ERR_CORRUPT;
		else
			*next = xstrdup(t);
	}
	xml_free(root);
	return ret;
}

const char *s3_name(struct s3 *s3, const char *key)
{
	strbuf_reset(&s3->name);
	strbuf_addf(&s3->name, "s3://%s%s%s", s3->bucket, key ? "/" : "", key ? key : "");
	return s3->name.buf;
}

void s3_stats(struct s3 *s3, struct s3_stats *out)
{
	*out = s3->stats;
}

/* Bucket names as S3 allows them: 3 to 63 of a-z 0-9 . -; also the
 * upper case and '_' older buckets and other servers accept. */
static int valid_bucket(const char *b)
{
	size_t n = strlen(b), i;

	if (n < 3 || n > 255)
		return 0;
	for (i = 0; i < n; i++)
		if (!((b[i] >= 'a' && b[i] <= 'z') || (b[i] >= 'A' && b[i] <= 'Z') ||
		      (b[i] >= '0' && b[i] <= '9') || b[i] == '.' || b[i] == '-' || b[i] == '_'))
			return 0;
	return 1;
}

int s3_open(struct s3 **out, const struct s3_options *opt, const struct s3_cred *cred)
{
	struct s3 *s3;
	const char *region = opt->region && *opt->region ? opt->region : "us-east-1";
	const char *ep, *rest, *slash;
	char *def = NULL;
	int aws;

	*out = NULL;
	if (!opt->bucket || !valid_bucket(opt->bucket))
		return error("'%s' is not a bucket name S3 allows (3 to 63 letters, digits, '.' and '-')",
			     opt->bucket ? opt->bucket : "");
	if (!cred || !cred->access_key || !cred->secret_key)
		return error("no S3 credentials");
	if (strchr(region, ':') || strchr(region, '/'))
		return error("'%s' is not a region name", region);
	ep = opt->endpoint && *opt->endpoint ? opt->endpoint : NULL;
	aws = !ep;
	if (!ep)
		ep = def = xasprintf("https://s3.%s.amazonaws.com", region);
	if (!strncmp(ep, "https://", 8)) {
		rest = ep + 8;
	} else if (!strncmp(ep, "http://", 7)) {
		rest = ep + 7;
	} else {
		error("'%s' is not an S3 endpoint; write it http://HOST[:PORT] or https://HOST[:PORT]", ep);
		free(def);
		return -1;
	}
	slash = strchr(rest, '/');
	if (slash == rest || strpbrk(rest, "?#@ ") ) {
		error("'%s' is not an S3 endpoint; write it http://HOST[:PORT] or https://HOST[:PORT]", ep);
		free(def);
		return -1;
	}
	pthread_once(&curl_once, curl_init_once);
	s3 = xcalloc(1, sizeof(*s3));
	s3->curl = curl_easy_init();
	if (!s3->curl) {
		free(s3);
		free(def);
		return error("cannot start libcurl");
	}
	s3->scheme = xstrndup(ep, rest - 3 - ep);
	s3->hostport = slash ? xstrndup(rest, slash - rest) : xstrdup(rest);
	s3->path = xstrdup(slash ? slash : "");
	while (*s3->path && s3->path[strlen(s3->path) - 1] == '/')
		s3->path[strlen(s3->path) - 1] = 0;
	s3->endpoint = xstrdup(ep);
	s3->bucket = xstrdup(opt->bucket);
	s3->sigv4 = xasprintf("aws:amz:%s:s3", region);
	switch (opt->addressing) {
	case S3_ADDR_PATH:
		s3->vhost = 0;
		break;
	case S3_ADDR_VHOST:
		s3->vhost = 1;
		break;
	default:
		/* A bucket with a '.' breaks the certificate of *.s3.amazonaws.com. */
		s3->vhost = aws && !strchr(opt->bucket, '.');
		break;
	}
	s3->cred.access_key = xstrdup(cred->access_key);
	s3->cred.secret_key = xstrdup(cred->secret_key);
	s3->cred.session_token = cred->session_token ? xstrdup(cred->session_token) : NULL;
	s3->cred.source = cred->source ? xstrdup(cred->source) : NULL;
	s3->retries = opt->retries < 0 ? 0 : opt->retries ? opt->retries : 5;
	s3->backoff_ms = opt->backoff_ms > 0 ? opt->backoff_ms : 200;
	s3->stall_seconds = opt->stall_seconds > 0 ? opt->stall_seconds : 60;
	s3->max_keys = opt->max_keys > 0 && opt->max_keys <= 1000 ? opt->max_keys : 1000;
	strbuf_init(&s3->name, 0);
	s3->seed = (unsigned int)time(NULL) ^ (unsigned int)getpid() << 16 ^
		   (unsigned int)(uintptr_t)s3;
	free(def);
	*out = s3;
	return 0;
}

int s3_dup(struct s3 **out, const struct s3 *s3)
{
	struct s3 *d;

	*out = NULL;
	d = xcalloc(1, sizeof(*d));
	d->curl = curl_easy_init();
	if (!d->curl) {
		free(d);
		return error("cannot start libcurl");
	}
	d->scheme = xstrdup(s3->scheme);
	d->hostport = xstrdup(s3->hostport);
	d->path = xstrdup(s3->path);
	d->endpoint = xstrdup(s3->endpoint);
	d->bucket = xstrdup(s3->bucket);
	d->sigv4 = xstrdup(s3->sigv4);
	d->vhost = s3->vhost;
	d->cred.access_key = xstrdup(s3->cred.access_key);
	d->cred.secret_key = xstrdup(s3->cred.secret_key);
	d->cred.session_token = s3->cred.session_token ? xstrdup(s3->cred.session_token) : NULL;
	d->cred.source = s3->cred.source ? xstrdup(s3->cred.source) : NULL;
	d->retries = s3->retries;
	d->backoff_ms = s3->backoff_ms;
	d->stall_seconds = s3->stall_seconds;
	d->max_keys = s3->max_keys;
	strbuf_init(&d->name, 0);
	/* Its own jitter: two clients backing off together spread out. */
	d->seed = s3->seed ^ (unsigned int)(uintptr_t)d;
	*out = d;
	return 0;
}

void s3_free(struct s3 *s3)
{
	if (!s3)
		return;
	curl_easy_cleanup(s3->curl);
	free(s3->scheme);
	free(s3->hostport);
	free(s3->path);
	free(s3->endpoint);
	free(s3->bucket);
	free(s3->sigv4);
	if (s3->cred.secret_key)
		explicit_bzero(s3->cred.secret_key, strlen(s3->cred.secret_key));
	if (s3->cred.session_token)
		explicit_bzero(s3->cred.session_token, strlen(s3->cred.session_token));
	free(s3->cred.access_key);
	free(s3->cred.secret_key);
	free(s3->cred.session_token);
	free(s3->cred.source);
	strbuf_release(&s3->name);
	free(s3);
}

/* The URL of key (of the bucket when key is NULL), with an optional query. */
static void build_url(struct s3 *s3, struct strbuf *url, const char *key, const char *query)
{
	if (s3->vhost)
		strbuf_addf(url, "%s://%s.%s%s/", s3->scheme, s3->bucket, s3->hostport, s3->path);
	else
		strbuf_addf(url, "%s://%s%s/%s%s", s3->scheme, s3->hostport, s3->path, s3->bucket,
			    key ? "/" : "");
	if (key)
		s3_uri_encode(url, key, 1);
	if (query && *query)
		strbuf_addf(url, "?%s", query);
}

static void req_init(struct req *r, const char *method, const char *key)
{
	memset(r, 0, sizeof(*r));
	r->method = method;
	r->key = key;
	r->in_fd = -1;
	r->out_fd = -1;
	strbuf_init(&r->url, 0);
	strbuf_init(&r->err_body, 0);
}

static void req_clear_answer(struct req *r)
{
	free(r->etag);
	free(r->version_id);
	free(r->date);
	free(r->lock_mode);
	free(r->lock_until);
	free(r->last_modified);
	r->etag = r->version_id = r->date = r->lock_mode = r->lock_until = NULL;
	r->last_modified = NULL;
	r->content_length = 0;
	strbuf_reset(&r->err_body);
}

static void req_release(struct req *r)
{
	req_clear_answer(r);
	strbuf_release(&r->url);
	strbuf_release(&r->err_body);
	curl_slist_free_all(r->headers);
}

static void add_header(struct req *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add_header(struct req *r, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	r->headers = curl_slist_append(r->headers, buf);
	if (!r->headers)
		die("out of memory");
}

static void hex_sha256_buf(const void *data, size_t len, char hex[2 * SHA256_LEN + 1])
{
	unsigned char md[SHA256_LEN];

	sha256(data, len, md);
	hex_encode(hex, md, SHA256_LEN);
}

/* The SHA-256 of len bytes of fd from off. */
static int hex_sha256_fd(int fd, uint64_t off, uint64_t len, char hex[2 * SHA256_LEN + 1])
{
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	unsigned char md[SHA256_LEN];
	size_t bufsize = 1 << 20;
	char *buf = xmalloc(bufsize);
	int ret = -1;

	if (!ctx || !EVP_DigestInit_ex(ctx, EVP_sha256(), NULL))
		die("libcrypto cannot hash");
	while (len) {
		ssize_t n = pread(fd, buf, len < bufsize ? len : bufsize, off);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			if (!n)
				errno = EIO;
			goto out;
		}
		EVP_DigestUpdate(ctx, buf, n);
		off += n;
		len -= n;
	}
	EVP_DigestFinal_ex(ctx, md, NULL);
	hex_encode(hex, md, SHA256_LEN);
	ret = 0;
out:
	EVP_MD_CTX_free(ctx);
	free(buf);
	return ret;
}

static void content_md5(struct req *r, const void *data, size_t len)
{
	unsigned char md[16], b64[32];

	if (!EVP_Digest(data, len, md, NULL, EVP_md5(), NULL))
		die("libcrypto cannot hash");
	EVP_EncodeBlock(b64, md, 16);
	add_header(r, "Content-MD5: %s", b64);
}

static size_t on_read(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct req *r = data;
	uint64_t left = r->body_len - r->in_pos;
	size_t n = size * nmemb;

	if (n > left)
		n = left;
	if (!n)
		return 0;
	if (r->body) {
		memcpy(ptr, r->body + r->in_pos, n);
	} else {
		ssize_t got;

		do {
			got = pread(r->in_fd, ptr, n, r->in_off + r->in_pos);
		} while (got < 0 && errno == EINTR);
		if (got <= 0) {
			r->out_errno = got ? errno : EIO;
			return CURL_READFUNC_ABORT;
		}
		n = got;
	}
	r->in_pos += n;
	return n;
}

static int on_seek(void *data, curl_off_t offset, int origin)
{
	struct req *r = data;

	if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > r->body_len)
		return CURL_SEEKFUNC_CANTSEEK;
	r->in_pos = offset;
	return CURL_SEEKFUNC_OK;
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct req *r = data;
	size_t n = size * nmemb;

	if (r->status < 200 || r->status > 299) {
		if (r->err_body.len + n <= MAX_ERROR_BODY)
			strbuf_add(&r->err_body, ptr, n);
		return n;
	}
	if (r->out_fd >= 0) {
		int rc;

		if (r->out_start >= 0)
			rc = pwrite_all(r->out_fd, ptr, n, r->out_start + r->out_pos);
		else
			rc = write_all(r->out_fd, ptr, n);
		if (rc) {
			r->out_errno = errno;
			return 0;
		}
	} else if (r->out_buf) {
		if (r->out_buf->len - r->out_base + n > r->out_max) {
			r->out_errno = EFBIG;
			return 0;
		}
		strbuf_add(r->out_buf, ptr, n);
	}
	r->out_pos += n;
	return n;
}

static void set_field(char **field, const char *v, size_t len)
{
	free(*field);
	*field = xstrndup(v, len);
}

static size_t on_header(char *ptr, size_t size, size_t nmemb, void *data)
{
	struct req *r = data;
	size_t n = size * nmemb, len = n, nlen;
	const char *colon, *v;

	while (len && (ptr[len - 1] == '\n' || ptr[len - 1] == '\r'))
		len--;
	if (len > 5 && !strncmp(ptr, "HTTP/", 5)) {
		/* A new answer (after a 100 Continue, say): forget the last. */
		const char *sp = memchr(ptr, ' ', len);

		req_clear_answer(r);
		r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
		return n;
	}
	colon = memchr(ptr, ':', len);
	if (!colon)
		return n;
	nlen = colon - ptr;
	v = colon + 1;
	while (v < ptr + len && (*v == ' ' || *v == '\t'))
		v++;
#define IS(h) (nlen == strlen(h) && !strncasecmp(ptr, h, nlen))
	if (IS("ETag"))
		set_field(&r->etag, v, ptr + len - v);
	else if (IS("x-amz-version-id"))
		set_field(&r->version_id, v, ptr + len - v);
	else if (IS("Date"))
		set_field(&r->date, v, ptr + len - v);
	else if (IS("Last-Modified"))
		set_field(&r->last_modified, v, ptr + len - v);
	else if (IS("x-amz-object-lock-mode"))
		set_field(&r->lock_mode, v, ptr + len - v);
	else if (IS("x-amz-object-lock-retain-until-date"))
		set_field(&r->lock_until, v, ptr + len - v);
	else if (IS("Content-Length")) {
		char *tmp = xstrndup(v, ptr + len - v);

		if (parse_u64(tmp, &r->content_length))
			r->content_length = 0;
		free(tmp);
	}
#undef IS
	return n;
}

static int transient_curl(CURLcode c)
{
	switch (c) {
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_CONNECT:
	case CURLE_OPERATION_TIMEDOUT:
	case CURLE_SEND_ERROR:
	case CURLE_RECV_ERROR:
	case CURLE_GOT_NOTHING:
	case CURLE_PARTIAL_FILE:
	case CURLE_HTTP2:
	case CURLE_HTTP2_STREAM:
	case CURLE_SSL_CONNECT_ERROR:
		return 1;
	default:
		return 0;
	}
}

static int transient_status(long status, const char *code)
{
	if (status == 500 || status == 502 || status == 503 || status == 504 || status == 429)
		return 1;
	/* The server gave up waiting for the body: a stalled link. */
	return status == 400 && code && !strcmp(code, "RequestTimeout");
}

/* Waits before retry number n (from 1), in steps so that an interrupt
 * stops it. */
static void backoff(struct s3 *s3, int n)
{
	long ms = s3->backoff_ms;
	struct timespec ts;

	while (--n > 0 && ms < MAX_BACKOFF_MS)
		ms *= 2;
	if (ms > MAX_BACKOFF_MS)
		ms = MAX_BACKOFF_MS;
	ms += rand_r(&s3->seed) % (ms / 4 + 1);
	while (ms > 0 && !interrupted) {
		long step = ms < 100 ? ms : 100;

		ts.tv_sec = 0;
		ts.tv_nsec = step * 1000000L;
		nanosleep(&ts, NULL);
		ms -= step;
	}
}

static double since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) + (t.tv_nsec - t0->tv_nsec) / 1e9;
}

/* "1 h 5 min", "40 s": how far apart two clocks are. */
static void describe_skew(char *buf, size_t len, long d)
{
	if (d < 0)
		d = -d;
	/* Both clocks are read to the second, a request apart: round
	 * to the minute, or an hour off may read "59 min". */
	if (d >= 60)
		d = (d + 30) / 60 * 60;
	if (d >= 3600)
		snprintf(buf, len, "%ld h %ld min", d / 3600, d % 3600 / 60);
	else if (d >= 60)
		snprintf(buf, len, "%ld min", d / 60);
	else
		snprintf(buf, len, "%ld s", d);
}

static int skew_error(struct s3 *s3, struct req *r)
{
	time_t server = s3_parse_time(r->date);
	char d[64];

	if (server < 0) {
		error("the S3 server at '%s' says this host's clock is too far from its own; "
		      "set the clock right", s3->endpoint);
		return S3_ERR_SKEW;
	}
	describe_skew(d, sizeof(d), (long)(time(NULL) - server));
	error("this host's clock is %s %s the S3 server's at '%s' (S3 allows 15 min); "
	      "set the clock right", d, time(NULL) > server ? "ahead of" : "behind", s3->endpoint);
	return S3_ERR_SKEW;
}

/* Turns a final non-2xx answer into a code and, but for the outcomes
 * callers act on, one message. */
static int answer_error(struct s3 *s3, struct req *r)
{
	char *code = NULL, *msg = NULL;
	const char *what = s3_name(s3, r->key);
	const char *from = s3->cred.source ? s3->cred.source : "the caller";
	time_t server = s3_parse_time(r->date);
	int ret;

	if (r->err_body.len)
		s3_parse_error(r->err_body.buf, r->err_body.len, &code, &msg);
	if ((code && !strcmp(code, "RequestTimeTooSkewed")) ||
	    (r->status == 403 && server > 0 && labs((long)(time(NULL) - server)) > MAX_SKEW)) {
		/* A HEAD has no body to say why: the clocks tell. */
		ret = skew_error(s3, r);
	} else if (code && !strcmp(code, "NoSuchBucket")) {
		error("bucket '%s' does not exist at '%s'; create it or correct the remote's URL",
		      s3->bucket, s3->endpoint);
		ret = S3_ERR_NOBUCKET;
	} else if (r->status == 404 && (!code || !strcmp(code, "NoSuchKey") ||
					!strcmp(code, "NoSuchUpload") ||
					!strcmp(code, "NoSuchVersion"))) {
		ret = ERR_NOTFOUND;
	} else if (r->status == 412) {
		ret = ERR_EXISTS;
	} else if (r->status == 409 && code && (!strcmp(code, "BucketAlreadyOwnedByYou") ||
						!strcmp(code, "BucketAlreadyExists"))) {
		ret = ERR_EXISTS;
	} else if (code && !strcmp(code, "SignatureDoesNotMatch")) {
		error("the S3 server at '%s' refused the signature of access key '%s' from %s; "
		      "the secret key is wrong", s3->endpoint, s3->cred.access_key, from);
		ret = S3_ERR_DENIED;
	} else if (code && !strcmp(code, "InvalidAccessKeyId")) {
		error("the S3 server at '%s' does not know access key '%s' from %s",
		      s3->endpoint, s3->cred.access_key, from);
		ret = S3_ERR_DENIED;
	} else if (r->status == 403 && r->lock_guarded && code && !strcmp(code, "AccessDenied")) {
		/* A version under Object Lock: the key may otherwise write. */
		ret = S3_ERR_LOCKED;
	} else if (r->status == 403) {
		error("access denied to '%s' for access key '%s' from %s%s", what,
		      s3->cred.access_key, from,
		      code ? "" : " (a wrong secret key, or no permission)");
		ret = S3_ERR_DENIED;
	} else {
		ret = error("S3 %s '%s' failed: %ld %s%s%s", r->method, what, r->status,
			    code ? code : "", msg ? ": " : "", msg ? msg : "");
	}
	free(code);
	free(msg);
	return ret;
}

/* Sets the options of one attempt on the reset handle. */
static void setup(struct s3 *s3, struct req *r)
{
	CURL *c = s3->curl;

	curl_easy_reset(c);
	curl_easy_setopt(c, CURLOPT_URL, r->url.buf);
	curl_easy_setopt(c, CURLOPT_AWS_SIGV4, s3->sigv4);
	/* USERNAME and PASSWORD, not USERPWD: a ':' in a key is allowed. */
	curl_easy_setopt(c, CURLOPT_USERNAME, s3->cred.access_key);
	curl_easy_setopt(c, CURLOPT_PASSWORD, s3->cred.secret_key);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, r->headers);
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, 10L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
	curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, s3->stall_seconds);
	curl_easy_setopt(c, CURLOPT_TCP_KEEPALIVE, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_write);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, r);
	if (!strcmp(r->method, "HEAD")) {
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	} else if (r->has_body) {
		/* An upload with a known length: RGW refuses chunked ones. */
		curl_easy_setopt(c, CURLOPT_UPLOAD, 1L);
		curl_easy_setopt(c, CURLOPT_READFUNCTION, on_read);
		curl_easy_setopt(c, CURLOPT_READDATA, r);
		curl_easy_setopt(c, CURLOPT_SEEKFUNCTION, on_seek);
		curl_easy_setopt(c, CURLOPT_SEEKDATA, r);
		curl_easy_setopt(c, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
		if (strcmp(r->method, "PUT"))
			curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	} else if (strcmp(r->method, "GET")) {
		curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, r->method);
	}
}

/*
 * Sends the request until it gets an answer that is not transient or the
 * retries run out. Returns 0 for a 2xx answer, else the code of the error.
 */
static int perform(struct s3 *s3, struct req *r)
{
	struct timespec t0;
	char errbuf[CURL_ERROR_SIZE];
	int attempt = 0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	if (r->out_fd >= 0) {
		r->out_start = lseek(r->out_fd, 0, SEEK_CUR);
		if (r->out_start < 0)
			r->out_start = -1;
	}
	if (r->out_buf)
		r->out_base = r->out_buf->len;
	for (;;) {
		CURLcode cc;
		char *code = NULL, *msg = NULL;
		int transient;

		attempt++;
		r->in_pos = 0;
		r->out_pos = 0;
		r->out_errno = 0;
		r->status = 0;
		req_clear_answer(r);
		if (r->out_buf)
			strbuf_setlen(r->out_buf, r->out_base);
		setup(s3, r);
		errbuf[0] = 0;
		curl_easy_setopt(s3->curl, CURLOPT_ERRORBUFFER, errbuf);
		s3->stats.requests++;
		cc = curl_easy_perform(s3->curl);
		s3->stats.bytes_up += r->in_pos;
		s3->stats.bytes_down += r->out_pos;
		if (r->out_errno) {
			if (r->out_errno == EFBIG)
				return error("S3 %s '%s': the answer is too long", r->method,
					     s3_name(s3, r->key));
			return error("S3 %s '%s': %s", r->method, s3_name(s3, r->key),
				     strerror(r->out_errno));
		}
		if (cc == CURLE_OK && r->status >= 200 && r->status <= 299) {
			if (r->out_start >= 0 && r->out_fd >= 0 &&
			    lseek(r->out_fd, r->out_start + r->out_pos, SEEK_SET) < 0)
				return error("cannot seek: %s", strerror(errno));
			return 0;
		}
		if (cc == CURLE_OK) {
			if (r->err_body.len)
				s3_parse_error(r->err_body.buf, r->err_body.len, &code, &msg);
			transient = transient_status(r->status, code);
		} else {
			transient = transient_curl(cc);
		}
		/* A stream that cannot be rewound cannot be written again. */
		if (r->out_start < 0 && r->out_fd >= 0 && r->out_pos)
			transient = 0;
		if (!transient || attempt > s3->retries || interrupted) {
			if (cc != CURLE_OK) {
				const char *why = errbuf[0] ? errbuf : curl_easy_strerror(cc);

				free(code);
				free(msg);
				if (!transient)
					return error("S3 %s '%s' failed: %s", r->method,
						     s3_name(s3, r->key), why);
				error("cannot reach the S3 server at '%s': %s (gave up after %d tries "
				      "in %.0f s)", s3->endpoint, why, attempt, since(&t0));
				return S3_ERR_UNAVAILABLE;
			}
			if (transient) {
				error("the S3 server at '%s' answered %s '%s' with %ld%s%s (gave up "
				      "after %d tries in %.0f s)", s3->endpoint, r->method,
				      s3_name(s3, r->key), r->status, code ? " " : "",
				      code ? code : "", attempt, since(&t0));
				free(code);
				free(msg);
				return S3_ERR_UNAVAILABLE;
			}
			free(code);
			free(msg);
			return answer_error(s3, r);
		}
		if (cc != CURLE_OK)
			verbose("S3 %s '%s': %s; trying again", r->method, s3_name(s3, r->key),
				errbuf[0] ? errbuf : curl_easy_strerror(cc));
		else
			verbose("S3 %s '%s': %ld %s; trying again", r->method, s3_name(s3, r->key),
				r->status, code ? code : "");
		free(code);
		free(msg);
		s3->stats.retries++;
		backoff(s3, attempt);
	}
}

/* The headers every request has: the payload's hash, and the session
 * token of temporary credentials (libcurl signs every header given). */
static void common_headers(struct s3 *s3, struct req *r, const char *sha256_hex)
{
	add_header(r, "x-amz-content-sha256: %s", sha256_hex ? sha256_hex : EMPTY_SHA256);
	if (s3->cred.session_token)
		add_header(r, "x-amz-security-token: %s", s3->cred.session_token);
}

static void put_headers(struct req *r, const struct s3_put_options *po)
{
	char until[64];

	if (!po)
		return;
	if (po->create_only)
		add_header(r, "If-None-Match: *");
	if (po->lock_mode) {
		format_time(until, sizeof(until), po->lock_until);
		add_header(r, "x-amz-object-lock-mode: %s", po->lock_mode);
		add_header(r, "x-amz-object-lock-retain-until-date: %s", until);
	}
}

static void fill_result(struct req *r, const char *key, uint64_t size, struct s3_object *o)
{
	if (!o)
		return;
	memset(o, 0, sizeof(*o));
	o->key = xstrdup(key);
	o->size = size;
	o->etag = r->etag ? xstrdup(r->etag) : NULL;
	o->version_id = r->version_id ? xstrdup(r->version_id) : NULL;
	o->mtime = time(NULL);
}

static int put(struct s3 *s3, const char *key, const void *buf, int fd, uint64_t off,
	       uint64_t len, const struct s3_put_options *po, struct s3_object *result)
{
	char hex[2 * SHA256_LEN + 1];
	struct req r;
	int ret;

	if (result)
		memset(result, 0, sizeof(*result));
	req_init(&r, "PUT", key);
	build_url(s3, &r.url, key, NULL);
	if (po && po->unsigned_payload)
		strcpy(hex, "UNSIGNED-PAYLOAD");
	else if (buf)
		hex_sha256_buf(buf, len, hex);
	else if (hex_sha256_fd(fd, off, len, hex)) {
		ret = error("cannot read what goes to '%s': %s", s3_name(s3, key), strerror(errno));
		goto out;
	}
	common_headers(s3, &r, hex);
	put_headers(&r, po);
	r.has_body = 1;
	r.body = buf;
	r.body_len = len;
	r.in_fd = fd;
	r.in_off = off;
	ret = perform(s3, &r);
	if (!ret)
		fill_result(&r, key, len, result);
out:
	req_release(&r);
	return ret;
}

int s3_put_buf(struct s3 *s3, const char *key, const void *buf, size_t len,
	       const struct s3_put_options *po, struct s3_object *result)
{
	return put(s3, key, buf ? buf : "", -1, 0, len, po, result);
}

int s3_put_fd(struct s3 *s3, const char *key, int fd, uint64_t off, uint64_t len,
	      const struct s3_put_options *po, struct s3_object *result)
{
	return put(s3, key, NULL, fd, off, len, po, result);
}

static int get(struct s3 *s3, const char *key, uint64_t off, uint64_t len, int fd,
	       struct strbuf *out, uint64_t *got)
{
	struct req r;
	int ret;

	if (got)
		*got = 0;
	req_init(&r, "GET", key);
	build_url(s3, &r.url, key, NULL);
	common_headers(s3, &r, NULL);
	if (len)
		add_header(&r, "Range: bytes=%llu-%llu", (unsigned long long)off,
			   (unsigned long long)(off + len - 1));
	else if (off)
		add_header(&r, "Range: bytes=%llu-", (unsigned long long)off);
	r.out_fd = fd;
	r.out_buf = out;
	r.out_max = (size_t)-1;
	ret = perform(s3, &r);
	/* A range past the end, or a server that ignored the range. */
	if (!ret && (off || len) && r.status != 206)
		ret = error("S3 GET '%s': the server sent the whole object, not the range asked for",
			    s3_name(s3, key));
	if (!ret && got)
		*got = r.out_pos;
	req_release(&r);
	return ret;
}

int s3_get_fd(struct s3 *s3, const char *key, uint64_t off, uint64_t len, int fd, uint64_t *got)
{
	return get(s3, key, off, len, fd, NULL, got);
}

int s3_get_buf(struct s3 *s3, const char *key, uint64_t off, uint64_t len, struct strbuf *out)
{
	return get(s3, key, off, len, -1, out, NULL);
}

int s3_head(struct s3 *s3, const char *key, struct s3_object *out)
{
	struct req r;
	int ret;

	memset(out, 0, sizeof(*out));
	req_init(&r, "HEAD", key);
	build_url(s3, &r.url, key, NULL);
	common_headers(s3, &r, NULL);
	ret = perform(s3, &r);
	if (!ret) {
		fill_result(&r, key, r.content_length, out);
		out->mtime = s3_parse_time(r.last_modified);
		if (r.lock_mode) {
			out->lock_mode = xstrdup(r.lock_mode);
			out->lock_until = s3_parse_time(r.lock_until);
		}
	}
	req_release(&r);
	return ret;
}

int s3_delete(struct s3 *s3, const char *key, const char *version_id)
{
	struct strbuf q = STRBUF_INIT;
	const char *pairs[] = { "versionId", version_id };
	struct req r;
	int ret;

	req_init(&r, "DELETE", key);
	if (version_id)
		s3_query(&q, pairs, 1);
	r.lock_guarded = !!version_id;
	build_url(s3, &r.url, key, q.buf);
	common_headers(s3, &r, NULL);
	ret = perform(s3, &r);
	/* Gone already: what the caller wanted. */
	if (ret == ERR_NOTFOUND)
		ret = 0;
	req_release(&r);
	strbuf_release(&q);
	return ret;
}

#define XR_MD5 1		/* send the body's Content-MD5 */
#define XR_LOCK 2		/* AccessDenied means Object Lock */

/* A request whose answer, an XML document, goes to answer. Sends body (an
 * XML document) when not NULL. */
static int xml_request(struct s3 *s3, const char *method, const char *key, const char *query,
		       const char *body, int flags, const char *extra_header,
		       struct strbuf *answer, struct s3_object *result)
{
	char hex[2 * SHA256_LEN + 1];
	struct req r;
	int ret;

	req_init(&r, method, key);
	build_url(s3, &r.url, key, query);
	if (body) {
		hex_sha256_buf(body, strlen(body), hex);
		common_headers(s3, &r, hex);
		if (flags & XR_MD5)
			content_md5(&r, body, strlen(body));
		add_header(&r, "Content-Type: application/xml");
		r.has_body = 1;
		r.body = body;
		r.body_len = strlen(body);
	} else {
		common_headers(s3, &r, NULL);
	}
	if (extra_header)
		add_header(&r, "%s", extra_header);
	r.lock_guarded = !!(flags & XR_LOCK);
	r.out_buf = answer;
	r.out_max = MAX_XML;
	ret = perform(s3, &r);
	if (!ret && result)
		fill_result(&r, key ? key : "", 0, result);
	req_release(&r);
	return ret;
}

int s3_list(struct s3 *s3, const char *prefix,
	    int (*fn)(const struct s3_object *o, void *data), void *data)
{
	struct strbuf q = STRBUF_INIT, answer = STRBUF_INIT;
	char *token = NULL, maxkeys[16];
	int ret;

	snprintf(maxkeys, sizeof(maxkeys), "%d", s3->max_keys);
	do {
		const char *pairs[8] = { "list-type", "2", "max-keys", maxkeys, "prefix",
					 prefix ? prefix : "" };
		int nr = 3;
		struct req r;

		if (token) {
			pairs[6] = "continuation-token";
			pairs[7] = token;
			nr++;
		}
		strbuf_reset(&q);
		s3_query(&q, pairs, nr);
		req_init(&r, "GET", NULL);
		build_url(s3, &r.url, NULL, q.buf);
		common_headers(s3, &r, NULL);
		strbuf_reset(&answer);
		r.out_buf = &answer;
		r.out_max = MAX_XML;
		ret = perform(s3, &r);
		req_release(&r);
		free(token);
		token = NULL;
		if (ret)
			break;
		ret = s3_parse_list(answer.buf, answer.len, &token, fn, data);
		if (ret == ERR_CORRUPT)
			ret = error("S3 listing of '%s': the server's answer is malformed",
				    s3_name(s3, prefix));
	} while (!ret && token);
	free(token);
	strbuf_release(&q);
	strbuf_release(&answer);
	return ret;
}

int s3_put_retention(struct s3 *s3, const char *key, const char *version_id,
		     const char *mode, time_t until)
{
	struct strbuf q = STRBUF_INIT, body = STRBUF_INIT, answer = STRBUF_INIT;
	const char *pairs[] = { "retention", NULL, "versionId", version_id };
	char date[64];
	int ret;

	s3_query(&q, pairs, version_id ? 2 : 1);
	format_time(date, sizeof(date), until);
	strbuf_addf(&body, "<Retention xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		    "<Mode>%s</Mode><RetainUntilDate>%s</RetainUntilDate></Retention>",
		    mode, date);
	/* S3 wants a Content-MD5 on this request. */
	ret = xml_request(s3, "PUT", key, q.buf, body.buf, XR_MD5 | XR_LOCK, NULL, &answer, NULL);
	strbuf_release(&q);
	strbuf_release(&body);
	strbuf_release(&answer);
	return ret;
}

int s3_create_bucket(struct s3 *s3, int object_lock)
{
	struct strbuf body = STRBUF_INIT;
	const char *region = s3->sigv4 + strlen("aws:amz:");
	char hex[2 * SHA256_LEN + 1];
	struct req r;
	int ret;

	req_init(&r, "PUT", NULL);
	build_url(s3, &r.url, NULL, NULL);
	/* us-east-1 is the one region named by no constraint. */
	if (strncmp(region, "us-east-1:", 10))
		strbuf_addf(&body, "<CreateBucketConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
			    "<LocationConstraint>%.*s</LocationConstraint></CreateBucketConfiguration>",
			    (int)(strchr(region, ':') - region), region);
	hex_sha256_buf(body.buf, body.len, hex);
	common_headers(s3, &r, hex);
	if (object_lock)
		add_header(&r, "x-amz-bucket-object-lock-enabled: true");
	r.has_body = 1;
	r.body = body.buf;
	r.body_len = body.len;
	ret = perform(s3, &r);
	req_release(&r);
	strbuf_release(&body);
	return ret;
}

int s3_delete_bucket(struct s3 *s3)
{
	struct req r;
	int ret;

	req_init(&r, "DELETE", NULL);
	build_url(s3, &r.url, NULL, NULL);
	common_headers(s3, &r, NULL);
	ret = perform(s3, &r);
	req_release(&r);
	return ret;
}

int s3_mpu_create(struct s3 *s3, const char *key, const struct s3_put_options *po,
		  char **upload_id)
{
	const char *pairs[] = { "uploads", NULL };
	struct strbuf q = STRBUF_INIT, answer = STRBUF_INIT;
	struct req r;
	int ret;

	*upload_id = NULL;
	s3_query(&q, pairs, 1);
	req_init(&r, "POST", key);
	build_url(s3, &r.url, key, q.buf);
	common_headers(s3, &r, NULL);
	/* The lock goes on the upload; create-only on its completion. */
	if (po && po->lock_mode) {
		struct s3_put_options lock = { .lock_mode = po->lock_mode,
					       .lock_until = po->lock_until };

		put_headers(&r, &lock);
	}
	r.out_buf = &answer;
	r.out_max = MAX_XML;
	r.has_body = 1;
	r.body = "";
	r.body_len = 0;
	ret = perform(s3, &r);
	if (!ret && s3_parse_upload_id(answer.buf, answer.len, upload_id))
		ret = error("S3 starting an upload of '%s': the server's answer is malformed",
			    s3_name(s3, key));
	req_release(&r);
	strbuf_release(&q);
	strbuf_release(&answer);
	return ret;
}

int s3_mpu_put_part(struct s3 *s3, const char *key, const char *upload_id, int number,
		    int fd, uint64_t off, uint64_t len, char **etag)
{
	char num[16], hex[2 * SHA256_LEN + 1];
	const char *pairs[] = { "partNumber", num, "uploadId", upload_id };
	struct strbuf q = STRBUF_INIT;
	struct req r;
	int ret;

	*etag = NULL;
	snprintf(num, sizeof(num), "%d", number);
	if (hex_sha256_fd(fd, off, len, hex))
		return error("cannot read what goes to '%s': %s", s3_name(s3, key), strerror(errno));
	s3_query(&q, pairs, 2);
	req_init(&r, "PUT", key);
	build_url(s3, &r.url, key, q.buf);
	common_headers(s3, &r, hex);
	r.has_body = 1;
	r.body_len = len;
	r.in_fd = fd;
	r.in_off = off;
	ret = perform(s3, &r);
	if (!ret) {
		if (r.etag)
			*etag = xstrdup(r.etag);
		else
			ret = error("S3 PUT '%s' part %d: the server sent no ETag", s3_name(s3, key),
				    number);
	}
	req_release(&r);
	strbuf_release(&q);
	return ret;
}

static void xml_escape(struct strbuf *sb, const char *s)
{
	for (; *s; s++) {
		if (*s == '&')
			strbuf_addstr(sb, "&amp;");
		else if (*s == '<')
			strbuf_addstr(sb, "&lt;");
		else if (*s == '>')
			strbuf_addstr(sb, "&gt;");
		else if (*s == '"')
			strbuf_addstr(sb, "&quot;");
		else
			strbuf_addch(sb, *s);
	}
}

int s3_mpu_complete(struct s3 *s3, const char *key, const char *upload_id,
		    const struct s3_part *parts, int nr, const struct s3_put_options *po,
		    struct s3_object *result)
{
	const char *pairs[] = { "uploadId", upload_id };
	struct strbuf q = STRBUF_INIT, body = STRBUF_INIT, answer = STRBUF_INIT;
	struct xml_node *x = NULL;
	int i, ret;

	if (result)
		memset(result, 0, sizeof(*result));
	s3_query(&q, pairs, 1);
	strbuf_addstr(&body, "<CompleteMultipartUpload xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">");
	for (i = 0; i < nr; i++) {
		strbuf_addf(&body, "<Part><PartNumber>%d</PartNumber><ETag>", parts[i].number);
		xml_escape(&body, parts[i].etag);
		strbuf_addstr(&body, "</ETag></Part>");
	}
	strbuf_addstr(&body, "</CompleteMultipartUpload>");
	ret = xml_request(s3, "POST", key, q.buf, body.buf, 0,
			  po && po->create_only ? "If-None-Match: *" : NULL, &answer, result);
	if (!ret && xml_parse(&x, answer.buf, answer.len))
		ret = error("S3 completing the upload of '%s': the server's answer is malformed",
			    s3_name(s3, key));
	/* S3 may answer 200 and then an error in the body. */
	if (!ret && !strcmp(x->name, "Error")) {
		const char *code = xml_text(x, "Code"), *msg = xml_text(x, "Message");

		ret = error("S3 completing the upload of '%s' failed: %s%s%s", s3_name(s3, key),
			    code ? code : "no answer", msg && *msg ? ": " : "", msg ? msg : "");
	}
	if (!ret && result) {
		const char *etag = xml_text(x, "ETag");

		if (etag) {
			free(result->etag);
			result->etag = xstrdup(etag);
		}
	}
	if (ret && result)
		s3_object_release(result);
	xml_free(x);
	strbuf_release(&q);
	strbuf_release(&body);
	strbuf_release(&answer);
	return ret;
}

int s3_mpu_abort(struct s3 *s3, const char *key, const char *upload_id)
{
	const char *pairs[] = { "uploadId", upload_id };
	struct strbuf q = STRBUF_INIT;
	struct req r;
	int ret;

	s3_query(&q, pairs, 1);
	req_init(&r, "DELETE", key);
	build_url(s3, &r.url, key, q.buf);
	common_headers(s3, &r, NULL);
	ret = perform(s3, &r);
	req_release(&r);
	strbuf_release(&q);
	return ret;
}

int s3_parse_upload_id(const char *xml, size_t len, char **id)
{
	struct xml_node *root;
	const char *t;

	*id = NULL;
	if (xml_parse(&root, xml, len))
		return ERR_CORRUPT;
	t = xml_text(root, "UploadId");
	if (!strcmp(root->name, "InitiateMultipartUploadResult") && t && *t)
		*id = xstrdup(t);
	xml_free(root);
	return *id ? 0 : ERR_CORRUPT;
}

int s3_parse_uploads(const char *xml, size_t len, char **next_key, char **next_id,
		     int (*fn)(const struct s3_upload *u, void *data), void *data)
{
	struct xml_node *root, *u;
	const char *t;
	int ret = 0;

	*next_key = *next_id = NULL;
	if (xml_parse(&root, xml, len))
		return ERR_CORRUPT;
	if (strcmp(root->name, "ListMultipartUploadsResult")) {
		xml_free(root);
		return ERR_CORRUPT;
	}
	for (u = xml_child(root, "Upload"); !ret && u; u = xml_next(u)) {
		struct s3_upload up;

		up.key = (char *)xml_text(u, "Key");
		up.upload_id = (char *)xml_text(u, "UploadId");
		up.initiated = s3_parse_time(xml_text(u, "Initiated"));
		if (!up.key || !up.upload_id || !*up.upload_id)
			ret = ERR_CORRUPT;
		else
			ret = fn(&up, data);
	}
	t = xml_text(root, "IsTruncated");
	if (!ret && t && !strcmp(t, "true")) {
		const char *k = xml_text(root, "NextKeyMarker");
		const char *i = xml_text(root, "NextUploadIdMarker");

		if (!k || !*k) {
			ret = ERR_CORRUPT;
		} else {
			*next_key = xstrdup(k);
			*next_id = i && *i ? xstrdup(i) : NULL;
		}
	}
	xml_free(root);
	return ret;
}

int s3_parse_parts(const char *xml, size_t len, int *next_marker,
		   int (*fn)(const struct s3_part *p, void *data), void *data)
{
	struct xml_node *root, *p;
	const char *t;
	uint64_t n;
	int ret = 0;

	*next_marker = 0;
	if (xml_parse(&root, xml, len))
		return ERR_CORRUPT;
	if (strcmp(root->name, "ListPartsResult")) {
		xml_free(root);
		return ERR_CORRUPT;
	}
	for (p = xml_child(root, "Part"); !ret && p; p = xml_next(p)) {
		struct s3_part part;

		part.etag = (char *)xml_text(p, "ETag");
		if (parse_u64(xml_text(p, "PartNumber"), &n) || !n || n > 10000 || !part.etag ||
		    parse_u64(xml_text(p, "Size"), &part.size)) {
			ret = ERR_CORRUPT;
		} else {
			part.number = (int)n;
			ret = fn(&part, data);
		}
	}
	t = xml_text(root, "IsTruncated");
	if (!ret && t && !strcmp(t, "true")) {
		if (parse_u64(xml_text(root, "NextPartNumberMarker"), &n) || !n || n > 10000)
			ret = ERR_CORRUPT;
		else
			*next_marker = (int)n;
	}
	xml_free(root);
	return ret;
}

int s3_mpu_list(struct s3 *s3, const char *prefix,
		int (*fn)(const struct s3_upload *u, void *data), void *data)
{
	char *key_marker = NULL, *id_marker = NULL;
	struct strbuf q = STRBUF_INIT, answer = STRBUF_INIT;
	int ret;

	do {
		const char *pairs[8] = { "prefix", prefix ? prefix : "", "uploads", NULL };
		int nr = 2;

		if (key_marker) {
			pairs[2 * nr] = "key-marker";
			pairs[2 * nr + 1] = key_marker;
			nr++;
		}
		if (id_marker) {
			pairs[2 * nr] = "upload-id-marker";
			pairs[2 * nr + 1] = id_marker;
			nr++;
		}
		strbuf_reset(&q);
		s3_query(&q, pairs, nr);
		free(key_marker);
		free(id_marker);
		key_marker = id_marker = NULL;
		strbuf_reset(&answer);
		ret = xml_request(s3, "GET", NULL, q.buf, NULL, 0, NULL, &answer, NULL);
		if (!ret)
			ret = s3_parse_uploads(answer.buf, answer.len, &key_marker, &id_marker,
					       fn, data);
		if (ret == ERR_CORRUPT)
			ret = error("S3 listing the uploads in '%s': the server's answer is malformed",
				    s3_name(s3, NULL));
	} while (!ret && key_marker);
	free(key_marker);
	free(id_marker);
	strbuf_release(&q);
	strbuf_release(&answer);
	return ret;
}

int s3_mpu_parts(struct s3 *s3, const char *key, const char *upload_id,
		 int (*fn)(const struct s3_part *p, void *data), void *data)
{
	struct strbuf q = STRBUF_INIT, answer = STRBUF_INIT;
	char num[16];
	int marker = 0, ret;

	do {
		const char *pairs[4] = { "uploadId", upload_id, "part-number-marker", num };

		snprintf(num, sizeof(num), "%d", marker);
		strbuf_reset(&q);
		s3_query(&q, pairs, marker ? 2 : 1);
		strbuf_reset(&answer);
		ret = xml_request(s3, "GET", key, q.buf, NULL, 0, NULL, &answer, NULL);
		if (!ret)
			ret = s3_parse_parts(answer.buf, answer.len, &marker, fn, data);
		if (ret == ERR_CORRUPT)
			ret = error("S3 listing the parts of '%s': the server's answer is malformed",
				    s3_name(s3, key));
	} while (!ret && marker);
	strbuf_release(&q);
	strbuf_release(&answer);
	return ret;
}
