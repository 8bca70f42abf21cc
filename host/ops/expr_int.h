/* expr_int.h — lambda bodies as expression trees: construction, type checking, the host
 * evaluator, and recognition of built-in monoids. OpenCL generation is in ew_int.h.
 *
 * Nodes are allocated from an expr_pool that belongs to the context (freed all at once).
 * Type checking computes a node's type from the lambda's argument types; it never mutates
 * nodes, so one tree may be used by several lambdas. */
#ifndef SPATE_EXPR_INT_H
#define SPATE_EXPR_INT_H

#include "batch/batch_int.h"

typedef enum expr_kind {
    EX_ARG,
    EX_I64,
    EX_F64,
    EX_BOOL,
    EX_STR,
    EX_FIELD,
    EX_TUPLE,
    EX_BINOP,
    EX_UNOP,
    EX_IF,
    EX_CAST,
    EX_CALL,  /* s: a Scala method or function name; kids: receiver (methods) then arguments */
    EX_LAMBDA /* index: the parameter it binds; kids[0]: the body (only as a map/filter arg) */
} expr_kind;

/** Most parameters one lambda body may see: the lambda's own (up to 4, the time-aware
 *  updateStateByKey form) plus one per nested inner lambda (Seq.map(x => ...)). */
enum { EXPR_MAX_ARGS = 8 };

struct sp_expr {
    expr_kind kind;
    sp_op op;  /* EX_BINOP / EX_UNOP */
    int index; /* EX_ARG: parameter; EX_FIELD: tuple index (0 = _1) */
    int64_t i; /* EX_I64, EX_BOOL */
    double f;  /* EX_F64 */
    char *s;   /* EX_STR (NUL-terminated) */
    size_t slen;
    sp_type to; /* EX_CAST */
    int n;      /* children */
    struct sp_expr **kids;
    int line, col;          /* source position when made from a script (0: none) */
    struct expr_pool *pool; /* where the node was allocated (set by expr_make) */
};

typedef struct expr_pool expr_pool;
int expr_pool_new(const sp_allocator *a, expr_pool **out);
void expr_pool_free(expr_pool *p);
/** Node constructors. NULL children or allocation failure give NULL. */
sp_expr *expr_make(expr_pool *p, expr_kind kind, int n, sp_expr *const *kids);
sp_expr *expr_make_str(expr_pool *p, const char *s, size_t len);

/** Type of e given the parameter types (arg1 NULL for one-parameter lambdas). *out is a new
 *  td (td_free it). Errors: SP_ETYPE "col L:C: message" when positions are known. */
int expr_typecheck(const sp_expr *e, const sp_allocator *a, const sp_td *arg0, const sp_td *arg1,
                   sp_td **out, sp_diag *d);

/** The calls EX_CALL knows (for the script compiler's messages):
 *   functions  Some(x)  None  Seq(a, ...)
 *   str        length contains(s) startsWith(s) endsWith(s) split(sep) toLowerCase
 *              toUpperCase trim substring(b[, e]) isEmpty nonEmpty
 *   List[T]    sum size length isEmpty nonEmpty map(lambda) filter(lambda) min max head
 *              contains(x) mkString(sep)
 *   Option[T]  getOrElse(d) isDefined isEmpty nonEmpty get
 *   ts         milliseconds
 *  Type of an empty Seq() or of None: List/Option of the "nothing" type, shown as "()"; it
 *  unifies with any element type (if branches, getOrElse). */
int expr_is_nothing(const sp_td *t);

/** SP_AGG_SUM / SP_AGG_MIN / SP_AGG_MAX when f is (a,b) => a+b, b+a, min(a,b) (as
 *  if (a<b) a else b, SP_OP_MIN ...), max likewise, over one numeric value; else -1. */
int expr_match_monoid(const sp_expr *f);

/** Folds the values of rows[0..nrows) of `in` (the value is the subtree of in->td whose first
 *  column is vcol, of type vtd) with the two-parameter lambda f, left to right, and appends
 *  the result's columns to `out` through em (sp_emit_*; the caller calls sp_emit_end).
 *  nrows >= 1. Runtime errors (integer division by zero) → SP_ERUNTIME. */
int expr_fold(const sp_expr *f, const sp_allocator *a, const sp_batch *in, const sp_td *vtd,
              int vcol, const size_t *rows, size_t nrows, sp_emitter *em, sp_diag *d);

/* ------------------------------------------------------------------ typed trees, host side */

/** Numeric promotion (Scala's): i32 < i64 (ts counts as i64) < f32 < f64; equal types stay.
 *  expr_num_rank is -1 for bool and str. */
int expr_num_rank(sp_type t);
sp_type expr_promote(sp_type x, sp_type y);

/** A type-checked lambda body: e's tree with every node's type (laid out from column 0).
 *  Built by expr_compile, used by the host evaluator and by the OpenCL generator. */
typedef struct expr_typed {
    const sp_expr *e;
    sp_td *td;
    int n;
    struct expr_typed **kids;
    int nargs; /* the root's lambda parameters (expr_eval reads args[0..nargs)) */
    int call;  /* EX_CALL: which call (expr.c's call_id) */
    /* The top EX_BINOP of a chain through left operands (a + b + c: ((a + b) + c)): the
     * chain's binary nodes from the innermost (spine[0], whose kids[0] is not a binary node)
     * to this one (spine[nspine - 1] == this); nspine 0 elsewhere. Walks go along it in a loop
     * instead of recursing through kids[0], so a chain of any length costs no stack (the
     * nesting is bounded by SP_EXPR_MAX_DEPTH, which counts the chain as one level). */
    struct expr_typed **spine;
    int nspine;
} expr_typed;

/** Type-checks e as expr_typecheck does and keeps the typed tree (free with
 *  expr_typed_free). */
int expr_compile(const sp_expr *e, const sp_allocator *a, const sp_td *arg0, const sp_td *arg1,
                 expr_typed **out, sp_diag *d);
/** The same for a lambda of nargs (<= 4) parameters of types args[0..nargs). */
int expr_compile_n(const sp_expr *e, const sp_allocator *a, int nargs, const sp_td *const *args,
                   expr_typed **out, sp_diag *d);
void expr_typed_free(const sp_allocator *a, expr_typed *t);

/** Bump memory for per-row temporaries (strings, tuples); reset drops everything at once and
 *  keeps one block for reuse. Not thread-safe: one per executor task. */
typedef struct expr_scratch {
    const sp_allocator *a;
    struct expr_blk *head;
} expr_scratch;
void expr_scratch_init(expr_scratch *s, const sp_allocator *a);
void *expr_scratch_alloc(expr_scratch *s, size_t n);
void expr_scratch_reset(expr_scratch *s);
void expr_scratch_free(expr_scratch *s);

/** Non-leaf value kinds in expr_val.t. */
#define EV_TUPLE ((sp_type)SP_TYPE_COUNT)
#define EV_OPTION ((sp_type)(SP_TYPE_COUNT + 1))
#define EV_LIST ((sp_type)(SP_TYPE_COUNT + 2))

/** A value on the host: a leaf (t < SP_TYPE_COUNT), a tuple (t == EV_TUPLE, n items), an
 *  option (EV_OPTION, n 0 for None or 1 for Some, items[0]) or a list (EV_LIST, n items).
 *  Integers (i32 i64 ts bool) in i, floats (f32 f64) in f, strings as bytes plus their
 *  dictionary id when known (UINT32_MAX otherwise). Strings and items point into a
 *  dictionary, a node or an expr_scratch; values are never mutated once made. */
typedef struct expr_val {
    sp_type t;
    int n;
    union {
        int64_t i;
        double f;
        struct {
            const char *p;
            size_t len;
            uint32_t id;
        } s;
        struct expr_val *items;
    } u;
} expr_val;

/** Evaluates t with the parameters args[0..1]. Temporaries come from s. Runtime errors
 *  (integer division by zero, a string that is not a number) → SP_ERUNTIME. */
int expr_eval(const expr_typed *t, const expr_val *args, expr_scratch *s, expr_val *out,
              sp_diag *d);
/** Row `row` of b as a value of type td, reading leaf j from column first + j; options and
 *  lists follow batch_int.h's flattening. SP_ENOMEM. */
int expr_val_load(const sp_batch *b, const sp_td *td, int first, size_t row, expr_scratch *s,
                  expr_val *out);
/** Appends v's leaves to cols[0], cols[1], ... (strings interned in dict for ENC_DICT
 *  columns); returns the number of columns written, or SP_ENOMEM. */
int expr_val_push(const expr_val *v, sp_col *cols, sp_dict *dict);
/** Appends v's leaves through an emitter (no sp_emit_end); SP_EUNSUPPORTED for options and
 *  lists. */
int expr_val_emit(const expr_val *v, sp_emitter *em);
/** dict_mark of every dictionary string (id != UINT32_MAX) inside v. */
void expr_val_mark(const expr_val *v, sp_dict *dict);

#endif
