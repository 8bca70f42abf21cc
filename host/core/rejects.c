/* rejects.c — the rejects output: input lines or rows that a job could not use (a line that
 * does not parse, a late record, a row whose lambda failed under --on-error skip). Each is
 * counted per batch and, when sp_config.rejects_path is set (the file is created or truncated
 * when the run starts, so a clean run leaves it empty, not the last run's), written as one line
 * "ORIGIN:LINE: REASON: TEXT" (":LINE" omitted when unknown, ": TEXT" when empty; control
 * characters in TEXT escaped as \n, \r, \t, \xHH so that one reject stays one line). Thread-safe:
 * executors report rejects while parsing in parallel. */
#include "core/core_int.h"

#include <errno.h>
#include <pthread.h>
#include <string.h>

static pthread_mutex_t *rej_lock(sp_context *ctx)
{
    return &ctx->rejects_lock;
}

int ctx_reject(sp_context *ctx, const char *origin, int64_t line, const char *reason,
               const char *text, size_t len, sp_diag *d)
{
    atomic_fetch_add(&ctx->rejects_batch, 1);
    if (!ctx->cfg.rejects_path) return SP_OK;
    int rc = SP_OK;
    pthread_mutex_lock(rej_lock(ctx));
    if (!ctx->rejects) {
        ctx->rejects = fopen(ctx->cfg.rejects_path, "w");
        if (!ctx->rejects) {
            rc = diag_set(d, SP_EIO, "%s: cannot open the rejects file", ctx->cfg.rejects_path);
            goto out;
        }
    }
    FILE *f = ctx->rejects;
    if (line >= 0)
        fprintf(f, "%s:%lld: %s", origin, (long long)line, reason);
    else
        fprintf(f, "%s: %s", origin, reason);
    if (len) fputs(": ", f);
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c == '\n')
            fputs("\\n", f);
        else if (c == '\r')
            fputs("\\r", f);
        else if (c == '\t')
            fputs("\\t", f);
        else if (c < 0x20 || c == 0x7f)
            fprintf(f, "\\x%02X", c);
        else
            fputc(c, f);
    }
    if (fputc('\n', f) == EOF)
        rc = diag_set(d, SP_EIO, "%s: cannot write the rejects file", ctx->cfg.rejects_path);
out:
    pthread_mutex_unlock(rej_lock(ctx));
    return rc;
}

int ctx_rejects_open(sp_context *ctx)
{
    if (!ctx->cfg.rejects_path || ctx->rejects) return SP_OK;
    pthread_mutex_lock(rej_lock(ctx));
    ctx->rejects = fopen(ctx->cfg.rejects_path, "w");
    int err = ctx->rejects ? 0 : errno;
    pthread_mutex_unlock(rej_lock(ctx));
    if (err)
        return ctx_fail(ctx, SP_EIO, "%s: cannot open the rejects file: %s", ctx->cfg.rejects_path,
                        strerror(err));
    return SP_OK;
}

int ctx_source_reject(void *ctx, const char *origin, int64_t line, const char *reason,
                      const char *text, size_t len, sp_diag *d)
{
    return ctx_reject(ctx, origin, line, reason, text, len, d);
}

uint64_t ctx_rejects_take(sp_context *ctx)
{
    return atomic_exchange(&ctx->rejects_batch, 0);
}

void ctx_rejects_close(sp_context *ctx)
{
    if (ctx->rejects) {
        fclose(ctx->rejects);
        ctx->rejects = NULL;
    }
}

int sp_context_reject(sp_context *ctx, const char *origin, int64_t line, const char *reason,
                      const char *text, size_t len)
{
    if (!ctx || !origin || !reason || (!text && len)) return SP_EINVAL;
    sp_diag d;
    diag_clear(&d);
    int rc = ctx_reject(ctx, origin, line, reason, text ? text : "", len, &d);
    if (rc) ctx_take(ctx, &d);
    return rc;
}
