/*
 * proto.h — bftnet's wire codecs. Pure: no I/O, no clock, no global state.
 * Decoders take a byte range and return how much they consumed (> 0), 0 when
 * more bytes are needed, or a negative BFTNET_E* code. They never allocate a
 * size read from the input before checking it against a limit (core.h).
 * This is the only header proto/ exposes to the other modules.
 */
#ifndef BFTNET_PROTO_H
#define BFTNET_PROTO_H

#include <netinet/in.h>
#include <sys/socket.h>

#include "core.h"
#include "keys.pb-c.h"
#include "noise_payload.pb-c.h"
#include "stream_migration.pb-c.h"

/* ------------------------------------------------------------ uvarint */
/* multiformats unsigned-varint: at most 9 bytes (63 bits), minimal encoding. */

/* Writes v (<= 2^63-1) into out; returns the byte count (1..9). */
size_t uvarint_encode(uint8_t out[BN_UVARINT_MAX_BYTES], uint64_t v);
/* > 0: bytes used; 0: need more; BFTNET_EPROTO: overlong, non-minimal or > 63 bits. */
int uvarint_decode(const uint8_t *p, size_t n, uint64_t *v);
size_t uvarint_size(uint64_t v);

/* ---------------------------------------------------- length-prefixed */
/* uvarint length then bytes (libp2p's length-prefixed messages). */

/* > 0: total bytes used, *msg and *len point into p; 0: need more;
 * BFTNET_ETOOBIG if the announced length exceeds max (checked before waiting
 * for the body); BFTNET_EPROTO on a bad varint. */
int lp_next(const uint8_t *p, size_t n, size_t max, const uint8_t **msg, size_t *len);
/* Appends uvarint(len) || data to out. */
int lp_append(bn_buf_t *out, const void *data, size_t len) BFTNET_WUR;

/* ------------------------------------------------- multistream-select */
/* multistream-select 1.0: each message is uvarint(len) || text || '\n'. */

#define MS_PROTO_ID "/multistream/1.0.0"
#define MS_NA "na"

/* Appends one message (text without the newline) to out. */
int ms_append(bn_buf_t *out, const char *text) BFTNET_WUR;
/* > 0: bytes used, *text and *len = message without '\n' (not NUL-terminated);
 * 0: need more; BFTNET_EPROTO: empty, missing '\n', bad varint, or non-printable;
 * BFTNET_ETOOBIG: longer than BN_MS_MAX_MSG. */
int ms_next(const uint8_t *p, size_t n, const char **text, size_t *len);
/* True if the message equals the NUL-terminated string s. */
bool ms_eq(const char *text, size_t len, const char *s);

/* ---------------------------------------------------------- base58btc */

/* Encodes into out (NUL-terminated); BFTNET_EBUFSIZE if cap is too small. */
int base58_encode(const uint8_t *in, size_t n, char *out, size_t cap);
/* Decodes; returns the byte count or BFTNET_EINVAL / BFTNET_ETOOBIG (for a
 * decoder cap is the input's limit: more digits than fit is input too long). */
int base58_decode(const char *in, size_t inlen, uint8_t *out, size_t cap);

/* ------------------------------------------------------------ peer IDs */
/* A peer ID is a multihash of the protobuf PublicKey: identity (0x00) for
 * keys up to 42 bytes (Ed25519 -> 38 bytes), sha2-256 (0x12) otherwise. */

typedef struct peerid {
  uint8_t len;
  uint8_t bytes[BN_MADDR_MAX_PEERID];
} peerid_t;

/* The protobuf PublicKey of an Ed25519 key: 08 01 12 20 || pk (36 bytes). */
#define PEERID_ED25519_PUBPB_LEN 36u
void peerid_ed25519_pubkey_pb(const uint8_t pk[32], uint8_t out[PEERID_ED25519_PUBPB_LEN]);
void peerid_from_ed25519(const uint8_t pk[32], peerid_t *out);
/* From a protobuf PublicKey (any key type): the multihash rule above. */
int peerid_from_pubkey_pb(const uint8_t *pb, size_t n, peerid_t *out);
/* Strict parse of a protobuf PublicKey that must be Ed25519 (exactly the
 * 36-byte canonical encoding); writes the raw key. BFTNET_EBADKEY otherwise. */
int peerid_ed25519_pubkey_parse(const uint8_t *pb, size_t n, uint8_t pk[32]);
/* base58btc text <-> binary multihash. Parsing validates the multihash.
 * peerid_to_string: BFTNET_EBUFSIZE if cap is too small (BFTNET_PEER_ID_MAX
 * always fits an Ed25519 ID). */
int peerid_to_string(const peerid_t *id, char *out, size_t cap);
int peerid_from_string(const char *s, size_t len, peerid_t *out);
bool peerid_equal(const peerid_t *a, const peerid_t *b);
/* Bytewise order of the binary form: <0, 0, >0 (the spec's lower/higher). */
int peerid_cmp(const peerid_t *a, const peerid_t *b);

/* ---------------------------------------------------------- multiaddr */
/* Text multiaddrs: /ip4/A/tcp/P[/p2p/ID] and /ip6/A/tcp/P[/p2p/ID].
 * Anything else is rejected; errbuf names the offending component. */

typedef struct maddr {
  struct sockaddr_storage sa; /* AF_INET or AF_INET6, port set */
  bool has_peer;
  peerid_t peer;
} maddr_t;

int maddr_parse(const char *s, maddr_t *out, char *errbuf, size_t errcap);
/* Formats as text, with /p2p/ID when has_peer. BFTNET_EBUFSIZE if cap is
 * too small (BFTNET_ADDR_MAX always fits). */
int maddr_format(const maddr_t *m, char *out, size_t cap);
/* Same, for a bare socket address and an optional peer ID. */
int maddr_format_sa(const struct sockaddr *sa, const peerid_t *peer, char *out, size_t cap);

/* ---------------------------------------------- capped protobuf-c arena */
/* protobuf-c decodes through this allocator: a fixed arena, so a hostile
 * message can never make us allocate more than BN_PB_ARENA_MAX bytes. */
typedef struct pb_arena {
  ProtobufCAllocator alloc;
  size_t used;
  _Alignas(16) uint8_t mem[BN_PB_ARENA_MAX];
} pb_arena_t;

void pb_arena_init(pb_arena_t *a);

#endif /* BFTNET_PROTO_H */
