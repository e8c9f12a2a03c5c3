/*
 * chunker.c -- FastCDC-style content-defined chunking with a keyed gear table.
 *
 * The format (pinned by the known-answer test in tests/unit/primitives/test_chunker.c;
 * any change here changes every chunk id of every repository, so it needs a new format
 * version):
 *   gear[k]     = LE64 of bytes 8k..8k+7 of HKDF-SHA-256(ikm = secret, salt = empty,
 *                 info = "nova chunker gear v1"), 2048 bytes in all;
 *   hash        h = 0 at offset min_size, then for each byte b: h = 2h + gear[b] (mod 2^64),
 *                 so bit p of h depends only on the last p + 1 bytes;
 *   cut rule    after byte i (the chunk is i + 1 bytes long) at the first i >= min_size with
 *                 (h & mask_small) == 0 while i < avg_size, or (h & mask_large) == 0 from
 *                 avg_size on; a hard cut at max_size; nothing below min_size is hashed;
 *   masks       normalised chunking level 2: with avg_size = 2^n, mask_small has n + 2 one
 *                 bits and mask_large n - 2, spread evenly over bits 16..63 (as the FastCDC
 *                 paper spreads its masks), so a cut depends on the last 17..64 bytes.
 *
 * Speed: the loop hashes two bytes per step with one loop-carried instruction (see
 * GEAR_PAIR), is unrolled sixteen bytes deep, and prefetches the input ahead; each byte
 * costs a byte load, a gear load and a fused test-and-branch that is almost never taken.
 * It hashes about 2.9 GB/s on one Sapphire Rapids core; nova-microbench, which counts the
 * unhashed first min_size bytes of each chunk too, reports about 3.6 GB/s on mixed data
 * (gcc 12 and clang 14, -O2 or -O3).
 */
#include "primitives/chunker.h"

#include <string.h>

#include "common/err.h"
#include "primitives/crypto.h"

#define GEAR_INFO "nova chunker gear v1"
#define NORMALISATION_LEVEL 2u
/* Mask bits are spread over bits [MASK_LOW_BIT, 63]. */
#define MASK_LOW_BIT 16u
#define MASK_SPAN (64u - MASK_LOW_BIT)

static int is_power_of_two(uint32_t x)
{
    return x != 0 && (x & (x - 1)) == 0;
}

static unsigned log2_of_power_of_two(uint32_t x)
{
    unsigned n = 0;
    while (x > 1) {
        x >>= 1;
        n++;
    }
    return n;
}

int nova_chunker_params_check(const nova_chunker_params *params)
{
    if (params == NULL)
        return nova_fail(NOVA_EINVALID, "chunker parameters: missing");
    if (params->min_size < NOVA_CHUNK_MIN_LIMIT)
        return nova_fail(NOVA_EINVALID, "chunker parameter 'min_size': %u is below the limit %u",
                         (unsigned)params->min_size, NOVA_CHUNK_MIN_LIMIT);
    if (!is_power_of_two(params->avg_size))
        return nova_fail(NOVA_EINVALID, "chunker parameter 'avg_size': %u is not a power of two",
                         (unsigned)params->avg_size);
    if (params->avg_size <= params->min_size)
        return nova_fail(NOVA_EINVALID,
                         "chunker parameter 'avg_size': %u must be larger than min_size %u",
                         (unsigned)params->avg_size, (unsigned)params->min_size);
    if (params->max_size <= params->avg_size)
        return nova_fail(NOVA_EINVALID,
                         "chunker parameter 'max_size': %u must be larger than avg_size %u",
                         (unsigned)params->max_size, (unsigned)params->avg_size);
    if (params->max_size > NOVA_CHUNK_MAX_LIMIT)
        return nova_fail(NOVA_EINVALID, "chunker parameter 'max_size': %u is above the limit %u",
                         (unsigned)params->max_size, NOVA_CHUNK_MAX_LIMIT);
    return 0;
}

/* A mask of `bits` one-bits at positions 63 - floor(k * MASK_SPAN / bits), k = 0..bits-1:
 * evenly spread, the highest at bit 63, all distinct because bits <= MASK_SPAN. */
static uint64_t spread_mask(unsigned bits)
{
    uint64_t mask = 0;
    for (unsigned k = 0; k < bits; k++)
        mask |= UINT64_C(1) << (63u - (k * MASK_SPAN) / bits);
    return mask;
}

static uint64_t load_le64(const uint8_t *p)
{
    uint64_t v = 0;
    for (unsigned i = 0; i < 8; i++)
        v |= (uint64_t)p[i] << (8u * i);
    return v;
}

int nova_chunker_init(nova_chunker *c, const nova_chunker_params *params,
                      const uint8_t secret[NOVA_CHUNKER_SECRET_LEN])
{
    uint8_t material[sizeof c->gear];
    int rc;

    if (c == NULL || secret == NULL)
        return nova_fail(NOVA_EINVALID, "chunker: missing chunker or secret");
    NOVA_TRY(nova_chunker_params_check(params));

    rc = nova_hkdf_sha256(material, sizeof material, secret, NOVA_CHUNKER_SECRET_LEN, NULL, 0,
                          GEAR_INFO, strlen(GEAR_INFO));
    if (rc < 0)
        goto out;
    for (size_t k = 0; k < 256; k++)
        c->gear[k] = load_le64(material + 8 * k);

    unsigned n = log2_of_power_of_two(params->avg_size);
    c->mask_small = spread_mask(n + NORMALISATION_LEVEL);
    c->mask_large = spread_mask(n - NORMALISATION_LEVEL);
    c->params = *params;
out:
    nova_wipe(material, sizeof material);
    return rc;
}

/*
 * Two bytes of the rolling hash and both cut tests. With a = gear[b0], b = gear[b1]:
 *   h1 = 2h + a  and  h2 = 4h + (2a + b),
 * so the chain from h to h2 is one instruction and h1 is computed beside it; this halves
 * the loop-carried latency compared with stepping h1 -> h2. The result is bit-for-bit the
 * byte-at-a-time hash, and h1 is tested before h2 so the first cut wins.
 * KEEP_GROUPED stops the compiler from reassociating h2 back into ((h << 2) + 2a) + b,
 * which clang 14 does, putting three instructions on the chain (measured: 3.6 -> 2.0 GB/s).
 */
#if defined(__GNUC__)
#define KEEP_GROUPED(x) __asm__("" : "+r"(x))
#else
#define KEEP_GROUPED(x) ((void)0)
#endif

#define GEAR_PAIR(offset)                                                                          \
    do {                                                                                           \
        const uint64_t ga = gear[data[i + (offset)]];                                              \
        const uint64_t gb = gear[data[i + (offset) + 1]];                                          \
        uint64_t pair = (ga << 1) + gb;                                                            \
        KEEP_GROUPED(pair);                                                                        \
        const uint64_t h1 = (h << 1) + ga;                                                         \
        h = (h << 2) + pair;                                                                       \
        if ((h1 & mask) == 0)                                                                      \
            return i + (offset) + 1;                                                               \
        if ((h & mask) == 0)                                                                       \
            return i + (offset) + 2;                                                               \
    } while (0)

#define GEAR_STEP(offset)                                                                          \
    do {                                                                                           \
        h = (h << 1) + gear[data[i + (offset)]];                                                   \
        if ((h & mask) == 0)                                                                       \
            return i + (offset) + 1;                                                               \
    } while (0)

/* Distance of the software prefetch: the hash stalls on every cache miss of the input,
 * which the hardware prefetcher alone does not always hide (measured: 1.6 -> 2.9 GB/s). A
 * prefetch never faults, and the address is formed as an integer so that running past the
 * end of the buffer is not pointer arithmetic. */
#define PREFETCH_AHEAD 1024u
#if defined(__GNUC__)
#define PREFETCH(data, i)                                                                          \
    __builtin_prefetch((const void *)((uintptr_t)(data) + (i) + PREFETCH_AHEAD))
#else
#define PREFETCH(data, i) ((void)0)
#endif

/*
 * Rolls the hash over data[i..end) and returns the length of the chunk ending at the first
 * cut, or 0 when there is none (a chunk is never empty, so 0 is free). *hash carries the
 * state from one region to the next.
 */
static size_t scan_region(const uint64_t *gear, uint64_t mask, const uint8_t *data, size_t i,
                          size_t end, uint64_t *hash)
{
    uint64_t h = *hash;

    while (end - i >= 16) {
        PREFETCH(data, i);
        GEAR_PAIR(0);
        GEAR_PAIR(2);
        GEAR_PAIR(4);
        GEAR_PAIR(6);
        GEAR_PAIR(8);
        GEAR_PAIR(10);
        GEAR_PAIR(12);
        GEAR_PAIR(14);
        i += 16;
    }
    while (i < end) {
        GEAR_STEP(0);
        i++;
    }
    *hash = h;
    return 0;
}

#undef GEAR_PAIR
#undef KEEP_GROUPED
#undef GEAR_STEP
#undef PREFETCH

size_t nova_chunker_next(const nova_chunker *c, const uint8_t *data, size_t len)
{
    const nova_chunker_params *p = &c->params;

    if (len <= p->min_size)
        return len;

    size_t end = len < p->max_size ? len : p->max_size;
    size_t normal = end < p->avg_size ? end : p->avg_size;
    uint64_t h = 0;
    size_t cut = scan_region(c->gear, c->mask_small, data, p->min_size, normal, &h);
    if (cut == 0)
        cut = scan_region(c->gear, c->mask_large, data, normal, end, &h);
    return cut != 0 ? cut : end;
}
