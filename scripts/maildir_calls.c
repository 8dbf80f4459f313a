/* The system calls of one Maildir delivery, timed alone: CPU per file for four ways of
 * storing N files of 1100 bytes in DIR/tmp and DIR/new (BENCHMARKS.md, "What is left").
 *
 *   cc -O2 -o /tmp/maildir_calls scripts/maildir_calls.c
 *   for way in 0 1 2 3; do rm -rf /mnt/jext4/mc; sync; /tmp/maildir_calls /mnt/jext4/mc $way 20000; done
 *
 * way 0: open(tmp, O_TMPFILE), write, linkat(fd, "", new/NAME, AT_EMPTY_PATH), close (smtpd)
 * way 1: the same through directory descriptors held open for tmp/ and new/
 * way 2: open(tmp/NAME, O_CREAT|O_EXCL), write, close, rename to new/NAME (mailin-sink)
 * way 3: open(tmp/NAME, O_CREAT|O_EXCL), write, close, link to new/NAME, unlink tmp/NAME
 * Linux only; creates DIR and leaves the files there.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

static char data[1100];

static double cpu_seconds(void) {
    struct rusage r;
    getrusage(RUSAGE_SELF, &r);
    return r.ru_utime.tv_sec + r.ru_stime.tv_sec + (r.ru_utime.tv_usec + r.ru_stime.tv_usec) / 1e6;
}

static void fail(const char *what) {
    perror(what);
    exit(1);
}

int main(int argc, char **argv) {
    if (argc != 4) {
        fprintf(stderr, "usage: %s DIR WAY(0-3) N\n", argv[0]);
        return 2;
    }
    const char *root = argv[1];
    int way = atoi(argv[2]), n = atoi(argv[3]);
    char tmp[512], new[512], from[700], to[700], name[64];
    snprintf(tmp, sizeof tmp, "%s/tmp", root);
    snprintf(new, sizeof new, "%s/new", root);
    mkdir(root, 0700);
    mkdir(tmp, 0700);
    mkdir(new, 0700);
    memset(data, 'x', sizeof data);
    int tmp_fd = open(tmp, O_PATH | O_DIRECTORY), new_fd = open(new, O_PATH | O_DIRECTORY);
    if (tmp_fd < 0 || new_fd < 0)
        fail("open DIR");
    double start = cpu_seconds();
    for (int i = 0; i < n; i++) {
        snprintf(name, sizeof name, "%d.M%dP1.host", i, i);
        snprintf(from, sizeof from, "%s/%s", tmp, name);
        snprintf(to, sizeof to, "%s/%s", new, name);
        int fd;
        switch (way) {
        case 0:
            fd = open(tmp, O_TMPFILE | O_WRONLY, 0600);
            if (fd < 0 || write(fd, data, sizeof data) < 0 || linkat(fd, "", AT_FDCWD, to, AT_EMPTY_PATH))
                fail("way 0");
            close(fd);
            break;
        case 1:
            fd = openat(tmp_fd, ".", O_TMPFILE | O_WRONLY, 0600);
            if (fd < 0 || write(fd, data, sizeof data) < 0 || linkat(fd, "", new_fd, name, AT_EMPTY_PATH))
                fail("way 1");
            close(fd);
            break;
        case 2:
            fd = open(from, O_CREAT | O_EXCL | O_WRONLY, 0600);
            if (fd < 0 || write(fd, data, sizeof data) < 0 || close(fd) || rename(from, to))
                fail("way 2");
            break;
        default:
            fd = open(from, O_CREAT | O_EXCL | O_WRONLY, 0600);
            if (fd < 0 || write(fd, data, sizeof data) < 0 || close(fd) || link(from, to) || unlink(from))
                fail("way 3");
        }
    }
    printf("way %d: %.1f us of CPU per file\n", way, (cpu_seconds() - start) * 1e6 / n);
    return 0;
}
