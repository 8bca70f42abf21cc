/* batch_int.h — the data model: element types (a tree of leaves, tuples, options and lists),
 * typed columns, the stream-lifetime string dictionary, and sp_batch, the columnar table of
 * one batch time.
 *
 * Flattening. A type's leaves are laid out as columns in depth-first order:
 *   leaf    one column of its type;
 *   tuple   its children's columns, in order;
 *   option  a bool column (1 = Some) followed by the child's columns; for a None row the
 *           child's columns hold a zero value (they keep the row count of the option);
 *   list    an i64 offsets column of len rows+1 followed by the child's columns, which hold
 *           offsets[rows] elements (so columns inside a list have their own length).
 * "(str,(i64,f64))" has columns 0:str 1:i64 2:f64.
 *
 * Strings. A str column is either dictionary-encoded (ENC_DICT: u32 ids into the context's
 * dictionary, which lives as long as the context, so the same string has the same id in every
 * batch, stream and window state) or raw text (ENC_RAW: an i64 offsets array of len+1 and a
 * byte block), as lines are before parsing. Keyed operators need ENC_DICT; col_encode turns
 * raw into ids.
 *
 * Memory. Column data comes from the NUMA arenas (4 KiB aligned, so the device can wrap it
 * zero-copy) and goes back to them in batch_release. Rows are split into partitions: row
 * ranges, each with the NUMA node its producer ran on, which the executors follow. */
#ifndef SPATE_BATCH_INT_H
#define SPATE_BATCH_INT_H

#include "batch/arena_int.h"
#include "util/diag_int.h"
#include "util/mem_int.h"
#include "util/strbuf_int.h"

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

/* ----------------------------------------------------------------------------------- types */

typedef enum td_kind { TD_LEAF, TD_TUPLE, TD_OPTION, TD_LIST } td_kind;

typedef struct sp_td {
    td_kind kind;
    sp_type leaf;          /* TD_LEAF */
    int n;                 /* children: tuple arity; 1 for option and list; 0 for a leaf */
    struct sp_td **child;
    int col;               /* first flattened column of this subtree (set by td_layout) */
    int ncols;             /* columns of this subtree (set by td_layout) */
} sp_td;

/** Constructors; children are owned by the new node. NULL on allocation failure (and the
 *  children are freed). */
sp_td *td_leaf(const sp_allocator *a, sp_type t);
sp_td *td_tuple(const sp_allocator *a, int n, sp_td **children);
sp_td *td_tuple2(const sp_allocator *a, sp_td *x, sp_td *y);
sp_td *td_option(const sp_allocator *a, sp_td *child);
sp_td *td_list(const sp_allocator *a, sp_td *child);
sp_td *td_copy(const sp_allocator *a, const sp_td *t);
void td_free(const sp_allocator *a, sp_td *t);
/** Assigns col/ncols over the tree, from column `first`; returns the column count. */
int td_layout(sp_td *t, int first);
int td_equal(const sp_td *x, const sp_td *y);
/** Types nest at most this deep (a leaf is 1, (i64,(i64,i64)) is 3): td_parse rejects
 *  deeper text, so no stream may have a deeper element type (the type checker rejects lambdas
 *  that would make one). */
enum { TD_MAX_DEPTH = 64 };
/** Parses "i64", "(str,i64)", "(str,(i64,f64))", "Option[i64]", "List[i64]" and lays it out.
 *  Errors name the column of the type string. */
int td_parse(const sp_allocator *a, const char *s, sp_td **out, sp_diag *d);
/** Writes the type in the syntax td_parse reads. */
void td_format(const sp_td *t, strbuf *sb);
/** Element type of flattened column c of t (offsets columns are SP_I64, option flags SP_BOOL). */
sp_type td_col_type(const sp_td *t, int c);
/** 1 when every column of t is a leaf at row level (no option/list inside). */
int td_is_flat(const sp_td *t);
size_t type_width(sp_type t); /* bytes per element: bool 1, i32/f32/str 4, others 8 */

/* ------------------------------------------------------------------------------ dictionary */

typedef struct sp_dict sp_dict;

int dict_new(const sp_allocator *a, sp_dict **out);
void dict_free(sp_dict *dict);
/** Id of the string (adding it if new). Thread-safe. UINT32_MAX when memory runs out. */
uint32_t dict_intern(sp_dict *dict, const char *s, size_t len);
/** Id of the string if present, else UINT32_MAX. Thread-safe. */
uint32_t dict_find(sp_dict *dict, const char *s, size_t len);
/** The string of an id (stable pointer, NUL-terminated, lives as long as the dictionary).
 *  Lock-free; any thread. */
const char *dict_get(const sp_dict *dict, uint32_t id, size_t *len);
uint32_t dict_size(const sp_dict *dict);
/** Bytes held (strings, entries and index), for memory reports. */
size_t dict_bytes(const sp_dict *dict);

/* Reclaiming (dict.c's header comment has the invariant). Everything below runs on the driver
 * between batch times, while no other thread uses the dictionary, except dict_generation. */
/** Strings in use (dict_size is the high-water mark of ids). */
uint32_t dict_live(const sp_dict *dict);
/** Changes whenever a sweep freed entries: caches of ids drop their entries when it did.
 *  Any thread. */
uint64_t dict_generation(const sp_dict *dict);
/** Entries freed by sweeps so far. */
uint64_t dict_reclaimed(const sp_dict *dict);
/** 1 when at least max(min_new, strings live after the last sweep) strings were added since:
 *  the policy that keeps sweeps O(1) amortised per new string. */
int dict_sweep_due(const sp_dict *dict, uint32_t min_new);
/** Starts a mark epoch; then every holder of ids marks them; then dict_sweep. */
void dict_mark_begin(sp_dict *dict);
void dict_mark(sp_dict *dict, uint32_t id);
void dict_mark_ids(sp_dict *dict, const uint32_t *ids, size_t n);
/** The id is never reclaimed (a constant compiled into a kernel or an expression). */
void dict_pin(sp_dict *dict, uint32_t id);
/** Pins every id in use now (what was interned before the first batch time). */
void dict_pin_all(sp_dict *dict);
/** Frees every entry not marked since dict_mark_begin and not pinned; their ids are reused by
 *  later interns. Returns the entries freed. O(dict_size). */
uint32_t dict_sweep(sp_dict *dict);

/* --------------------------------------------------------------------------------- columns */

typedef enum col_enc { ENC_PLAIN = 0, ENC_DICT, ENC_RAW } col_enc;

/** Shared by every batch of a context: allocator, dictionary, arenas (one per NUMA node). */
typedef struct batch_env {
    const sp_allocator *alloc;
    sp_dict *dict;
    sp_arena **arenas;
    unsigned narenas;
} batch_env;

typedef struct sp_col {
    sp_type type;        /* element type (str for both string encodings) */
    col_enc enc;         /* str: ENC_DICT or ENC_RAW; others ENC_PLAIN */
    size_t len;          /* elements */
    void *data;          /* len elements; ENC_DICT: uint32 ids; ENC_RAW: len+1 int64 offsets */
    size_t cap;          /* bytes of data's block */
    char *bytes;         /* ENC_RAW: the text block */
    size_t nbytes;       /* ENC_RAW: bytes used */
    size_t bytes_cap;
    sp_arena *arena;     /* where data/bytes came from and go back to */
} sp_col;

/** An empty column of type t and encoding enc (ENC_PLAIN for non-strings) whose memory comes
 *  from `arena` (required). Allocates nothing; cannot fail. */
void col_init(sp_col *c, sp_type t, col_enc enc, sp_arena *arena);
/** Makes room for `n` elements in total (ENC_RAW: and `nbytes` text bytes), keeping what is
 *  there. SP_ENOMEM on failure. */
int col_reserve(sp_col *c, size_t n, size_t nbytes);
/** Appends; col_reserve is called as needed (amortised doubling). */
int col_push_i64(sp_col *c, int64_t v);   /* i32, i64, ts, bool: converted to the width */
int col_push_f64(sp_col *c, double v);    /* f32, f64 */
int col_push_id(sp_col *c, uint32_t id);  /* ENC_DICT */
int col_push_text(sp_col *c, const char *s, size_t len); /* ENC_RAW */
int64_t col_get_i64(const sp_col *c, size_t i);
double col_get_f64(const sp_col *c, size_t i);
/** String of element i (either encoding); not NUL-terminated in ENC_RAW. */
const char *col_get_str(const sp_col *c, const sp_dict *dict, size_t i, size_t *len);
/** Turns an ENC_RAW column into ENC_DICT (in place, new data block). */
int col_encode(sp_col *c, sp_dict *dict, sp_diag *d);
/** Appends element i of src to dst (same type; strings re-encoded as dst's encoding). */
int col_push_from(sp_col *dst, const sp_col *src, const sp_dict *dict, size_t i);
/** Appends elements [lo, hi) of src (same type): one copy per block where the encodings
 *  match, element by element where strings must be re-encoded. */
int col_push_range(sp_col *dst, const sp_col *src, const sp_dict *dict, size_t lo, size_t hi);
/** Drops elements from n on (n <= len); keeps the memory. */
void col_truncate(sp_col *c, size_t n);
/** Returns the column's memory to its arena; the column stays usable (empty). */
void col_release(sp_col *c);

/* --------------------------------------------------------------------------------- batches */

struct sp_batch {
    int64_t time_ms;
    size_t n;            /* rows (top-level elements) */
    sp_td *td;           /* element type; owned by the batch */
    int ncols;
    sp_col *cols;
    batch_env *env;
    unsigned nparts;     /* partitions: row ranges [part_start[p], part_start[p+1]) */
    size_t *part_start;  /* nparts + 1 entries */
    unsigned *part_node; /* NUMA node of each partition's producer */
    atomic_int refs;
};

/** An empty batch of type td (copied) at time t, one partition on node 0; columns
 *  ENC_PLAIN/ENC_DICT. Release with batch_release. */
int batch_new(batch_env *env, const sp_td *td, int64_t t, sp_batch **out, sp_diag *d);
/** The same with column memory from the arena of NUMA node `node` (its one partition is
 *  marked as on that node): what an executor uses for the output of its partition. */
int batch_new_on(batch_env *env, const sp_td *td, int64_t t, unsigned node, sp_batch **out,
                 sp_diag *d);
/** Sets the partition table (row ranges and nodes); nparts >= 1, start[nparts] == b->n.
 *  Partitions always cover [0, n): rows appended later extend the last partition. */
int batch_set_parts(sp_batch *b, unsigned nparts, const size_t *start, const unsigned *node);
/** Rows [*lo, *hi) of partition p (p < b->nparts). The table is a hint of where rows were
 *  produced, n is the truth: the last partition always ends at b->n, whatever rows were
 *  pushed or dropped after batch_set_parts, and no range reaches past n. Every reader of the
 *  partition table goes through here, so a producer that sets n without touching the table
 *  can never hide rows from a consumer that walks partitions (a sink, a parallel task). */
static inline void batch_part_range(const sp_batch *b, unsigned p, size_t *lo, size_t *hi)
{
    size_t l = b->part_start ? b->part_start[p] : 0;
    size_t h = p + 1 < b->nparts ? b->part_start[p + 1] : b->n;
    *lo = l < b->n ? l : b->n;
    *hi = h < b->n ? (h < *lo ? *lo : h) : b->n;
}
/** Splits rows into `nparts` equal ranges (all on `node` unless nodes != NULL). */
int batch_split_even(sp_batch *b, unsigned nparts, const unsigned *nodes);
sp_batch *batch_retain(sp_batch *b);
/** Drops a reference; the last one returns column memory to the arenas. NULL is a no-op. */
void batch_release(sp_batch *b);
/** Marks (dict_mark) the dictionary ids of every ENC_DICT str column of b: what a structure
 *  keeping b past its batch time calls in a reclaim cycle. NULL b: nothing. */
void batch_mark_ids(const sp_batch *b, sp_dict *dict);
/** Appends every row of src (same type) to dst. */
int batch_append(sp_batch *dst, const sp_batch *src, sp_diag *d);
/** Appends row i of src (same type) to dst, nested options/lists included. */
int batch_append_row(sp_batch *dst, const sp_batch *src, size_t i);
/** Appends rows [lo, hi) of src (same type) to dst, all or nothing: one range copy per
 *  column, O(hi - lo) plus one type check. */
int batch_append_rows(sp_batch *dst, const sp_batch *src, size_t lo, size_t hi);
/** Writes row i in Scala's toString form: (a,1), (a,(1,x)), Some(1), None,
 *  CompactBuffer(1, 2), doubles as Java prints them (1.0, 1.0E7, 1.0E-4). */
int batch_format_row(const sp_batch *b, size_t i, strbuf *sb);
/** Formats a double/float as Java's Double.toString / Float.toString. */
void format_java_double(double v, strbuf *sb);
void format_java_float(float v, strbuf *sb);

/* The public emitter: row-wise appends in flattened column order (flat types only).
 * sp_emit_i64/bool accept any non-string column (converted: to 0/1 for bool, to floating
 * point for f32/f64); sp_emit_f64 only f32/f64 (else SP_ETYPE). An error is sticky (em->err)
 * and sp_emit_end drops the partial row, so the columns stay aligned with b->n. */
struct sp_emitter {
    sp_batch *b;
    int col;             /* next column of the current row */
    int err;
    sp_td *td;           /* type of what is emitted (may be a suffix of b's, see first) */
    int first;           /* first column of b the emitter writes (flatMapValues: 1) */
};
/** first == 0: rows of b's whole type; first > 0: b's type is a tuple and the emitter writes
 *  the child whose first column is `first` (flatMapValues: the value); the caller fills the
 *  columns before it. A non-flat or unknown target sets em->err = SP_EUNSUPPORTED. */
void emitter_init(sp_emitter *em, sp_batch *b, int first);

/* The public row view: row `i` of batch b, columns shifted by `first`. */
struct sp_row {
    const sp_batch *b;
    size_t i;
    int first;
};

#endif
