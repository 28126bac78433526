/* multiaddr.c — text multiaddrs (multiformats/multiaddr), restricted to
 * /ip4|ip6/ADDR/tcp/PORT[/p2p/ID]. Every rejection says which component. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>

#include "proto.h"

#define MADDR_SHOW_MAX 64u /* how much of a bad component an error quotes */

/* One parse: the cursor and where the error text goes. */
typedef struct maddr_cursor {
  const char *cur; /* at '/' or at the terminating NUL */
  char *errbuf;
  size_t errcap;
} maddr_cursor_t;

static int maddr_fail(maddr_cursor_t *c, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int maddr_fail(maddr_cursor_t *c, const char *fmt, ...) {
  if (c->errbuf && c->errcap > 0) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->errbuf, c->errcap, fmt, ap);
    va_end(ap);
  }
  return BFTNET_EBADADDR;
}

/* A printable, bounded copy of a component for error text (it came from
 * outside and may end up in a log line). */
static const char *maddr_show(const char *tok, size_t len, char buf[MADDR_SHOW_MAX + 4]) {
  size_t n = BN_MIN(len, MADDR_SHOW_MAX);
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)tok[i];
    buf[i] = (ch >= 0x20 && ch <= 0x7e && ch != '\'') ? (char)ch : '?';
  }
  if (len > n) {
    memcpy(buf + n, "...", 3);
    n += 3;
  }
  buf[n] = '\0';
  return buf;
}

/* Next component: 1 with *tok and *len set, 0 at the end, <0 on an empty one. */
static int maddr_next(maddr_cursor_t *c, const char **tok, size_t *len) {
  if (*c->cur == '\0') return 0;
  if (*c->cur != '/') return maddr_fail(c, "multiaddr must start with '/'");
  const char *start = c->cur + 1;
  size_t n = strcspn(start, "/");
  if (n == 0) return maddr_fail(c, "empty component");
  c->cur = start + n;
  *tok = start;
  *len = n;
  return 1;
}

static bool maddr_tok_is(const char *tok, size_t len, const char *s) {
  return strlen(s) == len && memcmp(tok, s, len) == 0;
}

static bool maddr_known(const char *tok, size_t len) {
  return maddr_tok_is(tok, len, "ip4") || maddr_tok_is(tok, len, "ip6") ||
         maddr_tok_is(tok, len, "tcp") || maddr_tok_is(tok, len, "p2p");
}

/* A protocol name that does not belong where it stands. */
static int maddr_misplaced(maddr_cursor_t *c, const char *tok, size_t len, const char *want) {
  char show[MADDR_SHOW_MAX + 4];
  if (!maddr_known(tok, len))
    return maddr_fail(c, "unsupported protocol '%s'", maddr_show(tok, len, show));
  return maddr_fail(c, "unexpected '/%s' (expected %s)", maddr_show(tok, len, show), want);
}

/* The value after protocol `proto`; a missing one is an error. */
static int maddr_value(maddr_cursor_t *c, const char *proto, const char **tok, size_t *len) {
  int rc = maddr_next(c, tok, len);
  if (rc == 0) return maddr_fail(c, "missing value after '/%s'", proto);
  return rc < 0 ? rc : 0;
}

static int maddr_parse_ip(maddr_cursor_t *c, const char *proto, struct sockaddr_storage *sa) {
  const char *tok = NULL;
  size_t len = 0;
  int rc = maddr_value(c, proto, &tok, &len);
  if (rc) return rc;
  bool v4 = proto[2] == '4';
  char text[INET6_ADDRSTRLEN];
  int ok = 0;
  if (len < sizeof(text)) {
    memcpy(text, tok, len);
    text[len] = '\0';
    if (v4)
      ok = inet_pton(AF_INET, text, &((struct sockaddr_in *)sa)->sin_addr);
    else
      ok = inet_pton(AF_INET6, text, &((struct sockaddr_in6 *)sa)->sin6_addr);
  }
  char show[MADDR_SHOW_MAX + 4];
  if (ok != 1) return maddr_fail(c, "bad %s address '%s'", proto, maddr_show(tok, len, show));
  sa->ss_family = v4 ? AF_INET : AF_INET6;
  return 0;
}

/* Decimal 0..65535, no sign, no leading zeros (one spelling per port). */
static int maddr_parse_port(maddr_cursor_t *c, struct sockaddr_storage *sa) {
  const char *tok = NULL;
  size_t len = 0;
  int rc = maddr_value(c, "tcp", &tok, &len);
  if (rc) return rc;
  uint32_t port = 0;
  bool ok = len <= 5 && !(len > 1 && tok[0] == '0');
  for (size_t i = 0; ok && i < len; i++) {
    ok = tok[i] >= '0' && tok[i] <= '9';
    port = port * 10 + (uint32_t)(tok[i] - '0');
  }
  char show[MADDR_SHOW_MAX + 4];
  if (!ok || port > 65535) return maddr_fail(c, "bad port '%s'", maddr_show(tok, len, show));
  uint16_t be = htons((uint16_t)port);
  if (sa->ss_family == AF_INET)
    ((struct sockaddr_in *)sa)->sin_port = be;
  else
    ((struct sockaddr_in6 *)sa)->sin6_port = be;
  return 0;
}

static int maddr_parse_peer(maddr_cursor_t *c, peerid_t *peer) {
  const char *tok = NULL;
  size_t len = 0;
  int rc = maddr_value(c, "p2p", &tok, &len);
  if (rc) return rc;
  char show[MADDR_SHOW_MAX + 4];
  if (peerid_from_string(tok, len, peer) != 0)
    return maddr_fail(c, "bad peer ID '%s'", maddr_show(tok, len, show));
  return 0;
}

/* /ip4/A or /ip6/A: the first component. */
static int maddr_parse_host(maddr_cursor_t *c, struct sockaddr_storage *sa) {
  const char *tok = NULL;
  size_t len = 0;
  int rc = maddr_next(c, &tok, &len);
  if (rc == 0) return maddr_fail(c, "empty multiaddr");
  if (rc < 0) return rc;
  if (maddr_tok_is(tok, len, "ip4")) return maddr_parse_ip(c, "ip4", sa);
  if (maddr_tok_is(tok, len, "ip6")) return maddr_parse_ip(c, "ip6", sa);
  return maddr_misplaced(c, tok, len, "/ip4 or /ip6");
}

/* /tcp/P, then optionally /p2p/ID, then the end. */
static int maddr_parse_tail(maddr_cursor_t *c, maddr_t *m) {
  const char *tok = NULL;
  size_t len = 0;
  int rc = maddr_next(c, &tok, &len);
  if (rc == 0) return maddr_fail(c, "missing '/tcp'");
  if (rc < 0) return rc;
  if (!maddr_tok_is(tok, len, "tcp")) return maddr_misplaced(c, tok, len, "/tcp");
  if ((rc = maddr_parse_port(c, &m->sa))) return rc;
  if ((rc = maddr_next(c, &tok, &len)) <= 0) return rc;
  if (!maddr_tok_is(tok, len, "p2p")) return maddr_misplaced(c, tok, len, "/p2p or the end");
  if ((rc = maddr_parse_peer(c, &m->peer))) return rc;
  m->has_peer = true;
  if ((rc = maddr_next(c, &tok, &len)) <= 0) return rc;
  return maddr_misplaced(c, tok, len, "the end after '/p2p'");
}

int maddr_parse(const char *s, maddr_t *out, char *errbuf, size_t errcap) {
  maddr_cursor_t c = {.cur = s, .errbuf = errbuf, .errcap = errcap};
  if (errbuf && errcap > 0) errbuf[0] = '\0';
  maddr_t m;
  memset(&m, 0, sizeof(m));
  int rc = maddr_parse_host(&c, &m.sa);
  if (!rc) rc = maddr_parse_tail(&c, &m);
  if (rc) return rc;
  *out = m;
  return 0;
}

int maddr_format_sa(const struct sockaddr *sa, const peerid_t *peer, char *out, size_t cap) {
  char host[INET6_ADDRSTRLEN];
  const char *proto;
  uint16_t port;
  if (sa->sa_family == AF_INET) {
    const struct sockaddr_in *in = (const struct sockaddr_in *)(const void *)sa;
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    proto = "ip4";
    port = ntohs(in->sin_port);
  } else if (sa->sa_family == AF_INET6) {
    const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)(const void *)sa;
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    proto = "ip6";
    port = ntohs(in6->sin6_port);
  } else {
    return BFTNET_EINVAL;
  }
  /* Any peerid_t: up to BN_MADDR_MAX_PEERID bytes, 138/100 chars per byte. */
  char id[BN_MADDR_MAX_PEERID * 2];
  if (peer) {
    int rc = peerid_to_string(peer, id, sizeof(id));
    if (rc) return rc;
  }
  int n = snprintf(out, cap, "/%s/%s/tcp/%u%s%s", proto, host, (unsigned)port, peer ? "/p2p/" : "",
                   peer ? id : "");
  if (n < 0) return BFTNET_EINVAL;
  return (size_t)n < cap ? 0 : BFTNET_EBUFSIZE;
}

int maddr_format(const maddr_t *m, char *out, size_t cap) {
  return maddr_format_sa((const struct sockaddr *)&m->sa, m->has_peer ? &m->peer : NULL, out, cap);
}
