/* parse.c — parse specs, the parallel runner (one task per chunk of rows, each with its own
 * output batch and string-id cache), rejects, and the time helpers the formats share. */
#include "io/parse_int.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <xxhash.h>

/* -------------------------------------------------------------------------------- spec */

int parse_spec_col(parse_spec *ps, const char *name, size_t nlen, sp_type t, sp_diag *d)
{
    const sp_allocator *a = ps->alloc;
    int n = ps->ncols + 1;
    sp_type *nt = mem_realloc(a, ps->types, (size_t)n * sizeof *nt);
    if (!nt) return diag_set(d, SP_ENOMEM, "parse(%s): out of memory", ps->name);
    ps->types = nt;
    char **nn = mem_realloc(a, ps->names, (size_t)n * sizeof *nn);
    if (!nn) return diag_set(d, SP_ENOMEM, "parse(%s): out of memory", ps->name);
    ps->names = nn;
    char *s = mem_alloc(a, nlen + 1);
    if (!s) return diag_set(d, SP_ENOMEM, "parse(%s): out of memory", ps->name);
    memcpy(s, name, nlen);
    s[nlen] = 0;
    for (int i = 0; i < ps->ncols; i++)
        if (strcmp(ps->names[i], s) == 0) {
            int rc = diag_set(d, SP_EINVAL, "parse(%s): column '%s' appears twice", ps->name, s);
            mem_free(a, s);
            return rc;
        }
    ps->types[ps->ncols] = t;
    ps->names[ps->ncols] = s;
    ps->ncols = n;
    return 0;
}

int parse_spec_typed_col(parse_spec *ps, const char *item, size_t n, sp_diag *d)
{
    while (n && (*item == ' ' || *item == '\t'))
        item++, n--;
    while (n && (item[n - 1] == ' ' || item[n - 1] == '\t'))
        n--;
    const char *colon = memchr(item, ':', n);
    size_t nlen = colon ? (size_t)(colon - item) : n;
    sp_type t = SP_STR;
    if (colon) {
        const char *ty = colon + 1;
        size_t tl = n - nlen - 1;
        int found = 0;
        for (int k = 0; k < SP_TYPE_COUNT && !found; k++) {
            const char *tn = sp_type_name((sp_type)k);
            if (strlen(tn) == tl && memcmp(tn, ty, tl) == 0) t = (sp_type)k, found = 1;
        }
        if (!found)
            return diag_set(d, SP_EINVAL, "parse(%s): unknown type '%.*s' for column '%.*s'",
                            ps->name, (int)tl, ty, (int)nlen, item);
    }
    if (nlen == 0) return diag_set(d, SP_EINVAL, "parse(%s): empty column name", ps->name);
    return parse_spec_col(ps, item, nlen, t, d);
}

void parse_spec_free(parse_spec *ps)
{
    if (!ps) return;
    const sp_allocator *a = ps->alloc;
    if (ps->impl && ps->impl_free) ps->impl_free(a, ps->impl);
    for (int i = 0; i < ps->ncols; i++)
        mem_free(a, ps->names[i]);
    mem_free(a, ps->names);
    mem_free(a, ps->types);
    if (ps->td) td_free(a, ps->td);
    mem_free(a, ps->name);
    mem_free(a, ps);
}

static int parse_spec_type(parse_spec *ps, sp_diag *d)
{
    const sp_allocator *a = ps->alloc;
    if (ps->ncols == 1) {
        ps->td = td_leaf(a, ps->types[0]);
    } else {
        sp_td **ch = mem_calloc(a, (size_t)ps->ncols, sizeof *ch);
        if (!ch) return diag_set(d, SP_ENOMEM, "parse(%s): out of memory", ps->name);
        for (int i = 0; i < ps->ncols; i++)
            if (!(ch[i] = td_leaf(a, ps->types[i]))) {
                for (int j = 0; j < i; j++)
                    td_free(a, ch[j]);
                mem_free(a, ch);
                return diag_set(d, SP_ENOMEM, "parse(%s): out of memory", ps->name);
            }
        ps->td = td_tuple(a, ps->ncols, ch); /* takes the children (and frees them on failure) */
        mem_free(a, ch);
    }
    if (!ps->td) return diag_set(d, SP_ENOMEM, "parse(%s): out of memory", ps->name);
    td_layout(ps->td, 0);
    return 0;
}

int parse_spec_new(const sp_allocator *a, const char *format, const char *arg, parse_spec **out,
                   sp_diag *d)
{
    *out = NULL;
    SP_CHECK(d, format && *format, SP_EINVAL, "parse: no format");
    parse_spec *ps = mem_calloc(a, 1, sizeof *ps);
    if (!ps) return diag_set(d, SP_ENOMEM, "parse: out of memory");
    ps->alloc = a;
    int rc;
    int fmt = strchr(format, '%') != NULL;
    const char *name = fmt ? "format" : format;
    if (!(ps->name = mem_strdup(a, name))) {
        rc = diag_set(d, SP_ENOMEM, "parse: out of memory");
        goto fail;
    }
    if (strcmp(format, "combined") == 0 || strcmp(format, "common") == 0)
        rc = parse_clf_init(ps, strcmp(format, "combined") == 0, d);
    else if (strcmp(format, "syslog") == 0)
        rc = parse_syslog_init(ps, arg, d);
    else if (strcmp(format, "json") == 0)
        rc = parse_json_init(ps, arg, d);
    else if (strcmp(format, "csv") == 0)
        rc = parse_csv_init(ps, arg, d);
    else if (fmt)
        rc = parse_goaccess_init(ps, format, d);
    else
        rc = diag_set(d, SP_EINVAL,
                      "parse: unknown format '%s' (combined, common, syslog, json, csv, or a "
                      "%%-format string)",
                      format);
    if (!rc && ps->ncols == 0) rc = diag_set(d, SP_EINVAL, "parse(%s): no columns", ps->name);
    if (!rc) rc = parse_spec_type(ps, d);
    if (rc) goto fail;
    *out = ps;
    return 0;
fail:
    parse_spec_free(ps);
    return rc;
}

const sp_td *parse_spec_td(const parse_spec *ps)
{
    return ps->td;
}

const char *parse_spec_name(const parse_spec *ps)
{
    return ps->name;
}

int parse_spec_needs_year(const parse_spec *ps)
{
    return ps->yearless && ps->year == 0;
}

void parse_spec_describe(const parse_spec *ps, strbuf *sb)
{
    for (int i = 0; i < ps->ncols; i++)
        sb_printf(sb, "%s%s %s", i ? ", " : "", ps->names[i], sp_type_name(ps->types[i]));
}

/* ------------------------------------------------------------------------------- helpers */

uint32_t parse_scratch(parse_line *l, size_t n, char **p)
{
    /* (also for n == 0 before the first allocation: NULL + 0 is undefined) */
    if (!l->scratch || l->nscratch + n > l->cap_scratch) {
        size_t nc = l->cap_scratch ? l->cap_scratch : 4096;
        while (nc < l->nscratch + n)
            nc *= 2;
        char *ns = mem_realloc(l->alloc, l->scratch, nc);
        if (!ns) return UINT32_MAX;
        l->scratch = ns;
        l->cap_scratch = nc;
    }
    if (l->nscratch + n >= UINT32_MAX) return UINT32_MAX;
    uint32_t off = (uint32_t)l->nscratch;
    l->nscratch += n;
    *p = l->scratch + off;
    return off;
}

int64_t parse_days(int64_t y, int m, int d)
{
    /* Days from civil: years counted from March so that the leap day ends a year. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int parse_month3(const char *s)
{
    static const char names[] = "janfebmaraprmayjunjulaugsepoctnovdec";
    char m[3] = {(char)(s[0] | 0x20), (char)(s[1] | 0x20), (char)(s[2] | 0x20)};
    for (int i = 0; i < 12; i++)
        if (names[3 * i] == m[0] && names[3 * i + 1] == m[1] && names[3 * i + 2] == m[2])
            return i + 1;
    return 0;
}

int64_t parse_digits(const char *s, size_t n)
{
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned c = (unsigned char)s[i] - '0';
        if (c > 9) return -1;
        v = v * 10 + c;
    }
    return v;
}

static int valid_hms(int64_t h, int64_t mi, int64_t s)
{
    return h >= 0 && h <= 23 && mi >= 0 && mi <= 59 && s >= 0 && s <= 60;
}

static int valid_ymd(int64_t y, int64_t m, int64_t d)
{
    static const int mdays[12] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return y >= 0 && m >= 1 && m <= 12 && d >= 1 && d <= mdays[m - 1];
}

const char *parse_zone(const char *s, const char *e, int64_t *off_s)
{
    if (s < e && (*s == 'Z' || *s == 'z')) {
        *off_s = 0;
        return s + 1;
    }
    if (s >= e || (*s != '+' && *s != '-')) return NULL;
    int neg = *s == '-';
    const char *p = s + 1;
    if (e - p < 2) return NULL;
    int64_t hh = parse_digits(p, 2), mm = 0;
    if (hh < 0) return NULL;
    p += 2;
    if (e - p >= 3 && p[0] == ':') {
        if ((mm = parse_digits(p + 1, 2)) < 0) return NULL;
        p += 3;
    } else if (e - p >= 2 && (mm = parse_digits(p, 2)) >= 0) {
        p += 2;
    } else {
        mm = 0;
    }
    if (hh > 23 || mm > 59) return NULL;
    *off_s = (neg ? -1 : 1) * (hh * 3600 + mm * 60);
    return p;
}

/* Optional fraction ".ddd..." (or ",ddd"): milliseconds, extra digits truncated. */
static const char *parse_frac(const char *p, const char *e, int64_t *ms)
{
    *ms = 0;
    if (p < e && (*p == '.' || *p == ',') && p + 1 < e && (unsigned)(p[1] - '0') <= 9) {
        p++;
        int k = 0;
        while (p < e && (unsigned)(*p - '0') <= 9) {
            if (k < 3) *ms = *ms * 10 + (*p - '0');
            k++, p++;
        }
        for (; k < 3; k++)
            *ms *= 10;
    }
    return p;
}

const char *parse_iso8601(const char *s, const char *e, int64_t *ms)
{
    if (e - s < 19 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return NULL;
    int64_t y = parse_digits(s, 4), mo = parse_digits(s + 5, 2), dd = parse_digits(s + 8, 2);
    int64_t h = parse_digits(s + 11, 2), mi = parse_digits(s + 14, 2), se = parse_digits(s + 17, 2);
    if (!valid_ymd(y, mo, dd) || !valid_hms(h, mi, se)) return NULL;
    int64_t frac;
    const char *p = parse_frac(s + 19, e, &frac);
    int64_t off = 0;
    const char *z = parse_zone(p, e, &off);
    if (z) p = z;
    *ms = ((parse_days(y, (int)mo, (int)dd) * 86400 + h * 3600 + mi * 60 + se - off) * 1000) + frac;
    return p;
}

const char *parse_clf_time(const char *s, const char *e, int64_t *ms)
{
    /* dd/Mon/yyyy:hh:mm:ss */
    if (e - s < 20 || s[2] != '/' || s[6] != '/' || s[11] != ':' || s[14] != ':' || s[17] != ':')
        return NULL;
    int64_t dd = parse_digits(s, 2), y = parse_digits(s + 7, 4);
    int mo = parse_month3(s + 3);
    int64_t h = parse_digits(s + 12, 2), mi = parse_digits(s + 15, 2), se = parse_digits(s + 18, 2);
    if (!valid_ymd(y, mo, dd) || !valid_hms(h, mi, se)) return NULL;
    int64_t frac;
    const char *p = parse_frac(s + 20, e, &frac);
    int64_t off = 0;
    if (p < e && *p == ' ') {
        const char *z = parse_zone(p + 1, e, &off);
        if (z) p = z;
    }
    *ms = ((parse_days(y, mo, (int)dd) * 86400 + h * 3600 + mi * 60 + se - off) * 1000) + frac;
    return p;
}

int64_t parse_ref_time(parse_line *l)
{
    int64_t mt;
    if (l->origin && lines_origin_at(l->origin, l->row, NULL, NULL, &mt) == 0 && mt > 0) return mt;
    return l->ref_default_s;
}

int64_t parse_yearless_ms(const parse_spec *ps, parse_line *l, int mon, int day, int64_t sod_ms)
{
    if (ps->year) return parse_days(ps->year, mon, day) * 86400000 + sod_ms;
    int64_t ref = parse_ref_time(l);
    int64_t rd = ref >= 0 ? ref / 86400 : (ref - 86399) / 86400;
    /* civil year of day rd */
    int64_t z = rd + 719468, era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    int64_t y = yoe + era * 400 + (mp >= 10);
    int64_t t = parse_days(y, mon, day) * 86400000 + sod_ms;
    if (t > (ref + 2 * 86400) * 1000) t = parse_days(y - 1, mon, day) * 86400000 + sod_ms;
    return t;
}

/* Doubles in [-2^63, 2^63) convert to int64_t; a cast of anything else is undefined. */
#define PARSE_I64_LO (-9223372036854775808.0)
#define PARSE_I64_HI 9223372036854775808.0

const char *parse_real_ts(double sec, int64_t *ms)
{
    if (!isfinite(sec)) return "not a finite timestamp";
    double m = sec * 1000.0;
    if (!(m >= PARSE_I64_LO && m < PARSE_I64_HI)) return "timestamp out of range";
    *ms = (int64_t)m;
    return NULL;
}

const char *parse_real_int(double x, sp_type t, int64_t *v)
{
    if (isnan(x)) return "not an integer";
    if (!(x >= PARSE_I64_LO && x < PARSE_I64_HI)) return "integer out of range";
    int64_t i = (int64_t)x;
    if ((double)i != x) return "not an integer";
    if (t == SP_I32 && (i < INT32_MIN || i > INT32_MAX)) return "integer out of range";
    *v = i;
    return NULL;
}

/* Integer text: optional sign, digits; NULL on anything else. */
static const char *text_i64(const char *s, size_t n, int64_t *v)
{
    size_t i = 0;
    int neg = 0;
    if (n && (s[0] == '-' || s[0] == '+')) neg = s[0] == '-', i = 1;
    if (i == n || n - i > 19) return "not an integer";
    uint64_t x = 0;
    for (; i < n; i++) {
        unsigned c = (unsigned char)s[i] - '0';
        if (c > 9) return "not an integer";
        x = x * 10 + c;
    }
    if (x > (uint64_t)INT64_MAX) return "integer out of range";
    *v = neg ? -(int64_t)x : (int64_t)x;
    return NULL;
}

const char *parse_set_text(const parse_spec *ps, parse_line *l, int c, const char *s, size_t n)
{
    sp_type t = ps->types[c];
    parse_val *v = &l->v[c];
    if (t == SP_STR) {
        parse_set_str(l, c, s, n);
        return NULL;
    }
    v->i = 0;
    v->f = 0;
    if (n == 0 || (n == 1 && s[0] == '-')) return NULL;
    char buf[64];
    const char *why;
    switch (t) {
    case SP_I32:
    case SP_I64:
        if ((why = text_i64(s, n, &v->i))) return why;
        if (t == SP_I32 && (v->i < INT32_MIN || v->i > INT32_MAX)) return "integer out of range";
        return NULL;
    case SP_BOOL:
        if ((n == 4 && strncasecmp(s, "true", 4) == 0) || (n == 1 && s[0] == '1'))
            v->i = 1;
        else if ((n == 5 && strncasecmp(s, "false", 5) == 0) || (n == 1 && s[0] == '0'))
            v->i = 0;
        else
            return "not a boolean";
        return NULL;
    case SP_F32:
    case SP_F64: {
        if (n >= sizeof buf) return "not a number";
        memcpy(buf, s, n);
        buf[n] = 0;
        char *end;
        v->f = strtod(buf, &end);
        if (end != buf + n) return "not a number";
        return NULL;
    }
    case SP_TS: {
        const char *e = s + n;
        if (parse_iso8601(s, e, &v->i) == e || parse_clf_time(s, e, &v->i) == e) return NULL;
        int64_t x;
        if (!text_i64(s, n, &x)) {
            v->i = (x >= 100000000000LL || x <= -100000000000LL) ? x : x * 1000;
            return NULL;
        }
        if (n < sizeof buf) {
            memcpy(buf, s, n);
            buf[n] = 0;
            char *end;
            double f = strtod(buf, &end);
            if (end == buf + n) return parse_real_ts(f, &v->i);
        }
        return "not a timestamp";
    }
    default:
        return "unsupported column type";
    }
}

/* ------------------------------------------------------------------------------- running */

/* A direct-mapped cache of string -> dictionary id in front of dict_intern, one per task:
 * repeated values (methods, statuses' peers, hot paths, clients) skip the dictionary's lock.
 * Entries point at the dictionary's own stable copy of the string. */
enum { IDC_BITS = 16, IDC_SIZE = 1 << IDC_BITS };

typedef struct idc_entry {
    const char *s;
    uint32_t len;
    uint32_t id;
} idc_entry;

static uint64_t idc_hash(const char *s, size_t len)
{
    return XXH3_64bits(s, len);
}

/* h: idc_hash(s, len). */
static uint32_t idc_intern(idc_entry *idc, sp_dict *dict, const char *s, size_t len, uint64_t h)
{
    idc_entry *e = &idc[h & (IDC_SIZE - 1)];
    if (e->s && e->len == len && memcmp(e->s, s, len) == 0) return e->id;
    uint32_t id = dict_intern(dict, s, len);
    if (id != UINT32_MAX) {
        size_t l2;
        e->s = dict_get(dict, id, &l2);
        e->len = (uint32_t)len;
        e->id = id;
    }
    return id;
}

/* The previous row's value of one string column while it still points into the input line
 * (stable for the task): equal neighbours (a client's burst of requests, "-", "GET",
 * "HTTP/1.0") are matched against bytes just read, skipping the hash and the cache. */
typedef struct idc_prev {
    const char *s; /* NULL: none */
    uint32_t len;
    uint32_t id;
    uint64_t h; /* this row's hash when it differs from the previous row */
    int same;   /* this row's value equals the previous row's */
} idc_prev;

struct parse_cache {
    const sp_allocator *alloc;
    unsigned n;
    idc_entry **w; /* per worker, allocated on first use */
    uint64_t *gen; /* per worker: dict_generation its entries belong to */
};

int parse_cache_new(const sp_allocator *a, unsigned workers, parse_cache **out, sp_diag *d)
{
    parse_cache *pc = mem_calloc(a, 1, sizeof *pc);
    if (pc) pc->w = mem_calloc(a, workers ? workers : 1, sizeof *pc->w);
    if (pc) pc->gen = mem_calloc(a, workers ? workers : 1, sizeof *pc->gen);
    if (!pc || !pc->w || !pc->gen) {
        if (pc) mem_free(a, pc->w);
        mem_free(a, pc);
        return diag_set(d, SP_ENOMEM, "parse: out of memory for the id caches");
    }
    pc->alloc = a;
    pc->n = workers ? workers : 1;
    *out = pc;
    return 0;
}

void parse_cache_free(parse_cache *pc)
{
    if (!pc) return;
    for (unsigned i = 0; i < pc->n; i++)
        mem_free(pc->alloc, pc->w[i]);
    mem_free(pc->alloc, pc->w);
    mem_free(pc->alloc, pc->gen);
    mem_free(pc->alloc, pc);
}

typedef struct reject_list {
    parse_reject *r;
    size_t n, cap;
} reject_list;

typedef struct parse_job {
    const parse_spec *ps;
    batch_env *env;
    const sp_batch *in;
    const parse_opts *o;
    size_t *lo; /* task t covers rows [lo[t], lo[t+1]) */
    sp_batch **outs;
    reject_list *rej;
    size_t *bytes;
} parse_job;

static int reject_add(reject_list *rl, const sp_allocator *a, size_t row, const char *why, int col)
{
    if (rl->n == rl->cap) {
        size_t nc = rl->cap ? rl->cap * 2 : 16;
        parse_reject *nr = mem_realloc(a, rl->r, nc * sizeof *nr);
        if (!nr) return SP_ENOMEM;
        rl->r = nr;
        rl->cap = nc;
    }
    rl->r[rl->n++] = (parse_reject){row, why, col};
    return 0;
}

static int parse_task(void *ud, size_t task, unsigned worker)
{
    parse_job *j = ud;
    const parse_spec *ps = j->ps;
    const sp_allocator *a = j->env->alloc;
    const sp_batch *in = j->in;
    unsigned node = j->o->exec ? exec_node(j->o->exec, worker) : 0;
    int rc = batch_new_on(j->env, ps->td, in->time_ms, node, &j->outs[task], NULL);
    if (rc) return rc;
    sp_batch *out = j->outs[task];
    sp_dict *dict = j->env->dict;
    const sp_col *tc = &in->cols[0];
    parse_line l;
    memset(&l, 0, sizeof l);
    l.alloc = a;
    l.origin = j->o->origin;
    l.ref_default_s = j->o->ref_time_s;
    l.v = mem_calloc(a, (size_t)ps->ncols, sizeof *l.v);
    idc_prev *prev = mem_calloc(a, (size_t)ps->ncols, sizeof *prev);
    parse_cache *pc = j->o->cache;
    idc_entry *idc;
    if (pc && worker < pc->n) {
        if (!pc->w[worker]) pc->w[worker] = mem_calloc(pc->alloc, IDC_SIZE, sizeof *idc);
        idc = pc->w[worker];
        /* Ids (and the strings entries point at) may have been reclaimed since. */
        uint64_t gen = dict_generation(dict);
        if (idc && pc->gen[worker] != gen) {
            memset(idc, 0, IDC_SIZE * sizeof *idc);
            pc->gen[worker] = gen;
        }
    } else {
        idc = mem_calloc(a, IDC_SIZE, sizeof *idc);
    }
    rc = SP_ENOMEM;
    if (!l.v || !prev || !idc) goto out;
    size_t lo = j->lo[task], hi = j->lo[task + 1], bytes = 0;
    for (int c = 0; c < ps->ncols; c++)
        if (col_reserve(&out->cols[c], hi - lo, 0)) goto out;
    for (size_t r = lo; r < hi; r++) {
        size_t len;
        const char *s = col_get_str(tc, dict, r, &len);
        bytes += len + 1;
        l.nscratch = 0;
        l.row = r;
        l.reject_col = -1;
        const char *why = ps->line(ps, &l, s, len);
        if (why) {
            if (reject_add(&j->rej[task], a, r, why, l.reject_col)) goto out;
            continue;
        }
        /* Hash the new values first and prefetch their cache entries: a row's misses (client,
         * path) then overlap instead of following one another. */
        for (int c = 0; c < ps->ncols; c++) {
            if (ps->types[c] != SP_STR) continue;
            const parse_val *v = &l.v[c];
            const char *p = v->s ? v->s : l.scratch + v->off;
            idc_prev *pv = &prev[c];
            pv->same = pv->s && pv->len == v->len && memcmp(pv->s, p, v->len) == 0;
            if (!pv->same) {
                pv->h = idc_hash(p, v->len);
                __builtin_prefetch(&idc[pv->h & (IDC_SIZE - 1)]);
            }
        }
        for (int c = 0; c < ps->ncols; c++) {
            sp_col *col = &out->cols[c];
            const parse_val *v = &l.v[c];
            int e;
            switch (ps->types[c]) {
            case SP_STR: {
                const char *p = v->s ? v->s : l.scratch + v->off;
                idc_prev *pv = &prev[c];
                uint32_t id;
                if (pv->same) {
                    id = pv->id;
                } else {
                    id = idc_intern(idc, dict, p, v->len, pv->h);
                    pv->s = v->s;
                    pv->len = v->len;
                    pv->id = id;
                }
                e = id == UINT32_MAX ? SP_ENOMEM : col_push_id(col, id);
                break;
            }
            case SP_F32:
            case SP_F64:
                e = col_push_f64(col, v->f);
                break;
            default:
                e = col_push_i64(col, v->i);
            }
            if (e) goto out;
        }
        out->n++;
    }
    j->bytes[task] = bytes;
    rc = 0;
out:
    if (!(pc && worker < pc->n)) mem_free(a, idc);
    mem_free(a, prev);
    mem_free(a, l.v);
    mem_free(a, l.scratch);
    return rc;
}

void parse_result_free(const sp_allocator *a, parse_result *res)
{
    batch_release(res->out);
    mem_free(a, res->rejects);
    memset(res, 0, sizeof *res);
}

int parse_run(const parse_spec *ps, batch_env *env, const sp_batch *in, const parse_opts *o,
              parse_result *res, sp_diag *d)
{
    memset(res, 0, sizeof *res);
    const sp_allocator *a = env->alloc;
    SP_CHECK(d, in->td->kind == TD_LEAF && in->td->leaf == SP_STR, SP_ETYPE,
             "parse(%s): needs a stream of text lines (str), got another type", ps->name);
    unsigned nx = o->exec ? exec_count(o->exec) : 1;
    size_t n = in->n;
    size_t chunk = o->chunk_rows;
    if (!chunk) {
        /* About four tasks per executor for balance, but not tiny ones. */
        chunk = n / ((size_t)nx * 4) + 1;
        if (chunk < 2048) chunk = 2048;
    }
    size_t ntasks = n ? (n + chunk - 1) / chunk : 1;
    size_t *lo = mem_calloc(a, ntasks + 1, sizeof *lo);
    unsigned *node = mem_calloc(a, ntasks, sizeof *node);
    sp_batch **outs = mem_calloc(a, ntasks, sizeof *outs);
    reject_list *rej = mem_calloc(a, ntasks, sizeof *rej);
    size_t *bytes = mem_calloc(a, ntasks, sizeof *bytes);
    size_t *start = mem_calloc(a, ntasks + 1, sizeof *start);
    int rc = SP_OK;
    if (!lo || !node || !outs || !rej || !bytes || !start) goto oom;
    for (size_t t = 0; t < ntasks; t++) {
        lo[t] = t * chunk < n ? t * chunk : n;
        /* the chunk runs where the input partition holding its first row lives */
        unsigned p = 0;
        size_t plo, phi;
        batch_part_range(in, p, &plo, &phi);
        while (p + 1 < in->nparts && phi <= lo[t])
            batch_part_range(in, ++p, &plo, &phi);
        node[t] = in->part_node ? in->part_node[p] : 0;
    }
    lo[ntasks] = n;
    parse_job j = {ps, env, in, o, lo, outs, rej, bytes};
    if (o->exec && ntasks > 1) {
        rc = exec_run(o->exec, ntasks, node, parse_task, &j);
    } else {
        for (size_t t = 0; t < ntasks && !rc; t++)
            rc = parse_task(&j, t, 0);
    }
    if (rc) goto oom;
    size_t nrej = 0;
    for (size_t t = 0; t < ntasks; t++)
        nrej += rej[t].n, res->bytes += bytes[t];
    if (nrej) {
        if (!(res->rejects = mem_alloc(a, nrej * sizeof *res->rejects))) goto oom;
        for (size_t t = 0; t < ntasks; t++) {
            if (!rej[t].n) continue;
            memcpy(res->rejects + res->nrejects, rej[t].r, rej[t].n * sizeof *rej[t].r);
            res->nrejects += rej[t].n;
        }
    }
    if (ntasks == 1) {
        res->out = outs[0];
        outs[0] = NULL;
    } else {
        if ((rc = batch_new(env, ps->td, in->time_ms, &res->out, d))) goto out;
        for (size_t t = 0; t < ntasks; t++) {
            start[t] = res->out->n;
            if ((rc = batch_append(res->out, outs[t], d))) goto out;
        }
        start[ntasks] = res->out->n;
        if (batch_set_parts(res->out, (unsigned)ntasks, start, node)) goto oom;
    }
    goto out;
oom:
    rc = diag_set(d, SP_ENOMEM, "parse(%s): out of memory parsing batch %lld", ps->name,
                  (long long)in->time_ms);
out:
    if (rc) parse_result_free(a, res);
    for (size_t t = 0; outs && t < ntasks; t++)
        batch_release(outs[t]);
    for (size_t t = 0; rej && t < ntasks; t++)
        mem_free(a, rej[t].r);
    mem_free(a, lo);
    mem_free(a, node);
    mem_free(a, outs);
    mem_free(a, rej);
    mem_free(a, bytes);
    mem_free(a, start);
    return rc;
}
