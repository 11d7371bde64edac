#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "s3cred.h"
#include "strbuf.h"
#include "usage.h"

static void wipe_free(char *s)
{
	if (!s)
		return;
	explicit_bzero(s, strlen(s));
	free(s);
}

void s3cred_free(struct s3_cred *c)
{
	if (!c)
		return;
	wipe_free(c->access_key);
	wipe_free(c->secret_key);
	wipe_free(c->session_token);
	free(c->source);
	free(c);
}

static const char *trim(char *s, char **end)
{
	char *e;

	while (*s == ' ' || *s == '\t')
		s++;
	e = s + strlen(s);
	while (e > s && (e[-1] == ' ' || e[-1] == '\t' || e[-1] == '\r'))
		e--;
	*e = 0;
	if (end)
		*end = e;
	return s;
}

/* Whether the section header's inside names profile. */
static int is_profile(const char *section, const char *profile, int config)
{
	if (!config || !strcmp(profile, "default"))
		if (!strcmp(section, profile))
			return 1;
	if (config && !strncmp(section, "profile", 7) &&
	    (section[7] == ' ' || section[7] == '\t')) {
		section += 8;
		while (*section == ' ' || *section == '\t')
			section++;
		return !strcmp(section, profile);
	}
	return 0;
}

static void set(char **field, const char *value)
{
	wipe_free(*field);
	*field = xstrdup(value);
}

int s3cred_parse(struct s3_cred **out, const char *text, const char *path,
		 const char *profile, int config)
{
	struct s3_cred *c = xcalloc(1, sizeof(*c));
	char *copy = xstrdup(text), *line, *next, *end;
	int in = 0, found = 0, lineno = 0, ret = ERR_NOTFOUND;

	*out = NULL;
	for (line = copy; line; line = next) {
		const char *s, *key, *value;
		char *eq;

		next = strchr(line, '\n');
		if (next)
			*next++ = 0;
		lineno++;
		/* An indented line continues a nested setting of the config
		 * file (s3 =, then its keys): never a credential. */
		if (*line == ' ' || *line == '\t')
			continue;
		s = trim(line, &end);
		if (!*s || *s == '#' || *s == ';')
			continue;
		if (*s == '[') {
			if (end[-1] != ']') {
				ret = error("malformed section header on line %d of '%s'", lineno, path);
				goto out;
			}
			end[-1] = 0;
			in = is_profile(trim((char *)s + 1, NULL), profile, config);
			found |= in;
			continue;
		}
		eq = strchr(s, '=');
		if (!eq) {
			/* Never the line's text: it may hold a secret. */
			ret = error("malformed line %d of '%s': no '='", lineno, path);
			goto out;
		}
		if (!in)
			continue;
		*eq = 0;
		key = trim((char *)s, NULL);
		value = trim(eq + 1, NULL);
		if (!strcasecmp(key, "aws_access_key_id"))
			set(&c->access_key, value);
		else if (!strcasecmp(key, "aws_secret_access_key"))
			set(&c->secret_key, value);
		else if (!strcasecmp(key, "aws_session_token") ||
			 (!strcasecmp(key, "aws_security_token") && !c->session_token))
			set(&c->session_token, value);
	}
	if (!found || !c->access_key || !*c->access_key)
		goto out;
	if (!c->secret_key || !*c->secret_key) {
		ret = error("profile '%s' in '%s' has aws_access_key_id but no aws_secret_access_key",
			    profile, path);
		goto out;
	}
	if (c->session_token && !*c->session_token) {
		wipe_free(c->session_token);
		c->session_token = NULL;
	}
	c->source = xasprintf("profile '%s' in '%s'", profile, path);
	*out = c;
	c = NULL;
	ret = 0;
out:
	explicit_bzero(copy, strlen(text));
	free(copy);
	s3cred_free(c);
	return ret;
}

/* The file named by the environment variable var, else ~/.aws/name; sets
 * *explicit when the variable named it. */
static char *aws_file(const char *var, const char *name, int *explicit)
{
	const char *v = getenv(var), *home = getenv("HOME");

	*explicit = v && *v;
	if (*explicit) {
		if (v[0] == '~' && v[1] == '/' && home)
			return xasprintf("%s%s", home, v + 1);
		return xstrdup(v);
	}
	if (!home || !*home)
		return NULL;
	return xasprintf("%s/.aws/%s", home, name);
}

/* Looks for profile in one file: 0 found, ERR_NOTFOUND, or -1 reported. */
static int from_file(struct s3_cred **out, const char *var, const char *name,
		     const char *profile, int config, char **path)
{
	struct strbuf sb = STRBUF_INIT;
	int explicit, ret;

	*path = aws_file(var, name, &explicit);
	if (!*path)
		return ERR_NOTFOUND;
	if (strbuf_read_file(&sb, *path) < 0) {
		if (errno == ENOENT && !explicit)
			return ERR_NOTFOUND;
		return error("cannot read '%s'%s%s%s: %s", *path, explicit ? " (" : "",
			     explicit ? var : "", explicit ? ")" : "", strerror(errno));
	}
	if (memchr(sb.buf, 0, sb.len))
		ret = error("'%s' is not a text file", *path);
	else
		ret = s3cred_parse(out, sb.buf, *path, profile, config);
	explicit_bzero(sb.buf, sb.len);
	strbuf_release(&sb);
	return ret;
}

int s3cred_load(struct s3_cred **out)
{
	const char *ak = getenv("AWS_ACCESS_KEY_ID"), *sk = getenv("AWS_SECRET_ACCESS_KEY");
	const char *token = getenv("AWS_SESSION_TOKEN"), *profile;
	char *credpath = NULL, *confpath = NULL;
	int explicit, ret;

	*out = NULL;
	if ((ak && *ak) || (sk && *sk)) {
		struct s3_cred *c;

		if (!ak || !*ak)
			return error("AWS_SECRET_ACCESS_KEY is set but AWS_ACCESS_KEY_ID is not");
		if (!sk || !*sk)
			return error("AWS_ACCESS_KEY_ID is set but AWS_SECRET_ACCESS_KEY is not");
		c = xcalloc(1, sizeof(*c));
		c->access_key = xstrdup(ak);
		c->secret_key = xstrdup(sk);
		if (token && *token)
			c->session_token = xstrdup(token);
		c->source = xstrdup("the environment");
		*out = c;
		return 0;
	}
	profile = getenv("AWS_PROFILE");
	if (!profile || !*profile)
		profile = getenv("AWS_DEFAULT_PROFILE");
	explicit = profile && *profile;
	if (!explicit)
		profile = "default";
	ret = from_file(out, "AWS_SHARED_CREDENTIALS_FILE", "credentials", profile, 0, &credpath);
	if (ret == ERR_NOTFOUND)
		ret = from_file(out, "AWS_CONFIG_FILE", "config", profile, 1, &confpath);
	if (ret == ERR_NOTFOUND) {
		if (explicit)
			ret = error("no credentials for profile '%s' (AWS_PROFILE) in '%s' or '%s'",
				    profile, credpath ? credpath : "~/.aws/credentials",
				    confpath ? confpath : "~/.aws/config");
		else
			ret = error("no S3 credentials; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
				    "or AWS_PROFILE and ~/.aws/credentials");
	}
	free(credpath);
	free(confpath);
	return ret;
}
