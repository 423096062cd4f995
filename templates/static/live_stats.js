// The creator's live page: the statistics of the stream on now, refreshed every 2 s.
(() => {
  const box = document.getElementById('live-now')
  if (!box) return
  const set = (id, v) => { const el = document.getElementById(id); if (el) el.textContent = v }
  const tick = async () => {
    try {
      const r = await fetch(box.dataset.stats, { headers: { Accept: 'application/json' } })
      if (!r.ok) return
      const s = await r.json()
      set('live-viewers', s.live ? s.viewers : 0)
      set('live-peak', s.peak_viewers)
      set('live-minutes', s.minutes_watched)
      set('live-peer-share', Math.round(100 * s.peer_share) + '%')
    } catch (_) {}
  }
  setInterval(tick, 2000)
})()
