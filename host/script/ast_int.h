/* ast_int.h — job scripts: tokens, the syntax tree and the parser (parse.c).
 *
 * A script is a list of statements: `batch DURATION [eventTime(COLUMN)]`, `watermark
 * DURATION`, `val NAME = EXPR` and expression statements. Newlines end statements except inside
 * brackets, after a token that cannot end one (an operator, `=`, `=>`, `,`), or before a line that
 * starts with `.`. Every node keeps the 1-based line and column of its first character. */
#ifndef SPATE_AST_INT_H
#define SPATE_AST_INT_H

#include "util/diag_int.h"
#include "util/mem_int.h"

#include <stdint.h>

typedef enum ast_kind {
    A_INT,      /* i */
    A_FLOAT,    /* f */
    A_STR,      /* s, slen */
    A_BOOL,     /* i */
    A_DUR,      /* i: milliseconds */
    A_NAME,     /* s */
    A_TUPLE,    /* kids */
    A_CALL,     /* s(kids): a function call by name */
    A_METHOD,   /* kids[0].s(kids[1..]); parens: written with () */
    A_BINOP,    /* op, kids[0..1] */
    A_UNOP,     /* op, kids[0] */
    A_IF,       /* kids: cond, then, else */
    A_LAMBDA,   /* params[0..nparams) => kids[0] */
    A_NAMED,    /* s = kids[0] (a named argument) */
    A_VAL,      /* statement: val s = kids[0] */
    A_BATCH,    /* statement: batch i (ms) [eventTime(s)]; s NULL without eventTime */
    A_HORIZON,  /* statement: horizon i (ms), the event-time horizon */
    A_CHECKPOINT, /* statement: checkpoint "s" (or Spark's ssc.checkpoint("s")) */
    A_WATERMARK /* statement: watermark i (ms) */
} ast_kind;

typedef struct ast {
    ast_kind k;
    int line, col;
    int64_t i;
    double f;
    char *s;
    size_t slen;
    sp_op op;
    int parens;
    int n;
    struct ast **kids;
    int nparams;
    char **params;
} ast;

/** A parsed script: statements in order. Everything belongs to the script's arena. */
typedef struct ast_script {
    int n;
    ast **stmts;
} ast_script;

typedef struct ast_arena ast_arena;

/** Parses text. On failure returns SP_EPARSE with d->msg "L:C: message". *arena holds all
 *  memory (also on failure): free it with ast_arena_free. */
int ast_parse(const sp_allocator *a, const char *text, ast_script *out, ast_arena **arena,
              sp_diag *d);
void ast_arena_free(ast_arena *ar);

#endif
