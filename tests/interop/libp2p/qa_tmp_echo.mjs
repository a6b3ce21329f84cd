import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { mplex } from '@libp2p/mplex'
import { identify } from '@libp2p/identify'
const node = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [mplex({disconnectThreshold: 100000})], services: { identify: identify() } })
await node.handle('/clawgrid/echo/1.0.0', (s) => {
  let got = 0, pauses = 0, t0 = 0
  s.addEventListener('message', (e) => {
    got += e.data.byteLength
    if (!s.send(e.data)) {
      pauses++; t0 = performance.now()
      const rb = s.readBufferLength
      s.pause()
      for (const d of [20, 100, 300]) setTimeout(() => console.error('+' + d + 'ms needsDrain', s.writableNeedsDrain, 'wbuf', s.writeBufferLength, 'rbuf', s.readBufferLength, 'status', s.status), d)
      s.onDrain().then(() => { console.error('drain after', (performance.now() - t0).toFixed(1), 'ms; readbuf', s.readBufferLength, 'at pause', rb, 'wb', s.writeBufferLength, 'got', got); try { s.resume() } catch {} }, (e) => console.error('drain err', e.message))
    }
  })
  s.addEventListener('close', (e) => console.error('close', e.error?.message, 'got', got, 'pauses', pauses))
  s.addEventListener('end', () => { s.close().catch(() => {}) })
})
console.log(node.getMultiaddrs()[0].toString())
