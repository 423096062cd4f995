// The episode player: plays an episode with webtorrent from the swarm (the seedbox fleet and
// the other viewers, over WebRTC) through webtorrent's service worker into the page's <video>
// or <audio>. The origin web seed is the source of last resort: it joins only when the swarm
// cannot keep the buffer ahead, and leaves again once the buffer is healthy. Without a service
// worker or WebRTC the element keeps its plain src (the web seed), as it has without JavaScript.
import WebTorrent from 'webtorrent/dist/webtorrent.min.js'

const LOW_AHEAD = 4 // seconds buffered ahead below which the swarm is falling behind
const HIGH_AHEAD = 30 // seconds buffered ahead at which the web seed may leave again
const PEER_GRACE = 1000 // ms the swarm gets to fill a low buffer before the web seed joins, unless the page says (PLAYER_PEER_GRACE)
const TICK = 250
const REPORT_EVERY = 30000

const box = document.querySelector('[data-player]')
if (box) {
  const media = box.querySelector('video, audio')
  const fallbackSrc = media.getAttribute('src')
  if (canStream()) {
    // Nothing is fetched yet (preload="none"): keep it so until webtorrent has the stream.
    media.removeAttribute('src')
    start(box, media).catch(err => {
      console.warn('player: playing from the web seed:', err)
      fallback(box, media, fallbackSrc)
    })
  } else {
    fallback(box, media, fallbackSrc)
  }
}

function canStream () {
  return 'serviceWorker' in navigator && window.isSecureContext &&
    typeof RTCPeerConnection === 'function' && typeof ReadableStream === 'function'
}

function fallback (box, media, src) {
  box.dataset.state = 'fallback'
  if (media.getAttribute('src') !== src) {
    media.setAttribute('src', src)
    media.preload = 'metadata'
  }
}

async function start (box, media) {
  const reg = await navigator.serviceWorker.register(box.dataset.worker, { scope: box.dataset.scope })
  await activated(reg)
  await controlled()
  const res = await fetch(box.dataset.torrent)
  if (!res.ok) throw new Error(`torrent file: HTTP ${res.status}`)
  const torrentFile = new Uint8Array(await res.arrayBuffer())

  // webSeeds: false keeps webtorrent from fetching the url-list from the first byte; the web
  // seed is added by hand below, when the buffer runs low.
  const client = new WebTorrent({ webSeeds: false })
  // The worker asks every open page for a stream and takes the first answer: a page playing
  // another episode would answer "not found" first. Leave other episodes' requests to their pages.
  const own = `${box.dataset.scope}webtorrent/${box.dataset.infohash}/`
  navigator.serviceWorker.addEventListener('message', event => {
    const url = event.data?.type === 'webtorrent' && event.data.url
    if (url && !new URL(url).pathname.startsWith(own)) event.stopImmediatePropagation()
  })
  client.createServer({ controller: reg })
  const stats = { peers: 0, web: 0 }
  const torrent = await new Promise((resolve, reject) => {
    client.on('error', reject)
    const t = client.add(torrentFile, {})
    t.on('wire', wire => {
      wire.on('download', n => { if (wire.type === 'webSeed') stats.web += n; else stats.peers += n })
    })
    t.once('ready', () => resolve(t))
    t.once('error', reject)
  })
  torrent.files[0].streamTo(media)
  box.dataset.state = 'webtorrent'
  window.addEventListener('pagehide', () => client.destroy())

  const webSeed = new WebSeedPolicy(torrent, box.dataset.webseed, box)
  const watch = new Watch(media)
  const line = box.querySelector('[data-player-stats]')
  const report = new Reporter(box.dataset.report, torrent, stats, watch)
  setInterval(() => {
    webSeed.tick(media)
    showStats(line, torrent, stats, webSeed.on)
    // The figures behind the line, for whoever inspects the page.
    box.dataset.peerBytes = stats.peers
    box.dataset.webSeedBytes = stats.web
    box.dataset.uploadedBytes = torrent.uploaded
    box.dataset.firstFrameMs = watch.firstFrameMs
  }, TICK)
  setInterval(() => report.send(false), REPORT_EVERY)
  window.addEventListener('pagehide', () => report.send(true))
}

function activated (reg) {
  return new Promise((resolve, reject) => {
    const worker = reg.active || reg.waiting || reg.installing
    if (!worker) return reject(new Error('no service worker'))
    const check = () => {
      if (worker.state === 'activated') resolve()
      else if (worker.state === 'redundant') reject(new Error('service worker became redundant'))
    }
    worker.addEventListener('statechange', check)
    check()
  })
}

// controlled waits for the worker to control this page (it claims open pages on activation):
// only then does it see the media element's requests.
function controlled () {
  if (navigator.serviceWorker.controller) return Promise.resolve()
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('the service worker does not control the page')), 5000)
    navigator.serviceWorker.addEventListener('controllerchange', () => { clearTimeout(timer); resolve() }, { once: true })
  })
}

// bufferedAhead is how many seconds the element holds past its playing position.
function bufferedAhead (media) {
  const t = media.currentTime
  for (let i = 0; i < media.buffered.length; i++) {
    if (media.buffered.start(i) <= t + 0.25 && t <= media.buffered.end(i)) return media.buffered.end(i) - t
  }
  return 0
}

class WebSeedPolicy {
  constructor (torrent, url, box) {
    this.torrent = torrent
    this.url = url
    this.box = box
    this.on = false
    this.lowSince = 0
    const grace = Number(box.dataset.peerGrace)
    this.grace = Number.isFinite(grace) && grace > 0 ? grace : PEER_GRACE
  }

  tick (media) {
    if (this.torrent.done || !this.url) return this.set(false)
    const wanted = !media.paused || media.seeking
    const ahead = bufferedAhead(media)
    const now = performance.now()
    if (!this.on) {
      if (wanted && ahead < LOW_AHEAD && !media.ended) {
        if (!this.lowSince) this.lowSince = now
        if (now - this.lowSince >= this.grace) this.set(true)
      } else {
        this.lowSince = 0
      }
    } else if (ahead >= HIGH_AHEAD && peerCount(this.torrent) > 0) {
      this.set(false)
    }
  }

  set (on) {
    if (on === this.on) return
    this.on = on
    this.lowSince = 0
    if (on) this.torrent.addWebSeed(this.url)
    else this.torrent.removePeer(this.url)
    this.box.dataset.webSeed = on ? 'on' : 'off'
  }
}

function peerCount (torrent) {
  return torrent.wires.filter(w => w.type !== 'webSeed').length
}

function showStats (line, torrent, stats, webSeedOn) {
  if (!line) return
  const n = peerCount(torrent)
  const total = stats.peers + stats.web
  let text = `${n} ${n === 1 ? 'peer' : 'peers'}`
  if (total > 0) text += ` · ${Math.round(100 * stats.peers / total)}% of bytes from peers`
  if (webSeedOn) text += ' · web seed helping'
  if (torrent.uploaded > 0) text += ` · ${humanBytes(torrent.uploaded)} shared with other viewers`
  line.textContent = text
  line.hidden = false
}

function humanBytes (n) {
  const units = ['B', 'KB', 'MB', 'GB']
  let i = 0
  while (n >= 1000 && i < units.length - 1) { n /= 1000; i++ }
  return `${n.toFixed(i === 0 ? 0 : 1)} ${units[i]}`
}

// Watch measures the viewer's experience: time from pressing play to the first frame, stalls
// once playing, and seconds actually watched.
class Watch {
  constructor (media) {
    this.firstFrameMs = -1
    this.stalls = 0
    this.watched = 0
    let asked = 0
    let last = -1
    media.addEventListener('play', () => { if (!asked) asked = performance.now() })
    media.addEventListener('playing', () => {
      if (this.firstFrameMs < 0 && asked) this.firstFrameMs = Math.round(performance.now() - asked)
      last = media.currentTime
    })
    media.addEventListener('waiting', () => { if (this.firstFrameMs >= 0 && !media.seeking) this.stalls++ })
    media.addEventListener('seeking', () => { last = -1 })
    media.addEventListener('timeupdate', () => {
      const t = media.currentTime
      if (last >= 0 && t > last && t - last < 2 && !media.paused) this.watched += t - last
      last = t
    })
  }
}

// Reporter sends what changed since its last report, so that the platform can add them up.
class Reporter {
  constructor (url, torrent, stats, watch) {
    this.url = url
    this.torrent = torrent
    this.stats = stats
    this.watch = watch
    this.sent = { peers: 0, web: 0, uploaded: 0, stalls: 0, watched: 0, firstFrame: false }
  }

  send (leaving) {
    if (!this.url) return
    const now = { peers: this.stats.peers, web: this.stats.web, uploaded: this.torrent.uploaded, stalls: this.watch.stalls, watched: Math.floor(this.watch.watched) }
    const body = {
      peer_bytes: now.peers - this.sent.peers,
      web_seed_bytes: now.web - this.sent.web,
      uploaded_bytes: now.uploaded - this.sent.uploaded,
      stalls: now.stalls - this.sent.stalls,
      seconds_watched: now.watched - this.sent.watched
    }
    if (!this.sent.firstFrame && this.watch.firstFrameMs >= 0) body.first_frame_ms = this.watch.firstFrameMs
    if (!body.peer_bytes && !body.web_seed_bytes && !body.uploaded_bytes && !body.stalls && !body.seconds_watched && body.first_frame_ms === undefined) return
    const json = JSON.stringify(body)
    const done = () => { Object.assign(this.sent, now); if (body.first_frame_ms !== undefined) this.sent.firstFrame = true }
    if (leaving) {
      if (navigator.sendBeacon(this.url, new Blob([json], { type: 'application/json' }))) done()
      return
    }
    fetch(this.url, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: json, keepalive: true })
      .then(res => { if (res.ok) done() })
      .catch(() => {})
  }
}
