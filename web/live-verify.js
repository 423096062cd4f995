// Checks segments that came from other viewers against the stream's SHA-256 list before the
// player uses them: a peer that alters a segment is caught, the segment is fetched again.
export function segmentVerifier (hashesURL, fetchImpl = fetch) {
  const known = new Map() // segment file name -> SHA-256 in hex
  let refreshing = null
  const refresh = () => {
    refreshing ??= fetchImpl(hashesURL, { cache: 'no-store' })
      .then(r => r.ok ? r.json() : { segments: [] })
      .then(list => { for (const s of list.segments || []) known.set(s.name, s.sha256) })
      .finally(() => { refreshing = null })
    return refreshing
  }
  const verifier = {
    rejected: 0,
    refresh,
    async validate (url, byteRange, data) {
      const name = new URL(url, location.href).pathname.split('/').pop()
      if (!known.has(name)) await refresh().catch(() => {})
      const want = known.get(name)
      const ok = want !== undefined && byteRange === undefined && (await sha256Hex(data)) === want
      if (!ok) verifier.rejected++
      return ok
    }
  }
  return verifier
}

export async function sha256Hex (data) {
  const digest = new Uint8Array(await crypto.subtle.digest('SHA-256', data))
  return Array.from(digest, b => b.toString(16).padStart(2, '0')).join('')
}
