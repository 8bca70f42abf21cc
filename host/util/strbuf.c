#include "util/strbuf_int.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

void sb_init(strbuf *sb, const sp_allocator *a)
{
    memset(sb, 0, sizeof *sb);
    sb->alloc = a;
}

void sb_free(strbuf *sb)
{
    mem_free(sb->alloc, sb->s);
    sb->s = NULL;
    sb->len = sb->cap = 0;
}

void sb_reset(strbuf *sb)
{
    sb->len = 0;
    if (sb->s) sb->s[0] = '\0';
}

static int sb_grow(strbuf *sb, size_t extra)
{
    if (sb->oom) return -1;
    if (sb->len + extra + 1 <= sb->cap) return 0;
    size_t cap = sb->cap ? sb->cap : 64;
    while (cap < sb->len + extra + 1)
        cap *= 2;
    char *p = mem_realloc(sb->alloc, sb->s, cap);
    if (!p) {
        sb->oom = 1;
        return -1;
    }
    sb->s = p;
    sb->cap = cap;
    return 0;
}

void sb_add(strbuf *sb, const char *s, size_t n)
{
    if (sb_grow(sb, n)) return;
    memcpy(sb->s + sb->len, s, n);
    sb->len += n;
    sb->s[sb->len] = '\0';
}

void sb_adds(strbuf *sb, const char *s)
{
    sb_add(sb, s, strlen(s));
}

void sb_addc(strbuf *sb, char c)
{
    sb_add(sb, &c, 1);
}

void sb_printf(strbuf *sb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return;
    if ((size_t)n < sizeof tmp) {
        sb_add(sb, tmp, (size_t)n);
        return;
    }
    if (sb_grow(sb, (size_t)n)) return;
    va_start(ap, fmt);
    vsnprintf(sb->s + sb->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    sb->len += (size_t)n;
}

const char *sb_cstr(strbuf *sb)
{
    if (!sb->s && sb_grow(sb, 0)) return "";
    if (!sb->s) return "";
    sb->s[sb->len] = '\0';
    return sb->s;
}
