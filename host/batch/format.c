/* format.c — rows in Scala/Spark's toString form, and doubles/floats as Java prints them.
 *
 * Java's Double.toString (JDK 19+ specification, which older JDKs match except for rare
 * non-shortest outputs): the shortest decimal that rounds back to the value; among the
 * shortest, the closest; when the shortest has one digit, two-digit decimals compete too
 * (so Double.MIN_VALUE prints 4.9E-324). Layout: plain "ddd.ddd" with at least one fraction
 * digit when 1e-3 <= |v| < 1e7, else "d.dddE[-]n". Float.toString is the same over floats. */
#include "batch/batch_int.h"

#include <assert.h>
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int fmt_roundtrips(const char *s, double v, int is_float)
{
    if (is_float) return strtof(s, NULL) == (float)v;
    return strtod(s, NULL) == v;
}

/* v > 0 and finite. Fills digits (NUL-terminated, no trailing zeros, at least one) and the
 * exponent e of the value d.ddd x 10^e. */
static void fmt_shortest(double v, int is_float, char *digits, int *exp10)
{
    char buf[64];
    int maxp = is_float ? 9 : 17;
    for (int p = 1; p <= maxp; p++) {
        snprintf(buf, sizeof buf, "%.*e", p - 1, v);
        if (!fmt_roundtrips(buf, v, is_float)) continue;
        if (p == 1) {
            /* The closest two-digit decimal is at least as close as any one-digit one. */
            char b2[64];
            snprintf(b2, sizeof b2, "%.1e", v);
            if (fmt_roundtrips(b2, v, is_float)) memcpy(buf, b2, sizeof buf);
        }
        break;
    }
    /* buf is "d[.ddd]e[+-]xx" */
    int n = 0;
    const char *p = buf;
    for (; *p && *p != 'e'; p++)
        if (*p >= '0' && *p <= '9') digits[n++] = *p;
    while (n > 1 && digits[n - 1] == '0')
        n--;
    digits[n] = '\0';
    *exp10 = *p == 'e' ? atoi(p + 1) : 0;
}

static void fmt_java(double v, int is_float, strbuf *sb)
{
    if (isnan(v)) {
        sb_adds(sb, "NaN");
        return;
    }
    if (signbit(v)) sb_addc(sb, '-');
    v = fabs(v);
    if (isinf(v)) {
        sb_adds(sb, "Infinity");
        return;
    }
    if (v == 0) {
        sb_adds(sb, "0.0");
        return;
    }
    char dg[32];
    int e;
    fmt_shortest(v, is_float, dg, &e);
    int n = (int)strlen(dg);
    if (e >= -3 && e < 7) {
        if (e >= 0) {
            /* integer part: digits 0..e, padded with zeros */
            for (int i = 0; i <= e; i++)
                sb_addc(sb, i < n ? dg[i] : '0');
            sb_addc(sb, '.');
            if (n > e + 1)
                sb_add(sb, dg + e + 1, (size_t)(n - e - 1));
            else
                sb_addc(sb, '0');
        } else {
            sb_adds(sb, "0.");
            for (int i = 0; i < -e - 1; i++)
                sb_addc(sb, '0');
            sb_add(sb, dg, (size_t)n);
        }
        return;
    }
    sb_addc(sb, dg[0]);
    sb_addc(sb, '.');
    if (n > 1)
        sb_add(sb, dg + 1, (size_t)(n - 1));
    else
        sb_addc(sb, '0');
    sb_printf(sb, "E%d", e);
}

void format_java_double(double v, strbuf *sb)
{
    fmt_java(v, 0, sb);
}

void format_java_float(float v, strbuf *sb)
{
    fmt_java(v, 1, sb);
}

/* Writes element i of node t's columns. */
static void fmt_node(const sp_batch *b, const sp_td *t, size_t i, strbuf *sb)
{
    const sp_col *c = &b->cols[t->col];
    switch (t->kind) {
    case TD_LEAF:
        switch (t->leaf) {
        case SP_BOOL:
            sb_adds(sb, col_get_i64(c, i) ? "true" : "false");
            break;
        case SP_F64:
            format_java_double(((const double *)c->data)[i], sb);
            break;
        case SP_F32:
            format_java_float(((const float *)c->data)[i], sb);
            break;
        case SP_STR: {
            size_t len;
            const char *s = col_get_str(c, b->env->dict, i, &len);
            if (s) sb_add(sb, s, len);
            break;
        }
        default:
            sb_printf(sb, "%" PRId64, col_get_i64(c, i));
            break;
        }
        break;
    case TD_TUPLE:
        sb_addc(sb, '(');
        for (int k = 0; k < t->n; k++) {
            if (k) sb_addc(sb, ',');
            fmt_node(b, t->child[k], i, sb);
        }
        sb_addc(sb, ')');
        break;
    case TD_OPTION:
        if (col_get_i64(c, i)) {
            sb_adds(sb, "Some(");
            fmt_node(b, t->child[0], i, sb);
            sb_addc(sb, ')');
        } else {
            sb_adds(sb, "None");
        }
        break;
    case TD_LIST: {
        /* groupByKey's Iterable is a CompactBuffer in Spark. */
        const int64_t *off = c->data;
        sb_adds(sb, "CompactBuffer(");
        for (int64_t k = off[i]; k < off[i + 1]; k++) {
            if (k > off[i]) sb_adds(sb, ", ");
            fmt_node(b, t->child[0], (size_t)k, sb);
        }
        sb_addc(sb, ')');
        break;
    }
    }
}

int batch_format_row(const sp_batch *b, size_t i, strbuf *sb)
{
    if (i >= b->n) return SP_EINVAL;
    fmt_node(b, b->td, i, sb);
    return sb->oom ? SP_ENOMEM : 0;
}

int sp_batch_format(const sp_batch *b, size_t row, char *buf, size_t size)
{
    if (!b) return SP_EINVAL;
    strbuf sb;
    sb_init(&sb, b->env->alloc);
    int rc = batch_format_row(b, row, &sb);
    if (rc) {
        sb_free(&sb);
        return rc;
    }
    if (size) {
        size_t k = sb.len < size - 1 ? sb.len : size - 1;
        if (k) memcpy(buf, sb.s, k);
        buf[k] = '\0';
    }
    int n = sb.len > (size_t)INT32_MAX ? SP_ENOMEM : (int)sb.len;
    sb_free(&sb);
    return n;
}
