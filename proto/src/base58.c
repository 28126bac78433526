/* base58.c — base58btc (Bitcoin alphabet), as used by libp2p peer IDs.
 * Both directions work in the caller's output buffer: no allocation. */
#include <limits.h>

#include "proto.h"

static const char base58_alphabet[] = "123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz";

static int base58_digit(char c) {
  const char *p = memchr(base58_alphabet, c, 58);
  return p ? (int)(p - base58_alphabet) : -1;
}

static void base58_reverse(uint8_t *p, size_t n) {
  for (size_t i = 0; i < n / 2; i++) {
    uint8_t t = p[i];
    p[i] = p[n - 1 - i];
    p[n - 1 - i] = t;
  }
}

int base58_encode(const uint8_t *in, size_t n, char *out, size_t cap) {
  size_t zeros = 0;
  while (zeros < n && in[zeros] == 0)
    zeros++;
  if (cap < zeros + 1) return BFTNET_EBUFSIZE;
  size_t room = cap - 1 - zeros; /* digits that fit after the '1's and NUL */
  uint8_t *dig = (uint8_t *)out; /* base-58 digits, least significant first */
  size_t ndig = 0;
  for (size_t i = zeros; i < n; i++) {
    uint32_t carry = in[i];
    for (size_t j = 0; j < ndig; j++) {
      carry += (uint32_t)dig[j] << 8;
      dig[j] = (uint8_t)(carry % 58);
      carry /= 58;
    }
    while (carry) {
      if (ndig == room) return BFTNET_EBUFSIZE;
      dig[ndig++] = (uint8_t)(carry % 58);
      carry /= 58;
    }
  }
  base58_reverse(dig, ndig);
  if (ndig && zeros) memmove(out + zeros, dig, ndig);
  if (zeros) memset(out, '1', zeros);
  for (size_t j = zeros; j < zeros + ndig; j++)
    out[j] = base58_alphabet[(uint8_t)out[j]];
  out[zeros + ndig] = '\0';
  return 0;
}

int base58_decode(const char *in, size_t inlen, uint8_t *out, size_t cap) {
  if (inlen > INT_MAX) return BFTNET_ETOOBIG;
  for (size_t i = 0; i < inlen; i++)
    if (base58_digit(in[i]) < 0) return BFTNET_EINVAL;
  size_t zeros = 0;
  while (zeros < inlen && in[zeros] == '1')
    zeros++;
  if (cap < zeros) return BFTNET_ETOOBIG;
  size_t room = cap - zeros;
  size_t nb = 0; /* bytes in out, least significant first */
  for (size_t i = zeros; i < inlen; i++) {
    uint32_t carry = (uint32_t)base58_digit(in[i]);
    for (size_t j = 0; j < nb; j++) {
      carry += (uint32_t)out[j] * 58;
      out[j] = (uint8_t)carry;
      carry >>= 8;
    }
    while (carry) {
      if (nb == room) return BFTNET_ETOOBIG;
      out[nb++] = (uint8_t)carry;
      carry >>= 8;
    }
  }
  base58_reverse(out, nb);
  if (nb && zeros) memmove(out + zeros, out, nb);
  if (zeros) memset(out, 0, zeros);
  return (int)(zeros + nb);
}
