/* script_int.h — job scripts (`spate run JOB.spate`): a Spark-shaped language parsed, type
 * checked and compiled into calls of the public API (spate.h), with host adapters
 * (adapt.c) for what the API takes as C callbacks (flatMap lambdas, updateStateByKey, per-batch
 * RDD operations).
 *
 * Use: script_load (parse; the batch interval is known before a context exists), then
 * sp_context_new with it, script_build into the context, run or explain, sp_context_free,
 * then script_free (the adapters' state must outlive the context's run). */
#ifndef SPATE_SCRIPT_INT_H
#define SPATE_SCRIPT_INT_H

#include "spate.h"

#include <stdio.h>

typedef struct script script;

/** Parses text; `name` is the file name used in messages ("job.spate", "-e") and `dir` the
 *  directory relative file names are resolved in (NULL: the current one). Syntax errors are
 *  written to err as "name:LINE:COL: message", the line and a caret; returns SP_EPARSE (or
 *  SP_ENOMEM). *out must be freed with script_free also on failure. */
int script_load(const char *name, const char *dir, const char *text, FILE *err, script **out);
/** The interval of the script's `batch` statement in ms, or 0 when it has none. */
int64_t script_batch_ms(const script *s);
/** The duration of the script's `horizon` statement in ms (sp_config.event_horizon_ms), or 0
 *  when it has none. */
int64_t script_horizon_ms(const script *s);
/** The directory of the script's checkpoint statement (relative to the working directory, as
 *  outputs are), or NULL; --checkpoint wins over it. Belongs to the script. */
const char *script_checkpoint_dir(const script *s);
/** 1 when the script cuts batches by event time (`batch 1m eventTime(time)`). */
int script_event_time(const script *s);
/** --arg NAME=VALUE: the value arg("NAME", ...) gives in the script (before script_build; a
 *  later value for the same name wins). Values are used as given: file names relative to the
 *  working directory, where names written in the script are relative to its directory. */
int script_set_arg(script *s, const char *name, const char *value);
/** Declares the job in ctx. Type errors, unknown names and wrong argument counts are written
 *  to err like syntax errors; returns their status (SP_ETYPE, SP_EINVAL, ...). on_error_skip
 *  and rejects follow sp_config. */
int script_build(script *s, sp_context *ctx, FILE *err);
/** Writes msg to err; when msg contains a script position "LINE:COL: ", as
 *  "name:LINE:COL: rest" with the line and a caret, else as "name: msg". */
void script_report(const script *s, const char *msg, FILE *err);
/** A short listing of what each statement became (for spate explain). */
void script_explain(const script *s, FILE *f);
/** --on-error skip: host lambdas send failing rows to the context's rejects output and go on. */
void script_set_skip(script *s, int skip);
/** After a failed run: the first runtime error of a host lambda ("L:C: message"), or NULL. */
const char *script_runtime_error(const script *s);
void script_free(script *s);

#endif
