// The reference WebSocket tracker of bench/tracker: bittorrent-tracker's server, WebSocket only.
import Server from 'bittorrent-tracker/server'

const [host, port] = process.argv.slice(2)
const server = new Server({ udp: false, http: false, ws: true, stats: false })
server.on('error', (err) => { console.error(err); process.exit(1) })
server.listen(Number(port), host, () => console.log('listening'))
