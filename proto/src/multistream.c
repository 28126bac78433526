/* multistream.c — multistream-select 1.0 messages (multiformats/
 * multistream-select): uvarint(len) || text || '\n', text printable ASCII. */
#include "proto.h"

static bool ms_printable(const char *s, size_t n) {
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)s[i] < 0x20 || (unsigned char)s[i] > 0x7e) return false;
  return true;
}

int ms_append(bn_buf_t *out, const char *text) {
  size_t n = strlen(text);
  if (n == 0 || !ms_printable(text, n)) return BFTNET_EINVAL;
  if (n + 1 > BN_MS_MAX_MSG) return BFTNET_ETOOBIG;
  uint8_t hdr[BN_UVARINT_MAX_BYTES];
  size_t h = uvarint_encode(hdr, n + 1);
  int rc = bn_buf_reserve(out, h + n + 1);
  if (rc) return rc;
  rc = bn_buf_append(out, hdr, h);
  if (!rc) rc = bn_buf_append(out, text, n);
  if (!rc) rc = bn_buf_append(out, "\n", 1);
  return rc;
}

int ms_next(const uint8_t *p, size_t n, const char **text, size_t *len) {
  const uint8_t *msg;
  size_t mlen;
  int used = lp_next(p, n, BN_MS_MAX_MSG, &msg, &mlen);
  if (used <= 0) return used;
  /* "\n" alone is as empty as a zero length: neither names anything. */
  if (mlen < 2 || msg[mlen - 1] != '\n') return BFTNET_EPROTO;
  if (!ms_printable((const char *)msg, mlen - 1)) return BFTNET_EPROTO;
  *text = (const char *)msg;
  *len = mlen - 1;
  return used;
}

bool ms_eq(const char *text, size_t len, const char *s) {
  return strlen(s) == len && memcmp(text, s, len) == 0;
}
