/* Unit test of lib/passphrase.c: the passphrase from a file, from a command,
 * from a terminal with echo off (a pseudo-terminal here), and each refusal:
 * empty, too long, both variables set, a failing command, no terminal. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "passphrase.h"
#include "strbuf.h"
#include "usage.h"

static int failed;
#define CHECK(c) do { if (!(c)) { fprintf(stderr, "%s:%d: check failed: %s\n", __FILE__, __LINE__, #c); failed = 1; } } while (0)

static char dir[] = "/tmp/test_passphrase.XXXXXX";

static const char *file_with(const char *data, size_t len)
{
	static char path[64];
	int fd;

	snprintf(path, sizeof(path), "%s/pw", dir);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len)
		die("cannot write '%s'", path);
	close(fd);
	return path;
}

/* Reads with prefix T: 1 if it gave want, 0 if it failed, -1 if it gave
 * something else. */
static int got(const char *want)
{
	struct passphrase p;
	int ret;

	if (passphrase_read(&p, "T", "pass: ", 0) < 0)
		return 0;
	ret = want && p.len == strlen(want) && !memcmp(p.buf, want, p.len) ? 1 : -1;
	passphrase_free(&p);
	CHECK(!p.buf && !p.len);
	return ret;
}

static void test_file(void)
{
	char big[PASSPHRASE_MAX + 1];

	unsetenv("T_COMMAND");
	setenv("T_FILE", file_with("secret pass\nsecond line\n", 24), 1);
	CHECK(got("secret pass") == 1);
	setenv("T_FILE", file_with("crlf\r\n", 6), 1);
	CHECK(got("crlf") == 1);
	setenv("T_FILE", file_with("no newline", 10), 1);
	CHECK(got("no newline") == 1);
	setenv("T_FILE", file_with(" spaces kept \n", 14), 1);
	CHECK(got(" spaces kept ") == 1);
	memset(big, 'x', sizeof(big));
	setenv("T_FILE", file_with(big, PASSPHRASE_MAX), 1);
	CHECK(got(NULL) == -1);
	fprintf(stderr, "(refusals expected below:)\n");
	setenv("T_FILE", file_with(big, PASSPHRASE_MAX + 1), 1);
	CHECK(got(NULL) == 0);
	setenv("T_FILE", file_with("", 0), 1);
	CHECK(got(NULL) == 0);
	setenv("T_FILE", file_with("\nsecond\n", 8), 1);
	CHECK(got(NULL) == 0);
	setenv("T_FILE", "/nonexistent/pw", 1);
	CHECK(got(NULL) == 0);
	setenv("T_COMMAND", "echo x", 1);
	CHECK(got(NULL) == 0);
	unsetenv("T_FILE");
}

static void test_command(void)
{
	unsetenv("T_FILE");
	setenv("T_COMMAND", "printf 'from a command\\nrest\\n'", 1);
	CHECK(got("from a command") == 1);
	/* A long output is read to its end and refused, the command not
	 * killed by a closed pipe. */
	setenv("T_COMMAND", "head -c 100000 /dev/zero | tr '\\0' x; echo done >&2", 1);
	CHECK(got(NULL) == 0);
	setenv("T_COMMAND", "echo secret; exit 3", 1);
	CHECK(got(NULL) == 0);
	setenv("T_COMMAND", "true", 1);
	CHECK(got(NULL) == 0);
	/* Empty variables count as unset. */
	setenv("T_FILE", "", 1);
	setenv("T_COMMAND", "echo fine", 1);
	CHECK(got("fine") == 1);
	unsetenv("T_FILE");
	unsetenv("T_COMMAND");
}

/* Reads the pty master into sb until it holds want or 5 s pass. */
static int read_until(int fd, struct strbuf *sb, const char *want)
{
	char buf[256];

	while (!strstr(sb->buf, want)) {
		struct pollfd p = { fd, POLLIN, 0 };
		ssize_t n;

		if (poll(&p, 1, 5000) <= 0)
			return -1;
		n = read(fd, buf, sizeof(buf));
		if (n <= 0)
			return -1;
		strbuf_add(sb, buf, n);
	}
	return 0;
}

/* Types first (and second, when confirming) at the prompts of a child on
 * a pseudo-terminal; returns what the child read ("" when it failed) and
 * in *screen what the terminal showed. */
static char *typed(const char *first, const char *second, struct strbuf *screen)
{
	struct strbuf res = STRBUF_INIT;
	int master, out[2], st;
	char buf[256];
	ssize_t n;
	pid_t pid;

	if (pipe(out) < 0)
		die("pipe");
	pid = forkpty(&master, NULL, NULL, NULL);
	if (pid < 0)
		die("forkpty: %s", strerror(errno));
	if (pid == 0) {
		struct passphrase p;

		close(out[0]);
		if (passphrase_read(&p, "T", "pass: ", second != NULL) == 0) {
			if (write(out[1], p.buf, p.len) < 0)
				_exit(2);
			passphrase_free(&p);
		}
		_exit(0);
	}
	close(out[1]);
	CHECK(read_until(master, screen, "pass: ") == 0);
	CHECK(write(master, first, strlen(first)) > 0);
	if (second) {
		CHECK(read_until(master, screen, "again: ") == 0);
		CHECK(write(master, second, strlen(second)) > 0);
	}
	while ((n = read(out[0], buf, sizeof(buf))) > 0)
		strbuf_add(&res, buf, n);
	/* The rest of what the terminal showed. */
	while (1) {
		struct pollfd p = { master, POLLIN, 0 };

		if (poll(&p, 1, 200) <= 0 || (n = read(master, buf, sizeof(buf))) <= 0)
			break;
		strbuf_add(screen, buf, n);
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	close(out[0]);
	close(master);
	return strbuf_detach(&res, NULL);
}

static void test_terminal(void)
{
	struct strbuf screen = STRBUF_INIT;
	char *r;

	unsetenv("T_FILE");
	unsetenv("T_COMMAND");
	r = typed("hunter2 x\n", NULL, &screen);
	CHECK(!strcmp(r, "hunter2 x"));
	CHECK(strstr(screen.buf, "pass: ") && !strstr(screen.buf, "hunter2"));
	free(r);
	strbuf_reset(&screen);
	r = typed("twice\n", "twice\n", &screen);
	CHECK(!strcmp(r, "twice"));
	CHECK(!strstr(screen.buf, "twice"));
	free(r);
	strbuf_reset(&screen);
	r = typed("one\n", "other\n", &screen);
	CHECK(!strcmp(r, ""));
	CHECK(strstr(screen.buf, "the two passphrases typed differ"));
	CHECK(!strstr(screen.buf, "one") && !strstr(screen.buf, "other"));
	free(r);
	strbuf_reset(&screen);
	r = typed("\n", NULL, &screen);
	CHECK(!strcmp(r, ""));
	CHECK(strstr(screen.buf, "the passphrase typed is empty"));
	free(r);
	strbuf_release(&screen);
}

/* Without a controlling terminal (a new session) and no variable: the
 * error names the variables. */
static void test_no_terminal(void)
{
	int st;
	pid_t pid = fork();

	if (pid == 0) {
		struct passphrase p;

		setsid();
		_exit(passphrase_read(&p, "T", "pass: ", 0) == -1 ? 0 : 1);
	}
	waitpid(pid, &st, 0);
	CHECK(WIFEXITED(st) && WEXITSTATUS(st) == 0);
}

int main(void)
{
	char path[64];

	if (!mkdtemp(dir))
		die("mkdtemp");
	test_file();
	test_command();
	test_terminal();
	test_no_terminal();
	snprintf(path, sizeof(path), "%s/pw", dir);
	unlink(path);
	rmdir(dir);
	if (failed)
		return 1;
	printf("test_passphrase: ok\n");
	return 0;
}
