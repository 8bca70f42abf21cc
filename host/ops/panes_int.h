/* panes_int.h — sliding-window panes on the device: per-key partial aggregates of each pane
 * (a stretch of gcd(window, slide) of the input), and the window built from them.
 *
 * Keys: a hash-organised layout. Callers give key ids (dictionary ids or keymap ids: the
 * stream-lifetime hash of key values to ids, shared with every keyed operator). The panes
 * keep a hash table from live key id to a compact slot (open addressing, sized to the live
 * keys) and dense device arrays indexed by slot, so nothing here is sized by the key domain
 * or by the keys ever seen: small domains (dictionary ids of a few words) and large ones
 * (4 Mi integer keys, string keys that rotate) use the same layout. A slot is reclaimed once
 * no retained pane holds its key (and, on Spark's inverse path, the key has been removed from
 * the window state): its table entry is deleted, and the slot holds the identity everywhere so
 * it can be reused at once.
 *
 * Memory bound: retained panes x live keys. Precisely, the retained panes' sparse entries
 * (at most panes x live keys, and at most the records they cover), the dense arrays (16 bytes
 * x slots each: the window, plus, for two-stacks, one per front pane), the per-slot host
 * arrays (slots = the peak number of keys live at once), and the id table (at most 8 x live
 * keys entries of 8 bytes; it shrinks as keys leave). A stream whose key set rotates keeps a
 * constant footprint (panes_stats; tested in test_window).
 *
 * Panes. Rows of the open pane are buffered (slot-compacted local ids and values); closing it
 * reduces them with kreduce_dense into a sparse pane: m distinct slots with their partial
 * aggregate and record count, uploaded once and kept until the pane leaves.
 *
 * Three modes:
 *  PANES_INVERTIBLE  SUM, COUNT, AVG: window arrays acc/cnt updated as + entering panes and
 *                    - leaving panes (wp_scatter / wp_unscatter). A slide costs O(rows of
 *                    the panes that move), whatever window/slide is.
 *  PANES_TWO_STACKS  MIN, MAX: a two-stacks queue of panes. The back stack is one dense
 *                    aggregate of its panes; when the front stack runs empty the back panes
 *                    are flipped into it, each front entry holding the dense aggregate of
 *                    itself and every newer front pane. One slide costs O(1) amortised dense
 *                    combinations of O(live slots) each, whatever window/slide is; memory is
 *                    front entries x live slots.
 *  PANES_INVERSE     Spark's incremental reduceByKeyAndWindow(+, -): acc is the previous
 *                    window's value, cnt[s] is 1 while the key is in the window state; a slide
 *                    subtracts leaving panes from live keys only, then adds entering panes and
 *                    makes their keys live. Keys stay live (value 0) until panes_remove.
 * Accumulators are long (integer values) or double (floats, AVG): kagg_acc_type. */
#ifndef SPATE_PANES_INT_H
#define SPATE_PANES_INT_H

#include "ops/kreduce_int.h"

typedef enum panes_mode { PANES_INVERTIBLE, PANES_TWO_STACKS, PANES_INVERSE } panes_mode;

typedef struct panes_cfg {
    sp_dev *dev;     /* NULL: plain-C references of every kernel (tests) */
    sp_arena *arena; /* page-aligned host memory for panes and dense arrays */
    const sp_allocator *alloc;
    panes_mode mode;
    sp_agg agg; /* INVERTIBLE: SUM COUNT AVG; TWO_STACKS: MIN MAX; INVERSE: SUM COUNT */
    sp_type vt; /* value type (ignored for COUNT) */
} panes_cfg;

typedef struct panes panes;

int panes_new(const panes_cfg *cfg, panes **out, sp_diag *d);
void panes_free(panes *p);

/** Appends n rows (key ids, values of the value type; vals NULL for COUNT) to the open pane.
 *  O(n) on the host. */
int panes_add(panes *p, const uint32_t *ids, const void *vals, size_t n, sp_diag *d);
/** Closes the open pane as pane number `index` (increasing; an empty pane is fine). */
int panes_close(panes *p, int64_t index, sp_diag *d);

/** INVERTIBLE / TWO_STACKS: the window becomes panes [lo, hi): panes below lo leave (or are
 *  dropped unseen), closed panes in [lo, hi) enter. Missing panes count as empty. */
int panes_slide(panes *p, int64_t lo, int64_t hi, sp_diag *d);
/** INVERSE: Spark's step from the previous window: panes [old_lo, old_hi) leave, panes
 *  [new_lo, new_hi) enter; panes below old_hi are then dropped. A key in a leaving pane that
 *  is neither live nor entering fails with SP_ERUNTIME, as Spark does. */
int panes_slide_inverse(panes *p, int64_t old_lo, int64_t old_hi, int64_t new_lo, int64_t new_hi,
                        sp_diag *d);

/** The window after the last slide, readable on the host until the next panes_* call:
 *  slots [0, nslots); slot_id[s] is the key id (UINT32_MAX: free slot); a key is present
 *  where cnt[s] > 0 (INVERSE: live). acc is long or double (acc_f64). */
typedef struct panes_view {
    uint32_t nslots;
    const uint32_t *slot_id;
    const void *acc;
    const int64_t *cnt;
    int acc_f64;
} panes_view;
int panes_view_get(panes *p, panes_view *v, sp_diag *d);

/** INVERSE: removes keys (by slot) from the window state, as Spark's filterFunc does. */
int panes_remove(panes *p, const uint32_t *slots, size_t n, sp_diag *d);

/** Live slots (for tests and memory reports). */
uint32_t panes_live_slots(const panes *p);
/** Retained panes. */
size_t panes_count(const panes *p);

/** Memory in use (tests, memory reports). */
typedef struct panes_stats {
    uint32_t live;  /* keys holding a slot now */
    uint32_t slots; /* slots ever made: the peak of live keys (host per-slot arrays) */
    uint32_t cap;   /* slots of each dense array (a power of two >= slots) */
    size_t map_cap; /* entries of the key id -> slot table (<= 8 x live, or its minimum) */
    size_t panes;   /* retained panes */
    size_t entries; /* (slot, partial) entries of the retained panes */
    size_t dense;   /* dense aggregates held (window, result, two-stacks fronts and pool) */
} panes_stats;
void panes_stats_get(const panes *p, panes_stats *st);
/** Calls mark(ud, id) for the key id of every slot in use (retained panes, the open pane, the
 *  window state): the ids the panes keep past a batch time, for a reclaim cycle. */
void panes_mark(const panes *p, void (*mark)(void *ud, uint32_t id), void *ud);

#endif
