/*
 * fsutil.h — durable file writes and small file-system helpers.
 *
 * A file that the repository will reference is written to a temporary name
 * beside its final one, fsynced, renamed into place, and its directory
 * fsynced: after write_file_durable() returns 0 the file survives a power
 * loss under its final name, and before that no reader sees a partial file.
 */
#ifndef FSUTIL_H
#define FSUTIL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>
#include <sys/uio.h>

int write_file_durable(const char *path, const void *data, size_t len, mode_t mode);
/* Writes all of buf to fd, retrying short writes; -1 with errno on error. */
int write_all(int fd, const void *buf, size_t len);
/* The same at an offset, and for an iovec array (which it consumes). A
 * write that makes no progress fails with ENOSPC. */
int pwrite_all(int fd, const void *buf, size_t len, uint64_t off);
int writev_all(int fd, struct iovec *iov, int n);
int fsync_dir(const char *dir);
/* Fsyncs the directory that holds path. */
int fsync_parent(const char *path);
/* Creates dir and its missing parents with mode; 0 if it already exists. */
int mkdir_p(const char *dir, mode_t mode);
/* Removes path and everything below it, never following symlinks. */
int remove_tree(const char *path);
/* The names in the open folder dfd (not "." or ".."), sorted in byte
 * order; the caller frees each and the array. -1 with errno on error. */
int read_dir_names(int dfd, char ***out, size_t *nr);
/* 1 if path is a directory with no entries, 0 if not empty, -1 if absent. */
int dir_is_empty(const char *path);

/* Parses a size such as "25G", "512M", "1024" (K, M, G, T are powers of
 * 1024); returns 0 or -1 when it is not a size. */
int parse_size(const char *s, uint64_t *out);
/* Formats bytes for people: "1.5 GiB". buf holds at least 16 bytes. */
const char *human_size(uint64_t bytes, char *buf, size_t len);

#endif
