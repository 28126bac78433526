/*
 * bench_tcp.c — the raw-TCP baselines of bftnet-bench, loopback, two
 * processes:
 *   BB_TCP       messages framed as bftnet frames them (uvarint length +
 *                bytes), written in 64 KiB batches: no crypto, no muxer.
 *   BB_TCP_AEAD  "the crypto limit": the same messages packed into ~16 KiB
 *                records, one ChaCha20-Poly1305 (IETF) per record, with the
 *                cipher code bftnet itself uses (aead.h, linked from the
 *                library target that holds it), encrypted in place, records
 *                written in ~64 KiB batches:
 *                [u32 BE length][ciphertext][16-byte tag]. Nonce = record
 *                counter. The receiver decrypts and parses every record.
 *   BB_TCP_AEAD_SODIUM  the same with libsodium's cipher code.
 *   ping-pong    64 B blocking write / read, TCP_NODELAY.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>

#include <sodium.h>

#include "aead.h"
#include "bftnet_bench.h"

#define BATCH     (64 * 1024)
#define RECORD_PT (16 * 1024)
#define TAG       BN_AEAD_TAGBYTES

static const bn_aead_t *aead_of(const bb_job_t *job) {
  return job->sys == BB_TCP_AEAD_SODIUM ? &bn_aead_sodium : &bn_aead_best;
}

static void set_timeouts(int fd, int ms) {
  struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

/* Listens on 127.0.0.1:0 and publishes the port as node idx's address. */
static int tcp_listen(bb_child_t *ch, int node) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  socklen_t len = sizeof sa;
  if (fd < 0 || bind(fd, (struct sockaddr *)&sa, sizeof sa) || listen(fd, 4) ||
      getsockname(fd, (struct sockaddr *)&sa, &len))
    bb_fail(ch->idx, "listen: %s", strerror(errno));
  char port[16];
  snprintf(port, sizeof port, "%u", (unsigned)ntohs(sa.sin_port));
  bb_publish_addr(node, port);
  return fd;
}

static int tcp_accept(bb_child_t *ch, int lfd) {
  for (;;) {
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    if (poll(&p, 1, 10) > 0) break;
    if (bb_tick(ch) >= BB_PH_STOP) bb_fail(ch->idx, "no connection before the stop");
  }
  int fd = accept(lfd, NULL, NULL);
  if (fd < 0) bb_fail(ch->idx, "accept: %s", strerror(errno));
  close(lfd);
  return fd;
}

static int tcp_connect(bb_child_t *ch, int node, int nodelay) {
  const char *port = bb_wait_addr(ch, node);
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in sa = {.sin_family = AF_INET,
                           .sin_port = htons((uint16_t)atoi(port)),
                           .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof sa))
    bb_fail(ch->idx, "connect: %s", strerror(errno));
  if (nodelay) {
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  return fd;
}

/* Writes everything unless the phase reaches STOP first: 0, or -1. */
static int write_all(bb_child_t *ch, int fd, const uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t w = write(fd, p, n);
    if (w > 0) {
      p += w;
      n -= (size_t)w;
      continue;
    }
    if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (bb_tick(ch) >= BB_PH_STOP) return -1;
      continue;
    }
    if (bb_tick(ch) >= BB_PH_STOP) return -1; /* the receiver has gone */
    bb_fail(ch->idx, "write: %s", w < 0 ? strerror(errno) : "0 bytes");
  }
  return 0;
}

/* ------------------------------------------------------------- sender */

/* Appends one framed message (uvarint length + bytes) at p. */
static size_t frame(uint8_t *p, const uint8_t *msg, size_t size) {
  size_t h = bb_put_uvarint(p, size);
  memcpy(p + h, msg, size);
  return h + size;
}

/* Fills one ~16 KiB record at out and encrypts it in place; returns its
 * wire length and advances *seq by the messages it holds. */
static size_t aead_record(const bn_aead_t *a, uint8_t *out, uint8_t *msg, size_t size,
                          uint64_t *seq, uint64_t *rec_ctr, const uint8_t *key) {
  uint8_t *pt = out + 4;
  size_t pt_len = 0;
  while (pt_len == 0 || pt_len + 10 + size <= RECORD_PT) {
    bb_put_seq(msg, size, ++*seq);
    pt_len += frame(pt + pt_len, msg, size);
  }
  a->seal(key, (*rec_ctr)++, NULL, 0, pt, pt_len, pt, pt + pt_len);
  uint32_t clen = (uint32_t)(pt_len + TAG);
  out[0] = (uint8_t)(clen >> 24), out[1] = (uint8_t)(clen >> 16), out[2] = (uint8_t)(clen >> 8),
  out[3] = (uint8_t)clen;
  return 4 + clen;
}

void bb_tcp_sender(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  if (sodium_init() < 0) bb_fail(idx, "sodium_init");
  int aead = job->sys == BB_TCP_AEAD || job->sys == BB_TCP_AEAD_SODIUM;
  int fd = tcp_connect(&ch, 1, 0);
  set_timeouts(fd, 100);
  size_t max_rec = 4 + (RECORD_PT > job->size + 10 ? RECORD_PT : job->size + 10) + TAG;
  uint8_t *buf = malloc(BATCH + max_rec), *msg = bb_msg_alloc(idx, job);
  if (!buf) bb_fail(idx, "out of memory");
  uint64_t seq = 0, rec = 0;
  int ph = bb_ready_go(&ch);
  while (ph < BB_PH_STOP) {
    size_t off = 0;
    uint64_t seq0 = seq;
    while (off < BATCH) {
      if (aead) {
        off += aead_record(aead_of(job), buf + off, msg, job->size, &seq, &rec, job->aead_key);
      } else {
        bb_put_seq(msg, job->size, ++seq);
        off += frame(buf + off, msg, job->size);
      }
    }
    if (write_all(&ch, fd, buf, off)) break;
    ch.c.enq += seq - seq0;
    ch.c.msgs = ch.c.enq;
    ch.c.bytes += (seq - seq0) * job->size;
    ph = bb_tick(&ch);
  }
  close(fd);
  free(buf);
  free(msg);
}

/* ----------------------------------------------------------- receiver */

/* Parses framed messages in p[0, n); returns the bytes consumed. */
static size_t parse_msgs(bb_child_t *ch, const uint8_t *p, size_t n, uint64_t *last, int whole) {
  size_t off = 0;
  while (off < n) {
    uint64_t len;
    int h = bb_get_uvarint(p + off, n - off, &len);
    if (h < 0 || (h > 0 && len > (1u << 24))) bb_fail(ch->idx, "bad frame");
    if (h == 0 || off + (size_t)h + len > n) {
      if (whole) bb_fail(ch->idx, "record ends inside a message");
      break;
    }
    bb_count_msg(&ch->c, p + off + (size_t)h, (size_t)len, last);
    off += (size_t)h + (size_t)len;
  }
  return off;
}

/* Decrypts and parses whole records in p[0, n); returns bytes consumed. */
static size_t parse_records(const bn_aead_t *a, bb_child_t *ch, uint8_t *p, size_t n, uint64_t *rec,
                            uint64_t *last, const uint8_t *key, size_t max_rec) {
  size_t off = 0;
  while (n - off >= 4) {
    uint32_t clen = (uint32_t)p[off] << 24 | (uint32_t)p[off + 1] << 16 |
                    (uint32_t)p[off + 2] << 8 | p[off + 3];
    if (clen < TAG || clen > max_rec) bb_fail(ch->idx, "bad record length %u", clen);
    if (n - off - 4 < clen) break;
    uint8_t *c = p + off + 4;
    size_t pt_len = clen - TAG;
    if (a->open(key, (*rec)++, NULL, 0, c, pt_len, c + pt_len, c))
      bb_fail(ch->idx, "record %llu failed authentication", (unsigned long long)(*rec - 1));
    parse_msgs(ch, c, pt_len, last, 1);
    off += 4 + clen;
  }
  return off;
}

void bb_tcp_receiver(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  if (sodium_init() < 0) bb_fail(idx, "sodium_init");
  int aead = job->sys == BB_TCP_AEAD || job->sys == BB_TCP_AEAD_SODIUM;
  int lfd = tcp_listen(&ch, 1);
  bb_ready(idx);
  int fd = tcp_accept(&ch, lfd);
  set_timeouts(fd, 100);
  size_t max_rec = (RECORD_PT > job->size + 10 ? RECORD_PT : job->size + 10) + TAG;
  size_t cap = 256 * 1024 + 2 * (max_rec + 4);
  uint8_t *buf = malloc(cap);
  if (!buf) bb_fail(idx, "out of memory");
  size_t have = 0;
  uint64_t rec = 0, last = 0;
  while (bb_tick(&ch) < BB_PH_STOP) {
    ssize_t r = read(fd, buf + have, cap - have);
    if (r < 0 && (errno == EAGAIN || errno == EINTR)) continue;
    if (r <= 0) break; /* the sender stopped (after the parent saw our last snapshot) */
    have += (size_t)r;
    size_t used =
        aead ? parse_records(aead_of(job), &ch, buf, have, &rec, &last, job->aead_key, max_rec)
             : parse_msgs(&ch, buf, have, &last, 0);
    memmove(buf, buf + used, have - used);
    have -= used;
  }
  close(fd);
  free(buf);
}

/* ---------------------------------------------------------- ping-pong */

static int read_exact(bb_child_t *ch, int fd, uint8_t *p, size_t n) {
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r > 0) {
      p += r;
      n -= (size_t)r;
    } else if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
      if (bb_tick(ch) >= BB_PH_STOP) return -1;
    } else {
      return -1;
    }
  }
  return 0;
}

typedef struct tping {
  int fd;
  uint8_t *in;
} tping_t;

/* bb_rtt_fn: one blocking write / read round trip (ud: a tping_t). */
static bool ping_once(bb_child_t *ch, void *ud, uint32_t i, const uint8_t *out, size_t size,
                      uint64_t *ns) {
  tping_t *t = ud;
  uint64_t t0 = bb_now_ns();
  if (write_all(ch, t->fd, out, size) || read_exact(ch, t->fd, t->in, size))
    bb_fail(ch->idx, "ping-pong broke after %u round trips", i);
  *ns = bb_now_ns() - t0;
  return memcmp(t->in, out, size) == 0;
}

void bb_tcp_pinger(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  tping_t t = {.fd = tcp_connect(&ch, 1, 1)};
  set_timeouts(t.fd, 100);
  t.in = bb_msg_alloc(idx, job);
  /* no deadline check of its own: write_all / read_exact see it (bb_tick) when they wait */
  bb_rtt_pinger(&ch, job, ping_once, &t, false);
  close(t.fd);
  free(t.in);
}

void bb_tcp_echo(int idx, const bb_job_t *job) {
  bb_child_t ch;
  bb_child_init(&ch, idx, job);
  int lfd = tcp_listen(&ch, 1);
  bb_ready(idx);
  int fd = tcp_accept(&ch, lfd);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  set_timeouts(fd, 100);
  uint8_t *buf = malloc(job->size + 8);
  if (!buf) bb_fail(idx, "out of memory");
  while (bb_tick(&ch) < BB_PH_STOP) {
    if (read_exact(&ch, fd, buf, job->size) || write_all(&ch, fd, buf, job->size)) break;
  }
  close(fd);
  free(buf);
}
