/* envfix.h — the cmocka fixture of tests that build batches by hand: a fake one-node
 * topology, one arena and a dictionary (a batch_env). Header-only so that tests which do not
 * link the batch layer do not depend on it. Teardown fails the group when arena memory is
 * still live (a leaked batch). */
#ifndef SPATE_ENVFIX_H
#define SPATE_ENVFIX_H

#include "batch/batch_int.h"

#include <string.h>

typedef struct fixture {
    sp_topo *topo;
    sp_arena *arena;
    sp_dict *dict;
    batch_env env;
} fixture;

static inline int setup(void **state)
{
    static fixture f;
    memset(&f, 0, sizeof f);
    topo_opts o = {0};
    o.synthetic = "pack:1 numa:1 core:2 pu:1";
    if (topo_open(&o, &f.topo, NULL) || arena_new(f.topo, 0, 0, NULL, &f.arena, NULL) ||
        dict_new(NULL, &f.dict))
        return -1;
    f.env.dict = f.dict;
    f.env.arenas = &f.arena;
    f.env.narenas = 1;
    *state = &f;
    return 0;
}

static inline int teardown(void **state)
{
    fixture *f = *state;
    arena_stats s;
    arena_get_stats(f->arena, &s);
    int leak = s.live_bytes != 0;
    arena_free(f->arena);
    dict_free(f->dict);
    topo_close(f->topo);
    return leak ? -1 : 0;
}

#endif
