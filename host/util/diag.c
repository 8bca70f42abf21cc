#include "util/diag_int.h"

#include <stdio.h>
#include <string.h>

struct errinfo {
    int code;
    const char *name;
    const char *msg;
};

static const struct errinfo errtab[] = {
#define SP_X_TAB(name, value, msg) {value, "SP_" #name, msg},
    SP_ERRNO_MAP(SP_X_TAB)
#undef SP_X_TAB
};

static const struct errinfo *errfind(int status)
{
    for (size_t i = 0; i < sizeof errtab / sizeof errtab[0]; i++)
        if (errtab[i].code == status) return &errtab[i];
    return NULL;
}

const char *sp_strerror(int status)
{
    const struct errinfo *e = errfind(status);
    return e ? e->msg : "unknown error";
}

const char *sp_errname(int status)
{
    const struct errinfo *e = errfind(status);
    return e ? e->name : "SP_EUNKNOWN";
}

int diag_vset(sp_diag *d, int code, const char *fmt, va_list ap)
{
    if (!d) return code;
    d->code = code;
    vsnprintf(d->msg, sizeof d->msg, fmt, ap);
    /* One line: fold embedded newlines into spaces. */
    for (char *p = d->msg; *p; p++)
        if (*p == '\n' || *p == '\r') *p = ' ';
    return code;
}

int diag_set(sp_diag *d, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    diag_vset(d, code, fmt, ap);
    va_end(ap);
    return code;
}

int diag_prefix(sp_diag *d, const char *fmt, ...)
{
    if (!d) return SP_EINVAL;
    char head[512], old[sizeof d->msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(head, sizeof head, fmt, ap);
    va_end(ap);
    memcpy(old, d->msg, sizeof old);
    size_t hl = strlen(head);
    if (hl + 2 >= sizeof d->msg) hl = sizeof d->msg - 3;
    memcpy(d->msg, head, hl);
    memcpy(d->msg + hl, ": ", 2);
    size_t room = sizeof d->msg - hl - 3;
    size_t ol = strnlen(old, room);
    memcpy(d->msg + hl + 2, old, ol);
    d->msg[hl + 2 + ol] = '\0';
    return d->code;
}

void diag_clear(sp_diag *d)
{
    if (d) {
        d->code = 0;
        d->msg[0] = '\0';
    }
}

const char *sp_type_name(sp_type t)
{
    static const char *names[] = {"i32", "i64", "f32", "f64", "bool", "ts", "str"};
    return (unsigned)t < SP_TYPE_COUNT ? names[t] : "?";
}
