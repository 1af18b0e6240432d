/* A fault-injection shim for the server's file I/O, loaded with LD_PRELOAD by
 * tests/integration/fault_e2e.rs (built there with gcc -shared -fPIC -ldl).
 *
 * Environment:
 *   FAULT_DIR      the results directory (absolute, canonical); only calls
 *                  on paths under it are touched.
 *   FAULT_CONTROL  a directory the test writes. A file named OP.ERRNO there
 *                  makes OP fail with that errno under FAULT_DIR, while it
 *                  exists: OP is open (opens for writing only, as on a
 *                  read-only mount), write, rename, link or fsync (fsync
 *                  covers fdatasync); ERRNO is ENOSPC, EIO, EROFS, EMFILE or
 *                  EMLINK. `hold.reserved` blocks the flush of the id
 *                  reservation's file, `hold.fsync` every flush, until the
 *                  file is removed.
 *   FAULT_LOG      a file; every flush, rename and link under FAULT_DIR is
 *                  appended as one line, after the real call returned:
 *                  `fdatasync PATH = 0`, `rename FROM TO = 0`, ... and
 *                  `hold PATH` when a flush starts waiting.
 *
 * The server binary imports open64, write, fdatasync, fsync, rename and
 * linkat (`nm -D`; metadata goes through statx, not wrapped); the other
 * entry points are wrapped too. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

#define REAL(name, ret, ...)                                                   \
    static ret (*real_##name)(__VA_ARGS__);                                    \
    if (!real_##name)                                                          \
        real_##name = (ret(*)(__VA_ARGS__))dlsym(RTLD_NEXT, #name);

static const char *const ERRNOS[] = {"ENOSPC", "EIO", "EROFS", "EMFILE", "EMLINK"};
static const int ERRNO_VALUES[] = {ENOSPC, EIO, EROFS, EMFILE, EMLINK};

static int under_dir(const char *path) {
    const char *dir = getenv("FAULT_DIR");
    if (!dir || !path)
        return 0;
    size_t n = strlen(dir);
    return strncmp(path, dir, n) == 0 && (path[n] == '/' || path[n] == '\0');
}

static int fd_path(int fd, char *out, size_t size) {
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t len = readlink(link, out, size - 1);
    if (len < 0)
        return 0;
    out[len] = '\0';
    return 1;
}

static int control_exists(const char *name) {
    const char *control = getenv("FAULT_CONTROL");
    if (!control)
        return 0;
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", control, name);
    return access(path, F_OK) == 0;
}

/* The errno OP is to fail with now, or 0. */
static int injected(const char *op) {
    for (size_t i = 0; i < sizeof ERRNOS / sizeof *ERRNOS; i++) {
        char name[64];
        snprintf(name, sizeof name, "%s.%s", op, ERRNOS[i]);
        if (control_exists(name))
            return ERRNO_VALUES[i];
    }
    return 0;
}

static void log_line(const char *fmt, ...) {
    const char *log = getenv("FAULT_LOG");
    if (!log)
        return;
    REAL(open64, int, const char *, int, ...)
    REAL(write, ssize_t, int, const void *, size_t)
    char line[8192];
    va_list args;
    va_start(args, fmt);
    int len = vsnprintf(line, sizeof line - 1, fmt, args);
    va_end(args);
    if (len < 0)
        return;
    if ((size_t)len > sizeof line - 2)
        len = sizeof line - 2;
    line[len++] = '\n';
    int fd = real_open64(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        return;
    real_write(fd, line, (size_t)len); /* one write: lines never interleave */
    close(fd);
}

static int opens_to_write(int flags) {
    return (flags & (O_WRONLY | O_RDWR | O_CREAT | O_TRUNC)) != 0;
}

static int fail_with(int error) {
    errno = error;
    return -1;
}

/* ---- open ---- */
/* The mode argument, present only when the flags create a file. */
#define MODE_ARG(flags, mode)                                                  \
    mode_t mode = 0;                                                           \
    if ((flags) & (O_CREAT | O_TMPFILE)) {                                     \
        va_list args;                                                          \
        va_start(args, flags);                                                 \
        mode = va_arg(args, mode_t);                                           \
        va_end(args);                                                          \
    }

/* Whether this open is to fail (errno set). */
static int open_refused(const char *path, int flags) {
    int error = opens_to_write(flags) && under_dir(path) ? injected("open") : 0;
    if (error)
        errno = error;
    return error != 0;
}

int open(const char *path, int flags, ...) {
    MODE_ARG(flags, mode)
    REAL(open, int, const char *, int, ...)
    return open_refused(path, flags) ? -1 : real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
    MODE_ARG(flags, mode)
    REAL(open64, int, const char *, int, ...)
    return open_refused(path, flags) ? -1 : real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, mode)
    REAL(openat, int, int, const char *, int, ...)
    return open_refused(path, flags) ? -1 : real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
    MODE_ARG(flags, mode)
    REAL(openat64, int, int, const char *, int, ...)
    return open_refused(path, flags) ? -1 : real_openat64(dirfd, path, flags, mode);
}

/* ---- write ---- */
ssize_t write(int fd, const void *buf, size_t count) {
    REAL(write, ssize_t, int, const void *, size_t)
    char path[4096];
    if (fd > 2 && fd_path(fd, path, sizeof path) && under_dir(path)) {
        int error = injected("write");
        if (error)
            return fail_with(error);
    }
    return real_write(fd, buf, count);
}

/* ---- flushes ---- */
static int flush(int fd, const char *what, int (*real)(int)) {
    char path[4096];
    if (!fd_path(fd, path, sizeof path) || !under_dir(path))
        return real(fd);
    int reservation = strstr(path, "reserved_ids") != NULL;
    if (control_exists("hold.fsync") || (reservation && control_exists("hold.reserved"))) {
        log_line("hold %s", path);
        while (control_exists("hold.fsync") ||
               (reservation && control_exists("hold.reserved")))
            usleep(10000);
    }
    int error = injected("fsync");
    int result = error ? fail_with(error) : real(fd);
    log_line("%s %s = %d", what, path, result == 0 ? 0 : errno);
    if (error)
        errno = error;
    return result;
}

int fsync(int fd) {
    REAL(fsync, int, int)
    return flush(fd, "fsync", real_fsync);
}

int fdatasync(int fd) {
    REAL(fdatasync, int, int)
    return flush(fd, "fdatasync", real_fdatasync);
}

/* ---- rename and link ---- */
#define TWO_PATH_CALL(op, logname, from, to, call)                             \
    do {                                                                       \
        int touched = under_dir(from) || under_dir(to);                        \
        int error = touched ? injected(op) : 0;                                \
        int result = error ? fail_with(error) : (call);                        \
        int saved = errno;                                                     \
        if (touched)                                                           \
            log_line("%s %s %s = %d", logname, from, to, result == 0 ? 0 : saved); \
        errno = saved;                                                         \
        return result;                                                         \
    } while (0)

int rename(const char *from, const char *to) {
    REAL(rename, int, const char *, const char *)
    TWO_PATH_CALL("rename", "rename", from, to, real_rename(from, to));
}

int renameat(int fromfd, const char *from, int tofd, const char *to) {
    REAL(renameat, int, int, const char *, int, const char *)
    TWO_PATH_CALL("rename", "rename", from, to, real_renameat(fromfd, from, tofd, to));
}

int link(const char *from, const char *to) {
    REAL(link, int, const char *, const char *)
    TWO_PATH_CALL("link", "link", from, to, real_link(from, to));
}

int linkat(int fromfd, const char *from, int tofd, const char *to, int flags) {
    REAL(linkat, int, int, const char *, int, const char *, int)
    TWO_PATH_CALL("link", "link", from, to, real_linkat(fromfd, from, tofd, to, flags));
}
