/*
 * faultshim.c — an LD_PRELOAD library that aims a fault at one durable step
 * of a command, for the crash and full-disk tests (tests/75-crash.bats).
 *
 * The steps counted are write, writev, pwrite, fsync, fdatasync, ftruncate, rename,
 * renameat, unlink and unlinkat on files under FAULT_DIR (our code's and
 * libgit2's alike). FAULT_AT=N aims at the Nth step: FAULT_MODE=kill (the
 * default) kills the process with SIGKILL right before it, like a power cut;
 * FAULT_MODE=enospc makes it fail with ENOSPC, like a full disk. With
 * FAULT_COUNT=FILE the number of steps is written there at exit, so a test
 * can enumerate them. Built only for the tests, never into backup.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

static long counter;
static long fault_at = -1;
static int enospc;
static const char *dir;
static size_t dirlen;

__attribute__((constructor)) static void init(void)
{
	const char *at = getenv("FAULT_AT"), *mode = getenv("FAULT_MODE");

	dir = getenv("FAULT_DIR");
	dirlen = dir ? strlen(dir) : 0;
	if (at)
		fault_at = atol(at);
	enospc = mode && !strcmp(mode, "enospc");
}

__attribute__((destructor)) static void fini(void)
{
	const char *out = getenv("FAULT_COUNT");
	FILE *f;

	if (out && (f = fopen(out, "w"))) {
		fprintf(f, "%ld\n", counter);
		fclose(f);
	}
}

static int in_scope_path(const char *path)
{
	char buf[PATH_MAX];

	if (!dir || !path)
		return 0;
	if (path[0] != '/') {
		if (!getcwd(buf, sizeof(buf)))
			return 0;
		return !strncmp(buf, dir, dirlen);
	}
	return !strncmp(path, dir, dirlen);
}

static int in_scope_fd(int fd)
{
	char link[64], buf[PATH_MAX];
	ssize_t n;

	if (fd <= 2 || !dir)
		return 0;
	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, buf, sizeof(buf) - 1);
	if (n < 0)
		return 0;
	buf[n] = '\0';
	return !strncmp(buf, dir, dirlen);
}

/* Counts a step; returns -1 (errno ENOSPC) when it is the one to fail. */
static int step(void)
{
	long n = __atomic_add_fetch(&counter, 1, __ATOMIC_SEQ_CST);

	if (n != fault_at)
		return 0;
	if (!enospc) {
		kill(getpid(), SIGKILL);
		pause();
	}
	errno = ENOSPC;
	return -1;
}

#define REAL(name, ret, ...) \
	static ret (*real_##name)(__VA_ARGS__); \
	if (!real_##name) \
		real_##name = (ret (*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name)

ssize_t write(int fd, const void *buf, size_t len)
{
	REAL(write, ssize_t, int, const void *, size_t);
	if (len && in_scope_fd(fd) && step() < 0)
		return -1;
	return real_write(fd, buf, len);
}

ssize_t writev(int fd, const struct iovec *iov, int n)
{
	REAL(writev, ssize_t, int, const struct iovec *, int);
	if (n && in_scope_fd(fd) && step() < 0)
		return -1;
	return real_writev(fd, iov, n);
}

ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	REAL(pwrite64, ssize_t, int, const void *, size_t, off_t);
	if (len && in_scope_fd(fd) && step() < 0)
		return -1;
	return real_pwrite64(fd, buf, len, off);
}

ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return pwrite64(fd, buf, len, off);
}

int fsync(int fd)
{
	REAL(fsync, int, int);
	if (in_scope_fd(fd) && step() < 0)
		return -1;
	return real_fsync(fd);
}

int fdatasync(int fd)
{
	REAL(fdatasync, int, int);
	if (in_scope_fd(fd) && step() < 0)
		return -1;
	return real_fdatasync(fd);
}

int ftruncate64(int fd, off_t len)
{
	REAL(ftruncate64, int, int, off_t);
	if (in_scope_fd(fd) && step() < 0)
		return -1;
	return real_ftruncate64(fd, len);
}

int rename(const char *a, const char *b)
{
	REAL(rename, int, const char *, const char *);
	if (in_scope_path(b) && step() < 0)
		return -1;
	return real_rename(a, b);
}

int renameat(int da, const char *a, int db, const char *b)
{
	REAL(renameat, int, int, const char *, int, const char *);
	if ((in_scope_path(b) || in_scope_fd(db)) && step() < 0)
		return -1;
	return real_renameat(da, a, db, b);
}

int unlink(const char *path)
{
	REAL(unlink, int, const char *);
	if (in_scope_path(path) && step() < 0)
		return -1;
	return real_unlink(path);
}

int unlinkat(int dfd, const char *path, int flags)
{
	REAL(unlinkat, int, int, const char *, int);
	if ((in_scope_path(path) || in_scope_fd(dfd)) && step() < 0)
		return -1;
	return real_unlinkat(dfd, path, flags);
}
