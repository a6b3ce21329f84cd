// A real js-libp2p peer (tcp + noise + yamux|mplex + identify + ping) for clawgrid's interop tests and
// benchmarks. Nobody on the project wrote the libp2p side of it: this file only wires the npm packages together
// and reports what they see, one JSON object per line on stdout.
//
//   node peer.mjs listen [--listen MA] [--muxer yamux|mplex|both] [--die-after-echo-bytes N] [--parent-pid P]
//       prints {"event":"listening","peerId":…,"addrs":[…]} then serves /clawgrid/echo/1.0.0 until SIGTERM,
//       printing {"event":"identify",…} for every peer that identifies itself.
//   node peer.mjs dial MA [--muxer yamux|mplex] [--actions a,b,…]
//       dials MA, then runs the actions in order and prints one line per result:
//         identify        wait for the remote's identify and print it
//         ping:N          N pings, each {"event":"ping","rtt":ms}
//         streams:N       N concurrent echo streams of 4 KiB each, all bytes checked
//         echo:BYTES      one echo stream of BYTES pseudo-random bytes, sha256 of both directions compared
//         cut:BYTES       open an echo stream, send BYTES, then exit without closing anything (peer disconnect)
//         badproto        open a stream for a protocol nobody serves (must be refused)
//         idle:N          open N more connections (fresh js nodes) to the same address and keep them idle
//         hold            stay connected until SIGTERM
//       exits 0 after {"event":"done"}, 1 after {"event":"error","message":…}.
//   node peer.mjs bench-listen / bench-dial MA --bytes N   (benchmarks, see bench/bench_p2p.sh)
import { createHash, randomBytes } from 'node:crypto'
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { mplex } from '@libp2p/mplex'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'

const ECHO = '/clawgrid/echo/1.0.0'
const STREAM_LIMIT = 1024

function out (obj) {
  process.stdout.write(JSON.stringify(obj) + '\n')
}

function fail (err) {
  out({ event: 'error', message: String(err?.message ?? err), name: err?.name })
  process.exit(1)
}

function parseArgs (argv) {
  const opts = { mode: argv[0], target: null, listen: '/ip4/127.0.0.1/tcp/0', muxer: 'yamux', actions: [], dieAfter: 0, bytes: 0 }
  let i = 1
  if ((opts.mode === 'dial' || opts.mode === 'bench-dial') && argv[1] && !argv[1].startsWith('--')) {
    opts.target = argv[1]
    i = 2
  }
  for (; i < argv.length; i++) {
    const a = argv[i]
    const v = argv[++i]
    if (v === undefined) throw new Error(`missing value for ${a}`)
    if (a === '--listen') opts.listen = v
    else if (a === '--muxer') opts.muxer = v
    else if (a === '--actions') opts.actions = v.split(',').filter(Boolean)
    else if (a === '--die-after-echo-bytes') opts.dieAfter = Number(v)
    else if (a === '--bytes') opts.bytes = Number(v)
    else if (a === '--parent-pid') opts.parentPid = Number(v)
    else throw new Error(`unknown option ${a}`)
  }
  if (!['yamux', 'mplex', 'both'].includes(opts.muxer)) throw new Error(`unknown muxer ${opts.muxer}`)
  return opts
}

function muxers (name) {
  const y = yamux({ maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
  // js mplex aborts a connection that opens more than `disconnectThreshold` (default 5) streams per second;
  // the 100-concurrent-streams test needs more.
  const m = mplex({ maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT, disconnectThreshold: 100000 })
  if (name === 'yamux') return [y]
  if (name === 'mplex') return [m]
  return [y, m]
}

async function makeNode (opts, listen) {
  return createLibp2p({
    addresses: { listen: listen ? [opts.listen] : [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: muxers(opts.muxer),
    connectionManager: { maxConnections: 4096, maxIncomingPendingConnections: 256, inboundConnectionThreshold: 100000 },
    services: { identify: identify(), ping: ping() }
  })
}

function identifyJson (d) {
  return {
    event: 'identify',
    peerId: d.peerId.toString(),
    protocolVersion: d.protocolVersion ?? null,
    agentVersion: d.agentVersion ?? null,
    publicKey: d.publicKey ? Buffer.from(d.publicKey).toString('hex') : null,
    listenAddrs: d.listenAddrs.map(String),
    observedAddr: d.observedAddr ? d.observedAddr.toString() : null,
    protocols: d.protocols,
    muxer: d.connection?.multiplexer ?? null,
    encryption: d.connection?.encryption ?? null
  }
}

// Echo: everything read goes back; when the remote closes its write side we close ours after the last byte.
// Backpressure: pause reading while our send buffer is full (yamux then stops granting window). mplex has no
// flow control and js resets a paused mplex stream once 4 MiB are buffered, so there we keep reading and let the
// send buffer absorb the difference.
function serveEcho (stream, conn, dieAfter) {
  const canPause = conn.multiplexer !== '/mplex/6.7.0'
  let seen = 0
  stream.addEventListener('message', (evt) => {
    seen += evt.data.byteLength
    if (dieAfter > 0 && seen >= dieAfter) {
      out({ event: 'dying', seen })
      process.exit(3)
    }
    try {
      if (!stream.send(evt.data) && canPause) {
        stream.pause()
        // resume() throws once the connection is gone: that only ends this echo.
        stream.onDrain().then(() => { try { stream.resume() } catch {} }, () => {})
      }
    } catch (err) {
      stream.abort(err)
    }
  })
  // 'end' (not 'remoteCloseWrite'): it fires after the last buffered message was delivered, so nothing is
  // sent after our close.
  stream.addEventListener('end', () => {
    stream.close().catch(() => {})
  })
}

function sha (b) {
  return createHash('sha256').update(b).digest('hex')
}

// Sends `data` over a fresh echo stream and collects what comes back; resolves to the received bytes.
async function echoOnce (conn, data, chunk = 65536) {
  const stream = await conn.newStream(ECHO)
  const hash = createHash('sha256')
  let got = 0
  const done = new Promise((resolve, reject) => {
    stream.addEventListener('message', (evt) => {
      const b = evt.data.subarray ? evt.data.subarray() : evt.data
      hash.update(b)
      got += b.byteLength
    })
    stream.addEventListener('close', (evt) => {
      if (evt.error) reject(evt.error)
      else resolve()
    })
    stream.addEventListener('end', () => resolve())
  })
  for (let off = 0; off < data.length; off += chunk) {
    if (!stream.send(data.subarray(off, off + chunk))) await stream.onDrain()
  }
  await stream.close()
  await done
  return { got, sha256: hash.digest('hex') }
}

async function waitIdentify (node, peerId, ms) {
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('no identify from remote within ' + ms + ' ms')), ms)
    node.addEventListener('peer:identify', (evt) => {
      if (evt.detail.peerId.equals(peerId)) {
        clearTimeout(t)
        resolve(evt.detail)
      }
    })
  })
}

async function runDial (opts) {
  const node = await makeNode(opts, false)
  await node.handle(ECHO, (s, c) => serveEcho(s, c, 0), { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
  const target = multiaddr(opts.target)
  let conn
  let identified = null
  const t0 = performance.now()
  try {
    conn = await node.dial(target, { signal: AbortSignal.timeout(10000) })
  } catch (err) {
    out({ event: 'dial-failed', message: String(err?.message ?? err), name: err?.name })
    await node.stop()
    process.exit(2)
  }
  const idWait = waitIdentify(node, conn.remotePeer, 10000).then((d) => { identified = d })
  idWait.catch(() => {})
  out({ event: 'connected', peerId: conn.remotePeer.toString(), muxer: conn.multiplexer, encryption: conn.encryption, ms: performance.now() - t0 })
  const extra = []
  for (const action of opts.actions) {
    const [name, arg] = action.split(':')
    const n = Number(arg ?? 0)
    if (name === 'identify') {
      await idWait
      out(identifyJson(identified))
    } else if (name === 'ping') {
      for (let i = 0; i < n; i++) {
        const rtt = await node.services.ping.ping(conn.remotePeer, { signal: AbortSignal.timeout(10000) })
        out({ event: 'ping', rtt })
      }
    } else if (name === 'streams') {
      const jobs = []
      for (let i = 0; i < n; i++) {
        const data = randomBytes(4096)
        jobs.push(echoOnce(conn, data).then((r) => {
          if (r.got !== data.length || r.sha256 !== sha(data)) throw new Error(`stream ${i}: echo mismatch (${r.got} bytes)`)
        }))
      }
      await Promise.all(jobs)
      out({ event: 'streams', count: n, ok: true })
    } else if (name === 'echo') {
      const data = randomBytes(n)
      const t = performance.now()
      const r = await echoOnce(conn, data)
      const ms = performance.now() - t
      out({ event: 'echo', bytes: n, got: r.got, sent_sha256: sha(data), got_sha256: r.sha256, ok: r.got === n && r.sha256 === sha(data), ms })
      if (r.got !== n || r.sha256 !== sha(data)) fail(new Error('echo mismatch'))
    } else if (name === 'cut') {
      const stream = await conn.newStream(ECHO)
      const data = randomBytes(n)
      for (let off = 0; off < n; off += 65536) {
        if (!stream.send(data.subarray(off, off + 65536))) await stream.onDrain()
      }
      out({ event: 'cut', sent: n })
      process.exit(0)
    } else if (name === 'badproto') {
      try {
        await conn.newStream('/clawgrid/does-not-exist/1.0.0', { signal: AbortSignal.timeout(5000) })
        fail(new Error('unknown protocol was accepted'))
      } catch (err) {
        out({ event: 'badproto', refused: true, name: err?.name })
      }
    } else if (name === 'idle') {
      for (let i = 0; i < n; i++) {
        const other = await makeNode(opts, false)
        await other.dial(target, { signal: AbortSignal.timeout(10000) })
        extra.push(other)
      }
      out({ event: 'idle', count: n })
    } else if (name === 'hold') {
      out({ event: 'holding' })
      await new Promise((resolve) => {
        process.on('SIGTERM', resolve)
        process.on('SIGINT', resolve)
      })
    } else {
      fail(new Error(`unknown action ${name}`))
    }
  }
  out({ event: 'done' })
  await Promise.all(extra.map((x) => x.stop()))
  await node.stop()
  process.exit(0)
}

async function runListen (opts) {
  const node = await makeNode(opts, true)
  await node.handle(ECHO, (s, c) => serveEcho(s, c, opts.dieAfter), { maxInboundStreams: STREAM_LIMIT, maxOutboundStreams: STREAM_LIMIT })
  node.addEventListener('peer:identify', (evt) => out(identifyJson(evt.detail)))
  out({ event: 'listening', peerId: node.peerId.toString(), addrs: node.getMultiaddrs().map(String) })
  const stop = async () => {
    await node.stop()
    process.exit(0)
  }
  process.on('SIGTERM', stop)
  process.on('SIGINT', stop)
}

// Benchmarks: a listener that only serves echo, and a dialer that measures the handshake (dial until the
// connection is upgraded) and the throughput of one echo stream.
async function runBenchDial (opts) {
  const node = await makeNode(opts, false)
  const target = multiaddr(opts.target)
  const hs = []
  for (let i = 0; i < 5; i++) {
    const t = performance.now()
    const c = await node.dial(target, { signal: AbortSignal.timeout(10000) })
    hs.push(performance.now() - t)
    await c.close()
  }
  const conn = await node.dial(target, { signal: AbortSignal.timeout(10000) })
  const data = randomBytes(opts.bytes)
  const t = performance.now()
  const r = await echoOnce(conn, data)
  const ms = performance.now() - t
  if (r.got !== data.length || r.sha256 !== sha(data)) fail(new Error('echo mismatch'))
  hs.sort((a, b) => a - b)
  out({ event: 'bench', bytes: opts.bytes, ms, mbps: (opts.bytes / 1048576) / (ms / 1000), handshake_ms: hs[Math.floor(hs.length / 2)] })
  await node.stop()
  process.exit(0)
}

const opts = parseArgs(process.argv.slice(2))
// A test that dies must not leave this peer behind: exit when the given parent process is gone.
if (opts.parentPid) {
  setInterval(() => {
    try { process.kill(opts.parentPid, 0) } catch { process.exit(4) }
  }, 500).unref()
}
process.on('unhandledRejection', (err) => {
  process.stderr.write('unhandled rejection: ' + (err?.stack ?? err) + '\n')
  fail(err)
})
if (opts.mode === 'listen' || opts.mode === 'bench-listen') runListen(opts).catch(fail)
else if (opts.mode === 'dial') runDial(opts).catch(fail)
else if (opts.mode === 'bench-dial') runBenchDial(opts).catch(fail)
else fail(new Error('usage: peer.mjs listen|dial MA|bench-listen|bench-dial MA [options]'))
