// Acceptance checks of clawgrid's libp2p against js-libp2p, written from the outside: only the fixed CLI
// interfaces (`clawgrid p2p listen|ping|dial`) and the wire are used. Independent of peer.mjs on purpose.
// One JSON line per check on stdout: {"check":NAME,"ok":true|false,...}; exit 0 when every check passed.
//
//   node accept.mjs battery C_ADDR [--only a,b]   js dials a running `clawgrid p2p listen` (C_ADDR ends in /p2p/ID)
//   node accept.mjs listen [--listen MA] [--muxers yamux,mplex] [--no-identify | --silent-identify]
//                          [--key secp256k1|RSA] [--parent-pid P]
//                                                  js listener for clawgrid to dial: prints {"listening":…}, then
//                                                  {"identify":…} per peer; serves /clawgrid/echo/1.0.0
//   node accept.mjs hold ADDR [--handle PROTO]    dials, then registers PROTO (identify push) and stays until SIGTERM
//   node accept.mjs ls HOST PORT                   raw TCP: multistream header + "ls", prints the listed protocols
import net from 'node:net'
import { createHash, randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { mplex } from '@libp2p/mplex'
import { identify, identifyPush } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { peerIdFromPublicKey, peerIdFromString } from '@libp2p/peer-id'
import { publicKeyFromProtobuf, generateKeyPair } from '@libp2p/crypto/keys'

const ECHO = '/clawgrid/echo/1.0.0'
const line = (o) => process.stdout.write(JSON.stringify(o) + '\n')
let failures = 0
function report (check, ok, detail = {}) {
  if (!ok) failures++
  line({ check, ok, ...detail })
}

function muxerList (names) {
  return names.map((n) => n === 'yamux'
    ? yamux()
    : mplex({ disconnectThreshold: 100000 }))
}

// Defaults as a user would leave them, except js's own per-host inbound throttle, which would refuse the
// short-lived-connection storm below from the same 127.0.0.1.
async function makeNode ({ muxers = ['yamux', 'mplex'], listen = [], push = false, noIdentify = false, key = null } = {}) {
  const services = { identify: identify(), ping: ping({ maxOutboundStreams: 64 }) }
  if (push) services.identifyPush = identifyPush()
  if (noIdentify) { // a minimal peer: ping and echo only, no /ipfs/id/*
    delete services.identify
    delete services.identifyPush
  }
  return createLibp2p({
    // an identity of another type than js's default Ed25519 when asked (secp256k1, RSA)
    ...(key ? { privateKey: await generateKeyPair(key, key === 'RSA' ? 2048 : undefined) } : {}),
    addresses: { listen },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: muxerList(muxers),
    connectionManager: { inboundConnectionThreshold: 100000 },
    services
  })
}

function withTimeout (p, ms, what) {
  let t
  return Promise.race([p, new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: timeout after ${ms} ms`)), ms) })])
    .finally(() => clearTimeout(t))
}

// Echo round trip on a fresh stream: send `data` in slices of `chunk` (one send when chunk >= length), half-close,
// read until the remote ends. Resolves to {got, sha, endedCleanly}.
async function echo (conn, data, { chunk = 65536 } = {}) {
  // js's own default of 64 outbound streams per protocol would refuse our concurrent checks first
  const s = await conn.newStream(ECHO, { maxOutboundStreams: 1024 })
  const h = createHash('sha256')
  let got = 0
  const done = new Promise((resolve, reject) => {
    s.addEventListener('message', (e) => {
      const b = e.data.subarray ? e.data.subarray() : e.data
      h.update(b)
      got += b.byteLength
    })
    s.addEventListener('close', (e) => e.error ? reject(e.error) : resolve())
  })
  for (let off = 0; off < data.length; off += chunk) {
    if (!s.send(data.subarray(off, Math.min(data.length, off + chunk)))) await s.onDrain()
  }
  await s.close() // write side only: the echo must still arrive
  await done
  return { got, sha: h.digest('hex'), status: s.status }
}
const sha = (b) => createHash('sha256').update(b).digest('hex')

function waitIdentify (node, peer, ms = 10000) {
  return withTimeout(new Promise((resolve) => {
    const f = (e) => {
      if (e.detail.peerId.equals(peer)) {
        node.removeEventListener('peer:identify', f)
        resolve(e.detail)
      }
    }
    node.addEventListener('peer:identify', f)
  }), ms, 'identify')
}

async function guard (name, fn) {
  try {
    await fn()
  } catch (err) {
    report(name, false, { error: String(err?.message ?? err) })
  }
}

async function battery (addrText, only) {
  const ma = multiaddr(addrText)
  const cid = peerIdFromString(addrText.split('/p2p/')[1])
  const bare = multiaddr(addrText.split('/p2p/')[0])
  const want = (n) => !only || only.includes(n)

  if (want('muxers')) {
    for (const prefs of [['yamux'], ['mplex'], ['yamux', 'mplex'], ['mplex', 'yamux']]) {
      await guard(`muxer:${prefs}`, async () => {
        const node = await makeNode({ muxers: prefs })
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        const expect = prefs[0] === 'yamux' ? '/yamux/1.0.0' : '/mplex/6.7.0'
        const rtt = await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })
        const data = randomBytes(300000)
        const r = await echo(conn, data)
        report(`muxer:${prefs}`, conn.multiplexer === expect && conn.encryption === '/noise' && r.sha === sha(data),
          { muxer: conn.multiplexer, rtt, echoed: r.got })
        await node.stop()
      })
    }
  }

  if (want('bare')) {
    await guard('dial-without-p2p', async () => {
      const node = await makeNode()
      const conn = await node.dial(bare, { signal: AbortSignal.timeout(10000) })
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(10000) })
      report('dial-without-p2p', conn.remotePeer.equals(cid), { peer: conn.remotePeer.toString(), rtt })
      await node.stop()
    })
  }

  if (want('identify')) {
    await guard('identify', async () => {
      const node = await makeNode({ push: true })
      const idp = waitIdentify(node, cid)
      const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
      const d = await idp
      const pk = d.publicKey ? publicKeyFromProtobuf(d.publicKey) : null
      const pkOk = pk != null && peerIdFromPublicKey(pk).equals(cid)
      const listen = d.listenAddrs.map(String)
      const obs = d.observedAddr ? d.observedAddr.toString() : ''
      const need = ['/ipfs/id/1.0.0', '/ipfs/id/push/1.0.0', '/ipfs/ping/1.0.0', ECHO]
      const missing = need.filter((p) => !d.protocols.includes(p))
      const stored = await node.peerStore.get(cid)
      const agentStored = stored.metadata.get('AgentVersion')
      const ok = /^clawgrid\/\S+/.test(d.agentVersion ?? '') && d.protocolVersion === 'ipfs/0.1.0' && pkOk &&
        listen.includes(bare.toString()) && /^\/ip[46]\/[^/]+\/tcp\/\d+$/.test(obs) &&
        obs !== bare.toString() && missing.length === 0 &&
        agentStored != null && new TextDecoder().decode(agentStored) === d.agentVersion
      report('identify', ok, {
        agentVersion: d.agentVersion, protocolVersion: d.protocolVersion, publicKeyMatches: pkOk, listenAddrs: listen,
        observedAddr: obs, missing, protocols: d.protocols, muxer: conn.multiplexer, jsPeer: node.peerId.toString()
      })
      // identify push: a protocol registered now reaches clawgrid (checked on its side by the driver)
      await node.handle('/qa/pushed/1.0.0', (s) => s.abort(new Error('not used')))
      await new Promise((r) => setTimeout(r, 1500))
      report('identify-push-sent', true, { jsPeer: node.peerId.toString(), protocol: '/qa/pushed/1.0.0' })
      await node.stop()
    })
  }

  if (want('ping')) {
    await guard('ping-repeat', async () => {
      const node = await makeNode()
      const rtts = []
      for (let i = 0; i < 25; i++) rtts.push(await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) }))
      // concurrent pings on one connection too
      const more = await Promise.all(Array.from({ length: 10 }, () => node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })))
      report('ping-repeat', rtts.length === 25 && more.length === 10 && rtts.every((x) => x >= 0), { n: rtts.length + more.length })
      await node.stop()
    })
  }

  if (want('churn')) {
    await guard('short-lived-connections', async () => {
      const node = await makeNode()
      let n = 0
      for (let i = 0; i < 40; i++) {
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })
        if (i % 2) await conn.close()
        else conn.abort(new Error('qa: abrupt close'))
        n++
      }
      // and 15 distinct peers at once, each dying right after its handshake
      const peers = await Promise.all(Array.from({ length: 15 }, () => makeNode()))
      await Promise.all(peers.map((p) => p.dial(ma, { signal: AbortSignal.timeout(10000) })))
      await Promise.all(peers.map((p) => p.stop()))
      const rtt = await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })
      report('short-lived-connections', n === 40, { n, rttAfter: rtt })
      await node.stop()
    })
  }

  if (want('halfclose')) {
    for (const mux of ['yamux', 'mplex']) {
      await guard(`half-close:${mux}`, async () => {
        const node = await makeNode({ muxers: [mux] })
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        // written, then our write side closed, then the whole echo read; the stream ends cleanly
        const data = randomBytes(200000)
        const r = await echo(conn, data)
        // empty stream: close at once, the remote must close too
        const e = await echo(conn, new Uint8Array(0))
        report(`half-close:${mux}`, r.sha === sha(data) && e.got === 0, { got: r.got, status: r.status })
        await node.stop()
      })
    }
  }

  if (want('large')) {
    for (const mux of ['yamux', 'mplex']) {
      await guard(`large-write:${mux}`, async () => {
        const node = await makeNode({ muxers: [mux] })
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        const data = randomBytes(8 << 20)
        const t = performance.now()
        const r = await withTimeout(echo(conn, data, { chunk: data.length }), 60000, 'echo')
        const ms = performance.now() - t
        // two at once on one connection, 4 MiB each, one write each
        const a = randomBytes(4 << 20)
        const b = randomBytes(4 << 20)
        const [ra, rb] = await withTimeout(Promise.all([echo(conn, a, { chunk: a.length }), echo(conn, b, { chunk: b.length })]), 60000, 'echo2')
        report(`large-write:${mux}`, r.sha === sha(data) && ra.sha === sha(a) && rb.sha === sha(b),
          { got: r.got, ms: Math.round(ms), mbps: Math.round((data.length / 1048576) / (ms / 1000)) })
        await node.stop()
      })
    }
  }

  if (want('reset')) {
    for (const mux of ['yamux', 'mplex']) {
      await guard(`reset:${mux}`, async () => {
        const node = await makeNode({ muxers: [mux] })
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        // streams reset right after opening, after sending, and while the echo is flowing back
        for (let i = 0; i < 30; i++) {
          const s = await conn.newStream(ECHO)
          if (i % 3 === 1) s.send(randomBytes(100000))
          if (i % 3 === 2) {
            s.send(randomBytes(500000))
            await new Promise((resolve) => s.addEventListener('message', resolve, { once: true }))
          }
          s.abort(new Error('qa: reset'))
        }
        // a reset on a ping stream in the middle of a round
        const ps = await conn.newStream('/ipfs/ping/1.0.0')
        ps.send(randomBytes(16))
        ps.abort(new Error('qa: reset'))
        await new Promise((r) => setTimeout(r, 200))
        const data = randomBytes(100000)
        const r = await echo(conn, data)
        const rtt = await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })
        report(`reset:${mux}`, r.sha === sha(data) && conn.status === 'open', { rtt, streamsLeftJs: conn.streams.length })
        await node.stop()
      })
    }
  }

  if (want('streams')) {
    for (const mux of ['yamux', 'mplex']) {
      await guard(`streams:${mux}`, async () => {
        const node = await makeNode({ muxers: [mux] })
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        const jobs = Array.from({ length: 100 }, async () => {
          const d = randomBytes(8192)
          const r = await echo(conn, d)
          return r.sha === sha(d)
        })
        const res = await withTimeout(Promise.all(jobs), 30000, 'streams')
        report(`streams:${mux}`, res.every(Boolean), { n: res.length })
        await node.stop()
      })
    }
  }

  if (want('unknown')) {
    await guard('unknown-protocol', async () => {
      const node = await makeNode()
      const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
      let refused = false
      let name = ''
      try {
        const s = await conn.newStream('/qa/nobody/1.0.0', { signal: AbortSignal.timeout(5000) })
        // js may select optimistically: the refusal then shows on first use
        s.send(new Uint8Array([1]))
        await withTimeout(new Promise((resolve, reject) => {
          s.addEventListener('close', (e) => e.error ? reject(e.error) : resolve())
          s.addEventListener('message', () => resolve())
        }), 5000, 'unknown protocol')
      } catch (err) {
        refused = true
        name = err?.name
      }
      const data = randomBytes(1000)
      const r = await echo(conn, data)
      report('unknown-protocol', refused && r.sha === sha(data), { name })
      await node.stop()
    })
  }

  if (want('flood')) {
    // A stream flood: far more streams than clawgrid allows per connection (512 by default), each written
    // to and never read or closed; clawgrid must refuse the excess with resets and keep the connection.
    for (const mux of ['yamux', 'mplex']) {
      await guard(`stream-flood:${mux}`, async () => {
        const node = await makeNode({ muxers: [mux] })
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        let opened = 0
        let refused = 0
        const streams = []
        await Promise.all(Array.from({ length: 1500 }, async () => {
          try {
            const s = await conn.newStream(ECHO, { maxOutboundStreams: 5000, signal: AbortSignal.timeout(10000) })
            s.send(randomBytes(16384))
            streams.push(s)
            opened++
          } catch {
            refused++
          }
        }))
        await new Promise((r) => setTimeout(r, 300))
        const reset = streams.filter((s) => s.status !== 'open').length
        for (const s of streams) s.abort(new Error('qa: done'))
        await new Promise((r) => setTimeout(r, 300))
        const d = randomBytes(10000)
        const r = await echo(conn, d)
        report(`stream-flood:${mux}`, refused + reset > 0 && r.sha === sha(d), { opened, refused, reset })
        await node.stop()
      })
    }
  }

  if (want('keytypes')) {
    // js peers whose identity is not Ed25519: the noise signature is verified under their key type
    for (const key of ['secp256k1', 'RSA']) {
      await guard(`key:${key}`, async () => {
        const node = await makeNode({ key })
        const idp = waitIdentify(node, cid)
        const conn = await node.dial(ma, { signal: AbortSignal.timeout(10000) })
        await idp
        const rtt = await node.services.ping.ping(ma, { signal: AbortSignal.timeout(10000) })
        const d = randomBytes(100000)
        const r = await echo(conn, d)
        report(`key:${key}`, r.sha === sha(d), { jsPeer: node.peerId.toString(), rtt })
        await node.stop()
      })
    }
  }

  if (want('dns4')) {
    await guard('dns4', async () => {
      const port = bare.toString().split('/tcp/')[1]
      const node = await makeNode()
      const conn = await node.dial(multiaddr(`/dns4/localhost/tcp/${port}/p2p/${cid}`), { signal: AbortSignal.timeout(10000) })
      const rtt = await node.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(10000) })
      report('dns4', conn.remotePeer.equals(cid), { rtt })
      await node.stop()
    })
  }

  if (want('wrongid')) {
    await guard('wrong-peer-id', async () => {
      const other = peerIdFromPublicKey((await generateKeyPair('Ed25519')).publicKey)
      const node = await makeNode()
      let failed = false
      let msg = ''
      try {
        await node.dial(multiaddr(`${bare}/p2p/${other}`), { signal: AbortSignal.timeout(10000) })
      } catch (err) {
        failed = true
        msg = String(err?.message ?? err)
      }
      report('wrong-peer-id', failed, { error: msg })
      await node.stop()
    })
  }
}

// Dials, waits for the remote's identify, registers `proto` (identify push tells the remote), then stays
// connected until SIGTERM so the remote's peer store can be inspected.
async function hold (addrText, proto) {
  const node = await makeNode({ push: true })
  const conn = await node.dial(multiaddr(addrText), { signal: AbortSignal.timeout(10000) })
  await waitIdentify(node, conn.remotePeer).catch(() => {})
  line({ connected: conn.remotePeer.toString(), jsPeer: node.peerId.toString(), muxer: conn.multiplexer })
  if (proto) {
    await node.handle(proto, (s) => s.abort(new Error('not used')))
    line({ handled: proto })
  }
  await new Promise((resolve) => { process.on('SIGTERM', resolve); process.on('SIGINT', resolve) })
  await node.stop()
  process.exit(0)
}

async function listen (opts) {
  const node = await makeNode({ muxers: opts.muxers, listen: [opts.listen], push: true, noIdentify: opts.noIdentify, key: opts.key })
  // clawgrid opens many echo streams at once (p2p dial --streams N): lift js's default of 32 inbound per protocol
  await node.handle(ECHO, (s, conn) => {
    // js-libp2p 3.x over mplex never wakes a paused stream (its 'drain' does not reach it) and resets it once
    // 4 MiB wait unread, js <-> js alike: pausing is only safe with yamux, which has real flow control.
    const canPause = conn.multiplexer !== '/mplex/6.7.0'
    s.addEventListener('message', (e) => {
      if (!s.send(e.data) && canPause) {
        s.pause()
        s.onDrain().then(() => { try { s.resume() } catch {} }, () => {})
      }
    })
    s.addEventListener('end', () => { s.close().catch(() => {}) })
  }, { maxInboundStreams: 1024 })
  if (opts.silentIdentify) {
    // a peer that takes the identify stream and never answers: the dialer must not wait for it forever
    await node.handle('/ipfs/id/1.0.0', () => {})
  }
  node.addEventListener('peer:identify', (e) => {
    const d = e.detail
    const pk = d.publicKey ? publicKeyFromProtobuf(d.publicKey) : null
    line({
      identify: d.peerId.toString(),
      agentVersion: d.agentVersion,
      protocolVersion: d.protocolVersion,
      publicKeyMatches: pk != null && peerIdFromPublicKey(pk).equals(d.peerId),
      protocols: d.protocols,
      listenAddrs: d.listenAddrs.map(String),
      observedAddr: d.observedAddr?.toString() ?? null,
      muxer: d.connection?.multiplexer
    })
  })
  line({ listening: node.getMultiaddrs().map(String), peerId: node.peerId.toString() })
  const stop = () => node.stop().then(() => process.exit(0))
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

// Raw multistream-select 1.0 on a plain TCP socket: header, then "ls"; prints the protocols listed.
function ls (host, port) {
  const enc = (s) => { const b = Buffer.from(s + '\n'); return Buffer.concat([Buffer.from([b.length]), b]) }
  const sock = net.connect({ host, port })
  let buf = Buffer.alloc(0)
  const t = setTimeout(() => { line({ ls: null, error: 'timeout', raw: buf.toString('hex') }); process.exit(1) }, 5000)
  sock.on('connect', () => sock.write(Buffer.concat([enc('/multistream/1.0.0'), enc('ls')])))
  sock.on('data', (d) => {
    buf = Buffer.concat([buf, d])
    // message 1: header echo; message 2: the ls answer
    const msgs = []
    let off = 0
    while (off < buf.length) {
      let len = 0; let shift = 0; let i = off
      for (; i < buf.length; i++) { len |= (buf[i] & 0x7f) << shift; shift += 7; if (!(buf[i] & 0x80)) break }
      if (i >= buf.length || i + 1 + len > buf.length) break
      msgs.push(buf.subarray(i + 1, i + 1 + len))
      off = i + 1 + len
    }
    if (msgs.length < 2) return
    clearTimeout(t)
    const body = msgs[1]
    const protos = []
    let p = 0
    while (p < body.length && body[p] !== 0x0a) {
      const n = body[p]
      protos.push(body.subarray(p + 1, p + n).toString())
      p += 1 + n
    }
    line({ header: msgs[0].toString().trim(), ls: protos, trailingNewline: body[body.length - 1] === 0x0a })
    sock.destroy()
    process.exit(0)
  })
  sock.on('error', (e) => { line({ ls: null, error: e.message }); process.exit(1) })
}

const argv = process.argv.slice(2)
const flag = (name, dflt) => { const i = argv.indexOf(name); return i >= 0 ? argv[i + 1] : dflt }
const parent = Number(flag('--parent-pid', 0))
if (parent) setInterval(() => { try { process.kill(parent, 0) } catch { process.exit(4) } }, 500).unref()
process.on('unhandledRejection', (err) => { line({ check: 'unhandled', ok: false, error: String(err?.stack ?? err) }); process.exit(1) })

if (argv[0] === 'battery') {
  const only = flag('--only', null)?.split(',')
  await battery(argv[1], only)
  line({ done: true, failures })
  process.exit(failures ? 1 : 0)
} else if (argv[0] === 'listen') {
  await listen({ listen: flag('--listen', '/ip4/127.0.0.1/tcp/0'), muxers: flag('--muxers', 'yamux,mplex').split(','), noIdentify: argv.includes('--no-identify') || argv.includes('--silent-identify'), silentIdentify: argv.includes('--silent-identify'), key: flag('--key', null) })
} else if (argv[0] === 'hold') {
  await hold(argv[1], flag('--handle', null))
} else if (argv[0] === 'ls') {
  ls(argv[1], Number(argv[2]))
} else {
  console.error('usage: accept.mjs battery C_ADDR [--only …] | listen [--listen MA] [--muxers …] | ls HOST PORT')
  process.exit(64)
}
