/* source.c — what every source shares: allocation, freeing, sealing a filled batch. */
#include "io/source_int.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

int source_alloc(batch_env *env, const source_vt *vt, sp_source **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, env && vt, SP_EINVAL, "source: no batch environment");
    sp_source *s = mem_calloc(env->alloc, 1, sizeof *s);
    if (!s) return diag_set(d, SP_ENOMEM, "%s: out of memory", vt->kind);
    s->vt = vt;
    s->env = env;
    s->line_max = SOURCE_LINE_MAX_DEFAULT;
    *out = s;
    return 0;
}

void source_free(sp_source *s)
{
    if (!s) return;
    if (s->impl) {
        s->vt->stop(s);
        s->vt->destroy(s);
        s->impl = NULL;
    }
    if (s->td) td_free(s->env->alloc, s->td);
    mem_free(s->env->alloc, s);
}

int source_reject_long(sp_source *s, const char *origin, int64_t line, const char *head,
                       size_t nhead, sp_diag *d)
{
    s->rejected++;
    if (!s->reject) return 0;
    char why[128];
    snprintf(why, sizeof why, "%s: line longer than %zu bytes (dropped)", s->vt->kind, s->line_max);
    return s->reject(s->reject_ud, origin, line, why, head, nhead, d);
}

int source_seal(sp_batch *b, sp_diag *d)
{
    size_t start[2] = {0, b->n};
    unsigned node[1] = {b->part_node ? b->part_node[0] : 0};
    if (batch_set_parts(b, 1, start, node))
        return diag_set(d, SP_ENOMEM, "source: out of memory sealing batch %lld",
                        (long long)b->time_ms);
    return 0;
}

int source_col_raw(sp_col *c, sp_diag *d)
{
    assert(c->type == SP_STR && c->len == 0);
    c->enc = ENC_RAW;
    if (col_reserve(c, 64, 4096))
        return diag_set(d, SP_ENOMEM, "source: out of memory for a text column");
    ((int64_t *)c->data)[0] = 0;
    c->nbytes = 0;
    return 0;
}

int source_errno(sp_diag *d, const char *kind, const char *path, int err)
{
    return diag_set(d, err == ENOENT ? SP_ENOENT : SP_EIO, "%s %s: %s", kind, path, strerror(err));
}
