/* Unit test of the S3 client's pieces that need no server: the SigV4
 * encoding of keys and query strings, the XML reader on the answers S3
 * sends (listings, errors, multipart uploads), times, and the parsing of
 * AWS credential files, which must never print a secret. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "s3.h"
#include "s3cred.h"
#include "strbuf.h"
#include "usage.h"
#include "xml.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)
#define CHECK_STR(a, b) do { const char *a_ = (a), *b_ = (b); if (!a_ || strcmp(a_, b_)) { fprintf(stderr, "%s:%d: '%s' != '%s'\n", __FILE__, __LINE__, a_ ? a_ : "(null)", b_); failed = 1; } } while (0)

static void test_encode(void)
{
	struct strbuf sb = STRBUF_INIT;

	s3_uri_encode(&sb, "pack/a b+c~d_e-f.g", 1);
	CHECK_STR(sb.buf, "pack/a%20b%2Bc~d_e-f.g");
	strbuf_reset(&sb);
	s3_uri_encode(&sb, "a/b=\xc3\xa9&", 0);
	CHECK_STR(sb.buf, "a%2Fb%3D%C3%A9%26");
	strbuf_release(&sb);
}

static void test_query(void)
{
	struct strbuf sb = STRBUF_INIT;
	const char *list[] = { "prefix", "a/", "max-keys", "1", "list-type", "2" };
	const char *uploads[] = { "uploads", NULL };
	const char *token[] = { "list-type", "2", "continuation-token", "1+a/b=", "prefix", "" };
	const char *parts[] = { "uploadId", "2~x", "part-number-marker", "3" };
	const char *retention[] = { "versionId", "v1", "retention", NULL };

	/* Sorted by name, every value encoded: the 403s of MEASURED.md §2.4. */
	s3_query(&sb, list, 3);
	CHECK_STR(sb.buf, "list-type=2&max-keys=1&prefix=a%2F");
	strbuf_reset(&sb);
	s3_query(&sb, uploads, 1);
	CHECK_STR(sb.buf, "uploads=");
	strbuf_reset(&sb);
	s3_query(&sb, token, 3);
	CHECK_STR(sb.buf, "continuation-token=1%2Ba%2Fb%3D&list-type=2&prefix=");
	strbuf_reset(&sb);
	/* Byte order: '-' and 'p' sort before 'u', upper case before lower. */
	s3_query(&sb, parts, 2);
	CHECK_STR(sb.buf, "part-number-marker=3&uploadId=2~x");
	strbuf_reset(&sb);
	s3_query(&sb, retention, 2);
	CHECK_STR(sb.buf, "retention=&versionId=v1");
	strbuf_release(&sb);
}

static void test_time(void)
{
	CHECK(s3_parse_time("2026-12-07T15:15:32.000Z") == 1796656532);
	CHECK(s3_parse_time("2026-12-07T15:15:32Z") == 1796656532);
	CHECK(s3_parse_time("Mon, 07 Dec 2026 15:15:32 GMT") == 1796656532);
	CHECK(s3_parse_time("Mon, 07 Dex 2026 15:15:32 GMT") == -1);
	CHECK(s3_parse_time("2026-13-07T15:15:32Z") == -1);
	CHECK(s3_parse_time("yesterday") == -1);
	CHECK(s3_parse_time(NULL) == -1);
}

struct seen {
	int n;
	char keys[8][64];
	uint64_t sizes[8];
	int stop_at;
};

static int on_object(const struct s3_object *o, void *data)
{
	struct seen *s = data;

	if (s->n < 8) {
		snprintf(s->keys[s->n], sizeof(s->keys[0]), "%s", o->key);
		s->sizes[s->n] = o->size;
	}
	s->n++;
	return s->stop_at && s->n == s->stop_at ? 7 : 0;
}

static const char list_page[] =
	"<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	"<ListBucketResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
	"<Name>b</Name><Prefix>pack/</Prefix><MaxKeys>2</MaxKeys><IsTruncated>true</IsTruncated>"
	"<Contents><Key>pack/a&amp;b.pack</Key><LastModified>2026-12-07T15:15:32.000Z</LastModified>"
	"<ETag>&quot;764efa88&quot;</ETag><Size>5000000</Size><StorageClass>STANDARD</StorageClass></Contents>"
	"<!-- a comment --><Contents><Key>pack/&#x63;&#100;</Key><Size>0</Size></Contents>"
	"<NextContinuationToken>tok+1/=</NextContinuationToken><KeyCount>2</KeyCount>"
	"</ListBucketResult>";

static void test_list(void)
{
	struct seen s = { 0 };
	char *next = NULL;
	static const char last[] = "<ListBucketResult><IsTruncated>false</IsTruncated>"
				   "<Contents><Key><![CDATA[x<y]]></Key><Size>12</Size></Contents>"
				   "</ListBucketResult>";
	static const char nosize[] = "<ListBucketResult><Contents><Key>k</Key></Contents></ListBucketResult>";
	static const char notoken[] = "<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>";

	CHECK(s3_parse_list(list_page, sizeof(list_page) - 1, &next, on_object, &s) == 0);
	CHECK(s.n == 2);
	CHECK_STR(s.keys[0], "pack/a&b.pack");
	CHECK(s.sizes[0] == 5000000);
	CHECK_STR(s.keys[1], "pack/cd");
	CHECK_STR(next, "tok+1/=");
	free(next);

	memset(&s, 0, sizeof(s));
	CHECK(s3_parse_list(last, sizeof(last) - 1, &next, on_object, &s) == 0);
	CHECK(s.n == 1 && !next);
	CHECK_STR(s.keys[0], "x<y");

	/* fn's non-zero return stops the walk and is returned. */
	memset(&s, 0, sizeof(s));
	s.stop_at = 1;
	CHECK(s3_parse_list(list_page, sizeof(list_page) - 1, &next, on_object, &s) == 7);
	CHECK(s.n == 1 && !next);

	CHECK(s3_parse_list(nosize, sizeof(nosize) - 1, &next, on_object, &s) == ERR_CORRUPT);
	CHECK(s3_parse_list(notoken, sizeof(notoken) - 1, &next, on_object, &s) == ERR_CORRUPT);
	CHECK(s3_parse_list("<Error/>", 8, &next, on_object, &s) == ERR_CORRUPT);
	CHECK(s3_parse_list(list_page, 100, &next, on_object, &s) == ERR_CORRUPT);
}

static void test_error(void)
{
	static const char rgw[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SignatureDoesNotMatch</Code>"
		"<Message></Message><RequestId>tx0000078328e0d1d4f7a4a-006b16cd94-1008-default</RequestId>"
		"<HostId>1008-default-default</HostId></Error>";
	static const char aws[] =
		"<Error><Code>RequestTimeTooSkewed</Code><Message>The difference between the request "
		"time and the current time is too large.</Message><MaxAllowedSkewMilliseconds>900000"
		"</MaxAllowedSkewMilliseconds></Error>";
	char *code, *msg;

	CHECK(s3_parse_error(rgw, sizeof(rgw) - 1, &code, &msg) == 0);
	CHECK_STR(code, "SignatureDoesNotMatch");
	CHECK(!msg);
	free(code);
	CHECK(s3_parse_error(aws, sizeof(aws) - 1, &code, &msg) == 0);
	CHECK_STR(code, "RequestTimeTooSkewed");
	CHECK(msg && strstr(msg, "too large"));
	free(code);
	free(msg);
	CHECK(s3_parse_error(list_page, sizeof(list_page) - 1, &code, &msg) == ERR_CORRUPT);
	CHECK(s3_parse_error("<Error><Code>x</Error>", 22, &code, &msg) == ERR_CORRUPT);
}

static int on_upload(const struct s3_upload *u, void *data)
{
	struct strbuf *sb = data;

	strbuf_addf(sb, "%s %s %lld;", u->key, u->upload_id, (long long)u->initiated);
	return 0;
}

static int on_part(const struct s3_part *p, void *data)
{
	struct strbuf *sb = data;

	strbuf_addf(sb, "%d %s %llu;", p->number, p->etag, (unsigned long long)p->size);
	return 0;
}

static void test_multipart(void)
{
	static const char init[] =
		"<?xml version=\"1.0\" encoding=\"UTF-8\"?><InitiateMultipartUploadResult "
		"xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Bucket>b</Bucket><Key>m/mp</Key>"
		"<UploadId>2~ZcHJx0-jGRycyovDSIoBVUy7ULwZ6aW</UploadId></InitiateMultipartUploadResult>";
	static const char uploads[] =
		"<ListMultipartUploadsResult xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\">"
		"<Bucket>b</Bucket><NextKeyMarker>m/b</NextKeyMarker><NextUploadIdMarker>2~b"
		"</NextUploadIdMarker><IsTruncated>true</IsTruncated>"
		"<Upload><Key>m/a</Key><UploadId>2~a</UploadId><Initiated>2026-12-07T15:15:32.000Z</Initiated></Upload>"
		"<Upload><Key>m/b</Key><UploadId>2~b</UploadId><Initiated>2026-12-07T15:15:33.000Z</Initiated></Upload>"
		"</ListMultipartUploadsResult>";
	static const char parts[] =
		"<ListPartsResult><IsTruncated>true</IsTruncated><NextPartNumberMarker>2</NextPartNumberMarker>"
		"<Part><PartNumber>1</PartNumber><ETag>\"e1\"</ETag><Size>5242880</Size></Part>"
		"<Part><PartNumber>2</PartNumber><ETag>&quot;e2&quot;</ETag><Size>17</Size></Part>"
		"</ListPartsResult>";
	static const char badpart[] =
		"<ListPartsResult><Part><PartNumber>0</PartNumber><ETag>e</ETag><Size>1</Size></Part></ListPartsResult>";
	struct strbuf sb = STRBUF_INIT;
	char *id, *k, *i;
	int marker;

	CHECK(s3_parse_upload_id(init, sizeof(init) - 1, &id) == 0);
	CHECK_STR(id, "2~ZcHJx0-jGRycyovDSIoBVUy7ULwZ6aW");
	free(id);
	CHECK(s3_parse_upload_id(uploads, sizeof(uploads) - 1, &id) == ERR_CORRUPT && !id);

	CHECK(s3_parse_uploads(uploads, sizeof(uploads) - 1, &k, &i, on_upload, &sb) == 0);
	CHECK_STR(sb.buf, "m/a 2~a 1796656532;m/b 2~b 1796656533;");
	CHECK_STR(k, "m/b");
	CHECK_STR(i, "2~b");
	free(k);
	free(i);

	strbuf_reset(&sb);
	CHECK(s3_parse_parts(parts, sizeof(parts) - 1, &marker, on_part, &sb) == 0);
	CHECK_STR(sb.buf, "1 \"e1\" 5242880;2 \"e2\" 17;");
	CHECK(marker == 2);
	CHECK(s3_parse_parts(badpart, sizeof(badpart) - 1, &marker, on_part, &sb) == ERR_CORRUPT);
	strbuf_release(&sb);
}

static void test_xml(void)
{
	static const char *bad[] = {
		"",
		"<a>",
		"<a></b>",
		"<a><b></a></b>",
		"<a>&unknown;</a>",
		"<a>&#0;</a>",
		"<a>&#xD800;</a>",
		"<a>&#x110000;</a>",
		"<!DOCTYPE a [<!ENTITY e \"x\">]><a>&e;</a>",
		"<a/><b/>",
		"<a/>trailing",
		"<a x=\"1></a>",
		"<a x=1></a>",
		"<a><![CDATA[open</a>",
		"<a><!-- open</a>",
		"text",
	};
	static const char good[] =
		"\xef\xbb\xbf<?xml version='1.0'?><!-- c --><s3:R a='1' b=\"2\">"
		"<K>&lt;&#233;&gt;</K><K>2</K><E/><K>3</K></s3:R>\n<!-- after -->";
	struct xml_node *root;
	struct strbuf deep = STRBUF_INIT;
	size_t i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK(xml_parse(&root, bad[i], strlen(bad[i])) == ERR_CORRUPT);
		CHECK(!root);
	}
	CHECK(xml_parse(&root, "<a>x\0y</a>", 10) == ERR_CORRUPT);

	CHECK(xml_parse(&root, good, strlen(good)) == 0);
	if (!root)
		return;
	CHECK_STR(root->name, "R");
	CHECK_STR(xml_text(root, "K"), "<\xc3\xa9>");
	CHECK_STR(xml_next(xml_child(root, "K"))->text, "2");
	CHECK_STR(xml_next(xml_next(xml_child(root, "K")))->text, "3");
	CHECK(!xml_next(xml_next(xml_next(xml_child(root, "K")))));
	CHECK_STR(xml_text(root, "E"), "");
	CHECK(!xml_text(root, "missing"));
	xml_free(root);

	for (i = 0; i < 64; i++)
		strbuf_addstr(&deep, "<d>");
	for (i = 0; i < 64; i++)
		strbuf_addstr(&deep, "</d>");
	CHECK(xml_parse(&root, deep.buf, deep.len) == 0);
	xml_free(root);
	strbuf_reset(&deep);
	for (i = 0; i < 100; i++)
		strbuf_addstr(&deep, "<d>");
	for (i = 0; i < 100; i++)
		strbuf_addstr(&deep, "</d>");
	CHECK(xml_parse(&root, deep.buf, deep.len) == ERR_CORRUPT);
	strbuf_release(&deep);
}

/* Runs s3cred_parse with stderr in a file; returns what it printed. */
static int parse_quietly(struct s3_cred **c, const char *text, const char *profile, int config,
			 struct strbuf *printed)
{
	char path[] = "/tmp/test_s3-XXXXXX";
	int fd = mkstemp(path), saved = dup(2), ret;

	fflush(stderr);
	dup2(fd, 2);
	ret = s3cred_parse(c, text, "creds", profile, config);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	close(fd);
	strbuf_reset(printed);
	strbuf_read_file(printed, path);
	unlink(path);
	return ret;
}

static void test_credentials(void)
{
	static const char creds[] =
		"# comment\n"
		"[default]\n"
		"aws_access_key_id = AKIADEFAULT\n"
		"aws_secret_access_key=secretdefault\n"
		"\n"
		"[ prod ]\r\n"
		"; another comment\n"
		"AWS_ACCESS_KEY_ID = AKIAPROD \n"
		"aws_secret_access_key = secret/prod+x=\n"
		"aws_session_token = tokenprod\n";
	static const char config[] =
		"[default]\nregion = eu-west-1\n"
		"[profile prod]\nregion = us-east-1\ns3 =\n  addressing_style = path\n"
		"aws_access_key_id = AKIACONF\naws_secret_access_key = secretconf\n"
		"[prod]\naws_access_key_id = NOTTHIS\naws_secret_access_key = NOTTHIS\n";
	static const char nosecret[] = "[x]\naws_access_key_id = AKIAX\n";
	static const char malformed[] = "[x]\naws_access_key_id = AKIAX\nsecretsecretsecret\n";
	struct strbuf printed = STRBUF_INIT;
	struct s3_cred *c;

	CHECK(parse_quietly(&c, creds, "default", 0, &printed) == 0);
	CHECK_STR(c->access_key, "AKIADEFAULT");
	CHECK_STR(c->secret_key, "secretdefault");
	CHECK(!c->session_token);
	CHECK_STR(c->source, "profile 'default' in 'creds'");
	s3cred_free(c);

	CHECK(parse_quietly(&c, creds, "prod", 0, &printed) == 0);
	CHECK_STR(c->access_key, "AKIAPROD");
	CHECK_STR(c->secret_key, "secret/prod+x=");
	CHECK_STR(c->session_token, "tokenprod");
	s3cred_free(c);

	CHECK(parse_quietly(&c, creds, "staging", 0, &printed) == ERR_NOTFOUND && !c);
	CHECK(printed.len == 0);

	/* The config file names profiles "profile NAME". */
	CHECK(parse_quietly(&c, config, "prod", 1, &printed) == 0);
	CHECK_STR(c->access_key, "AKIACONF");
	s3cred_free(c);
	CHECK(parse_quietly(&c, config, "default", 1, &printed) == ERR_NOTFOUND);

	CHECK(parse_quietly(&c, nosecret, "x", 0, &printed) == -1 && !c);
	CHECK(strstr(printed.buf, "no aws_secret_access_key"));
	CHECK(parse_quietly(&c, malformed, "x", 0, &printed) == -1 && !c);
	CHECK(strstr(printed.buf, "line 3"));
	CHECK(!strstr(printed.buf, "secretsecret"));
	strbuf_release(&printed);
}

static void test_credentials_env(void)
{
	char path[] = "/tmp/test_s3-creds-XXXXXX";
	struct s3_cred *c;
	int fd = mkstemp(path);
	FILE *f = fdopen(fd, "w");

	fputs("[ci]\naws_access_key_id = AKIACI\naws_secret_access_key = secretci\n", f);
	fclose(f);
	setenv("HOME", "/nonexistent", 1);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_DEFAULT_PROFILE");
	unsetenv("AWS_SESSION_TOKEN");
	setenv("AWS_ACCESS_KEY_ID", "AKIAENV", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "secretenv", 1);
	setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
	CHECK(s3cred_load(&c) == 0);
	CHECK_STR(c->access_key, "AKIAENV");
	CHECK_STR(c->source, "the environment");
	s3cred_free(c);

	/* Without keys in the environment, AWS_PROFILE picks the profile. */
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_PROFILE", "ci", 1);
	unsetenv("AWS_CONFIG_FILE");
	CHECK(s3cred_load(&c) == 0);
	CHECK_STR(c->secret_key, "secretci");
	s3cred_free(c);

	unlink(path);
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
}

int main(void)
{
	test_encode();
	test_query();
	test_time();
	test_list();
	test_error();
	test_multipart();
	test_xml();
	test_credentials();
	test_credentials_env();
	if (failed)
		return 1;
	printf("S3 encoding, XML answers and credential files as expected\n");
	return 0;
}
