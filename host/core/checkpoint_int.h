/* checkpoint_int.h — a job's checkpoint directory: what makes a restart resume where the last
 * run stopped, with every output exactly as one uninterrupted run writes it.
 *
 * Files (all under DIR):
 *   meta      {"version":1,"fingerprint":"...","batch_ms":N}: written once, atomically
 *             (temporary name, fsync, rename, fsync of DIR). A restart with another job's
 *             fingerprint is an error naming both.
 *   offsets   one record per batch, appended BEFORE the batch's outputs run:
 *             {"batch":k,"time":T,"sources":"..."}, the sources' positions after sealing it.
 *   commits   one record per batch, written AFTER all its outputs are visible (files renamed,
 *             appending files flushed): {"batch":k,"time":T,"sinks":[p0,p1,...]}, each
 *             output's committed position (the byte size of an appending file; 0 for outputs
 *             without one).
 * Group commit. A kill -9 leaves the page cache intact, so ordering only needs fsync against
 * a power cut, and one fsync per batch would cost more than the batches of a fast replay.
 * Commit records are therefore held in memory and written at sync points (ckpt_sync, at
 * most CKPT_SYNC_MS apart, and at the end of a run), after the outputs written since the
 * last one and the offsets log are fsynced: a commit on disk never names output that is
 * not. A crash loses at most the commits since the last sync point; those batches run again
 * and rewrite the same bytes.
 * A record is one line: eight hex digits of the CRC-32 of the JSON text, a space, the JSON
 * text. A last line without its newline or with a bad CRC is a write the crash cut short: it
 * is dropped (the file is truncated back to the last whole record) with a warning. A damaged
 * record before the last is corruption: an error, never a guess.
 *
 * Recovery (driver.c): the batches up to the last commit are run again from the sources'
 * start with their outputs held back — the sources are deterministic replays, so each
 * batch's positions must equal the logged ones (checked; a changed input is an error) — and
 * appending files are cut back to their committed size. A batch with offsets but no commit
 * runs again at the same time with the same positions and writes its outputs anew (files are
 * replaced, appends start from the committed size), so a crash between an output and its
 * commit rewrites the same bytes. Recovery costs a replay of the whole input so far; state
 * snapshots that bound it are not written yet. */
#ifndef SPATE_CHECKPOINT_INT_H
#define SPATE_CHECKPOINT_INT_H

#include "util/diag_int.h"
#include "util/mem_int.h"

#include <stdint.h>
#include <stdio.h>

typedef struct ckpt ckpt;

/** Opens DIR (created if missing): checks or writes meta, reads both logs. A different
 *  fingerprint or batch interval is SP_ESTATE naming both. */
int ckpt_open(const sp_allocator *a, const char *dir, const char *fingerprint, int64_t batch_ms,
              FILE *log, ckpt **out, sp_diag *d);
void ckpt_close(ckpt *c);

/** The last committed batch (0: none). */
int64_t ckpt_committed(const ckpt *c);
/** The committed positions of the outputs at the last commit (*n of them; NULL when none). */
const uint64_t *ckpt_sink_positions(const ckpt *c, int *n);
/** The logged offsets of batch k and its time, or NULL when batch k was never logged. */
const char *ckpt_offsets(const ckpt *c, int64_t k, int64_t *time);

/** Wall-clock time between sync points, in ms. */
#define CKPT_SYNC_MS 500

/** Appends batch k's offsets record (fsynced at the next sync point); k must follow the
 *  last logged batch, or be one logged before (a replay: it must be the same batch). */
int ckpt_log_offsets(ckpt *c, int64_t k, int64_t t, const char *sources, sp_diag *d);
/** Records batch k's commit; it reaches the disk at the next ckpt_sync. */
int ckpt_log_commit(ckpt *c, int64_t k, int64_t t, const uint64_t *sinks, int n, sp_diag *d);
/** A sync point: the caller has made the outputs durable; fsyncs the offsets, then writes and
 *  fsyncs the pending commit records. */
int ckpt_sync(ckpt *c, sp_diag *d);

/** Prints what DIR holds (spate checkpoint DIR): the job's fingerprint, batches logged and
 *  committed, the last batch's time and sources' positions, the outputs' positions. */
int ckpt_describe(const char *dir, FILE *f, sp_diag *d);

/* fsyncs go through io_fsync and io_fsync_dir_of (io/io_int.h), which
 * $SPATE_CHECKPOINT_NO_FSYNC turns off for tests. */

#endif
