/* sha1.h — SHA-1 (FIPS 180-4), for trigger ids and the script library name. */
#ifndef RELATIOND_SHA1_H
#define RELATIOND_SHA1_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    uint32_t h[5];
    uint64_t bytes;
    unsigned char block[64];
    size_t used;
} Sha1;

void sha1_init(Sha1 *s);
void sha1_update(Sha1 *s, const void *data, size_t len);
void sha1_final(Sha1 *s, unsigned char digest[20]);
/* The digest as 40 lower-case hex digits and a NUL. */
void sha1_hex(const unsigned char digest[20], char out[41]);

#endif
