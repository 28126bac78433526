#!/usr/bin/env node
// js_mig_peer.mjs — a js-libp2p 2.x peer that speaks bftnet's stream
// migration (docs/PROTOCOL.md §11), written from that document alone, on
// js-libp2p's STOCK yamux (@chainsafe/libp2p-yamux with its defaults:
// window auto-tuning on, first credit on the ACK of an accepted stream).
// Driven by mig_interop.c (run_interop.sh js-migration).
//
// It is the follower of the pair (the driver picks bftnet's key so that
// bftnet leads, §11.4): it opens and labels its own logical stream, accepts
// bftnet's Label, answers every Migrate with AckMigrate{read_offset} (resume
// and graceful), opens a confirmation stream on every connection that
// carries a logical stream and sends Confirms on it (§11.12), and frees its
// own retransmit window only from bftnet's Confirms and read offsets.
// Messages (both ways): uvarint length, then 8 bytes of sequence number
// (big endian) and filler, 16..56 bytes, as mig_interop.c writes them.
//
//   node js_mig_peer.mjs
//     stdout: "ADDR <multiaddr>" first; then "FLUSHED sent=N recv=M errors=E",
//     "ERROR <text>" lines. stdin commands, one per line: "stop" (no more
//     messages), "flush" (wait until bftnet confirmed every byte we wrote,
//     then print FLUSHED), "exit". Exits 0 only without errors.

import { newNode, tcpAddr, logger, stopAndExit } from './peer_common.mjs'

const { pushable } = await import('it-pushable')
const { randomBytes, createHash } = await import('node:crypto')
const readline = await import('node:readline')

const MIG = '/libp2p/stream-migration'
const CONFIRM = '/libp2p/stream-migration/confirm'
const APP = '/bftnet/msg/1.0.0'
const MS = '/multistream/1.0.0'
const WINDOW = 1 << 20 // our retransmit window (§11.6)
const CONFIRM_BYTES = 256 * 1024 // a Confirm at once past this (§11.12)
const CONFIRM_MS = 2 // else within this
const MSG_PER_TICK = 10
const TICK_MS = 5

let errors = 0
const log = logger('js_mig_peer')
function fail (text) {
  errors++
  process.stdout.write(`ERROR ${text}\n`)
  log('ERROR', text)
}

// ------------------------------------------------------------ encoding
function concat (parts) {
  let n = 0
  for (const p of parts) n += p.length
  const out = new Uint8Array(n)
  let o = 0
  for (const p of parts) { out.set(p, o); o += p.length }
  return out
}
function varint (v) { // protobuf varint and multiformats uvarint (minimal)
  let x = BigInt(v)
  const out = []
  do {
    let b = Number(x & 0x7fn)
    x >>= 7n
    if (x !== 0n) b |= 0x80
    out.push(b)
  } while (x !== 0n)
  return Uint8Array.from(out)
}
// -> [value (BigInt), next position], null if incomplete; throws if bad.
function readVarint (buf, pos, maxBytes) {
  let x = 0n
  for (let i = 0; i < maxBytes; i++) {
    if (pos + i >= buf.length) return null
    const b = buf[pos + i]
    x |= BigInt(b & 0x7f) << BigInt(7 * i)
    if ((b & 0x80) === 0) return [x, pos + i + 1]
  }
  throw new Error('varint too long')
}
const fVar = (n, v) => concat([varint(n << 3), varint(v)])
const fMsg = (n, body) => concat([varint((n << 3) | 2), varint(body.length), body])
const lp = (body) => concat([varint(body.length), body])
const ms = (text) => lp(new TextEncoder().encode(text + '\n'))
const INNER_NEG = concat([ms(MS), ms(APP)]) // the inner negotiation, part of L (§11.2)

// One length-prefixed message at buf[pos]: [body, next] or null.
function readLp (buf, pos, max) {
  const r = readVarint(buf, pos, 9)
  if (r == null) return null
  const len = Number(r[0])
  if (len > max) throw new Error(`message of ${len} bytes`)
  if (r[1] + len > buf.length) return null
  return [buf.subarray(r[1], r[1] + len), r[1] + len]
}

const TYPES = { 1: 'label', 2: 'migrate', 3: 'ack', 4: 'confirm_start', 5: 'confirm', 6: 'reserved', 7: 'reserved' }
// StreamMigration (§11.1): exactly one oneof member of fields 1..7.
function decodeSM (body) {
  let pos = 0
  let member = null
  let count = 0
  while (pos < body.length) {
    const t = readVarint(body, pos, 10)
    if (t == null) throw new Error('truncated tag')
    pos = t[1]
    const field = Number(t[0] >> 3n)
    const wt = Number(t[0] & 7n)
    if (wt === 2) {
      const l = readVarint(body, pos, 10)
      if (l == null || l[1] + Number(l[0]) > body.length) throw new Error('truncated field')
      if (field >= 1 && field <= 7) { count++; member = [field, body.subarray(l[1], l[1] + Number(l[0]))] }
      pos = l[1] + Number(l[0])
    } else if (wt === 0) {
      const v = readVarint(body, pos, 10)
      if (v == null) throw new Error('truncated varint')
      if (field >= 1 && field <= 7) count++
      pos = v[1]
    } else if (wt === 1) { pos += 8 } else if (wt === 5) { pos += 4 } else throw new Error('wire type')
  }
  if (count !== 1 || member == null) throw new Error('not exactly one StreamMigration member')
  const m = { type: TYPES[member[0]] }
  const sub = member[1]
  let p = 0
  while (p < sub.length) { // the members' fields are varints; others skipped
    const t = readVarint(sub, p, 10)
    p = t[1]
    const f = Number(t[0] >> 3n)
    const wt = Number(t[0] & 7n)
    if (wt !== 0) {
      if (wt === 2) { const l = readVarint(sub, p, 10); p = l[1] + Number(l[0]) } else if (wt === 1) p += 8; else if (wt === 5) p += 4
      continue
    }
    const v = readVarint(sub, p, 10)
    p = v[1]
    const val = v[0]
    if (m.type === 'label' && f === 1) m.id = val
    if ((m.type === 'label' || m.type === 'migrate' || m.type === 'ack') && f === 16) m.incarnation = val
    if (m.type === 'migrate' && f === 1) m.id = val
    if (m.type === 'migrate' && f === 2) m.from = val
    if ((m.type === 'migrate' || m.type === 'ack') && f === 17) m.readOffset = val
    if (m.type === 'ack' && f === 1) m.deny = val !== 0n
    if (m.type === 'confirm_start' && f === 1) m.incarnation = val
    if (m.type === 'confirm' && f === 1) m.id = val
    if (m.type === 'confirm' && f === 2) m.readOffset = val
  }
  return m
}

const INC = BigInt('0x' + randomBytes(8).toString('hex')) // our incarnation (§11.7)
const encLabel = (id) => lp(fMsg(1, concat([fVar(1, id), fVar(16, INC)])))
const encAck = (readOffset) => lp(fMsg(3, concat([fVar(16, INC), fVar(17, readOffset)])))
const encDeny = () => lp(fMsg(3, concat([fVar(1, 1), fVar(16, INC)])))
const encConfirmStart = () => lp(fMsg(4, fVar(1, INC)))
const encConfirm = (id, off) => lp(fMsg(5, concat([fVar(1, id), fVar(2, off)])))

// ------------------------------------------------------------ messages
function msgBytes (seq) {
  const len = 16 + (seq % 41)
  const b = new Uint8Array(len)
  for (let k = 0; k < 8; k++) b[k] = Number((BigInt(seq) >> BigInt(56 - 8 * k)) & 0xffn)
  for (let i = 8; i < len; i++) b[i] = (seq * 7 + i) & 0xff
  return b
}
function msgSeq (b) {
  let s = 0n
  for (let k = 0; k < 8; k++) s = (s << 8n) | BigInt(b[k])
  return Number(s)
}
function msgOk (b, seq) {
  const want = msgBytes(seq)
  if (b.length !== want.length) return false
  for (let i = 0; i < want.length; i++) if (b[i] !== want[i]) return false
  return true
}

// ------------------------------------------------------ logical streams
// A carrier: one yamux stream under L (its underlying stream).
class Carrier {
  constructor (conn, stream) {
    this.conn = conn
    this.stream = stream
    this.push = pushable()
    stream.sink(this.push).catch(() => {})
    this.L = null
    this.expectMsg = true // the first StreamMigration message is still to come
    this.pre = new Uint8Array(0)
    this.inStart = 0; this.inRecv = 0 // L offsets read on it
    this.outStart = 0; this.outSent = 0 // L offsets written on it
    this.writable = false
    this.finIn = false; this.finOut = false
    this.dead = false; this.released = false
  }

  write (b) { if (!this.dead && !this.finOut) this.push.push(b) }
  fin () { if (!this.finOut) { this.finOut = true; this.push.end() } }
}

class LStream {
  constructor (id, weOpened) {
    this.id = id // current ID; every older one stays an alias (§11.3)
    this.aliases = new Set([id])
    this.weOpened = weOpened
    this.cur = null; this.old = null
    // writer (our direction)
    this.chunks = [] // [{off, buf}] covering [wBase, written)
    this.wBase = 0; this.written = 0; this.confirmed = 0; this.sentMax = 0
    // reader (the peer's direction)
    this.delivered = 0 // read offset (nothing held back: we consume at once)
    this.reported = 0 // the highest offset reported (Confirm, AckMigrate)
    this.hold = false; this.holdOld = null // §11.12 rule 2
    this.rbuf = new Uint8Array(0); this.negDone = false
  }
}

const S = {
  streams: [],
  mine: null, // our own L (js -> bftnet)
  peerInc: null,
  lower: null,
  nextK: 0,
  ctls: new Map(), // conn -> our confirmation stream {push, ready}
  sending: true,
  sent: 0, // messages js wrote
  recvLast: 0, // last message received from bftnet
  migrations: 0,
  resumes: 0
}

function findL (id) {
  for (const L of S.streams) if (L.aliases.has(id)) return L
  return null
}

function checkInc (inc) {
  if (inc == null) return
  if (S.peerInc == null) S.peerInc = inc
  else if (S.peerInc !== inc) fail('bftnet restarted (a new incarnation): not expected here')
}

// Bytes of our direction of L from `from` to `to`.
function wSlice (L, from, to) {
  const parts = []
  for (const c of L.chunks) {
    const a = Math.max(from, c.off); const b = Math.min(to, c.off + c.buf.length)
    if (a < b) parts.push(c.buf.subarray(a - c.off, b - c.off))
  }
  return concat(parts)
}

// Releases what is confirmed and carried by the current stream (§11.6 Memory).
function release (L) {
  let target = L.confirmed
  if (L.cur) target = Math.min(target, L.cur.outStart + L.cur.outSent)
  if (target <= L.wBase) return
  L.wBase = target
  while (L.chunks.length && L.chunks[0].off + L.chunks[0].buf.length <= L.wBase) L.chunks.shift()
}

function pump (L) {
  const c = L.cur
  if (!c || c.dead || !c.writable) return
  const pos = c.outStart + c.outSent
  if (pos >= L.written) return
  if (pos < L.wBase) { fail(`retransmit window lost bytes at ${pos} (base ${L.wBase})`); return }
  const b = wSlice(L, pos, L.written)
  c.write(b)
  c.outSent += b.length
  L.sentMax = Math.max(L.sentMax, pos + b.length)
}

function lWrite (L, bytes) {
  if (L.written - L.confirmed + bytes.length > WINDOW) return false
  L.chunks.push({ off: L.written, buf: bytes })
  L.written += bytes.length
  pump(L)
  return true
}

// The peer's direction of L, in order (§11.2): the inner negotiation first.
function lDeliver (L, bytes) {
  L.rbuf = concat([L.rbuf, bytes])
  if (!L.negDone) {
    if (L.rbuf.length < INNER_NEG.length) return
    for (let i = 0; i < INNER_NEG.length; i++) {
      if (L.rbuf[i] !== INNER_NEG[i]) { fail('bad inner negotiation'); return }
    }
    L.rbuf = L.rbuf.subarray(INNER_NEG.length)
    L.negDone = true
    if (!L.weOpened) lWrite(L, INNER_NEG) // the acceptor's echo
  }
  let pos = 0
  for (;;) {
    let r
    try { r = readLp(L.rbuf, pos, 1 << 20) } catch (e) { fail(e.message); return }
    if (r == null) break
    if (L.weOpened) { fail('bftnet wrote a message on our stream'); return }
    const seq = msgSeq(r[0])
    if (seq !== S.recvLast + 1 || !msgOk(r[0], seq)) {
      fail(`bftnet -> js: message ${seq} after ${S.recvLast} (loss, duplicate or reorder)`)
      return
    }
    S.recvLast = seq
    pos = r[1]
  }
  L.rbuf = L.rbuf.slice(pos)
}

// L bytes read on carrier c: placed by logical offset, duplicates dropped.
function onLData (c, bytes) {
  const L = c.L
  if (c.released || c.dead || !L) return
  const start = c.inStart + c.inRecv
  c.inRecv += bytes.length
  if (c === L.cur && bytes.length) L.hold = false // written after bftnet read our Ack
  if (start > L.delivered) { fail(`gap on stream ${L.id}: ${start} > ${L.delivered}`); return }
  const skip = Math.min(bytes.length, L.delivered - start)
  const fresh = bytes.subarray(skip)
  if (!fresh.length) return
  L.delivered += fresh.length
  lDeliver(L, fresh)
  if (L.delivered - L.reported >= CONFIRM_BYTES) flushConfirms()
}

// ------------------------------------------------------- carriers in
function onCarrierMsg (c, m) {
  checkInc(m.incarnation)
  if (m.type === 'label') {
    const L = new LStream(m.id, false) // bftnet's stream to us
    S.streams.push(L)
    c.L = L; L.cur = c; c.writable = true
    log(`Label ${m.id}`)
    return
  }
  if (m.type !== 'migrate') { fail(`unexpected first message ${m.type}`); c.stream.abort(new Error('bad')); return }
  // Migrate (§11.5 / §11.6, responder).
  const L = findL(m.from)
  if (!L || m.readOffset == null) {
    fail(`Migrate naming unknown stream ${m.from}`)
    c.write(encDeny()); c.fin(); c.released = true
    return
  }
  const r = Number(m.readOffset)
  if (r < L.confirmed || r > L.sentMax) { fail(`Migrate read_offset ${r} outside [${L.confirmed}, ${L.sentMax}]`); return }
  const prev = L.cur
  L.aliases.add(m.id)
  L.id = m.id
  L.confirmed = Math.max(L.confirmed, r)
  if (L.old) { L.old.released = true; L.old.fin(); L.old = null } // a still draining S_old
  if (prev) { // graceful: no byte of L on S_old from now on
    L.old = prev
    if (prev.finIn) { prev.fin(); L.old = null }
    S.migrations++
  } else {
    S.resumes++
  }
  c.L = L
  L.cur = c
  c.inStart = L.delivered // what the Ack reports
  c.outStart = r
  L.reported = Math.max(L.reported, L.delivered)
  L.hold = true; L.holdOld = prev // until bftnet shows it read the Ack
  c.write(encAck(L.delivered))
  c.writable = true
  log(`Migrate ${m.from} -> ${m.id} at ${r} (${prev ? 'graceful' : 'resume'}), acked ${L.delivered}`)
  pump(L)
}

function onCarrierBytes (c, bytes) {
  if (c.expectMsg) {
    c.pre = concat([c.pre, bytes])
    let r
    try { r = readLp(c.pre, 0, 1024) } catch (e) { fail(e.message); return }
    if (r == null) return
    c.expectMsg = false
    let m
    try { m = decodeSM(r[0]) } catch (e) { fail(`bad StreamMigration: ${e.message}`); return }
    onCarrierMsg(c, m)
    bytes = c.pre.subarray(r[1])
    c.pre = null
    if (!bytes.length) return
  }
  onLData(c, bytes)
}

function onCarrierEnd (c, err) {
  if (c.dead || c.released) return
  const L = c.L
  const decide = () => {
    if (c.dead || c.conn.status !== 'open') return // the connection went: L detaches
    if (err) { fail(`stream of L ${L ? L.id : '?'} reset: ${err.message}`); return }
    c.finIn = true
    if (!L) return
    if (c === L.old) { // the handover (§11.5 step 4)
      if (L.holdOld === c) L.hold = false
      c.fin(); L.old = null
    } else if (c === L.cur) {
      L.hold = false
      log(`FIN of L ${L.id}`)
    }
  }
  if (err) setTimeout(decide, 200); else decide()
}

async function readCarrier (c) {
  try {
    for await (const chunk of c.stream.source) onCarrierBytes(c, chunk.subarray())
    onCarrierEnd(c, null)
  } catch (err) {
    onCarrierEnd(c, err)
  }
}

// ------------------------------------------------ confirmation streams
function ensureCtl (conn) {
  if (S.ctls.has(conn)) return
  const k = { ready: false, push: null }
  S.ctls.set(conn, k)
  conn.newStream(CONFIRM, { maxOutboundStreams: 4096 }).then((stream) => {
    k.push = pushable()
    stream.sink(k.push).catch(() => {})
    k.push.push(encConfirmStart())
    k.ready = true
    ;(async () => { try { for await (const _ of stream.source) { /* the acceptor writes nothing */ } } catch {} })()
    flushConfirms()
  }).catch((err) => {
    if (conn.status === 'open') fail(`confirmation stream refused: ${err.name}: ${err.message}`)
  })
}

function flushConfirms () {
  const batches = new Map()
  for (const L of S.streams) {
    if (!L.cur || L.cur.dead || L.hold || L.delivered <= L.reported) continue
    const k = S.ctls.get(L.cur.conn)
    if (!k || !k.ready) continue
    if (!batches.has(k)) batches.set(k, [])
    batches.get(k).push(encConfirm(L.id, L.delivered))
    L.reported = L.delivered
  }
  for (const [k, parts] of batches) k.push.push(concat(parts))
}

function onConfirm (m) {
  const L = findL(m.id)
  if (!L) return // ended, or never known
  const off = Number(m.readOffset)
  if (off > L.sentMax) { fail(`Confirm ${off} beyond what we sent (${L.sentMax})`); return }
  if (off <= L.confirmed) return // stale
  L.confirmed = off
  release(L)
}

async function readCtl (stream) {
  let buf = new Uint8Array(0)
  let started = false
  try {
    for await (const chunk of stream.source) {
      buf = concat([buf, chunk.subarray()])
      let pos = 0
      for (;;) {
        const r = readLp(buf, pos, 1024)
        if (r == null) break
        pos = r[1]
        const m = decodeSM(r[0])
        if (!started) {
          if (m.type !== 'confirm_start') { fail('confirmation stream without ConfirmStart'); return }
          checkInc(m.incarnation)
          started = true
        } else if (m.type === 'confirm') {
          onConfirm(m)
        } else if (m.type !== 'reserved') {
          fail(`unexpected ${m.type} on a confirmation stream`)
        }
      }
      buf = buf.slice(pos)
    }
  } catch (err) {
    log(`confirmation stream ended: ${err.message}`)
  }
}

// ------------------------------------------------------------ the node
function peerBytes (id) { return id.toMultihash().bytes }
function cmpBytes (a, b) {
  for (let i = 0; i < Math.min(a.length, b.length); i++) if (a[i] !== b[i]) return a[i] - b[i]
  return a.length - b.length
}

// yamux is the stock one: auto-tuning windows, credit on the ACK.
const node = await newNode(['/ip4/127.0.0.1/tcp/0'], {
  connectionManager: { inboundConnectionThreshold: 1000, maxIncomingPendingConnections: 100 }
})

const streamOpts = { maxInboundStreams: 4096, maxOutboundStreams: 4096 }
await node.handle(MIG, ({ stream, connection }) => {
  const c = new Carrier(connection, stream)
  ensureCtl(connection) // we may read a logical stream here (§11.12)
  readCarrier(c)
}, streamOpts)
await node.handle(CONFIRM, ({ stream }) => { readCtl(stream) }, streamOpts)

async function openMine (conn) {
  const me = peerBytes(node.peerId); const them = peerBytes(conn.remotePeer)
  S.lower = cmpBytes(me, them) < 0
  const lo = S.lower ? me : them; const hi = S.lower ? them : me
  const h = createHash('sha256').update(lo).update(hi).digest()
  const loLeads = (h[h.length - 1] & 1) === 0
  if (loLeads === S.lower) fail('js leads this pair: the driver must pick a key for which bftnet leads')
  const id = BigInt(2 * S.nextK++ + (S.lower ? 0 : 1))
  const L = new LStream(id, true)
  lWrite(L, INNER_NEG) // the inner negotiation opens our direction of L (§11.2)
  S.mine = L // the messages follow it
  S.streams.push(L)
  const stream = await conn.newStream(MIG, { maxOutboundStreams: 4096 })
  const c = new Carrier(conn, stream)
  c.expectMsg = false
  c.L = L; L.cur = c
  c.write(encLabel(id))
  c.writable = true
  ensureCtl(conn)
  pump(L)
  log(`labelled our stream ${id}`)
  readCarrier(c)
}

node.addEventListener('connection:open', (evt) => {
  const conn = evt.detail
  log(`connection open ${conn.remoteAddr} (${conn.direction})`)
  if (S.mine == null) openMine(conn).catch((err) => fail(`open: ${err.message}`))
})
node.addEventListener('connection:close', (evt) => {
  const conn = evt.detail
  log(`connection closed ${conn.remoteAddr}`)
  S.ctls.delete(conn)
  for (const L of S.streams) { // detached, not reset (§11.6)
    if (L.cur && L.cur.conn === conn) { L.cur.dead = true; L.cur = null }
    if (L.old && L.old.conn === conn) { L.old.dead = true; L.old = null }
  }
})

await node.start()
const addr = tcpAddr(node)
process.stdout.write(`ADDR ${addr}\n`)

// Our messages, a few every tick, while the window has room.
const sender = setInterval(() => {
  const L = S.mine
  if (!S.sending || !L) return
  const parts = []
  for (let i = 0; i < MSG_PER_TICK; i++) parts.push(lp(msgBytes(S.sent + 1 + i)))
  const b = concat(parts)
  if (lWrite(L, b)) S.sent += MSG_PER_TICK
}, TICK_MS)
const confirmer = setInterval(flushConfirms, CONFIRM_MS)

async function flushAll () {
  const deadline = Date.now() + 20000
  while (Date.now() < deadline) {
    const L = S.mine
    if (L && L.confirmed === L.written) break
    await new Promise((resolve) => setTimeout(resolve, 10))
  }
  const L = S.mine
  if (!L || L.confirmed !== L.written) fail(`flush: ${L ? L.written - L.confirmed : '?'} bytes unconfirmed`)
  process.stdout.write(`FLUSHED sent=${S.sent} recv=${S.recvLast} migrations=${S.migrations} resumes=${S.resumes} errors=${errors}\n`)
}

async function exit () {
  clearInterval(sender); clearInterval(confirmer)
  await stopAndExit(node, () => (errors ? 1 : 0))
}

const rl = readline.createInterface({ input: process.stdin })
rl.on('line', (line) => {
  const cmd = line.trim()
  if (cmd === 'stop') S.sending = false
  else if (cmd === 'flush') flushAll()
  else if (cmd === 'exit') exit()
})
rl.on('close', () => { exit() })
