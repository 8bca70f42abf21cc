/* report_int.h — the report sink: one self-contained HTML page (inline CSS, inline SVG charts,
 * no scripts, no network references) with one section per reporting stream, rewritten
 * atomically (written under a hidden temporary name, then renamed) after every batch time.
 *
 * What a section keeps, by the stream's element type:
 *   scalar   a numeric leaf (i32, i64, f32, f64), e.g. count(), reduce(), countByWindow():
 *            one series over batch time, the value of each batch (the sum of its elements
 *            when a batch has several; an empty batch is a gap), a stat line (latest, min,
 *            mean, max) and a table of the latest batches.
 *   keyed    a pair (K, V) with V a numeric leaf, e.g. reduceByKey, countByValue, topK:
 *            per key the sum over batches, the number of batches it appeared in and its
 *            latest value; the chart draws the REPORT_SERIES keys with the largest sums. A
 *            chart point keeps REPORT_TOP of the batch's keys: those among the 2 x
 *            REPORT_SERIES largest sums so far, then the largest values; a key's series has a
 *            gap at the batches where it was absent or not kept; tables: the latest batch by value
 * (first REPORT_TABLE_ROWS rows) and the keys over the run. When no batch so far had more than
 * REPORT_SMALL_ROWS rows the stream is taken for a top-k-like output and the second table ranks
 * keys by how often they appeared ("keys seen most often"), else by their sum. rows     anything
 * else: the chart shows elements per batch and the table the latest batch's first rows in toString
 * form, a column per tuple element; pairs with small batches also get the "keys seen most often"
 * table.
 *
 * Bounds. A section keeps at most REPORT_POINTS chart points: past that, every other point is
 * dropped and each later point stands for the last batch of a group of 2, 4, ... batches. Key
 * statistics keep up to REPORT_KEYS keys: past that (or past twice what the last pruning
 * kept), the best-ranked REPORT_KEYS / 2 and those a chart point refers to are kept and the
 * others forgotten (they start again from zero if they come back), so key tables are exact
 * below REPORT_KEYS distinct keys and approximate above. Memory is therefore bounded by the
 * batch size, REPORT_POINTS x REPORT_TOP and REPORT_KEYS, not by the length of the run.
 *
 * Checkable. Each <section> carries data-batches, data-first, data-last (batch times, ms)
 * and data-rows (elements over every batch it took in), so a program can check the page
 * against the other sinks of the same stream (tests/test_sinkmatrix.c does).
 *
 * Times. Axes and tables show batch times as HH:MM:SS UTC when they are epoch times (at or
 * after 1973-03-03, 1e11 ms), else as a duration from time zero ("1m30s"), as the manual
 * clock of queue streams gives. All charts of a page share the page's time range.
 *
 * Cost. A rewrite renders every section (O(points x series x REPORT_TOP)) and happens once per
 * batch time, after the write of the last section whose stream emits at that time, unless the
 * previous rewrite ended less than REPORT_COST_RATIO times its own duration ago: then it is
 * left to a later batch time or to close, so that rewriting takes at most about a tenth of a
 * fast replay's wall time. A live stream (batches a second or more apart) gets every batch
 * written; the page at the end of a run always holds every batch. */
#ifndef SPATE_REPORT_INT_H
#define SPATE_REPORT_INT_H

#include "io/io_int.h"

#include <stdint.h>

#define REPORT_POINTS 2000
#define REPORT_TOP 32
#define REPORT_SERIES 8
#define REPORT_TABLE_ROWS 20
#define REPORT_SMALL_ROWS 25
#define REPORT_KEYS 8192
#define REPORT_COST_RATIO 9.0

typedef struct report report;

/** 1 when the section's stream writes a batch at time t (its output runs at t). */
typedef int (*report_due_fn)(void *ud, int64_t t);

/** A report writing to `path`, with one reference held by the caller (report_release). Writes
 *  the empty page at once, so that a bad path fails when the job is built. */
int report_new(const sp_allocator *a, const char *path, report **out, sp_diag *d);
report *report_retain(report *r);
/** Drops a reference; the last one frees the report (the file stays). NULL is a no-op. */
void report_release(report *r);
const char *report_path(const report *r);

/** Appends a section for a stream of element type td (copied), headed by title (NULL or "":
 *  `about`), with `about` (e.g. "stream 3 of type (str,i64)") under it. due/due_ud tell whether the
 *  section's stream writes at a batch time (NULL: at every time). *index is its number. */
int report_add_section(report *r, const sp_td *td, const char *title, const char *about,
                       report_due_fn due, void *due_ud, int *index, sp_diag *d);

/** A sink feeding section `index` of r; it holds a reference to r. Each write takes the
 *  batch into the section and, if no later section writes at the batch's time, rewrites the
 *  file; close rewrites it if anything changed since. */
int sink_report_new(report *r, int index, sp_sink **out, sp_diag *d);

/** Renders the page as it stands into sb (tests). */
int report_render(report *r, strbuf *sb, sp_diag *d);

#endif
