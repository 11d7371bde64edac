#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <termios.h>
#include <unistd.h>

#include "crypto.h"
#include "passphrase.h"
#include "usage.h"

/* One byte more than the longest passphrase, to tell one that is too long,
 * and one for the NUL. */
#define BUF_LEN (PASSPHRASE_MAX + 2)

void passphrase_free(struct passphrase *p)
{
	if (p->buf) {
		crypto_wipe(p->buf, BUF_LEN);
		free(p->buf);
	}
	p->buf = NULL;
	p->len = 0;
}

/*
 * Keeps the first line of the n bytes read into out->buf as the
 * passphrase; what names the source in messages.
 */
static int first_line(struct passphrase *out, size_t n, const char *what)
{
	char *nl = memchr(out->buf, '\n', n);

	if (!nl && n > PASSPHRASE_MAX)
		return error("the passphrase from %s is longer than %d bytes", what, PASSPHRASE_MAX);
	if (nl)
		n = nl - out->buf;
	if (n && out->buf[n - 1] == '\r')
		n--;
	crypto_wipe(out->buf + n, BUF_LEN - n);
	out->len = n;
	if (!n)
		return error("the passphrase from %s is empty", what);
	return 0;
}

/* Reads fd into out->buf until EOF or the buffer is full; returns the
 * count, or -1 with errno. */
static ssize_t read_upto(int fd, struct passphrase *out)
{
	size_t n = 0;

	while (n < BUF_LEN - 1) {
		ssize_t r = read(fd, out->buf + n, BUF_LEN - 1 - n);

		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (!r)
			break;
		n += r;
	}
	return n;
}

static int from_file(struct passphrase *out, const char *path, const char *var)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return error("cannot open the passphrase file '%s' (%s): %s", path, var, strerror(errno));
	n = read_upto(fd, out);
	if (n < 0) {
		error("cannot read the passphrase file '%s' (%s): %s", path, var, strerror(errno));
		close(fd);
		return -1;
	}
	close(fd);
	return first_line(out, n, var);
}

static int from_command(struct passphrase *out, const char *cmd, const char *var)
{
	int fd[2], st, ret = -1;
	char drain[512];
	ssize_t n, r;
	pid_t pid;

	if (pipe2(fd, O_CLOEXEC) < 0)
		return error("cannot run the passphrase command (%s): %s", var, strerror(errno));
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid == 0) {
		struct rlimit nofile;

		dup2(fd[1], STDOUT_FILENO);
		if (user_nofile && getrlimit(RLIMIT_NOFILE, &nofile) == 0) {
			nofile.rlim_cur = user_nofile;
			setrlimit(RLIMIT_NOFILE, &nofile);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		dprintf(STDERR_FILENO, "backup: cannot run /bin/sh: %s\n", strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	if (pid < 0) {
		close(fd[0]);
		return error("cannot run the passphrase command (%s): %s", var, strerror(errno));
	}
	n = read_upto(fd[0], out);
	/* Whatever follows is read to its end, so that the command never
	 * dies of a closed pipe, and forgotten. */
	while ((r = read(fd[0], drain, sizeof(drain))) > 0 || (r < 0 && errno == EINTR))
		;
	crypto_wipe(drain, sizeof(drain));
	close(fd[0]);
	while (waitpid(pid, &st, 0) < 0)
		if (errno != EINTR)
			return error("cannot wait for the passphrase command (%s): %s", var, strerror(errno));
	if (n < 0)
		error("cannot read the output of the passphrase command (%s): %s", var, strerror(errno));
	else if (WIFSIGNALED(st))
		error("the passphrase command (%s) was killed by signal %d", var, WTERMSIG(st));
	else if (WEXITSTATUS(st))
		error("the passphrase command (%s) failed with exit status %d", var, WEXITSTATUS(st));
	else
		ret = first_line(out, n, var);
	return ret;
}

static volatile sig_atomic_t prompt_signal;

static void on_signal(int sig)
{
	prompt_signal = sig;
}

/* Writes to the terminal; a prompt that cannot be shown is no reason to fail. */
static void say(int fd, const char *s)
{
	ssize_t r = write(fd, s, strlen(s));

	(void)r;
}

/* Reads one line from the terminal fd with echo off, after showing prompt. */
static int from_terminal(struct passphrase *out, int fd, const char *prompt, const char *prefix)
{
	static const int sigs[] = { SIGINT, SIGTERM, SIGHUP, SIGQUIT, SIGTSTP };
	struct sigaction sa, old_sa[5];
	struct termios old, quiet;
	size_t n = 0;
	int i, too_long = 0, ret = -1;
	char c;

	if (tcgetattr(fd, &old) < 0)
		return error("no passphrase: set %s_FILE or %s_COMMAND, or run on a terminal", prefix, prefix);
	/* A signal while echo is off must not leave the terminal silent: it
	 * ends the read (no SA_RESTART), the terminal is restored, and then
	 * the signal is raised again. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	prompt_signal = 0;
	for (i = 0; i < 5; i++)
		sigaction(sigs[i], &sa, &old_sa[i]);
	quiet = old;
	quiet.c_lflag &= ~(ECHO | ECHOE | ECHOK);
	quiet.c_lflag |= ICANON;
	if (tcsetattr(fd, TCSAFLUSH, &quiet) < 0) {
		error("cannot turn the terminal's echo off: %s", strerror(errno));
		goto restore;
	}
	say(fd, prompt);
	for (;;) {
		ssize_t r = read(fd, &c, 1);

		if (r < 0 && errno == EINTR && !prompt_signal)
			continue;
		if (r < 0) {
			if (!prompt_signal)
				error("cannot read the passphrase from the terminal: %s", strerror(errno));
			break;
		}
		if (!r || c == '\n') {
			ret = 0;
			break;
		}
		if (n < PASSPHRASE_MAX)
			out->buf[n++] = c;
		else
			too_long = 1;
	}
	crypto_wipe(&c, 1);
	tcsetattr(fd, TCSAFLUSH, &old);
	/* The newline the user typed was not echoed either. */
	say(fd, "\n");
restore:
	for (i = 0; i < 5; i++)
		sigaction(sigs[i], &old_sa[i], NULL);
	if (prompt_signal) {
		raise(prompt_signal);
		return error("interrupted");
	}
	if (ret < 0)
		return -1;
	if (too_long)
		return error("the passphrase typed is longer than %d bytes", PASSPHRASE_MAX);
	out->buf[n] = '\0';
	out->len = n;
	if (!n)
		return error("the passphrase typed is empty");
	return 0;
}

static int from_prompt(struct passphrase *out, const char *prefix, const char *prompt, int confirm)
{
	struct passphrase again = { xmalloc(BUF_LEN), 0 };
	int fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC), ret;

	if (fd < 0) {
		passphrase_free(&again);
		return error("no passphrase: set %s_FILE or %s_COMMAND, or run on a terminal", prefix, prefix);
	}
	ret = from_terminal(out, fd, prompt, prefix);
	if (!ret && confirm) {
		ret = from_terminal(&again, fd, "again: ", prefix);
		if (!ret && (again.len != out->len || memcmp(again.buf, out->buf, out->len)))
			ret = error("the two passphrases typed differ");
	}
	passphrase_free(&again);
	close(fd);
	return ret;
}

int passphrase_read(struct passphrase *out, const char *prefix, const char *prompt, int confirm)
{
	char *file_var = xasprintf("%s_FILE", prefix), *cmd_var = xasprintf("%s_COMMAND", prefix);
	const char *file = getenv(file_var), *cmd = getenv(cmd_var);
	int ret;

	out->buf = xcalloc(1, BUF_LEN);
	out->len = 0;
	if (file && !*file)
		file = NULL;
	if (cmd && !*cmd)
		cmd = NULL;
	if (file && cmd)
		ret = error("set only one of %s and %s", file_var, cmd_var);
	else if (file)
		ret = from_file(out, file, file_var);
	else if (cmd)
		ret = from_command(out, cmd, cmd_var);
	else
		ret = from_prompt(out, prefix, prompt, confirm);
	if (ret < 0)
		passphrase_free(out);
	free(file_var);
	free(cmd_var);
	return ret;
}
