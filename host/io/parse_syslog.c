/* parse_syslog.c — syslog lines, RFC 5424 or RFC 3164 (BSD), detected per line. Columns:
 * facility i32, severity i32, time ts, host str, app str, pid str, msgid str, sdata str,
 * message str. Decisions on yearless and zoneless times and odd tags: host/io/PARSING.md. */
#include "io/parse_int.h"

#include <stdlib.h>
#include <string.h>

enum { S_FAC, S_SEV, S_TIME, S_HOST, S_APP, S_PID, S_MSGID, S_SD, S_MSG, S_NCOLS };

static const char *const sl_names[] = {"facility", "severity", "time",  "host",   "app",
                                       "pid",      "msgid",    "sdata", "message"};
static const sp_type sl_types[] = {SP_I32, SP_I32, SP_TS,  SP_STR, SP_STR,
                                   SP_STR, SP_STR, SP_STR, SP_STR};

static const char *word_end(const char *p, const char *e)
{
    while (p < e && *p != ' ')
        p++;
    return p;
}

/* RFC 5424 field: "-" (the nil value) is the empty string. */
static void set_word(parse_line *l, int c, const char *a, const char *b)
{
    if (b - a == 1 && *a == '-') b = a;
    parse_set_str(l, c, a, (size_t)(b - a));
}

/* Structured data: "-" or one or more "[id k=\"v\" ...]" elements; quoted values may hold
 * escaped quotes and brackets. Returns the end, or NULL if malformed. */
static const char *sd_end(const char *p, const char *e)
{
    if (p < e && *p == '-') return p + 1;
    if (p == e || *p != '[') return NULL;
    while (p < e && *p == '[') {
        int inq = 0;
        for (p++; p < e; p++) {
            if (inq && *p == '\\' && p + 1 < e) {
                p++;
                continue;
            }
            if (*p == '"') inq = !inq;
            if (!inq && *p == ']') break;
        }
        if (p == e) return NULL;
        p++;
    }
    return p;
}

static const char *rfc5424(const parse_spec *ps, parse_line *l, const char *p, const char *e)
{
    (void)ps;
    /* TIMESTAMP */
    if (p < e && *p == '-') {
        l->v[S_TIME].i = 0; /* nil time: documented as 0 */
        p++;
    } else {
        p = parse_iso8601(p, e, &l->v[S_TIME].i);
        if (!p) return "bad RFC 5424 timestamp";
    }
    const char *w[4][2];
    for (int k = 0; k < 4; k++) {
        if (p == e || *p != ' ') return "truncated RFC 5424 header";
        w[k][0] = ++p;
        p = w[k][1] = word_end(p, e);
        if (w[k][1] == w[k][0]) return "truncated RFC 5424 header";
    }
    set_word(l, S_HOST, w[0][0], w[0][1]);
    set_word(l, S_APP, w[1][0], w[1][1]);
    set_word(l, S_PID, w[2][0], w[2][1]);
    set_word(l, S_MSGID, w[3][0], w[3][1]);
    if (p == e || *p != ' ') return "truncated RFC 5424 header";
    const char *sd = ++p;
    p = sd_end(p, e);
    if (!p) return "bad structured data";
    set_word(l, S_SD, sd, p);
    if (p < e && *p != ' ') return "bad structured data";
    if (p < e) p++;
    if (e - p >= 3 && (unsigned char)p[0] == 0xEF && (unsigned char)p[1] == 0xBB &&
        (unsigned char)p[2] == 0xBF)
        p += 3; /* UTF-8 BOM */
    parse_set_str(l, S_MSG, p, (size_t)(e - p));
    return NULL;
}

/* "Mmm dd hh:mm:ss" with the day space-padded or not. */
static const char *bsd_time(const parse_spec *ps, parse_line *l, const char *p, const char *e,
                            int64_t *ms)
{
    if (e - p < 14) return NULL;
    int mon = parse_month3(p);
    if (!mon || p[3] != ' ') return NULL;
    p += 4;
    while (p < e && *p == ' ')
        p++;
    int day = 0, nd = 0;
    while (p < e && (unsigned)(*p - '0') <= 9 && nd < 2)
        day = day * 10 + (*p++ - '0'), nd++;
    if (!nd || day < 1 || day > 31 || p == e || *p != ' ') return NULL;
    p++;
    if (e - p < 8 || p[2] != ':' || p[5] != ':') return NULL;
    int64_t h = parse_digits(p, 2), mi = parse_digits(p + 3, 2), s = parse_digits(p + 6, 2);
    if (h < 0 || h > 23 || mi < 0 || mi > 59 || s < 0 || s > 60) return NULL;
    p += 8;
    int64_t frac = 0;
    if (p < e && *p == '.') { /* some daemons add milliseconds */
        int k = 0;
        for (p++; p < e && (unsigned)(*p - '0') <= 9; p++, k++)
            if (k < 3) frac = frac * 10 + (*p - '0');
        for (; k < 3 && k > 0; k++)
            frac *= 10;
    }
    *ms = parse_yearless_ms(ps, l, mon, day, (h * 3600 + mi * 60 + s) * 1000 + frac);
    return p;
}

static const char *rfc3164(const parse_spec *ps, parse_line *l, const char *p, const char *e)
{
    const char *q = parse_iso8601(p, e, &l->v[S_TIME].i);
    if (!q) q = bsd_time(ps, l, p, e, &l->v[S_TIME].i);
    if (!q) return "no syslog timestamp";
    if (q == e || *q != ' ') return "no host after the timestamp";
    p = q;
    while (p < e && *p == ' ')
        p++;
    const char *hs = p;
    p = word_end(p, e);
    if (p == hs) return "no host after the timestamp";
    parse_set_str(l, S_HOST, hs, (size_t)(p - hs));
    while (p < e && *p == ' ')
        p++;
    parse_set_str(l, S_PID, e, 0);
    parse_set_str(l, S_MSGID, e, 0);
    parse_set_str(l, S_SD, e, 0);
    /* TAG: the text before the first ':' that ends the line or is followed by a space, within
     * the first 128 bytes; none means no tag (app "", the rest is the message). */
    const char *lim = e - p > 128 ? p + 128 : e;
    const char *colon = NULL;
    for (const char *c = p; c < lim; c++)
        if (*c == ':' && (c + 1 == e || c[1] == ' ')) {
            colon = c;
            break;
        }
    if (!colon || colon == p) {
        parse_set_str(l, S_APP, e, 0);
        parse_set_str(l, S_MSG, p, (size_t)(e - p));
        return NULL;
    }
    const char *m = colon + 1;
    if (m < e) m++;
    const char *br = memchr(p, '[', (size_t)(colon - p));
    const char *cb = br ? memchr(br, ']', (size_t)(colon - br)) : NULL;
    if (br && cb) {
        parse_set_str(l, S_APP, p, (size_t)(br - p));
        parse_set_str(l, S_PID, br + 1, (size_t)(cb - br - 1));
        const char *rest = cb + 1;
        while (rest < colon && *rest == ' ')
            rest++;
        if (rest < colon) m = rest; /* text between the pid and ':' stays in the message */
    } else {
        parse_set_str(l, S_APP, p, (size_t)(colon - p));
    }
    parse_set_str(l, S_MSG, m, (size_t)(e - m));
    return NULL;
}

static const char *syslog_line(const parse_spec *ps, parse_line *l, const char *s, size_t len)
{
    const char *p = s, *e = s + len;
    l->v[S_FAC].i = l->v[S_SEV].i = -1;
    if (p < e && *p == '<') {
        const char *q = p + 1;
        int64_t pri = 0;
        int nd = 0;
        while (q < e && (unsigned)(*q - '0') <= 9 && nd < 4)
            pri = pri * 10 + (*q++ - '0'), nd++;
        if (!nd || nd > 3 || q == e || *q != '>' || pri > 191) return "bad priority";
        l->v[S_FAC].i = pri / 8;
        l->v[S_SEV].i = pri % 8;
        p = q + 1;
    }
    if (e - p >= 2 && (unsigned)(p[0] - '1') <= 8 && p[1] == ' ') return rfc5424(ps, l, p + 2, e);
    return rfc3164(ps, l, p, e);
}

int parse_syslog_init(parse_spec *ps, const char *arg, sp_diag *d)
{
    for (int i = 0; i < S_NCOLS; i++) {
        int rc = parse_spec_col(ps, sl_names[i], strlen(sl_names[i]), sl_types[i], d);
        if (rc) return rc;
    }
    ps->yearless = 1;
    if (arg && *arg) {
        char *end;
        if (strncmp(arg, "year=", 5) != 0 || (ps->year = (int)strtol(arg + 5, &end, 10)) < 1 ||
            ps->year > 9999 || *end)
            return diag_set(d, SP_EINVAL, "parse(syslog): bad argument '%s' (want year=YYYY)", arg);
    }
    ps->line = syslog_line;
    return 0;
}
