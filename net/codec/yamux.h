/*
 * yamux.h — a yamux session (hashicorp/yamux spec.md), as a pure state
 * machine: the connection feeds it decrypted bytes and it emits frames
 * through cbs.output. No I/O, no clock.
 *
 * Frame: version(1)=0 | type(1) | flags(2) | stream id(4) | length(4), big endian.
 * Types: 0 data, 1 window update, 2 ping, 3 go away.
 * Flags: SYN 1, ACK 2, FIN 4, RST 8. Client streams are odd, server even.
 *
 * Memory: streams are owned by the session. A stream is removed once it is
 * closed in both directions or reset; cbs.on_free is its last callback.
 * Callbacks may call any yamux function (write, close, reset, consume, open,
 * even on other streams); frees requested inside a callback are deferred to
 * the end of the outermost yamux call (a reap list), so a stream pointer
 * stays valid for the whole callback it was passed to.
 *
 * Errors: any violation by the peer makes yamux_session_feed return a
 * negative code (sticky: later feeds return it again) and
 * yamux_session_error() names the precise reason. The caller then closes the
 * connection. Flow control: the peer may never send more data on a stream
 * than the receive window we granted; data beyond it is a violation.
 */
#ifndef BFTNET_YAMUX_H
#define BFTNET_YAMUX_H

#include "core.h"

enum { YAMUX_TYPE_DATA = 0, YAMUX_TYPE_WINDOW = 1, YAMUX_TYPE_PING = 2, YAMUX_TYPE_GOAWAY = 3 };
enum { YAMUX_FLAG_SYN = 1, YAMUX_FLAG_ACK = 2, YAMUX_FLAG_FIN = 4, YAMUX_FLAG_RST = 8 };
enum { YAMUX_GOAWAY_NORMAL = 0, YAMUX_GOAWAY_PROTOCOL = 1, YAMUX_GOAWAY_INTERNAL = 2 };

/* Why the peer's input was rejected (counted by the caller). */
typedef enum yamux_violation {
  YAMUX_OK = 0,
  YAMUX_BAD_VERSION,     /* version byte != 0 */
  YAMUX_BAD_TYPE,        /* type > 3 */
  YAMUX_BAD_FLAGS,       /* illegal flag combination for the type/state */
  YAMUX_BAD_STREAM_ID,   /* wrong parity for a SYN, 0 for data, non-0 for ping/goaway */
  YAMUX_DUPLICATE_SYN,   /* SYN for a stream that exists */
  YAMUX_WINDOW_EXCEEDED, /* data beyond the granted receive window */
  YAMUX_WINDOW_OVERFLOW, /* window update makes the send window exceed 2^32-1 */
  YAMUX_DATA_AFTER_FIN,  /* data or FIN after the peer's FIN */
  YAMUX_FRAME_TOO_LARGE, /* data frame length beyond BN_YAMUX_MAX_WINDOW */
  YAMUX_INTERNAL         /* out of memory etc. (not the peer's fault) */
} yamux_violation_t;

typedef struct yamux_session yamux_session_t;
typedef struct yamux_stream yamux_stream_t;

/* A stream's state (for logs and tests). SYN_RECEIVED exists only inside
 * on_accept; CLOSED and RESET only until on_free. */
typedef enum yamux_stream_state {
  YAMUX_SYN_SENT,      /* we opened it; the peer's ACK has not arrived */
  YAMUX_SYN_RECEIVED,  /* the peer opened it; our ACK is not out yet */
  YAMUX_ESTABLISHED,   /* both directions open */
  YAMUX_LOCAL_CLOSED,  /* we sent FIN; the peer may still send */
  YAMUX_REMOTE_CLOSED, /* the peer sent FIN; we may still send */
  YAMUX_CLOSED,        /* both FINs: about to be freed */
  YAMUX_RESET          /* RST sent or received: about to be freed */
} yamux_stream_state_t;

typedef struct yamux_config {
  uint32_t window; /* receive window we grant per stream (>= 256 KiB, <= BN_YAMUX_MAX_WINDOW) */
  uint32_t max_streams; /* streams the peer may have open at once; SYNs beyond get RST */
  uint32_t max_frame;   /* our largest outbound data frame body (e.g. 16 KiB); 0 = 64 KiB */
} yamux_config_t;

typedef struct yamux_cbs {
  /* Frame bytes to send: a 12-byte header, then body (may be NULL/0). */
  void (*output)(void *ud, const uint8_t hdr[BN_YAMUX_HEADER], const uint8_t *body, size_t blen);
  /* The peer opened s. Return 0 to accept (ACK goes out), < 0 to refuse (RST). */
  int (*on_accept)(void *ud, yamux_stream_t *s);
  /* Data for s, valid during the call. The receiver must later call
   * yamux_stream_consume() for these bytes to re-open the window. */
  void (*on_data)(void *ud, yamux_stream_t *s, const uint8_t *p, size_t n);
  void (*on_fin)(void *ud, yamux_stream_t *s);      /* the peer half-closed s */
  void (*on_reset)(void *ud, yamux_stream_t *s);    /* the peer reset s */
  void (*on_writable)(void *ud, yamux_stream_t *s); /* a blocked write may go on */
  void (*on_free)(void *ud, yamux_stream_t *s);     /* last callback for s */
  void (*on_goaway)(void *ud, uint32_t code);       /* optional */
  void (*on_pong)(void *ud, uint32_t opaque);       /* optional: ACK of our ping */
  /* Optional: the peer consumed bytes of s: a WINDOW_UPDATE without SYN or
   * ACK (those carry the grant beyond the initial window, not consumption).
   * Stream migration confirms delivery with it (PROTOCOL.md 11.6). */
  void (*on_credit)(void *ud, yamux_stream_t *s, uint32_t delta);
} yamux_cbs_t;

typedef struct yamux_stats {
  uint64_t streams_opened, streams_accepted, streams_refused;
  uint64_t frames_in, frames_out, pings_answered;
} yamux_stats_t;

/* Allocates a session. is_client picks odd stream IDs. cbs is copied. */
int yamux_session_new(yamux_session_t **out, bool is_client, const yamux_config_t *cfg,
                      const yamux_cbs_t *cbs, void *ud) BFTNET_WUR;
/* Frees every stream (on_free for each, at once) and the session.
 * Not from inside a yamux callback. */
void yamux_session_free(yamux_session_t *s);

/* Feeds received bytes (any split). Returns 0 or a sticky negative code:
 * BFTNET_EPROTO (see yamux_session_error), BFTNET_ENOMEM. After such an
 * error, open/write/close/ping return it too. Not reentrant: from inside a
 * callback of the same session it returns BFTNET_ESTATE. */
int yamux_session_feed(yamux_session_t *s, const uint8_t *p, size_t n);
yamux_violation_t yamux_session_error(const yamux_session_t *s);
const char *yamux_violation_str(yamux_violation_t v);

/* Sends a ping (SYN) with opaque; the peer's ACK reaches on_pong. */
int yamux_session_ping(yamux_session_t *s, uint32_t opaque);
/* Sends GoAway; afterwards inbound SYNs are refused. */
int yamux_session_goaway(yamux_session_t *s, uint32_t code);
/* True after the peer's GoAway: yamux_stream_open fails with BFTNET_ECLOSED. */
bool yamux_session_remote_goaway(const yamux_session_t *s);
size_t yamux_session_stream_count(const yamux_session_t *s);
const yamux_stats_t *yamux_session_stats(const yamux_session_t *s);

/* Opens a stream (sends SYN with our extra window). */
int yamux_stream_open(yamux_session_t *s, yamux_stream_t **out) BFTNET_WUR;
/* Queues up to n bytes as data frames, bounded by the send window.
 * Returns the bytes taken (0 when the window is empty: on_writable fires
 * when it opens), or BFTNET_ESTATE after our FIN / a reset. */
int yamux_stream_write(yamux_stream_t *st, const uint8_t *p, size_t n);
size_t yamux_stream_send_window(const yamux_stream_t *st);
/* The caller found no send window and waits: the next WINDOW_UPDATE that
 * opens it calls on_writable. (A short write asks by itself; a write that
 * took exactly the whole window was not short and does not.) */
void yamux_stream_want_writable(yamux_stream_t *st);
/* Half-closes our direction (FIN). Writing afterwards fails. Idempotent. */
int yamux_stream_close(yamux_stream_t *st);
/* Resets the stream (RST). The stream is freed (on_free). */
int yamux_stream_reset(yamux_stream_t *st);
/* The receiver delivered n bytes of s: credits the window; a window update
 * goes out once at least half the window is pending, or at once if flush. */
void yamux_stream_consume(yamux_stream_t *st, size_t n, bool flush);

uint32_t yamux_stream_id(const yamux_stream_t *st);
void *yamux_stream_get_user(const yamux_stream_t *st);
void yamux_stream_set_user(yamux_stream_t *st, void *user);
bool yamux_stream_remote_closed(const yamux_stream_t *st);
bool yamux_stream_local_closed(const yamux_stream_t *st);
yamux_stream_state_t yamux_stream_state(const yamux_stream_t *st);
const char *yamux_stream_state_str(yamux_stream_state_t state);

#endif /* BFTNET_YAMUX_H */
