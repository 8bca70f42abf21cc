/* generator.c — synthetic keyed records (key, value): record i of a run is a pure function of
 * the seed and i (splitmix64), so the same options give the same records in the same batches.
 * Keys are uniform in [0, keys) as i64 or as the strings "k<N>" (with rotate > 0, batch b's
 * keys are offset by b x rotate: a key set that keeps moving, as client addresses and paths
 * with ids do in real logs); values uniform in [0, value_max). With rate > 0 the source sleeps so
 * that, from the first batch on, records are produced at `rate` per second on average. */
#include "io/source_int.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* Above this many string keys, ids are interned per record instead of cached. */
#define GEN_ID_CACHE_MAX ((uint64_t)1 << 20)

typedef struct gen {
    sp_generator_opts o;
    uint64_t state;    /* splitmix64 state */
    uint64_t produced; /* records so far */
    uint64_t batches;  /* batches produced */
    uint32_t *ids;     /* string keys: dictionary id of "k<N>" (UINT32_MAX: not yet) */
    uint64_t ids_gen;  /* dict_generation the cached ids belong to */
    struct timespec t0;
    int started;
} gen;

static uint64_t gen_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static int gen_start(sp_source *s, sp_diag *d)
{
    gen *g = s->impl;
    g->state = g->o.seed;
    g->produced = 0;
    g->batches = 0;
    g->started = 0;
    return 0;
}

/* Id of "k<base + key>"; cached per key when the domain is fixed and small. */
static uint32_t gen_key_id(sp_source *s, uint64_t key, uint64_t base)
{
    gen *g = s->impl;
    if (g->ids && g->ids[key] != UINT32_MAX) return g->ids[key];
    char buf[32];
    int n = snprintf(buf, sizeof buf, "k%llu", (unsigned long long)(base + key));
    uint32_t id = dict_intern(s->env->dict, buf, (size_t)n);
    if (g->ids) g->ids[key] = id;
    return id;
}

/* Sleeps until `produced` records are due at the configured rate. */
static void gen_pace(gen *g)
{
    double due = (double)g->produced / g->o.rate;
    struct timespec until = g->t0;
    until.tv_sec += (time_t)due;
    until.tv_nsec += (long)((due - (double)(time_t)due) * 1e9);
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR)
        ;
}

static int gen_next(sp_source *s, int64_t t, sp_batch *out, int *done, sp_diag *d)
{
    gen *g = s->impl;
    uint64_t n = g->o.per_batch;
    if (g->o.total && g->o.total - g->produced < n) n = g->o.total - g->produced;
    if (!g->started) {
        clock_gettime(CLOCK_MONOTONIC, &g->t0);
        g->started = 1;
    }
    sp_col *kc = &out->cols[0], *vc = &out->cols[1];
    uint64_t base = g->batches++ * g->o.rotate;
    if (g->ids && g->ids_gen != dict_generation(s->env->dict)) {
        /* The dictionary reclaimed ids since they were cached. */
        memset(g->ids, 0xff, g->o.keys * sizeof *g->ids);
        g->ids_gen = dict_generation(s->env->dict);
    }
    if (col_reserve(kc, kc->len + n, 0) || col_reserve(vc, vc->len + n, 0)) goto oom;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t key = gen_rand(&g->state) % g->o.keys;
        int64_t val = (int64_t)(gen_rand(&g->state) % (uint64_t)g->o.value_max);
        if (g->o.string_keys) {
            uint32_t id = gen_key_id(s, key, base);
            if (id == UINT32_MAX || col_push_id(kc, id)) goto oom;
        } else if (col_push_i64(kc, (int64_t)(key + base))) {
            goto oom;
        }
        if (col_push_i64(vc, val)) goto oom;
        out->n++;
    }
    g->produced += n;
    if (g->o.rate > 0) gen_pace(g);
    *done = g->o.total && g->produced >= g->o.total;
    return source_seal(out, d);
oom:
    return diag_set(d, SP_ENOMEM, "generator: out of memory at record %llu",
                    (unsigned long long)g->produced);
}

static void gen_stop(sp_source *s) {}

static void gen_destroy(sp_source *s)
{
    gen *g = s->impl;
    mem_free(s->env->alloc, g->ids);
    mem_free(s->env->alloc, g);
}

/* Checkpoints: the records made so far (the sequence is fixed by the seed). */
static void gen_position(const sp_source *s, strbuf *out)
{
    const gen *g = s->impl;
    sb_printf(out, "%llu records", (unsigned long long)g->produced);
}

static const source_vt gen_vt = {"generator", gen_start, gen_next, gen_stop, gen_destroy,
                                 gen_position};

int source_generator_new(batch_env *env, const sp_generator_opts *o, sp_source **out, sp_diag *d)
{
    SP_CHECK(d, o, SP_EINVAL, "generator: no options");
    SP_CHECK(d, o->keys >= 1, SP_EINVAL, "generator: keys must be at least 1");
    SP_CHECK(d, o->value_max >= 1, SP_EINVAL, "generator: value_max must be at least 1");
    SP_CHECK(d, o->per_batch >= 1, SP_EINVAL, "generator: per_batch must be at least 1");
    SP_CHECK(d, o->rate >= 0, SP_EINVAL, "generator: rate must not be negative");
    sp_source *s;
    int rc = source_alloc(env, &gen_vt, &s, d);
    if (rc) return rc;
    gen *g = mem_calloc(env->alloc, 1, sizeof *g);
    if (!g) {
        source_free(s);
        return diag_set(d, SP_ENOMEM, "generator: out of memory");
    }
    s->impl = g;
    s->manual_clock = o->rate <= 0; /* flat out: batch k at k x interval, no waiting */
    g->o = *o;
    g->state = o->seed;
    if (o->string_keys && o->keys <= GEN_ID_CACHE_MAX && o->rotate == 0) {
        if (!(g->ids = mem_alloc(env->alloc, o->keys * sizeof *g->ids))) goto oom;
        memset(g->ids, 0xff, o->keys * sizeof *g->ids);
    }
    sp_td *kids[2] = {td_leaf(env->alloc, o->string_keys ? SP_STR : SP_I64),
                      td_leaf(env->alloc, SP_I64)};
    if (!kids[0] || !kids[1]) {
        if (kids[0] || kids[1]) td_free(env->alloc, kids[0] ? kids[0] : kids[1]);
        goto oom;
    }
    if (!(s->td = td_tuple(env->alloc, 2, kids))) goto oom;
    td_layout(s->td, 0);
    *out = s;
    return 0;
oom:
    source_free(s);
    return diag_set(d, SP_ENOMEM, "generator: out of memory");
}
