import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
const node = await createLibp2p({ addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] }, transports: [tcp()], connectionEncrypters: [noise()], streamMuxers: [yamux()] })
await node.handle('/clawgrid/echo/1.0.0', (s) => { s.addEventListener('message', (e) => s.send(e.data)); s.addEventListener('end', () => s.close()) })
console.log(node.getMultiaddrs()[0].toString())
