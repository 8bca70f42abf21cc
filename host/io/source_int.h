/* source_int.h — helpers shared by the sources of host/io (not part of the io contract). */
#ifndef SPATE_SOURCE_INT_H
#define SPATE_SOURCE_INT_H

#include "io/io_int.h"

/** A zeroed source of the given vtable (td and impl NULL); the constructor fills the rest and
 *  on failure calls source_free, so every vtable's stop/destroy must accept a NULL impl. */
int source_alloc(batch_env *env, const source_vt *vt, sp_source **out, sp_diag *d);
/** Makes the partition table of a batch a source has filled agree with its row count: one
 *  partition [0, b->n) on the node batch_new chose. */
int source_seal(sp_batch *b, sp_diag *d);
/** Turns the empty str column c into a raw-text column (ENC_RAW) with offsets[0] = 0. */
int source_col_raw(sp_col *c, sp_diag *d);
/** "PATH: strerror(err)" with SP_ENOENT for ENOENT, else SP_EIO, prefixed by kind. */
int source_errno(sp_diag *d, const char *kind, const char *path, int err);

#endif
