/*
 * inflate.c - DEFLATE (RFC 1951) and gzip (RFC 1952) decompression, so
 * that the training driver reads .gz data files with libnncrt alone.
 *
 * The decoder reads bits least-significant first. Huffman codes are
 * canonical: a code is fixed by its symbol's length. A lookup table
 * indexed by the next FAST_BITS input bits (bit-reversed codes) decodes
 * short codes in one step; longer ones are decoded bit by bit from the
 * count of codes of each length. The output grows by doubling.
 */
#include <stdlib.h>
#include <string.h>

#include "nncrt.h"

#define MAX_BITS 15   /* longest code */
#define FAST_BITS 9   /* codes up to this long decode by table */

typedef struct Huff {
    unsigned short count[MAX_BITS + 1];   /* codes of each length */
    unsigned short symbol[320];           /* symbols ordered by code */
    unsigned short fast[1 << FAST_BITS];  /* (symbol << 4) | length; 0: slow */
} Huff;

typedef struct Inflater {
    const unsigned char *in;
    size_t n, pos;      /* input bytes, next byte */
    uint32_t bits;      /* bit buffer, next bit lowest */
    int nbits;
    unsigned char *out;
    size_t len, cap;
} Inflater;

/* Keeps at least `need` (<= 25) bits in the buffer; past the end of the
 * input it feeds zero bytes (see overran). */
static void refill(Inflater *s, int need)
{
    while (s->nbits < need) {
        uint32_t b = 0;
        if (s->pos < s->n)
            b = s->in[s->pos];
        s->pos++;
        s->bits |= b << s->nbits;
        s->nbits += 8;
    }
}

/* Were bits past the end of the input used? */
static int overran(const Inflater *s)
{
    return s->pos > s->n && (s->pos - s->n) * 8 > (size_t)s->nbits;
}

static unsigned getbits(Inflater *s, int n)
{
    unsigned v;
    if (n == 0)
        return 0;
    refill(s, n);
    v = s->bits & ((1u << n) - 1u);
    s->bits >>= n;
    s->nbits -= n;
    return v;
}

static int reserve(Inflater *s, size_t more)
{
    size_t cap = s->cap ? s->cap : 65536;
    unsigned char *p;
    if (s->len + more <= s->cap)
        return 0;
    while (cap < s->len + more) {
        if (cap > (size_t)-1 / 2)
            return NNC_ERR_NOMEM;
        cap *= 2;
    }
    p = (unsigned char *)realloc(s->out, cap);
    if (!p)
        return NNC_ERR_NOMEM;
    s->out = p;
    s->cap = cap;
    return 0;
}

/* Builds the decoder of n symbols with code lengths len[]. Returns 0, or
 * -1 if the lengths are over-subscribed (more codes than fit). An
 * incomplete set is allowed (a distance code may have one symbol); its
 * unused codes decode as errors. */
static int build(Huff *h, const unsigned char *len, int n)
{
    unsigned short offs[MAX_BITS + 2];
    int left = 1, i, l;
    memset(h->count, 0, sizeof h->count);
    memset(h->fast, 0, sizeof h->fast);
    for (i = 0; i < n; i++)
        h->count[len[i]]++;
    h->count[0] = 0;
    for (l = 1; l <= MAX_BITS; l++) {
        left <<= 1;
        left -= h->count[l];
        if (left < 0)
            return -1;
    }
    offs[1] = 0;
    for (l = 1; l <= MAX_BITS; l++)
        offs[l + 1] = (unsigned short)(offs[l] + h->count[l]);
    for (i = 0; i < n; i++)
        if (len[i])
            h->symbol[offs[len[i]]++] = (unsigned short)i;
    /* the fast table: walk the codes in canonical order */
    {
        unsigned code = 0;
        int k = 0;
        for (l = 1; l <= FAST_BITS; l++) {
            int c;
            for (c = 0; c < h->count[l]; c++, k++, code++) {
                unsigned rev = 0, step, j;
                int b;
                for (b = 0; b < l; b++)
                    rev |= ((code >> b) & 1u) << (l - 1 - b);
                step = 1u << l;
                for (j = rev; j < (1u << FAST_BITS); j += step)
                    h->fast[j] = (unsigned short)((h->symbol[k] << 4) | l);
            }
            code <<= 1;
        }
    }
    return 0;
}

/* The next symbol, or -1 for a code that is not in the table. */
static int decode(Inflater *s, const Huff *h)
{
    unsigned e, code = 0, first = 0;
    int index = 0, l;
    refill(s, FAST_BITS);
    e = h->fast[s->bits & ((1u << FAST_BITS) - 1u)];
    if (e) {
        s->bits >>= e & 15u;
        s->nbits -= (int)(e & 15u);
        return (int)(e >> 4);
    }
    for (l = 1; l <= MAX_BITS; l++) {
        unsigned count = h->count[l];
        code |= getbits(s, 1);
        if (code - first < count)
            return h->symbol[index + (int)(code - first)];
        index += (int)count;
        first = (first + count) << 1;
        code <<= 1;
    }
    return -1;
}

static const unsigned short len_base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23,
                                            27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163,
                                            195, 227, 258};
static const unsigned char len_extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2,
                                            2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
static const unsigned short dist_base[30] = {1, 2, 3, 4, 5, 7, 9, 13, 17, 25, 33, 49, 65, 97,
                                             129, 193, 257, 385, 513, 769, 1025, 1537, 2049,
                                             3073, 4097, 6145, 8193, 12289, 16385, 24577};
static const unsigned char dist_extra[30] = {0, 0, 0, 0, 1, 1, 2, 2, 3, 3, 4, 4, 5, 5, 6,
                                             6, 7, 7, 8, 8, 9, 9, 10, 10, 11, 11, 12, 12, 13, 13};

/* The literal/length and distance symbols of one compressed block. */
static int codes(Inflater *s, const Huff *lit, const Huff *dist)
{
    for (;;) {
        int sym = decode(s, lit);
        if (sym < 0 || overran(s))
            return NNC_ERR_FORMAT;
        if (sym < 256) {
            if (reserve(s, 1))
                return NNC_ERR_NOMEM;
            s->out[s->len++] = (unsigned char)sym;
        } else if (sym == 256) {
            return 0;
        } else {
            size_t n, d, i;
            int ds;
            sym -= 257;
            if (sym >= 29)
                return NNC_ERR_FORMAT;
            n = len_base[sym] + getbits(s, len_extra[sym]);
            ds = decode(s, dist);
            if (ds < 0 || ds >= 30 || overran(s))
                return NNC_ERR_FORMAT;
            d = dist_base[ds] + getbits(s, dist_extra[ds]);
            if (d > s->len)
                return NNC_ERR_FORMAT;
            if (reserve(s, n))
                return NNC_ERR_NOMEM;
            for (i = 0; i < n; i++, s->len++)   /* may overlap: byte by byte */
                s->out[s->len] = s->out[s->len - d];
        }
    }
}

static int fixed_block(Inflater *s)
{
    static Huff lit, dist;
    static int ready;
    if (!ready) {   /* the same tables every time (RFC 1951 3.2.6) */
        unsigned char len[288];
        int i;
        for (i = 0; i < 144; i++)
            len[i] = 8;
        for (; i < 256; i++)
            len[i] = 9;
        for (; i < 280; i++)
            len[i] = 7;
        for (; i < 288; i++)
            len[i] = 8;
        build(&lit, len, 288);
        for (i = 0; i < 30; i++)
            len[i] = 5;
        build(&dist, len, 30);
        ready = 1;
    }
    return codes(s, &lit, &dist);
}

static int dynamic_block(Inflater *s)
{
    static const unsigned char order[19] = {16, 17, 18, 0, 8, 7, 9, 6, 10, 5,
                                            11, 4, 12, 3, 13, 2, 14, 1, 15};
    unsigned char len[320];
    Huff *lit, *dist;
    int nlen, ndist, ncode, i, err;
    nlen = (int)getbits(s, 5) + 257;
    ndist = (int)getbits(s, 5) + 1;
    ncode = (int)getbits(s, 4) + 4;
    if (nlen > 286 || ndist > 30)
        return NNC_ERR_FORMAT;
    lit = (Huff *)malloc(2 * sizeof(Huff));
    if (!lit)
        return NNC_ERR_NOMEM;
    dist = lit + 1;
    memset(len, 0, sizeof len);
    for (i = 0; i < ncode; i++)
        len[order[i]] = (unsigned char)getbits(s, 3);
    err = NNC_ERR_FORMAT;
    if (build(lit, len, 19) != 0)
        goto done;
    for (i = 0; i < nlen + ndist;) {
        int sym = decode(s, lit), rep, val = 0;
        if (sym < 0 || overran(s))
            goto done;
        if (sym < 16) {
            len[i++] = (unsigned char)sym;
            continue;
        }
        if (sym == 16) {
            if (i == 0)
                goto done;
            val = len[i - 1];
            rep = 3 + (int)getbits(s, 2);
        } else if (sym == 17) {
            rep = 3 + (int)getbits(s, 3);
        } else {
            rep = 11 + (int)getbits(s, 7);
        }
        if (i + rep > nlen + ndist)
            goto done;
        while (rep--)
            len[i++] = (unsigned char)val;
    }
    if (len[256] == 0)   /* no end-of-block code */
        goto done;
    if (build(lit, len, nlen) != 0 || build(dist, len + nlen, ndist) != 0)
        goto done;
    err = codes(s, lit, dist);
done:
    free(lit);
    return err;
}

int nnc_inflate(const unsigned char *in, size_t n, unsigned char **out, size_t *outn,
                size_t *used)
{
    Inflater s;
    int last = 0, err = 0;
    if (!in || !out || !outn)
        return NNC_ERR_ARG;
    memset(&s, 0, sizeof s);
    s.in = in;
    s.n = n;
    while (!last && !err) {
        unsigned type;
        last = (int)getbits(&s, 1);
        type = getbits(&s, 2);
        if (type == 0) {   /* stored: byte aligned LEN, NLEN, data */
            size_t len, nlen;
            s.pos -= (size_t)(s.nbits / 8);   /* whole bytes go back */
            s.bits = 0;
            s.nbits = 0;
            if (s.pos + 4 > s.n) {
                err = NNC_ERR_FORMAT;
                break;
            }
            len = (size_t)s.in[s.pos] | (size_t)s.in[s.pos + 1] << 8;
            nlen = (size_t)s.in[s.pos + 2] | (size_t)s.in[s.pos + 3] << 8;
            s.pos += 4;
            if (len != (~nlen & 0xffffu) || s.pos + len > s.n) {
                err = NNC_ERR_FORMAT;
                break;
            }
            if ((err = reserve(&s, len)) != 0)
                break;
            memcpy(s.out + s.len, s.in + s.pos, len);
            s.len += len;
            s.pos += len;
        } else if (type == 1) {
            err = fixed_block(&s);
        } else if (type == 2) {
            err = dynamic_block(&s);
        } else {
            err = NNC_ERR_FORMAT;
        }
        if (overran(&s))
            err = NNC_ERR_FORMAT;
    }
    if (err) {
        free(s.out);
        return err;
    }
    /* bytes consumed: whole bytes buffered but not used go back */
    if (used)
        *used = s.pos - (size_t)(s.nbits / 8);
    *out = s.out;
    *outn = s.len;
    if (!s.out) {   /* empty stream: still a valid, freeable block */
        *out = (unsigned char *)malloc(1);
        if (!*out)
            return NNC_ERR_NOMEM;
    }
    return 0;
}

uint32_t nnc_crc32(uint32_t crc, const unsigned char *p, size_t n)
{
    static uint32_t table[256];
    static int ready;
    size_t i;
    if (!ready) {
        uint32_t k, c;
        int b;
        for (k = 0; k < 256; k++) {
            c = k;
            for (b = 0; b < 8; b++)
                c = c & 1u ? 0xEDB88320u ^ (c >> 1) : c >> 1;
            table[k] = c;
        }
        ready = 1;
    }
    crc = ~crc;
    for (i = 0; i < n; i++)
        crc = table[(crc ^ p[i]) & 0xffu] ^ (crc >> 8);
    return ~crc;
}

static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

int nnc_gunzip(const unsigned char *in, size_t n, unsigned char **out, size_t *outn,
               size_t *bad_offset)
{
    unsigned char *all = NULL;
    size_t total = 0, pos = 0;
    if (!in || !out || !outn)
        return NNC_ERR_ARG;
    do {   /* one or more members (RFC 1952 2.2) */
        unsigned flags;
        unsigned char *part;
        size_t partn, used;
        int err;
        if (bad_offset)
            *bad_offset = pos;
        if (n - pos < 18 || in[pos] != 0x1f || in[pos + 1] != 0x8b || in[pos + 2] != 8)
            goto bad;
        flags = in[pos + 3];
        if (flags & 0xe0u)
            goto bad;
        pos += 10;
        if (flags & 4u) {   /* FEXTRA */
            size_t xlen;
            if (n - pos < 2)
                goto bad;
            xlen = (size_t)in[pos] | (size_t)in[pos + 1] << 8;
            if (n - pos - 2 < xlen)
                goto bad;
            pos += 2 + xlen;
        }
        if (flags & 8u) {   /* FNAME, zero-terminated */
            while (pos < n && in[pos])
                pos++;
            pos++;
        }
        if (flags & 16u) {  /* FCOMMENT */
            while (pos < n && in[pos])
                pos++;
            pos++;
        }
        if (flags & 2u)     /* FHCRC */
            pos += 2;
        if (pos >= n)
            goto bad;
        if (bad_offset)
            *bad_offset = pos;
        err = nnc_inflate(in + pos, n - pos, &part, &partn, &used);
        if (err) {
            free(all);
            return err;
        }
        pos += used;
        if (bad_offset)
            *bad_offset = pos;
        if (n - pos < 8 || le32(in + pos) != nnc_crc32(0, part, partn) ||
            le32(in + pos + 4) != (uint32_t)(partn & 0xffffffffu)) {
            free(part);
            goto bad;
        }
        pos += 8;
        if (!all) {
            all = part;
            total = partn;
        } else {
            unsigned char *p = (unsigned char *)realloc(all, total + partn + 1);
            if (!p) {
                free(part);
                free(all);
                return NNC_ERR_NOMEM;
            }
            all = p;
            memcpy(all + total, part, partn);
            total += partn;
            free(part);
        }
    } while (pos < n && in[pos] == 0x1f);
    *out = all;
    *outn = total;
    return 0;
bad:
    free(all);
    return NNC_ERR_FORMAT;
}
