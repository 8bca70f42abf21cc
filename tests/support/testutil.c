#include "support/testutil.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

uint64_t tu_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

uint64_t tu_rand_below(uint64_t *s, uint64_t n)
{
    return n ? tu_rand(s) % n : 0;
}

static void rm_rf(const char *path)
{
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    if (system(cmd) != 0)
        fprintf(stderr, "could not remove %s\n", path);
}

const char *tu_tmpdir(const char *tag)
{
    static char paths[16][512];
    static int slot;
    char *p = paths[slot++ % 16];
    snprintf(p, 512, "tmp-%s-%ld", tag, (long)getpid());
    rm_rf(p);
    if (mkdir(p, 0755) != 0 && errno != EEXIST)
        return NULL;
    return p;
}

int tu_write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return -1;
    size_t n = strlen(text);
    int ok = fwrite(text, 1, n, f) == n;
    return (fclose(f) == 0 && ok) ? 0 : -1;
}

char *tu_read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        buf = NULL;
    }
    fclose(f);
    if (buf) {
        buf[n] = '\0';
        if (len)
            *len = (size_t)n;
    }
    return buf;
}

const char *tu_src_path(const char *rel)
{
    static char path[4096];
    const char *root = getenv("SPATE_SOURCE_DIR");
    snprintf(path, sizeof path, "%s/%s", root ? root : "..", rel);
    return path;
}
