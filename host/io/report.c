/* report.c — the report sink (contract in report_int.h): per-section series and key
 * statistics taken from each batch, and the HTML page rendered from them (inline CSS, inline
 * SVG, nothing fetched). */
#include "io/report_int.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <xxhash.h>

enum rep_kind { REP_SCALAR, REP_KEYED, REP_ROWS };

/* Times at or after this many epoch ms are shown as UTC clock times. */
#define REP_EPOCH_MS INT64_C(100000000000)
/* Longest key shown in a legend / a table cell, in bytes. */
#define REP_LEGEND_KEY 60
#define REP_CELL 200
/* Rows of the scalar "latest batches" table. */
#define REP_RECENT 10
/* Points per series up to which each point is also drawn as a dot. */
#define REP_DOTS 60

typedef struct rep_kv {
    uint32_t key;
    double v;
} rep_kv;

typedef struct rep_point {
    int64_t t;     /* batch time (the last batch of the point's group) */
    double v;      /* scalar: the batch's value; keyed and rows: its rows */
    uint64_t n;    /* elements of the batch (scalar: 0 is a gap) */
    uint32_t ntop; /* keyed: entries in tops[i * REPORT_TOP ...], largest first */
} rep_point;

typedef struct rep_key {
    char *text;
    size_t len;
    uint64_t hash;
    double total;     /* sum over batches of the key's per-batch value */
    double last;      /* its value in the latest batch it appeared in */
    uint64_t batches; /* batches it appeared in */
    int64_t bt;       /* per-batch scratch: the batch time that touched it last */
    double bv;        /* per-batch scratch: its value in that batch */
    int mark;
    int hot; /* among the 2 x REPORT_SERIES largest sums: its chart points are always kept */
} rep_key;

/* A sort record: descending by a, then b, then ascending id (deterministic ties). */
typedef struct rep_rank {
    double a, b;
    uint32_t id;
} rep_rank;

typedef struct rep_section {
    char *title, *about;
    sp_td *td;
    int kind;
    int integral; /* the charted values are integers */
    report_due_fn due;
    void *due_ud;

    rep_point *pts;
    rep_kv *tops; /* keyed: REPORT_TOP per point */
    size_t npts, cap_pts;
    uint64_t stride, gfill; /* each point stands for a group of `stride` batches */

    uint64_t batches, max_rows;
    int64_t first_t, last_t;
    uint64_t last_rows;
    double last_sum;
    double vmin, vmax, vsum; /* scalar: over batches with a value */
    uint64_t vcount;
    uint64_t rows_sum;
    rep_point recent[REP_RECENT]; /* scalar: the latest batches, a ring (batches % REP_RECENT) */

    int track_keys;
    size_t prune_at; /* prune when there are more keys than this */
    rep_key *keys;
    size_t nkeys, cap_keys;
    uint32_t *index;  /* open addressing over keys (UINT32_MAX: empty) */
    size_t index_cap; /* power of two, >= 2 x nkeys */

    strbuf latest; /* the latest batch's table, as HTML */
} rep_section;

struct report {
    const sp_allocator *alloc;
    int refs;
    char *path;
    rep_section *secs;
    int nsecs, cap_secs;
    int have_time;
    int64_t t0, t1;
    uint64_t times; /* distinct batch times */
    int dirty;
    double write_end_ms, write_cost_ms; /* the last rewrite's end and duration (monotonic) */
    strbuf page, key, tmp_path;
    rep_rank *ranks;
    size_t cap_ranks;
};

typedef struct rep_sink {
    report *r;
    int index;
} rep_sink;

static const char *const rep_colors[REPORT_SERIES] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2",
                                                      "#59a14f", "#b07aa1", "#edc948", "#9c755f"};

/* ------------------------------------------------------------------------------ formatting */

/* HTML text: markup characters as entities, control bytes as \xHH, at most `max` bytes of s
 * (cut at a UTF-8 boundary, with an ellipsis). */
static void rep_esc(strbuf *sb, const char *s, size_t len, size_t max)
{
    int cut = 0;
    if (len > max) {
        len = max;
        while (len > 0 && ((unsigned char)s[len] & 0xC0) == 0x80)
            len--;
        cut = 1;
    }
    size_t run = 0;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        const char *e = NULL;
        switch (c) {
        case '&':
            e = "&amp;";
            break;
        case '<':
            e = "&lt;";
            break;
        case '>':
            e = "&gt;";
            break;
        case '"':
            e = "&quot;";
            break;
        case '\'':
            e = "&#39;";
            break;
        default:
            if (c >= 0x20 && c != 0x7F) continue;
        }
        sb_add(sb, s + run, i - run);
        if (e)
            sb_adds(sb, e);
        else
            sb_printf(sb, "\\x%02X", c);
        run = i + 1;
    }
    sb_add(sb, s + run, len - run);
    if (cut) sb_adds(sb, "&#8230;");
}

static void rep_escs(strbuf *sb, const char *s)
{
    rep_esc(sb, s, strlen(s), (size_t)-1);
}

/* Element i of node t in Scala's toString form (strings unquoted). */
static void rep_fmt(const sp_batch *b, const sp_td *t, size_t i, strbuf *sb)
{
    const sp_col *c = &b->cols[t->col];
    switch (t->kind) {
    case TD_LEAF:
        switch (t->leaf) {
        case SP_STR: {
            size_t len = 0;
            const char *s = col_get_str(c, b->env->dict, i, &len);
            sb_add(sb, s ? s : "", s ? len : 0);
            break;
        }
        case SP_F64:
            format_java_double(col_get_f64(c, i), sb);
            break;
        case SP_F32:
            format_java_float((float)col_get_f64(c, i), sb);
            break;
        case SP_BOOL:
            sb_adds(sb, col_get_i64(c, i) ? "true" : "false");
            break;
        default:
            sb_printf(sb, "%" PRId64, col_get_i64(c, i));
        }
        break;
    case TD_TUPLE:
        sb_addc(sb, '(');
        for (int k = 0; k < t->n; k++) {
            if (k) sb_addc(sb, ',');
            rep_fmt(b, t->child[k], i, sb);
        }
        sb_addc(sb, ')');
        break;
    case TD_OPTION:
        if (col_get_i64(c, i)) {
            sb_adds(sb, "Some(");
            rep_fmt(b, t->child[0], i, sb);
            sb_addc(sb, ')');
        } else {
            sb_adds(sb, "None");
        }
        break;
    case TD_LIST: {
        int64_t lo = col_get_i64(c, i), hi = col_get_i64(c, i + 1);
        sb_adds(sb, "List(");
        for (int64_t k = lo; k < hi; k++) {
            if (k > lo) sb_adds(sb, ", ");
            rep_fmt(b, t->child[0], (size_t)k, sb);
        }
        sb_addc(sb, ')');
        break;
    }
    }
}

/* A value for a table: integers with thousands separators, others to 4 significant digits. */
static void rep_num(strbuf *sb, double v, int integral)
{
    if (isnan(v)) {
        sb_adds(sb, "NaN");
        return;
    }
    if (isinf(v)) {
        sb_adds(sb, v > 0 ? "&#8734;" : "&#8722;&#8734;");
        return;
    }
    double a = fabs(v);
    if ((integral || a >= 1000) && a < 1e15) {
        char digits[32];
        int n = snprintf(digits, sizeof digits, "%lld", (long long)llround(a));
        if (v < 0 && llround(a) != 0) sb_addc(sb, '-');
        for (int i = 0; i < n; i++) {
            if (i && (n - i) % 3 == 0) sb_addc(sb, ',');
            sb_addc(sb, digits[i]);
        }
        return;
    }
    sb_printf(sb, "%.4g", v);
}

/* An axis label: v in the unit of its own magnitude (k, M, G, T) with as many decimals as
 * the step needs there (steps are 1, 2 or 5 x 10^e): 0, 500, 1.0k, 1.5k, 2.5M. */
static void rep_tick(strbuf *sb, double v, double step)
{
    static const struct {
        double div;
        const char *suf;
    } units[] = {{1e12, "T"}, {1e9, "G"}, {1e6, "M"}, {1e3, "k"}, {1, ""}};
    if (fabs(v) < step * 1e-9) {
        sb_addc(sb, '0');
        return;
    }
    size_t u = 0;
    while (u + 1 < sizeof units / sizeof units[0] && fabs(v) < units[u].div * (1 - 1e-9))
        u++;
    double q = step / units[u].div;
    int dec = q >= 1 ? 0 : (int)-floor(log10(q) + 1e-9);
    if (dec > 12) dec = 12;
    char num[64];
    int n = snprintf(num, sizeof num, "%.*f", dec, v / units[u].div);
    while (dec > 0 && n > 1 && num[n - 1] == '0')
        num[--n] = '\0';
    if (n > 1 && num[n - 1] == '.') num[--n] = '\0';
    sb_printf(sb, "%s%s", num, units[u].suf);
}

/* A duration in ms from its largest unit down to its smallest non-zero one: 850ms, 12s,
 * 1.5s, 4m, 4m05s, 1h00m01s, 3d04h. */
static void rep_dur(strbuf *sb, int64_t ms)
{
    if (ms < 0) {
        sb_addc(sb, '-');
        ms = -ms;
    }
    if (ms < 1000) {
        sb_printf(sb, "%" PRId64 "ms", ms);
        return;
    }
    if (ms < 60000 && ms % 1000) {
        sb_printf(sb, "%gs", (double)ms / 1000);
        return;
    }
    static const struct {
        int64_t ms;
        const char *unit;
    } units[] = {{86400000, "d"}, {3600000, "h"}, {60000, "m"}, {1000, "s"}};
    int started = 0;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        int64_t v = ms / units[i].ms;
        ms %= units[i].ms;
        if (!started && !v) continue;
        sb_printf(sb, started ? "%02" PRId64 "%s" : "%" PRId64 "%s", v, units[i].unit);
        started = 1;
        if (ms < 1000) break; /* the rest is zero (or below the second) */
    }
}

enum rep_tfmt { TF_FULL, TF_CLOCK, TF_CLOCK_MS, TF_DAY_CLOCK, TF_DATE };

/* A batch time: UTC for epoch times (in the given layout), else a duration from zero. */
static void rep_time(strbuf *sb, int64_t t, int fmt)
{
    if (t < REP_EPOCH_MS) {
        rep_dur(sb, t);
        return;
    }
    time_t secs = (time_t)(t / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    char buf[64];
    static const char *const layouts[] = {"%Y-%m-%d %H:%M:%S", "%H:%M:%S", "%H:%M:%S",
                                          "%m-%d %H:%M", "%Y-%m-%d"};
    strftime(buf, sizeof buf, layouts[fmt], &tm);
    sb_adds(sb, buf);
    if (fmt == TF_CLOCK_MS || (fmt == TF_FULL && t % 1000)) sb_printf(sb, ".%03d", (int)(t % 1000));
}

/* ------------------------------------------------------------------------------ the data */

static int rep_is_num(const sp_td *t)
{
    return t->kind == TD_LEAF &&
           (t->leaf == SP_I32 || t->leaf == SP_I64 || t->leaf == SP_F32 || t->leaf == SP_F64);
}

static int rep_is_pair(const sp_td *t)
{
    return t->kind == TD_TUPLE && t->n == 2;
}

static void sec_free_keys(report *r, rep_section *s)
{
    for (size_t i = 0; i < s->nkeys; i++)
        mem_free(r->alloc, s->keys[i].text);
    mem_free(r->alloc, s->keys);
    mem_free(r->alloc, s->index);
    s->keys = NULL;
    s->index = NULL;
    s->nkeys = s->cap_keys = s->index_cap = 0;
}

static void sec_free(report *r, rep_section *s)
{
    mem_free(r->alloc, s->title);
    mem_free(r->alloc, s->about);
    td_free(r->alloc, s->td);
    mem_free(r->alloc, s->pts);
    mem_free(r->alloc, s->tops);
    sec_free_keys(r, s);
    sb_free(&s->latest);
}

static int rep_ranks(report *r, size_t n, sp_diag *d)
{
    if (n <= r->cap_ranks) return 0;
    size_t cap = r->cap_ranks ? r->cap_ranks : 256;
    while (cap < n)
        cap *= 2;
    rep_rank *p = mem_realloc(r->alloc, r->ranks, cap * sizeof *p);
    if (!p) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    r->ranks = p;
    r->cap_ranks = cap;
    return 0;
}

static int rank_cmp(const void *x, const void *y)
{
    const rep_rank *a = x, *b = y;
    if (a->a != b->a) return a->a > b->a ? -1 : 1;
    if (a->b != b->b) return a->b > b->b ? -1 : 1;
    return a->id < b->id ? -1 : a->id > b->id;
}

/* Ranks the live keys of s into r->ranks (by appearances first when by_batches, else by sum);
 * returns how many. */
static int sec_rank_keys(report *r, rep_section *s, int by_batches, size_t *n, sp_diag *d)
{
    int rc = rep_ranks(r, s->nkeys, d);
    if (rc) return rc;
    for (size_t i = 0; i < s->nkeys; i++) {
        const rep_key *k = &s->keys[i];
        r->ranks[i].a = by_batches ? (double)k->batches : k->total;
        r->ranks[i].b = by_batches ? k->total : (double)k->batches;
        r->ranks[i].id = (uint32_t)i;
    }
    if (s->nkeys > 1) qsort(r->ranks, s->nkeys, sizeof *r->ranks, rank_cmp);
    *n = s->nkeys;
    return 0;
}

static int sec_index_build(report *r, rep_section *s, size_t cap, sp_diag *d)
{
    uint32_t *ix = mem_alloc(r->alloc, cap * sizeof *ix);
    if (!ix) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    memset(ix, 0xFF, cap * sizeof *ix);
    for (size_t i = 0; i < s->nkeys; i++) {
        size_t j = s->keys[i].hash & (cap - 1);
        while (ix[j] != UINT32_MAX)
            j = (j + 1) & (cap - 1);
        ix[j] = (uint32_t)i;
    }
    mem_free(r->alloc, s->index);
    s->index = ix;
    s->index_cap = cap;
    return 0;
}

/* The id of a key's text, added (with zero statistics) if new. */
static int sec_key(report *r, rep_section *s, const char *txt, size_t len, uint32_t *id, sp_diag *d)
{
    int rc;
    if ((s->nkeys + 1) * 2 > s->index_cap &&
        (rc = sec_index_build(r, s, s->index_cap ? s->index_cap * 2 : 256, d)))
        return rc;
    uint64_t h = XXH3_64bits(txt, len);
    size_t mask = s->index_cap - 1, j = h & mask;
    for (;; j = (j + 1) & mask) {
        uint32_t k = s->index[j];
        if (k == UINT32_MAX) break;
        if (s->keys[k].hash == h && s->keys[k].len == len && !memcmp(s->keys[k].text, txt, len)) {
            *id = k;
            return 0;
        }
    }
    if (s->nkeys == s->cap_keys) {
        size_t cap = s->cap_keys ? s->cap_keys * 2 : 64;
        rep_key *p = mem_realloc(r->alloc, s->keys, cap * sizeof *p);
        if (!p) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
        s->keys = p;
        s->cap_keys = cap;
    }
    rep_key *k = &s->keys[s->nkeys];
    memset(k, 0, sizeof *k);
    if (!(k->text = mem_alloc(r->alloc, len + 1)))
        return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    memcpy(k->text, txt, len);
    k->text[len] = '\0';
    k->len = len;
    k->hash = h;
    k->bt = INT64_MIN;
    s->index[j] = (uint32_t)s->nkeys;
    *id = (uint32_t)s->nkeys++;
    return 0;
}

/* Forgets the lowest-ranked keys once there are more than REPORT_KEYS: keeps the best half
 * and every key a chart point refers to. O(keys log keys), at most once per REPORT_KEYS / 2
 * new keys. */
static int sec_prune(report *r, rep_section *s, sp_diag *d)
{
    if (s->nkeys <= s->prune_at) return 0;
    size_t n;
    int rc = sec_rank_keys(r, s, s->kind != REP_KEYED, &n, d);
    if (rc) return rc;
    uint32_t *remap = mem_alloc(r->alloc, s->nkeys * sizeof *remap);
    if (!remap) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    for (size_t i = 0; i < s->nkeys; i++)
        s->keys[i].mark = 0;
    for (size_t i = 0; i < n && i < REPORT_KEYS / 2; i++)
        s->keys[r->ranks[i].id].mark = 1;
    for (size_t p = 0; s->tops && p < s->npts; p++)
        for (uint32_t j = 0; j < s->pts[p].ntop; j++)
            s->keys[s->tops[p * REPORT_TOP + j].key].mark = 1;
    size_t m = 0;
    for (size_t i = 0; i < s->nkeys; i++) {
        if (s->keys[i].mark) {
            remap[i] = (uint32_t)m;
            s->keys[m++] = s->keys[i];
        } else {
            remap[i] = UINT32_MAX;
            mem_free(r->alloc, s->keys[i].text);
        }
    }
    s->nkeys = m;
    /* Keys that chart points refer to may keep m above REPORT_KEYS / 2: the next prune waits
     * for as many new keys again, so pruning stays amortised O(log keys) per key. */
    s->prune_at = 2 * m > REPORT_KEYS ? 2 * m : REPORT_KEYS;
    for (size_t p = 0; s->tops && p < s->npts; p++)
        for (uint32_t j = 0; j < s->pts[p].ntop; j++) {
            rep_kv *kv = &s->tops[p * REPORT_TOP + j];
            kv->key = remap[kv->key];
        }
    mem_free(r->alloc, remap);
    size_t cap = 256;
    while (cap < 2 * (m + 1))
        cap *= 2;
    return sec_index_build(r, s, cap, d);
}

/* The point for a batch at time t: a new one, or the last one while its group of `stride`
 * batches is not full. At REPORT_POINTS points every other point is dropped first. */
static int sec_point(report *r, rep_section *s, int64_t t, rep_point **out, sp_diag *d)
{
    if (s->npts == 0 || s->gfill >= s->stride) {
        if (s->npts == REPORT_POINTS) {
            for (size_t i = 0; i < s->npts / 2; i++) {
                s->pts[i] = s->pts[2 * i + 1];
                if (s->tops)
                    memcpy(&s->tops[i * REPORT_TOP], &s->tops[(2 * i + 1) * REPORT_TOP],
                           REPORT_TOP * sizeof *s->tops);
            }
            s->npts /= 2;
            s->stride *= 2;
        }
        if (s->npts == s->cap_pts) {
            size_t cap = s->cap_pts ? s->cap_pts * 2 : 64;
            if (cap > REPORT_POINTS) cap = REPORT_POINTS;
            rep_point *p = mem_realloc(r->alloc, s->pts, cap * sizeof *p);
            if (!p) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
            s->pts = p;
            if (s->kind == REP_KEYED) {
                rep_kv *kv = mem_realloc(r->alloc, s->tops, cap * REPORT_TOP * sizeof *kv);
                if (!kv) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
                s->tops = kv;
            }
            s->cap_pts = cap;
        }
        s->npts++;
        s->gfill = 0;
    }
    s->gfill++;
    rep_point *p = &s->pts[s->npts - 1];
    memset(p, 0, sizeof *p);
    p->t = t;
    *out = p;
    return 0;
}

static void table_open(strbuf *sb, const char *const *heads, const int *num, int n)
{
    sb_adds(sb, "<thead><tr>");
    for (int i = 0; i < n; i++)
        sb_printf(sb, "<th%s>%s</th>", num[i] ? " class=\"num\"" : "", heads[i]);
    sb_adds(sb, "</tr></thead>\n<tbody>\n");
}

static void latest_caption(strbuf *sb, const sp_batch *b, const char *order)
{
    sb_adds(sb, "<div>\n<table>\n<caption>Latest batch, ");
    rep_time(sb, b->time_ms, TF_FULL);
    sb_printf(sb, " &#183; %zu row%s%s</caption>\n", b->n, b->n == 1 ? "" : "s", order);
}

static void latest_more(strbuf *sb, size_t shown, size_t n)
{
    sb_adds(sb, "</tbody>\n</table>\n");
    if (n > shown) sb_printf(sb, "<p class=\"more\">&#8230; and %zu more rows</p>\n", n - shown);
    sb_adds(sb, "</div>\n");
}

static int sec_take_scalar(report *r, rep_section *s, const sp_batch *b, sp_diag *d)
{
    const sp_col *c = &b->cols[0];
    double sum = 0;
    for (size_t i = 0; i < b->n; i++)
        sum += col_get_f64(c, i);
    rep_point *p;
    int rc = sec_point(r, s, b->time_ms, &p, d);
    if (rc) return rc;
    p->v = sum;
    p->n = b->n;
    s->recent[(s->batches - 1) % REP_RECENT] = *p;
    if (b->n) {
        if (!s->vcount || sum < s->vmin) s->vmin = sum;
        if (!s->vcount || sum > s->vmax) s->vmax = sum;
        s->vsum += sum;
        s->vcount++;
    }
    s->last_sum = sum;
    return 0;
}

/* Marks the 2 x REPORT_SERIES keys with the largest sums (ties: the older key) as hot.
 * O(keys x REPORT_SERIES). */
static void sec_mark_hot(rep_section *s)
{
    uint32_t best[2 * REPORT_SERIES];
    int nb = 0;
    for (size_t i = 0; i < s->nkeys; i++) {
        s->keys[i].hot = 0;
        double v = s->keys[i].total;
        if (nb == 2 * REPORT_SERIES && !(v > s->keys[best[nb - 1]].total)) continue;
        int j = nb < 2 * REPORT_SERIES ? nb++ : nb - 1;
        while (j > 0 && v > s->keys[best[j - 1]].total) {
            best[j] = best[j - 1];
            j--;
        }
        best[j] = (uint32_t)i;
    }
    for (int j = 0; j < nb; j++)
        s->keys[best[j]].hot = 1;
}

static int sec_take_keyed(report *r, rep_section *s, const sp_batch *b, sp_diag *d)
{
    const sp_td *kt = s->td->child[0], *vt = s->td->child[1];
    const sp_col *vc = &b->cols[vt->col];
    int rc = rep_ranks(r, b->n, d);
    if (rc) return rc;
    size_t nt = 0;
    double sum = 0;
    for (size_t i = 0; i < b->n; i++) {
        sb_reset(&r->key);
        rep_fmt(b, kt, i, &r->key);
        if (r->key.oom) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
        uint32_t id;
        if ((rc = sec_key(r, s, r->key.s ? r->key.s : "", r->key.len, &id, d))) return rc;
        double v = col_get_f64(vc, i);
        sum += v;
        rep_key *k = &s->keys[id];
        if (k->bt != b->time_ms) {
            k->bt = b->time_ms;
            k->bv = v;
            r->ranks[nt++].id = id;
        } else {
            k->bv += v; /* a key twice in one batch: its values are summed */
        }
    }
    for (size_t i = 0; i < nt; i++) {
        rep_key *k = &s->keys[r->ranks[i].id];
        k->total += k->bv;
        k->last = k->bv;
        k->batches++;
        r->ranks[i].a = k->bv;
        r->ranks[i].b = 0;
    }
    if (nt > 1) qsort(r->ranks, nt, sizeof *r->ranks, rank_cmp);
    rep_point *p;
    if ((rc = sec_point(r, s, b->time_ms, &p, d))) return rc;
    p->v = (double)b->n;
    p->n = b->n;
    /* The point keeps the keys likely to be charted (hot), then the batch's largest values. */
    sec_mark_hot(s);
    rep_kv *tops = &s->tops[(size_t)(p - s->pts) * REPORT_TOP];
    for (int pass = 0; pass < 2; pass++)
        for (size_t j = 0; j < nt && p->ntop < REPORT_TOP; j++) {
            const rep_key *k = &s->keys[r->ranks[j].id];
            if (k->hot != (pass == 0)) continue;
            tops[p->ntop].key = r->ranks[j].id;
            tops[p->ntop++].v = r->ranks[j].a;
        }
    s->last_sum = sum;

    strbuf *sb = &s->latest;
    sb_reset(sb);
    latest_caption(sb, b, nt ? ", largest first" : "");
    static const char *const heads[] = {"#", "key", "value"};
    static const int num[] = {1, 0, 1};
    table_open(sb, heads, num, 3);
    size_t shown = nt < REPORT_TABLE_ROWS ? nt : REPORT_TABLE_ROWS;
    for (size_t j = 0; j < shown; j++) {
        const rep_key *k = &s->keys[r->ranks[j].id];
        sb_printf(sb, "<tr><td class=\"num\">%zu</td><td class=\"key\">", j + 1);
        rep_esc(sb, k->text, k->len, REP_CELL);
        sb_adds(sb, "</td><td class=\"num\">");
        rep_num(sb, k->bv, s->integral);
        sb_adds(sb, "</td></tr>\n");
    }
    latest_more(sb, shown, nt);
    return sec_prune(r, s, d);
}

static int sec_take_rows(report *r, rep_section *s, const sp_batch *b, sp_diag *d)
{
    int rc;
    rep_point *p;
    if ((rc = sec_point(r, s, b->time_ms, &p, d))) return rc;
    p->v = (double)b->n;
    p->n = b->n;
    if (s->track_keys && s->max_rows > REPORT_SMALL_ROWS) {
        s->track_keys = 0; /* not a top-k-like output: key counts would say little */
        sec_free_keys(r, s);
    }
    for (size_t i = 0; s->track_keys && i < b->n; i++) {
        sb_reset(&r->key);
        rep_fmt(b, s->td->child[0], i, &r->key);
        if (r->key.oom) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
        uint32_t id;
        if ((rc = sec_key(r, s, r->key.s ? r->key.s : "", r->key.len, &id, d))) return rc;
        rep_key *k = &s->keys[id];
        if (k->bt != b->time_ms) {
            k->bt = b->time_ms;
            k->batches++;
        }
    }
    strbuf *sb = &s->latest;
    sb_reset(sb);
    latest_caption(sb, b, "");
    const sp_td *t = s->td;
    int ncol = t->kind == TD_TUPLE ? t->n : 1;
    sb_adds(sb, "<thead><tr>");
    if (t->kind == TD_TUPLE)
        for (int c = 0; c < ncol; c++)
            sb_printf(sb, "<th>_%d</th>", c + 1);
    else
        sb_adds(sb, "<th>element</th>");
    sb_adds(sb, "</tr></thead>\n<tbody>\n");
    size_t shown = b->n < REPORT_TABLE_ROWS ? b->n : REPORT_TABLE_ROWS;
    for (size_t i = 0; i < shown; i++) {
        sb_adds(sb, "<tr>");
        for (int c = 0; c < ncol; c++) {
            const sp_td *ct = t->kind == TD_TUPLE ? t->child[c] : t;
            sb_reset(&r->key);
            rep_fmt(b, ct, i, &r->key);
            sb_printf(sb, "<td%s>", rep_is_num(ct) ? " class=\"num\"" : " class=\"key\"");
            rep_esc(sb, r->key.s ? r->key.s : "", r->key.len, REP_CELL);
            sb_adds(sb, "</td>");
        }
        sb_adds(sb, "</tr>\n");
    }
    latest_more(sb, shown, b->n);
    return s->track_keys ? sec_prune(r, s, d) : 0;
}

static int sec_take(report *r, rep_section *s, const sp_batch *b, sp_diag *d)
{
    if (b->n > s->max_rows) s->max_rows = b->n;
    if (!s->batches) s->first_t = b->time_ms;
    s->batches++;
    s->last_t = b->time_ms;
    s->last_rows = b->n;
    s->rows_sum += b->n;
    int rc;
    switch (s->kind) {
    case REP_SCALAR:
        rc = sec_take_scalar(r, s, b, d);
        break;
    case REP_KEYED:
        rc = sec_take_keyed(r, s, b, d);
        break;
    default:
        rc = sec_take_rows(r, s, b, d);
    }
    if (!rc && s->latest.oom) rc = diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    return rc;
}

/* ---------------------------------------------------------------------------------- charts */

#define CH_W 960
#define CH_H 270
#define CH_L 64
#define CH_R 44
#define CH_T 14
#define CH_B 30

/* Value of series j at point p (NAN: no value). key: the key id (keyed sections). */
static double series_value(const rep_section *s, size_t p, uint32_t key)
{
    const rep_point *pt = &s->pts[p];
    switch (s->kind) {
    case REP_SCALAR:
        return pt->n ? pt->v : NAN;
    case REP_KEYED: {
        const rep_kv *tops = &s->tops[p * REPORT_TOP];
        for (uint32_t j = 0; j < pt->ntop; j++)
            if (tops[j].key == key) return tops[j].v;
        return NAN;
    }
    default:
        return pt->v;
    }
}

static double nice_step(double raw, int integral)
{
    if (!(raw > 0)) return 1;
    double e = pow(10, floor(log10(raw)));
    double m = raw / e;
    double step = (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * e;
    return integral && step < 1 ? 1 : step;
}

/* Time tick spacing: the smallest of these giving at most 8 intervals over span. */
static int64_t time_step(int64_t span)
{
    static const int64_t steps[] = {1,        2,        5,        10,        20,       50,
                                    100,      200,      500,      1000,      2000,     5000,
                                    10000,    15000,    30000,    60000,     120000,   300000,
                                    600000,   900000,   1800000,  3600000,   7200000,  10800000,
                                    21600000, 43200000, 86400000, 172800000, 604800000};
    for (size_t i = 0; i < sizeof steps / sizeof steps[0]; i++)
        if (span / steps[i] <= 8) return steps[i];
    int64_t s = 604800000;
    while (span / s > 8)
        s *= 2;
    return s;
}

static void render_chart(report *r, rep_section *s, const uint32_t *keys, int nseries, strbuf *sb)
{
    const double pw = CH_W - CH_L - CH_R, ph = CH_H - CH_T - CH_B;
    double ymin = 0, ymax = 0;
    size_t have = 0;
    for (int j = 0; j < nseries; j++)
        for (size_t p = 0; p < s->npts; p++) {
            double v = series_value(s, p, keys[j]);
            if (!isfinite(v)) continue;
            if (v < ymin) ymin = v;
            if (v > ymax) ymax = v;
            have++;
        }
    sb_printf(sb, "<svg class=\"chart\" viewBox=\"0 0 %d %d\" role=\"img\">\n<title>", CH_W, CH_H);
    rep_escs(sb, s->title);
    sb_adds(sb, "</title>\n");
    if (!have) {
        sb_printf(sb, "<text x=\"%d\" y=\"%d\" text-anchor=\"middle\">no values yet</text>\n",
                  CH_W / 2, CH_H / 2);
        sb_adds(sb, "</svg>\n");
        return;
    }
    /* y axis: nice ticks covering [ymin, ymax] and zero */
    if (ymax == ymin) ymax = ymin + (s->integral ? 1 : fabs(ymin) > 0 ? fabs(ymin) : 1);
    double ystep = nice_step((ymax - ymin) / 5, s->integral);
    double ylo = floor(ymin / ystep) * ystep, yhi = ceil(ymax / ystep) * ystep;
    if (yhi <= ylo) yhi = ylo + ystep;
    int nyt = (int)llround((yhi - ylo) / ystep);
    sb_adds(sb, "<g class=\"grid\">\n");
    for (int i = 0; i <= nyt; i++) {
        double v = ylo + i * ystep;
        double y = CH_T + ph - (v - ylo) / (yhi - ylo) * ph;
        sb_printf(sb, "<line x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", CH_L, y, CH_W - CH_R,
                  y);
    }
    sb_adds(sb, "</g>\n<g class=\"ylab\" text-anchor=\"end\">\n");
    for (int i = 0; i <= nyt; i++) {
        double v = ylo + i * ystep;
        double y = CH_T + ph - (v - ylo) / (yhi - ylo) * ph;
        sb_printf(sb, "<text x=\"%d\" y=\"%.1f\">", CH_L - 8, y + 4);
        rep_tick(sb, v, ystep);
        sb_adds(sb, "</text>\n");
    }
    sb_adds(sb, "</g>\n");

    /* x axis: the page's time range, padded when it is one instant */
    int64_t t0 = r->t0, t1 = r->t1;
    if (t1 == t0) {
        t0 -= 1000;
        t1 += 1000;
    }
    double span = (double)(t1 - t0);
    int64_t tstep = time_step(t1 - t0);
    int tf = tstep < 1000                    ? TF_CLOCK_MS
             : tstep >= 86400000             ? TF_DATE
             : (t1 - t0) > INT64_C(86400000) ? TF_DAY_CLOCK
                                             : TF_CLOCK;
    int64_t first = t0 >= 0 ? (t0 + tstep - 1) / tstep * tstep : t0 / tstep * tstep;
    sb_printf(sb, "<line class=\"axis\" x1=\"%d\" y1=\"%.1f\" x2=\"%d\" y2=\"%.1f\"/>\n", CH_L,
              CH_T + ph, CH_W - CH_R, CH_T + ph);
    sb_adds(sb, "<g class=\"xlab\" text-anchor=\"middle\">\n");
    for (int64_t t = first; t <= t1; t += tstep) {
        double x = CH_L + (double)(t - t0) / span * pw;
        sb_printf(sb,
                  "<line class=\"axis\" x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\"/>"
                  "<text x=\"%.1f\" y=\"%.1f\">",
                  x, CH_T + ph, x, CH_T + ph + 5, x, CH_T + ph + 18);
        rep_time(sb, t, tf);
        sb_adds(sb, "</text>\n");
    }
    sb_adds(sb, "</g>\n");

    /* series: one polyline per run of consecutive points with a value */
    for (int j = nseries - 1; j >= 0; j--) {
        const char *color = rep_colors[j % REPORT_SERIES];
        size_t count = 0;
        for (size_t p = 0; p < s->npts; p++)
            count += isfinite(series_value(s, p, keys[j])) != 0;
        sb_printf(sb, "<g class=\"series\" stroke=\"%s\" fill=\"%s\">\n", color, color);
        size_t p = 0;
        while (p < s->npts) {
            while (p < s->npts && !isfinite(series_value(s, p, keys[j])))
                p++;
            size_t q = p;
            while (q < s->npts && isfinite(series_value(s, q, keys[j])))
                q++;
            if (q - p >= 2) {
                sb_adds(sb, "<polyline fill=\"none\" points=\"");
                for (size_t k = p; k < q; k++) {
                    double x = CH_L + (double)(s->pts[k].t - t0) / span * pw;
                    double y = CH_T + ph - (series_value(s, k, keys[j]) - ylo) / (yhi - ylo) * ph;
                    sb_printf(sb, "%s%.1f,%.1f", k > p ? " " : "", x, y);
                }
                sb_adds(sb, "\"/>\n");
            }
            for (size_t k = p; k < q && (count <= REP_DOTS || q - p == 1); k++) {
                double x = CH_L + (double)(s->pts[k].t - t0) / span * pw;
                double y = CH_T + ph - (series_value(s, k, keys[j]) - ylo) / (yhi - ylo) * ph;
                sb_printf(sb, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\"/>\n", x, y);
            }
            p = q;
        }
        sb_adds(sb, "</g>\n");
    }
    sb_adds(sb, "</svg>\n");
}

/* ------------------------------------------------------------------------------ sections */

static void stat(strbuf *sb, const char *label)
{
    sb_printf(sb, "<div class=\"stat\"><span>%s</span><b>", label);
}

static void stat_end(strbuf *sb)
{
    sb_adds(sb, "</b></div>\n");
}

static void render_scalar(report *r, rep_section *s, strbuf *sb)
{
    uint32_t key = 0;
    sb_adds(sb, "<div class=\"stats\">\n");
    stat(sb, "latest");
    if (s->pts[s->npts - 1].n)
        rep_num(sb, s->last_sum, s->integral);
    else
        sb_adds(sb, "&#8212;");
    stat_end(sb);
    if (s->vcount) {
        stat(sb, "min");
        rep_num(sb, s->vmin, s->integral);
        stat_end(sb);
        stat(sb, "mean");
        rep_num(sb, s->vsum / (double)s->vcount, 0);
        stat_end(sb);
        stat(sb, "max");
        rep_num(sb, s->vmax, s->integral);
        stat_end(sb);
    }
    stat(sb, "batches");
    rep_num(sb, (double)s->batches, 1);
    stat_end(sb);
    sb_adds(sb, "</div>\n");
    render_chart(r, s, &key, 1, sb);
    sb_adds(sb, "<div class=\"tables\">\n<div>\n<table>\n<caption>Latest batches</caption>\n");
    static const char *const heads[] = {"batch time", "value"};
    static const int num[] = {0, 1};
    table_open(sb, heads, num, 2);
    for (uint64_t i = 0; i < REP_RECENT && i < s->batches; i++) {
        const rep_point *p = &s->recent[(s->batches - 1 - i) % REP_RECENT];
        sb_adds(sb, "<tr><td>");
        rep_time(sb, p->t, TF_FULL);
        sb_adds(sb, "</td><td class=\"num\">");
        if (p->n)
            rep_num(sb, p->v, s->integral);
        else
            sb_adds(sb, "&#8212;");
        sb_adds(sb, "</td></tr>\n");
    }
    sb_adds(sb, "</tbody>\n</table>\n</div>\n</div>\n");
}

/* The key statistics table: ranked by appearances (top-k-like sections) or by sum. */
static int render_keys(report *r, rep_section *s, strbuf *sb, sp_diag *d)
{
    int small = s->max_rows <= REPORT_SMALL_ROWS;
    size_t n;
    int rc = sec_rank_keys(r, s, small, &n, d);
    if (rc) return rc;
    int keyed = s->kind == REP_KEYED;
    sb_printf(sb, "<div>\n<table>\n<caption>%s over %" PRIu64 " batch%s</caption>\n",
              small ? "Keys seen most often" : "Top keys by sum", s->batches,
              s->batches == 1 ? "" : "es");
    static const char *const heads[] = {"#", "key", "batches", "sum", "latest"};
    static const int num[] = {1, 0, 1, 1, 1};
    table_open(sb, heads, num, keyed ? 5 : 3);
    size_t shown = n < REPORT_TABLE_ROWS ? n : REPORT_TABLE_ROWS;
    for (size_t i = 0; i < shown; i++) {
        const rep_key *k = &s->keys[r->ranks[i].id];
        sb_printf(sb, "<tr><td class=\"num\">%zu</td><td class=\"key\">", i + 1);
        rep_esc(sb, k->text, k->len, REP_CELL);
        sb_adds(sb, "</td><td class=\"num\">");
        rep_num(sb, (double)k->batches, 1);
        sb_adds(sb, "</td>");
        if (keyed) {
            sb_adds(sb, "<td class=\"num\">");
            rep_num(sb, k->total, s->integral);
            sb_adds(sb, "</td><td class=\"num\">");
            if (k->bt == s->last_t)
                rep_num(sb, k->last, s->integral);
            else
                sb_adds(sb, "&#8212;");
            sb_adds(sb, "</td>");
        }
        sb_adds(sb, "</tr>\n");
    }
    sb_adds(sb, "</tbody>\n</table>\n");
    if (n > shown) sb_printf(sb, "<p class=\"more\">&#8230; and %zu more keys</p>\n", n - shown);
    sb_adds(sb, "</div>\n");
    return 0;
}

static int render_keyed(report *r, rep_section *s, strbuf *sb, sp_diag *d)
{
    size_t n;
    int rc = sec_rank_keys(r, s, 0, &n, d);
    if (rc) return rc;
    uint32_t keys[REPORT_SERIES];
    int nseries = 0;
    for (size_t i = 0; i < n && nseries < REPORT_SERIES; i++) {
        int shown = 0;
        for (size_t p = 0; p < s->npts && !shown; p++)
            shown = isfinite(series_value(s, p, r->ranks[i].id));
        if (shown) keys[nseries++] = r->ranks[i].id;
    }
    sb_adds(sb, "<div class=\"stats\">\n");
    stat(sb, "rows in latest batch");
    rep_num(sb, (double)s->last_rows, 1);
    stat_end(sb);
    stat(sb, "sum of latest batch");
    rep_num(sb, s->last_sum, s->integral);
    stat_end(sb);
    stat(sb, "keys seen");
    rep_num(sb, (double)s->nkeys, 1);
    stat_end(sb);
    stat(sb, "batches");
    rep_num(sb, (double)s->batches, 1);
    stat_end(sb);
    sb_adds(sb, "</div>\n");
    render_chart(r, s, keys, nseries, sb);
    sb_adds(sb, "<ul class=\"legend\">\n");
    for (int j = 0; j < nseries; j++) {
        const rep_key *k = &s->keys[keys[j]];
        sb_printf(sb, "<li><span class=\"sw\" style=\"background:%s\"></span>", rep_colors[j]);
        rep_esc(sb, k->text, k->len, REP_LEGEND_KEY);
        sb_adds(sb, " <span class=\"dim\">(sum ");
        rep_num(sb, k->total, s->integral);
        sb_adds(sb, ")</span></li>\n");
    }
    sb_adds(sb, "</ul>\n<div class=\"tables\">\n");
    sb_add(sb, s->latest.s ? s->latest.s : "", s->latest.len);
    if ((rc = render_keys(r, s, sb, d))) return rc;
    sb_adds(sb, "</div>\n");
    return 0;
}

static int render_rows(report *r, rep_section *s, strbuf *sb, sp_diag *d)
{
    uint32_t key = 0;
    sb_adds(sb, "<div class=\"stats\">\n");
    stat(sb, "rows in latest batch");
    rep_num(sb, (double)s->last_rows, 1);
    stat_end(sb);
    stat(sb, "mean rows per batch");
    rep_num(sb, (double)s->rows_sum / (double)s->batches, 0);
    stat_end(sb);
    stat(sb, "most rows in a batch");
    rep_num(sb, (double)s->max_rows, 1);
    stat_end(sb);
    stat(sb, "batches");
    rep_num(sb, (double)s->batches, 1);
    stat_end(sb);
    sb_adds(sb, "</div>\n");
    render_chart(r, s, &key, 1, sb);
    sb_adds(sb, "<div class=\"tables\">\n");
    sb_add(sb, s->latest.s ? s->latest.s : "", s->latest.len);
    int rc = s->track_keys && s->nkeys ? render_keys(r, s, sb, d) : 0;
    sb_adds(sb, "</div>\n");
    return rc;
}

static const char rep_css[] =
    "*{box-sizing:border-box}\n"
    "body{margin:0;background:#f3f4f6;color:#1f2328;"
    "font:14px/1.45 system-ui,-apple-system,'Segoe UI',Roboto,'DejaVu Sans',sans-serif}\n"
    "header{background:#1f2937;color:#f9fafb;padding:18px 28px}\n"
    "header h1{margin:0;font-size:22px;font-weight:600}\n"
    "header p{margin:4px 0 0;color:#cbd5e1;font-size:13px}\n"
    "nav{margin-top:8px;font-size:13px}\n"
    "nav a{color:#93c5fd;margin-right:14px;text-decoration:none}\n"
    "main{max-width:1060px;margin:0 auto;padding:8px 20px 24px}\n"
    "section{background:#fff;border:1px solid #d8dee4;border-radius:8px;padding:16px 20px;"
    "margin:16px 0}\n"
    "h2{margin:0;font-size:18px}\n"
    ".about{margin:2px 0 10px;color:#57606a;font-size:13px}\n"
    ".stats{display:flex;flex-wrap:wrap;gap:8px 32px;margin:0 0 8px}\n"
    ".stat span{display:block;color:#57606a;font-size:12px}\n"
    ".stat b{font-size:20px;font-weight:600;font-variant-numeric:tabular-nums}\n"
    "svg.chart{display:block;width:100%;height:auto;background:#fff}\n"
    "svg.chart text{font-size:12px;fill:#57606a}\n"
    ".grid line{stroke:#e5e7eb;stroke-width:1}\n"
    ".axis{stroke:#8c959f;stroke-width:1}\n"
    ".series polyline{stroke-width:2;stroke-linejoin:round;stroke-linecap:round}\n"
    ".series circle{stroke:none}\n"
    ".legend{list-style:none;padding:0;margin:6px 0 12px;display:flex;flex-wrap:wrap;"
    "gap:4px 20px;font-size:13px}\n"
    ".sw{display:inline-block;width:12px;height:12px;border-radius:2px;margin-right:6px;"
    "vertical-align:-1px}\n"
    ".dim,.more,.empty{color:#57606a}\n"
    ".more{font-size:12px;margin:4px 0 0}\n"
    ".tables{display:flex;flex-wrap:wrap;gap:12px 28px;align-items:flex-start;margin-top:8px}\n"
    "table{border-collapse:collapse;font-size:13px;min-width:320px}\n"
    "caption{text-align:left;font-weight:600;padding:2px 0 6px}\n"
    "th,td{padding:3px 10px;border-bottom:1px solid #eaeef2;text-align:left;"
    "vertical-align:top}\n"
    "th{background:#f6f8fa;font-weight:600}\n"
    "th.num,td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}\n"
    "td.key{max-width:440px;overflow-wrap:anywhere}\n"
    "footer{color:#57606a;font-size:12px;text-align:center;padding:0 0 24px}\n";

static const char *const rep_kind_text[] = {
    "one value per batch (the sum when a batch has several elements)",
    "per-key values; the chart draws the keys with the largest sums",
    "elements per batch and the latest batch's rows"};

int report_render(report *r, strbuf *sb, sp_diag *d)
{
    int rc = 0;
    const char *base = strrchr(r->path, '/');
    base = base ? base + 1 : r->path;
    sb_reset(sb);
    sb_adds(sb, "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
                "<title>Spate report: ");
    rep_escs(sb, base);
    sb_printf(sb, "</title>\n<style>\n%s</style>\n</head>\n<body>\n<header>\n<h1>Spate report: ",
              rep_css);
    rep_escs(sb, base);
    sb_adds(sb, "</h1>\n<p>");
    if (r->have_time) {
        sb_adds(sb, "Batch times ");
        rep_time(sb, r->t0, TF_FULL);
        sb_adds(sb, " &#8211; ");
        rep_time(sb, r->t1, TF_FULL);
        sb_printf(sb, "%s &#183; %" PRIu64 " batch time%s &#183; generated at batch time ",
                  r->t1 >= REP_EPOCH_MS ? " UTC" : " after time zero", r->times,
                  r->times == 1 ? "" : "s");
        rep_time(sb, r->t1, TF_FULL);
    } else {
        sb_adds(sb, "No batches yet");
    }
    sb_printf(sb, " &#183; %d stream%s</p>\n", r->nsecs, r->nsecs == 1 ? "" : "s");
    if (r->nsecs > 1) {
        sb_adds(sb, "<nav>");
        for (int i = 0; i < r->nsecs; i++) {
            sb_printf(sb, "<a href=\"#s%d\">", i + 1);
            rep_escs(sb, r->secs[i].title);
            sb_adds(sb, "</a>");
        }
        sb_adds(sb, "</nav>\n");
    }
    sb_adds(sb, "</header>\n<main>\n");
    for (int i = 0; i < r->nsecs && !rc; i++) {
        rep_section *s = &r->secs[i];
        /* What the section took in, for programs that check the page against other sinks:
         * batches, their first and last times, and the elements over all of them. */
        sb_printf(sb,
                  "<section id=\"s%d\" data-batches=\"%" PRIu64 "\" data-rows=\"%" PRIu64
                  "\" data-first=\"%" PRId64 "\" data-last=\"%" PRId64 "\">\n<h2>",
                  i + 1, s->batches, s->rows_sum, s->batches ? s->first_t : 0,
                  s->batches ? s->last_t : 0);
        rep_escs(sb, s->title);
        sb_adds(sb, "</h2>\n<p class=\"about\">");
        rep_escs(sb, s->about);
        sb_printf(sb, " &#183; %s</p>\n", rep_kind_text[s->kind]);
        if (!s->npts) {
            sb_adds(sb, "<p class=\"empty\">No batches yet.</p>\n");
        } else if (s->kind == REP_SCALAR) {
            render_scalar(r, s, sb);
        } else if (s->kind == REP_KEYED) {
            rc = render_keyed(r, s, sb, d);
        } else {
            rc = render_rows(r, s, sb, d);
        }
        sb_adds(sb, "</section>\n");
    }
    sb_adds(sb, "</main>\n<footer>Written by Spate after every batch; a self-contained page "
                "(no scripts, nothing fetched).</footer>\n</body>\n</html>\n");
    if (!rc && sb->oom) rc = diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    return rc;
}

static double rep_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

/* Renders the page and puts it in place: written to a hidden sibling, then renamed, so a
 * reader sees the old page or the new one, never a partial one. */
static int report_write(report *r, sp_diag *d)
{
    double t0 = rep_now_ms();
    int rc = report_render(r, &r->page, d);
    if (rc) return rc;
    const char *slash = strrchr(r->path, '/');
    size_t dl = slash ? (size_t)(slash - r->path) + 1 : 0;
    sb_reset(&r->tmp_path);
    sb_add(&r->tmp_path, r->path, dl);
    sb_printf(&r->tmp_path, ".%s.tmp-%ld", r->path + dl, (long)getpid());
    if (r->tmp_path.oom) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    const char *tmp = sb_cstr(&r->tmp_path);
    FILE *f = fopen(tmp, "wb");
    if (!f)
        return diag_set(d, errno == ENOENT ? SP_ENOENT : SP_EIO, "report %s: %s", tmp,
                        strerror(errno));
    int bad = fwrite(r->page.s, 1, r->page.len, f) != r->page.len;
    bad |= fclose(f) != 0;
    if (bad) {
        rc = diag_set(d, SP_EIO, "report %s: %s", tmp, strerror(errno));
        remove(tmp);
        return rc;
    }
    if (rename(tmp, r->path) != 0) {
        rc = diag_set(d, SP_EIO, "report %s: %s", r->path, strerror(errno));
        remove(tmp);
        return rc;
    }
    r->dirty = 0;
    r->write_end_ms = rep_now_ms();
    r->write_cost_ms = r->write_end_ms - t0;
    return 0;
}

/* ------------------------------------------------------------------------------ the object */

int report_new(const sp_allocator *a, const char *path, report **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, path && *path, SP_EINVAL, "report: no path");
    report *r = mem_calloc(a, 1, sizeof *r);
    if (!r) return diag_set(d, SP_ENOMEM, "report %s: out of memory", path);
    r->alloc = a;
    r->refs = 1;
    sb_init(&r->page, a);
    sb_init(&r->key, a);
    sb_init(&r->tmp_path, a);
    int rc;
    if (!(r->path = mem_strdup(a, path))) {
        rc = diag_set(d, SP_ENOMEM, "report %s: out of memory", path);
        goto fail;
    }
    if ((rc = report_write(r, d))) goto fail;
    *out = r;
    return 0;
fail:
    report_release(r);
    return rc;
}

report *report_retain(report *r)
{
    r->refs++;
    return r;
}

void report_release(report *r)
{
    if (!r || --r->refs > 0) return;
    const sp_allocator *a = r->alloc;
    for (int i = 0; i < r->nsecs; i++)
        sec_free(r, &r->secs[i]);
    mem_free(a, r->secs);
    mem_free(a, r->ranks);
    sb_free(&r->page);
    sb_free(&r->key);
    sb_free(&r->tmp_path);
    mem_free(a, r->path);
    mem_free(a, r);
}

const char *report_path(const report *r)
{
    return r->path;
}

int report_add_section(report *r, const sp_td *td, const char *title, const char *about,
                       report_due_fn due, void *due_ud, int *index, sp_diag *d)
{
    SP_CHECK(d, td, SP_EINVAL, "report %s: no element type", r->path);
    if (r->nsecs == r->cap_secs) {
        int cap = r->cap_secs ? r->cap_secs * 2 : 4;
        rep_section *p = mem_realloc(r->alloc, r->secs, (size_t)cap * sizeof *p);
        if (!p) return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
        r->secs = p;
        r->cap_secs = cap;
    }
    rep_section *s = &r->secs[r->nsecs];
    memset(s, 0, sizeof *s);
    sb_init(&s->latest, r->alloc);
    if (!about) about = "";
    s->title = mem_strdup(r->alloc, title && *title ? title : about);
    s->about = mem_strdup(r->alloc, about);
    s->td = td_copy(r->alloc, td);
    if (!s->title || !s->about || !s->td) {
        sec_free(r, s);
        return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    }
    if (rep_is_num(td)) {
        s->kind = REP_SCALAR;
        s->integral = td->leaf == SP_I32 || td->leaf == SP_I64;
    } else if (rep_is_pair(td) && rep_is_num(td->child[1])) {
        s->kind = REP_KEYED;
        s->integral = td->child[1]->leaf == SP_I32 || td->child[1]->leaf == SP_I64;
        s->track_keys = 1;
    } else {
        s->kind = REP_ROWS;
        s->integral = 1;
        s->track_keys = rep_is_pair(td);
    }
    s->stride = 1;
    s->prune_at = REPORT_KEYS;
    s->due = due;
    s->due_ud = due_ud;
    *index = r->nsecs++;
    return report_write(r, d);
}

/* ---------------------------------------------------------------------------------- the sink */

static int report_sink_write(sp_sink *k, const sp_batch *b, sp_diag *d)
{
    rep_sink *rs = k->impl;
    report *r = rs->r;
    int rc = sec_take(r, &r->secs[rs->index], b, d);
    if (rc) return rc;
    if (!r->have_time || b->time_ms < r->t0) r->t0 = b->time_ms;
    if (!r->have_time || b->time_ms > r->t1) {
        r->t1 = b->time_ms;
        r->times++;
    }
    r->have_time = 1;
    r->dirty = 1;
    for (int j = rs->index + 1; j < r->nsecs; j++) {
        const rep_section *s = &r->secs[j];
        if (!s->due || s->due(s->due_ud, b->time_ms)) return 0; /* it rewrites the page */
    }
    if (rep_now_ms() - r->write_end_ms < REPORT_COST_RATIO * r->write_cost_ms)
        return 0; /* batches come faster than rewrites pay off: the next one (or close) does */
    return report_write(r, d);
}

static int report_sink_close(sp_sink *k, sp_diag *d)
{
    rep_sink *rs = k->impl;
    return rs->r->dirty ? report_write(rs->r, d) : 0;
}

static void report_sink_destroy(sp_sink *k)
{
    rep_sink *rs = k->impl;
    report_release(rs->r);
}

/* A restart feeds it the replayed batches too: the page is rewritten from what it took in. */
static const sink_vt report_vt = {"report", report_sink_write, report_sink_close,
                                  report_sink_destroy, NULL, NULL, 1};

int sink_report_new(report *r, int index, sp_sink **out, sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, index >= 0 && index < r->nsecs, SP_EINVAL, "report %s: no section %d", r->path,
             index);
    sp_sink *k = mem_calloc(r->alloc, 1, sizeof *k);
    rep_sink *rs = mem_calloc(r->alloc, 1, sizeof *rs);
    if (!k || !rs) {
        mem_free(r->alloc, k);
        mem_free(r->alloc, rs);
        return diag_set(d, SP_ENOMEM, "report %s: out of memory", r->path);
    }
    rs->r = report_retain(r);
    rs->index = index;
    k->vt = &report_vt;
    k->alloc = r->alloc;
    k->impl = rs;
    *out = k;
    return 0;
}
