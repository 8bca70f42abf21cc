#include "util/mem_int.h"

#include <stdlib.h>
#include <string.h>

void *mem_realloc(const sp_allocator *a, void *p, size_t n)
{
    if (a && a->fn) return a->fn(a->ud, p, n);
    if (n == 0) {
        free(p);
        return NULL;
    }
    return realloc(p, n);
}

void *mem_alloc(const sp_allocator *a, size_t n)
{
    return mem_realloc(a, NULL, n ? n : 1);
}

void *mem_calloc(const sp_allocator *a, size_t n, size_t size)
{
    if (size && n > (size_t)-1 / size) return NULL;
    void *p = mem_alloc(a, n * size);
    if (p) memset(p, 0, n * size);
    return p;
}

void mem_free(const sp_allocator *a, void *p)
{
    if (p) mem_realloc(a, p, 0);
}

char *mem_strdup(const sp_allocator *a, const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = mem_alloc(a, n);
    if (d) memcpy(d, s, n);
    return d;
}
