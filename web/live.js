// The live player: plays the stream's HLS with hls.js, fetching segments from the other viewers
// through p2p-media-loader (WebRTC, peers found through our WebSocket tracker) and from the
// origin when no peer has them in time. Segments from peers are checked against the stream's
// SHA-256 list. It reports seconds played and bytes by source to the live statistics.
import Hls from 'hls.js'
import { HlsJsP2PEngine } from 'p2p-media-loader-hlsjs'
import { segmentVerifier } from './live-verify.js'

const REPORT_EVERY = 5000

const box = document.getElementById('live-player')
if (box) start(box)

function start (box) {
  const video = document.getElementById('live-video')
  const line = document.getElementById('live-line')
  const stats = { peerBytes: 0, httpBytes: 0, peerSegments: 0, httpSegments: 0, peers: 0, uploaded: 0, rejected: 0 }
  const verifier = segmentVerifier(box.dataset.hashes)
  window.fanseedLive = { stats, verifier }
  if (!Hls.isSupported()) {
    if (video.canPlayType('application/vnd.apple.mpegurl')) video.src = box.dataset.playlist // Safari plays HLS itself
    return
  }
  const streamID = box.dataset.report.split('/').slice(-2)[0]
  const edges = liveEdges(box)
  window.fanseedLive.edges = edges
  const p2p = window.isSecureContext && typeof RTCPeerConnection !== 'undefined'
  const HlsWithP2P = HlsJsP2PEngine.injectMixin(Hls)
  const hls = new HlsWithP2P({
    enableWorker: false, // the page's policy allows workers from this site only, not blob: ones
    liveSyncDurationCount: 5, // 10 s behind the edge: the segments ahead come from peers
    liveMaxLatencyDurationCount: 10,
    p2p: {
      core: {
        swarmId: box.dataset.swarm,
        announceTrackers: [box.dataset.tracker + '?live=' + streamID],
        rtcConfig: { iceServers: [] },
        isP2PDisabled: !p2p,
        highDemandTimeWindow: 4,
        // A viewer joining asks the viewers already watching first: the segments behind the edge
        // it starts with come from them, unless none has them within 2.5 s.
        httpDownloadInitialTimeoutMs: 2500,
        httpDownloadTimeWindow: 30,
        p2pDownloadTimeWindow: 30,
        validateP2PSegment: (url, byteRange, data) => verifier.validate(url, byteRange, data),
        httpRequestSetup: (url, byteRange, signal, range) => edges.request(url, signal, range)
      },
      onHlsJsCreated (h) {
        const engine = h.p2pEngine
        engine.addEventListener('onSegmentLoaded', d => {
          if (d.downloadSource === 'p2p') { stats.peerBytes += d.bytesLength; stats.peerSegments++ } else { stats.httpBytes += d.bytesLength; stats.httpSegments++ }
        })
        engine.addEventListener('onPeerConnect', () => { stats.peers++ })
        engine.addEventListener('onPeerClose', () => { stats.peers = Math.max(0, stats.peers - 1) })
        engine.addEventListener('onChunkUploaded', n => { stats.uploaded += n })
      }
    }
  })
  hls.attachMedia(video)
  hls.loadSource(box.dataset.playlist)
  video.play().catch(() => {})

  // Reports: what changed since the last one.
  const viewer = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2) + Date.now()).replace(/-/g, '')
  const sent = { peerBytes: 0, httpBytes: 0 }
  let played = 0
  let last = video.currentTime
  video.addEventListener('timeupdate', () => {
    const d = video.currentTime - last
    if (d > 0 && d < 5) played += d
    last = video.currentTime
  })
  const report = (beacon) => {
    const body = JSON.stringify({
      viewer,
      peer_bytes: stats.peerBytes - sent.peerBytes,
      http_bytes: stats.httpBytes - sent.httpBytes,
      seconds: Math.floor(played)
    })
    sent.peerBytes = stats.peerBytes
    sent.httpBytes = stats.httpBytes
    played -= Math.floor(played)
    if (beacon && navigator.sendBeacon) navigator.sendBeacon(box.dataset.report, new Blob([body], { type: 'application/json' }))
    else fetch(box.dataset.report, { method: 'POST', body, headers: { 'Content-Type': 'application/json' } }).catch(() => {})
  }
  setInterval(() => {
    report(false)
    const all = stats.peerBytes + stats.httpBytes
    stats.rejected = verifier.rejected
    line.textContent = `${stats.peers} peer${stats.peers === 1 ? '' : 's'} · ${all ? Math.round(100 * stats.peerBytes / all) : 0}% from peers` +
      (stats.rejected ? ` · ${stats.rejected} bad segment${stats.rejected === 1 ? '' : 's'} from peers refused` : '')
  }, REPORT_EVERY)
  addEventListener('pagehide', () => report(true))
}

// liveEdges spreads the segments over the seedbox nodes that serve them (each node fetches each
// segment once from the origin), a segment always to the same node. Nodes are checked every 10 s;
// with none answering, segments come from the origin.
function liveEdges (box) {
  const all = (box.dataset.edges || '').split(' ').filter(Boolean)
  const probe = new URL(box.dataset.playlist).pathname.replace(/index\.m3u8$/, 'init.mp4')
  let up = []
  const check = async () => {
    const answered = await Promise.all(all.map(async edge => {
      try {
        const r = await fetch(edge + probe, { method: 'HEAD', cache: 'no-store', signal: AbortSignal.timeout(2000) })
        return r.ok ? edge : null
      } catch (_) { return null }
    }))
    up = answered.filter(Boolean)
  }
  if (all.length) { check(); setInterval(check, 10000) }
  const edges = {
    sent: 0, // segment requests sent to a node
    get up () { return up },
    async request (url, signal, range) {
      if (!up.length) return undefined // the origin, as the playlist names it
      edges.sent++
      const path = new URL(url).pathname
      let h = 0
      for (const c of path) h = (h * 31 + c.charCodeAt(0)) >>> 0
      const headers = {}
      if (range) headers.Range = `bytes=${range.start}-${range.end ?? ''}`
      return new Request(up[h % up.length] + path, { signal, headers })
    }
  }
  return edges
}
