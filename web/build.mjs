// Bundles the episode player (player.js with webtorrent) and the live player (live.js with
// hls.js and p2p-media-loader), and copies webtorrent's service worker into
// templates/static/player/, which the binary embeds. Run `npm ci --ignore-scripts`
// first; the output is not committed.
import { build } from 'esbuild'
import { copyFile, mkdir } from 'node:fs/promises'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

const here = dirname(fileURLToPath(import.meta.url))
const out = join(here, '..', 'templates', 'static', 'player')

await mkdir(out, { recursive: true })
await build({
  entryPoints: [join(here, 'player.js'), join(here, 'live.js')],
  outdir: out,
  bundle: true,
  format: 'esm',
  minify: true,
  target: ['chrome100', 'firefox100', 'safari15'],
  legalComments: 'linked',
  // p2p-media-loader's own bundle of its core, with the tracker client built for browsers
  conditions: ['p2pml:core-as-bundle'],
  logLevel: 'warning'
})
await copyFile(join(here, 'node_modules', 'webtorrent', 'dist', 'sw.min.js'), join(out, 'sw.min.js'))
console.log('player bundle written to templates/static/player/')
