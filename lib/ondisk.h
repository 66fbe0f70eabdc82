/* ondisk.h - field types for on-disk records.
 *
 * Every on-disk layout (vhdx_format.h, vhd_format.h, and the records
 * declared in fat32.c and pe.c) is a struct of these byte-array types: it has
 * no padding and alignment 1, so it maps the bytes of the file exactly
 * (each carries a _Static_assert on its size), and a field can only be
 * read or written through its accessor, which fixes the byte order. Records
 * are copied out of a buffer with memcpy after the buffer's bounds are
 * checked, and built in a local struct then copied into the output.
 */
#ifndef GEN2PREP_ONDISK_H
#define GEN2PREP_ONDISK_H

#include <stdint.h>
#include "util.h"

#define ONDISK __attribute__((packed))

typedef struct { uint8_t b[2]; } le16;
typedef struct { uint8_t b[4]; } le32;
typedef struct { uint8_t b[8]; } le64;
typedef struct { uint8_t b[2]; } be16;
typedef struct { uint8_t b[4]; } be32;
typedef struct { uint8_t b[8]; } be64;

static inline uint16_t le16_get(const le16 *f) { return get_le16(f->b); }
static inline uint32_t le32_get(const le32 *f) { return get_le32(f->b); }
static inline uint64_t le64_get(const le64 *f) { return get_le64(f->b); }
static inline uint16_t be16_get(const be16 *f) { return (uint16_t)(f->b[0] << 8 | f->b[1]); }
static inline uint32_t be32_get(const be32 *f) { return get_be32(f->b); }
static inline uint64_t be64_get(const be64 *f) { return get_be64(f->b); }

static inline void le16_set(le16 *f, uint16_t v) { put_le16(f->b, v); }
static inline void le32_set(le32 *f, uint32_t v) { put_le32(f->b, v); }
static inline void le64_set(le64 *f, uint64_t v) { put_le64(f->b, v); }
static inline void be16_set(be16 *f, uint16_t v) { f->b[0] = (uint8_t)(v >> 8); f->b[1] = (uint8_t)v; }
static inline void be32_set(be32 *f, uint32_t v) { put_be32(f->b, v); }
static inline void be64_set(be64 *f, uint64_t v) { put_be64(f->b, v); }

#endif
