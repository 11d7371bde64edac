#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "diskimg.h"
#include "proc.h"
#include "fsutil.h"
#include "strbuf.h"
#include "usage.h"


/* The first line of a tool's output, trimmed, for a message. */
static const char *first_line(struct strbuf *out)
{
	char *p = out->buf, *e;

	while (*p == '\n' || *p == ' ' || *p == '\t')
		p++;
	e = strchr(p, '\n');
	if (e)
		*e = '\0';
	return *p ? p : "no message";
}

/* 1 if mke2fs failed because the content or its inodes do not fit. */
static int mke2fs_no_space(const char *out)
{
	static const char *const signs[] = {
		"Could not allocate", "No space left", "Not enough space", "too big for a",
		"too small", "Device size reported to be zero",
	};
	size_t i;

	for (i = 0; i < sizeof(signs) / sizeof(*signs); i++)
		if (strstr(out, signs[i]))
			return 1;
	return 0;
}

/*
 * The inodes mke2fs gives a file system of size bytes by default: one per
 * inode_ratio bytes of its usage type in mke2fs.conf (floppy below 3 MiB,
 * small below 512 MiB, default below 4 TiB, big and huge above).
 */
static uint64_t default_inodes(uint64_t size)
{
	uint64_t ratio = 16384;

	if (size < 3ULL << 20)
		ratio = 8192;
	else if (size < 512ULL << 20)
		ratio = 4096;
	else if (size >= 4ULL << 40)
		ratio = 65536;
	return size / ratio;
}

/* The inode time fields of debugfs: seconds, and nanoseconds and epoch bits. */
static void add_time(struct strbuf *sb, const char *field, const struct timespec *t)
{
	int64_t sec = t->tv_sec;
	uint32_t epoch = (uint32_t)(((sec - (int32_t)sec) >> 32) & 3);

	strbuf_addf(sb, "sif / %s @%lld\n", field, (long long)sec);
	strbuf_addf(sb, "sif / %s_extra %lu\n", field,
		    (unsigned long)(((uint32_t)t->tv_nsec << 2) | epoch));
}

/* Gives the image's root folder the staging folder's mode, owner and times. */
static int set_root(const char *image, const struct stat *st)
{
	const char *argv[] = { "debugfs", "-w", "-f", "-", image, NULL };
	struct strbuf script = STRBUF_INIT, out = STRBUF_INIT;
	const char *p;
	int ret, bad = 0;

	strbuf_addf(&script, "sif / mode 0%o\nsif / uid %lu\nsif / gid %lu\n", (unsigned)st->st_mode,
		    (unsigned long)st->st_uid, (unsigned long)st->st_gid);
	add_time(&script, "atime", &st->st_atim);
	add_time(&script, "mtime", &st->st_mtim);
	ret = proc_run(argv, script.buf, &out);
	/* debugfs echoes each command after its banner, both starting with
	 * "debugfs"; anything else is a complaint, and some exit 0. */
	for (p = out.buf; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
		if (*p != '\n' && strncmp(p, "debugfs", 7)) {
			bad = 1;
			break;
		}
	if (ret == 127)
		ret = error("cannot run debugfs: %s; install e2fsprogs", out.buf);
	else if (ret > 0 || (ret == 0 && bad))
		ret = error("cannot set the root folder of '%s' with debugfs: %s", image,
			    first_line(&out));
	strbuf_release(&script);
	strbuf_release(&out);
	return ret;
}

int diskimg_make_ext4(const char *staging, const char *image, uint64_t size, uint64_t inodes)
{
	const char *argv[16];
	struct strbuf out = STRBUF_INIT;
	char ninodes[32];
	struct stat st;
	int fd, argc = 0, ret = -1, made = 0;

	if (stat(staging, &st) < 0)
		return error("cannot read the folder '%s': %s", staging, strerror(errno));
	if (!S_ISDIR(st.st_mode))
		return error("cannot make an image of '%s': it is not a folder", staging);
	if (size < DISKIMG_MIN_SIZE)
		return ERR_NOSPACE;
	fd = open(image, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0)
		return error("cannot create '%s': %s", image, strerror(errno));
	made = 1;
	if (ftruncate(fd, size) < 0) {
		error("cannot make '%s' %llu bytes long: %s", image, (unsigned long long)size, strerror(errno));
		close(fd);
		goto out;
	}
	close(fd);

	argv[argc++] = "mke2fs";
	argv[argc++] = "-q";
	argv[argc++] = "-F";
	argv[argc++] = "-t";
	argv[argc++] = "ext4";
	/* 256-byte inodes hold the nanoseconds and the times after 2038,
	 * whatever mke2fs.conf says for small file systems. */
	argv[argc++] = "-I";
	argv[argc++] = "256";
	/* A quarter more inodes than entries, so that the disk can still take
	 * new files; more than mke2fs would give only when needed. */
	if (inodes && inodes + inodes / 4 + 64 > default_inodes(size)) {
		snprintf(ninodes, sizeof(ninodes), "%llu", (unsigned long long)(inodes + inodes / 4 + 64));
		argv[argc++] = "-N";
		argv[argc++] = ninodes;
	}
	argv[argc++] = "-d";
	argv[argc++] = staging;
	argv[argc++] = image;
	argv[argc] = NULL;
	ret = proc_run(argv, NULL, &out);
	if (ret == 127) {
		ret = error("cannot run mke2fs: %s; install e2fsprogs", out.buf);
		goto out;
	}
	if (ret > 0) {
		ret = mke2fs_no_space(out.buf) ? ERR_NOSPACE
			: error("mke2fs cannot make '%s': %s", image, first_line(&out));
		goto out;
	}
	if (ret < 0)
		goto out;
	ret = set_root(image, &st);
	if (ret < 0)
		goto out;
	fd = open(image, O_RDONLY | O_CLOEXEC);
	if (fd < 0 || fsync(fd) < 0) {
		ret = error("cannot sync '%s': %s", image, strerror(errno));
		if (fd >= 0)
			close(fd);
		goto out;
	}
	close(fd);
	if (fsync_parent(image) < 0) {
		ret = error("cannot sync the folder of '%s': %s", image, strerror(errno));
		goto out;
	}
	made = 0;
out:
	if (made)
		unlink(image);
	strbuf_release(&out);
	return ret;
}

int diskimg_restore_ext4(struct repo *r, const unsigned char tree[SHA1_LEN], const char *image,
			 uint64_t size, struct restore_stats *stats)
{
	const char *slash = strrchr(image, '/');
	char *staging = slash ? xasprintf("%.*s/.%s.staging", (int)(slash - image), image, slash + 1)
			      : xasprintf(".%s.staging", image);
	struct restore_stats st = { 0 };
	struct stat sb;
	int ret;

	/* Ours by its name: a leftover of a restore that was killed. */
	if (lstat(staging, &sb) == 0 && remove_tree(staging) < 0) {
		ret = error("cannot remove '%s': %s", staging, strerror(errno));
		goto out;
	}
	ret = restore_tree(r, tree, staging, &st);
	if (!ret && st.errors)
		ret = ERR_PARTIAL;
	if (!ret)
		ret = diskimg_make_ext4(staging, image, size, st.files + st.dirs + st.others);
	stats->files += st.files;
	stats->bytes += st.bytes;
	stats->dirs += st.dirs;
	stats->others += st.others;
	stats->errors += st.errors;
	if (lstat(staging, &sb) == 0 && remove_tree(staging) < 0)
		warning("cannot remove the staging folder '%s': %s", staging, strerror(errno));
out:
	free(staging);
	return ret;
}
