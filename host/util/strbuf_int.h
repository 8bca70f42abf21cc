/* strbuf_int.h — a growable string for output formatting. */
#ifndef SPATE_STRBUF_INT_H
#define SPATE_STRBUF_INT_H

#include "util/mem_int.h"
#include <stddef.h>

typedef struct strbuf {
    char *s; /* NUL-terminated when len > 0 or after sb_cstr */
    size_t len, cap;
    int oom; /* sticky: an append failed */
    const sp_allocator *alloc;
} strbuf;

void sb_init(strbuf *sb, const sp_allocator *a);
void sb_free(strbuf *sb);
void sb_reset(strbuf *sb);
void sb_add(strbuf *sb, const char *s, size_t n);
void sb_adds(strbuf *sb, const char *s);
void sb_addc(strbuf *sb, char c);
void sb_printf(strbuf *sb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
const char *sb_cstr(strbuf *sb);

#endif
