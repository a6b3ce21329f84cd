import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { mplex } from '@libp2p/mplex'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'
import { randomBytes, createHash } from 'node:crypto'
const node = await createLibp2p({ transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [process.argv[4]==='yamux'?yamux():mplex()] })
const conn = await node.dial(multiaddr(process.argv[2]))
const s = await conn.newStream('/clawgrid/echo/1.0.0')
const n = Number(process.argv[3]); const data = randomBytes(n); let got = 0; const h = createHash('sha256')
const done = new Promise((res, rej) => { s.addEventListener('message', e => { const b = e.data.subarray(); got += b.length; h.update(b) }); s.addEventListener('close', e => e.error ? rej(e.error) : res()) })
const t = performance.now()
for (let o = 0; o < n; o += 65536) if (!s.send(data.subarray(o, o + 65536))) await s.onDrain()
await s.close(); try { await done } catch (e) { console.log('error', e.message, got) }
console.log(got, h.digest('hex') === createHash('sha256').update(data).digest('hex'), performance.now() - t)
await node.stop()
